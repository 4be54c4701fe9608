//! The emulated chip's secret: what the VCEK's private seed is to a real PSP, the root of every key
//! the emulated PSP derives for MSG_KEY_REQ ([`super::key`]). One per machine, beside the test
//! chain: `test-chain/chip/secret` under snpkit's cache folder, 32 random bytes.
//!
//! It guards sealed volumes of emulated launches, so it is kept like a private key: the folder is
//! mode 0700 and the file 0600, both owned by the user running snpkit, and that is checked every
//! time it is read (a wider mode is an error that says how to fix it, never silently tightened).
//! It is created atomically: written under a temporary name with `O_EXCL`, synced, then
//! hard-linked into place, which never replaces an existing file, so two first boots racing each
//! other end up with the same secret (the loser reads the winner's). Deleting the folder makes a
//! new emulated chip: every volume sealed under the old one becomes unreadable, as on another
//! machine.
//!
//! Emulation only: the host holds this secret, so it protects nothing from the host. It exists so
//! that sealed volumes behave under emulation as they would on a chip (stable keys, other chip ⇒
//! other keys).

use rand_core::{OsRng, RngCore};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Size of the chip secret.
pub const CHIP_SECRET_LEN: usize = 32;
const FILE_NAME: &str = "secret";

#[derive(Debug, thiserror::Error)]
pub enum ChipSecretError {
    #[error("emulated chip secret {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "emulated chip secret {path} has mode {found:04o}; it must be {want:04o} (owner only): \
         `chmod {want:o} {path}` if you trust what is there, or delete the folder to start a new \
         emulated chip (volumes sealed under the old one become unreadable)"
    )]
    Mode {
        path: PathBuf,
        found: u32,
        want: u32,
    },
    #[error(
        "emulated chip secret {path} belongs to uid {found}, not to this user (uid {want}); \
         another user could read or replace it"
    )]
    Owner {
        path: PathBuf,
        found: u32,
        want: u32,
    },
    #[error(
        "emulated chip secret {path} is not a plain {what} (a symlink or another kind of file)"
    )]
    Kind { path: PathBuf, what: &'static str },
    #[error(
        "emulated chip secret {path} holds {found} bytes, not {CHIP_SECRET_LEN}: it is damaged; \
         delete the folder to start a new emulated chip"
    )]
    Size { path: PathBuf, found: usize },
    #[error("no cache folder: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
}

/// The emulated chip's secret. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ChipSecret([u8; CHIP_SECRET_LEN]);

impl std::fmt::Debug for ChipSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChipSecret(…)")
    }
}

/// `test-chain/chip/` under snpkit's cache folder (`snpkit_cache::root`).
pub fn default_dir() -> Result<PathBuf, ChipSecretError> {
    Ok(snpkit_cache::root()
        .ok_or(ChipSecretError::NoCacheDir)?
        .join("test-chain")
        .join("chip"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ChipSecretError + '_ {
    move |source| ChipSecretError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Owner only, owned by us, of the expected kind.
fn check(path: &Path, want_mode: u32, dir: bool) -> Result<(), ChipSecretError> {
    let meta = fs::symlink_metadata(path).map_err(io(path))?;
    let right_kind = if dir {
        meta.file_type().is_dir()
    } else {
        meta.file_type().is_file()
    };
    if !right_kind {
        return Err(ChipSecretError::Kind {
            path: path.into(),
            what: if dir { "folder" } else { "file" },
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode != want_mode {
        return Err(ChipSecretError::Mode {
            path: path.into(),
            found: mode,
            want: want_mode,
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(ChipSecretError::Owner {
            path: path.into(),
            found: meta.uid(),
            want: me,
        });
    }
    Ok(())
}

impl ChipSecret {
    /// A secret from bytes (tests: "another machine").
    pub fn from_bytes(bytes: [u8; CHIP_SECRET_LEN]) -> ChipSecret {
        ChipSecret(bytes)
    }

    /// A fresh random secret, in memory only.
    pub fn random() -> ChipSecret {
        let mut bytes = [0u8; CHIP_SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        ChipSecret(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; CHIP_SECRET_LEN] {
        &self.0
    }

    /// The secret kept in `dir`, made on first use.
    pub fn load_or_create(dir: &Path) -> Result<ChipSecret, ChipSecretError> {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {
                // The umask may only have narrowed 0700; say exactly what we mean.
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(dir)(e)),
        }
        check(dir, 0o700, true)?;
        let path = dir.join(FILE_NAME);
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir, &path)?,
            Err(e) => return Err(io(&path)(e)),
        }
        ChipSecret::load(dir)
    }

    /// This machine's secret under the default folder, loaded once per process.
    pub fn cached() -> Result<&'static ChipSecret, ChipSecretError> {
        static SECRET: std::sync::OnceLock<ChipSecret> = std::sync::OnceLock::new();
        if let Some(s) = SECRET.get() {
            return Ok(s);
        }
        let secret = ChipSecret::load_or_create(&default_dir()?)?;
        Ok(SECRET.get_or_init(|| secret))
    }

    /// The secret in `dir`, which must exist with the right modes.
    pub fn load(dir: &Path) -> Result<ChipSecret, ChipSecretError> {
        check(dir, 0o700, true)?;
        let path = dir.join(FILE_NAME);
        check(&path, 0o600, false)?;
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io(&path))?;
        // Counted, not trusted from the file's reported size: one byte more than a secret tells
        // a damaged file apart.
        let mut bytes = Vec::with_capacity(CHIP_SECRET_LEN + 1);
        file.take(CHIP_SECRET_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io(&path))?;
        let secret: [u8; CHIP_SECRET_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| ChipSecretError::Size {
                    path: path.clone(),
                    found: bytes.len(),
                })?;
        Ok(ChipSecret(secret))
    }
}

/// Writes a new secret under a temporary name and links it into place unless another process
/// did first.
fn create(dir: &Path, path: &Path) -> Result<(), ChipSecretError> {
    let tmp = dir.join(format!(
        ".{FILE_NAME}-{}-{:x}",
        std::process::id(),
        OsRng.next_u64()
    ));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(ChipSecret::random().bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    tracing::info!(
        "made a new emulated chip secret in {} (emulated launches only)",
        dir.display()
    );
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        // Someone else's secret won; ours was never used.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn made_once_then_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("test-chain/chip");
        let first = ChipSecret::load_or_create(&dir).unwrap();
        let again = ChipSecret::load_or_create(&dir).unwrap();
        assert_eq!(first, again);
        assert_eq!(ChipSecret::load(&dir).unwrap(), first);
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // Another folder is another chip.
        let other = ChipSecret::load_or_create(&tmp.path().join("other")).unwrap();
        assert_ne!(other, first);
        assert_eq!(format!("{first:?}"), "ChipSecret(…)");
    }

    #[test]
    fn racing_first_uses_agree_on_one_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chip");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || ChipSecret::load_or_create(&dir).unwrap())
            })
            .collect();
        let secrets: Vec<ChipSecret> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(secrets.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn wrong_modes_kinds_and_sizes_are_refused_not_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chip");
        ChipSecret::load_or_create(&dir).unwrap();
        let file = dir.join(FILE_NAME);

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let err = ChipSecret::load(&dir).unwrap_err();
        assert!(
            matches!(
                err,
                ChipSecretError::Mode {
                    found: 0o644,
                    want: 0o600,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert_eq!(
            fs::metadata(&file).unwrap().mode() & 0o777,
            0o644,
            "not silently fixed"
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            ChipSecret::load_or_create(&dir),
            Err(ChipSecretError::Mode {
                found: 0o755,
                want: 0o700,
                ..
            })
        ));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();

        fs::write(&file, [1u8; 33]).unwrap();
        assert!(matches!(
            ChipSecret::load(&dir),
            Err(ChipSecretError::Size { found: 33, .. })
        ));
        fs::write(&file, [1u8; 5]).unwrap();
        assert!(matches!(
            ChipSecret::load(&dir),
            Err(ChipSecretError::Size { found: 5, .. })
        ));

        // A symlink in place of the file is refused, whatever it points to.
        fs::remove_file(&file).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::write(&elsewhere, [2u8; 32]).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        assert!(matches!(
            ChipSecret::load(&dir),
            Err(ChipSecretError::Kind { what: "file", .. })
        ));
    }
}
