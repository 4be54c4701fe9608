//! Key files: the crate's one edge that touches the file system. Reads are bounded by counting
//! bytes (a FIFO or a `/proc` file reports size 0), private keys must not be readable by group or
//! others (as ssh insists), and a new private key is written with mode 0600 to a temporary file
//! beside its destination, then linked into place, so it never overwrites a file and never exists
//! half-written.

use crate::ecdsa::PublicKey;
use crate::keys::{KeyError, MAX_KEY_LEN, SigningKey};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_KEY_LEN} bytes; it is not a P-384 key file")]
    TooLarge { path: PathBuf },
    #[error(
        "{path} is readable by others (mode {mode:04o}); a private key must be 0600 or stricter: `chmod 600 {path}`"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path} is not a usable key")]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("{path} already exists; choose another path (a key is never overwritten)")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: the folder {dir} does not exist")]
    NoFolder { path: PathBuf, dir: PathBuf },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads at most [`MAX_KEY_LEN`] bytes, counting them; more is an error.
fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let read_err = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > MAX_KEY_LEN {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Loads a private ID or author key (PKCS#8 or SEC1, PEM or DER) from a file only its owner can
/// read.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = read_bounded(path)?;
    SigningKey::from_key_bytes(&bytes).map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Loads a public key (SubjectPublicKeyInfo, PEM or DER).
pub fn read_public_key(path: &Path) -> Result<PublicKey, KeyFileError> {
    let bytes = read_bounded(path)?;
    PublicKey::from_key_bytes(&bytes).map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Writes `key` as PKCS#8 PEM to a new file `path`, mode 0600. Refuses if `path` exists (checked
/// atomically: the finished file is linked into place, which fails on an existing name).
pub fn write_new_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let write_err = |source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    };
    if path.symlink_metadata().is_ok() {
        return Err(KeyFileError::Exists {
            path: path.to_owned(),
        });
    }
    let pem = key.to_pkcs8_pem().map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(KeyFileError::NoFolder {
            path: path.to_owned(),
            dir: dir.to_owned(),
        });
    }
    // tempfile creates its files 0600 whatever the umask; set it anyway so the mode is ours.
    let mut tmp = tempfile::Builder::new()
        .prefix(".snpkit-key-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(pem.as_bytes()).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            write_err(e.error)
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_key_is_0600_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.pem");
        let key = SigningKey::generate();
        write_new_signing_key(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_signing_key(&path).unwrap().public_key(),
            key.public_key()
        );
        let before = std::fs::read(&path).unwrap();
        let err = write_new_signing_key(&path, &SigningKey::generate()).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err}");
        let missing = dir.path().join("no/such/folder/id.pem");
        let err = write_new_signing_key(&missing, &key).unwrap_err();
        assert!(matches!(err, KeyFileError::NoFolder { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Nothing left behind but the key.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.pem");
        write_new_signing_key(&path, &SigningKey::generate()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_signing_key(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Exposed { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn reads_are_bounded_by_counting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pem");
        std::fs::write(&path, vec![b'A'; MAX_KEY_LEN + 1]).unwrap();
        assert!(matches!(
            read_public_key(&path),
            Err(KeyFileError::TooLarge { .. })
        ));
        // /dev/zero reports size 0 and never ends: the count stops it.
        assert!(matches!(
            read_public_key(Path::new("/dev/zero")),
            Err(KeyFileError::TooLarge { .. })
        ));
    }
}
