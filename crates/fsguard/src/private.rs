//! Secrets on the host's disk (the emulated PSP's private keys, an emulated chip's secret): files
//! of mode 0600 in a folder of mode 0700, checked on every use.
//!
//! A key found readable by others is refused, never quietly repaired: once group or world could
//! read it, it may have been read, and only its owner can judge whether to trust it again. The
//! error gives the `chmod` that makes it private and the alternative (delete it, and snpkit makes
//! a new one).

use crate::{FsError, read, write_atomic};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The permission bits a private file or folder must not have: any for group or others.
const EXPOSING: u32 = 0o077;

/// A folder of secrets, checked to be 0700 (or stricter) when opened.
#[derive(Debug, Clone)]
pub struct PrivateDir {
    path: PathBuf,
    what: String,
}

impl PrivateDir {
    /// `path` as a private folder: created with mode 0700 (its parents as usual) when nothing is
    /// there, else checked like [`PrivateDir::open`].
    pub fn create(path: &Path, what: &str) -> Result<PrivateDir, FsError> {
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
        {
            Ok(()) => PrivateDir::open(path, what),
            Err(error) => Err(FsError::Io {
                path: path.to_path_buf(),
                what: what.to_owned(),
                doing: "create",
                error,
            }),
        }
    }

    /// An existing private folder: refused when group or others have any permission on it.
    pub fn open(path: &Path, what: &str) -> Result<PrivateDir, FsError> {
        let meta = std::fs::metadata(path).map_err(|error| FsError::Io {
            path: path.to_path_buf(),
            what: what.to_owned(),
            doing: "look at",
            error,
        })?;
        if !meta.is_dir() {
            return Err(FsError::NotRegular {
                path: path.to_path_buf(),
                what: what.to_owned(),
                kind: crate::FileKind::of(meta.file_type()),
            });
        }
        refuse_exposed(path, what, meta.permissions().mode(), Private::Folder)?;
        Ok(PrivateDir {
            path: path.to_path_buf(),
            what: what.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secret `name` of this folder, at most `max` bytes: a regular file of mode 0600 (or
    /// stricter), in a folder still 0700 (checked again: this is a use).
    pub fn read_secret(&self, name: &str, what: &str, max: u64) -> Result<Vec<u8>, FsError> {
        PrivateDir::open(&self.path, &self.what)?;
        let path = self.path.join(name);
        let file = crate::open(&path, what)?;
        let mode = file
            .file()
            .metadata()
            .map_err(|error| FsError::Io {
                path: path.clone(),
                what: what.to_owned(),
                doing: "look at",
                error,
            })?
            .permissions()
            .mode();
        refuse_exposed(&path, what, mode, Private::File)?;
        file.read_all(max)
    }

    /// Writes the secret `name` atomically with mode 0600.
    pub fn write_secret(&self, name: &str, what: &str, bytes: &[u8]) -> Result<(), FsError> {
        write_atomic(&self.path.join(name), what, bytes, 0o600)
    }

    /// A public file kept beside the secrets (a certificate, a CRL): read like any file.
    pub fn read_public(&self, name: &str, what: &str, max: u64) -> Result<Vec<u8>, FsError> {
        read(&self.path.join(name), what, max)
    }

    /// Writes a public file beside the secrets atomically (mode 0644; the folder keeps others out).
    pub fn write_public(&self, name: &str, what: &str, bytes: &[u8]) -> Result<(), FsError> {
        write_atomic(&self.path.join(name), what, bytes, 0o644)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Private {
    File,
    Folder,
}

impl Private {
    /// The mode it must have.
    pub fn mode(self) -> u32 {
        match self {
            Private::File => 0o600,
            Private::Folder => 0o700,
        }
    }
}

fn refuse_exposed(path: &Path, what: &str, mode: u32, kind: Private) -> Result<(), FsError> {
    if mode & EXPOSING == 0 {
        return Ok(());
    }
    Err(FsError::Exposed {
        path: path.to_path_buf(),
        what: what.to_owned(),
        mode: mode & 0o7777,
        folder: kind == Private::Folder,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn secrets_are_written_0600_in_a_0700_folder_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&tmp.path().join("chain/v2"), "the test chain").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        dir.write_secret("ark.key", "the test ARK's key", b"k")
            .unwrap();
        dir.write_public("ark.pem", "the test ARK", b"c").unwrap();
        assert_eq!(mode(&dir.path().join("ark.key")), 0o600);
        assert_eq!(dir.read_secret("ark.key", "key", 10).unwrap(), b"k");
        assert_eq!(dir.read_public("ark.pem", "cert", 10).unwrap(), b"c");
        // Stricter is fine.
        chmod(&dir.path().join("ark.key"), 0o400);
        assert_eq!(dir.read_secret("ark.key", "key", 10).unwrap(), b"k");
    }

    /// Every use checks, and a key that others could read is refused with the chmod that fixes
    /// it; nothing is changed on disk.
    #[test]
    fn an_exposed_key_or_folder_is_refused_with_the_fix_and_left_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&tmp.path().join("keys"), "the test chain").unwrap();
        dir.write_secret("vcek.key", "the test VCEK's key", b"k")
            .unwrap();
        let key = dir.path().join("vcek.key");
        for bad in [0o644, 0o640, 0o604, 0o660] {
            chmod(&key, bad);
            let err = dir
                .read_secret("vcek.key", "the test VCEK's key", 10)
                .unwrap_err();
            assert_eq!(err.kind(), "exposed_secret", "{err}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("chmod 600 {}", key.display())),
                "{text}"
            );
            assert!(text.contains(&format!("{bad:o}")), "{text}");
            let now = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(now, bad, "the mode was changed behind the user's back");
        }
        chmod(&key, 0o600);
        chmod(dir.path(), 0o755);
        let err = dir.read_secret("vcek.key", "key", 10).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("chmod 700 {}", dir.path().display())),
            "{err}"
        );
        let err = PrivateDir::open(dir.path(), "the test chain").unwrap_err();
        assert_eq!(err.kind(), "exposed_secret");
        // An existing, exposed folder is refused by create too: it is not repaired.
        let err = PrivateDir::create(dir.path(), "the test chain").unwrap_err();
        assert_eq!(err.kind(), "exposed_secret");
        // A FIFO or folder named as the key is refused as no regular file.
        chmod(dir.path(), 0o700);
        std::fs::remove_file(&key).unwrap();
        std::fs::create_dir(&key).unwrap();
        let err = dir.read_secret("vcek.key", "key", 10).unwrap_err();
        assert_eq!(err.kind(), "not_a_regular_file");
    }
}
