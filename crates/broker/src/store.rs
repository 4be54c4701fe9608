//! The resources folder: `DIR/<repo>/<type>/<tag>`, one file per secret.
//!
//! The name was checked when it was parsed ([`snpkit_kbs::ResourcePath`]: no empty, `.`/`..`,
//! `/` or NUL component). Here the path is resolved and must stay inside `DIR`: a symlink inside
//! `DIR` that points inside `DIR` is followed (operators link one secret under two names), one
//! that leads out is refused. The resolved file is then opened with `O_NOFOLLOW`, must be a
//! regular file, and is read by counting bytes up to the size limit.
//!
//! What this does not stop: someone who can write into `DIR` can swap a directory for a symlink
//! between the check and the open. `DIR` is the operator's; keep it writable by the operator only.

use snpkit_kbs::ResourcePath;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the resources folder {path} is not usable")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no resource {0}")]
    NotFound(ResourcePath),
    #[error("resource {0} leads out of the resources folder through a symlink")]
    Escapes(ResourcePath),
    #[error("resource {0} is not a regular file")]
    NotAFile(ResourcePath),
    #[error("resource {path} is more than {max} bytes")]
    TooLarge { path: ResourcePath, max: u64 },
    #[error("resource {path} cannot be read")]
    Io {
        path: ResourcePath,
        #[source]
        source: std::io::Error,
    },
}

/// Why a bounded read failed.
#[derive(Debug)]
pub enum BoundedRead {
    TooLarge,
    Io(std::io::Error),
}

/// Read at most `max` bytes of an open file, counting them (a file's reported size can lie or
/// change while it is read).
pub fn read_open_bounded(file: impl Read, max: u64) -> Result<Vec<u8>, BoundedRead> {
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(BoundedRead::Io)?;
    if bytes.len() as u64 > max {
        return Err(BoundedRead::TooLarge);
    }
    Ok(bytes)
}

/// Read a whole file of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, BoundedRead> {
    let file = std::fs::File::open(path).map_err(BoundedRead::Io)?;
    read_open_bounded(file, max)
}

/// The resources folder, resolved once.
#[derive(Debug, Clone)]
pub struct ResourceStore {
    root: PathBuf,
    max: u64,
}

impl ResourceStore {
    pub fn open(dir: &Path, max_resource: u64) -> Result<ResourceStore, StoreError> {
        let folder = |source| StoreError::Folder {
            path: dir.into(),
            source,
        };
        let root = std::fs::canonicalize(dir).map_err(folder)?;
        if !root.is_dir() {
            return Err(folder(std::io::Error::other("not a directory")));
        }
        Ok(ResourceStore {
            root,
            max: max_resource,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bytes of a resource (blocking file I/O: call it off the async workers).
    pub fn read(&self, name: &ResourcePath) -> Result<Vec<u8>, StoreError> {
        let mut path = self.root.clone();
        for c in name.components() {
            path.push(c);
        }
        let resolved = match std::fs::canonicalize(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(name.clone()));
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: name.clone(),
                    source,
                });
            }
        };
        if !resolved.starts_with(&self.root) || resolved == self.root {
            return Err(StoreError::Escapes(name.clone()));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&resolved)
            .map_err(|source| StoreError::Io {
                path: name.clone(),
                source,
            })?;
        let meta = file.metadata().map_err(|source| StoreError::Io {
            path: name.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(StoreError::NotAFile(name.clone()));
        }
        read_open_bounded(file, self.max).map_err(|e| match e {
            BoundedRead::TooLarge => StoreError::TooLarge {
                path: name.clone(),
                max: self.max,
            },
            BoundedRead::Io(source) => StoreError::Io {
                path: name.clone(),
                source,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, ResourceStore) {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("res");
        std::fs::create_dir_all(root.join("repo/type")).expect("mkdir");
        std::fs::write(root.join("repo/type/tag"), b"secret").expect("write");
        std::fs::write(t.path().join("outside"), b"not yours").expect("write");
        let store = ResourceStore::open(&root, 16).expect("opens");
        (t, store)
    }

    fn name(s: &str) -> ResourcePath {
        ResourcePath::parse(s).expect("valid name")
    }

    #[test]
    fn files_inside_are_read_and_links_inside_followed() {
        let (_t, store) = setup();
        assert_eq!(
            store.read(&name("repo/type/tag")).expect("reads"),
            b"secret"
        );
        symlink("tag", store.root().join("repo/type/alias")).expect("link");
        assert_eq!(
            store.read(&name("repo/type/alias")).expect("reads"),
            b"secret"
        );
        symlink("type", store.root().join("repo/dirlink")).expect("link");
        assert_eq!(
            store.read(&name("repo/dirlink/tag")).expect("reads"),
            b"secret"
        );
    }

    #[test]
    fn links_out_of_the_folder_are_refused() {
        let (t, store) = setup();
        symlink(t.path().join("outside"), store.root().join("repo/type/out")).expect("link");
        assert!(matches!(
            store.read(&name("repo/type/out")),
            Err(StoreError::Escapes(_))
        ));
        // A link to the folder's parent, through which the resources themselves are reachable
        // again: inside is inside, whatever the route.
        symlink(t.path(), store.root().join("up")).expect("link");
        assert_eq!(
            store
                .read(&name("up/res/repo"))
                .err()
                .map(|e| e.to_string()),
            Some("resource up/res/repo is not a regular file".into())
        );
        std::fs::create_dir_all(t.path().join("o/p")).expect("mkdir");
        std::fs::write(t.path().join("o/p/q"), b"x").expect("write");
        symlink(t.path().join("o"), store.root().join("o")).expect("link");
        assert!(matches!(
            store.read(&name("o/p/q")),
            Err(StoreError::Escapes(_))
        ));
    }

    #[test]
    fn missing_directories_large_files_and_non_files_are_refused() {
        let (_t, store) = setup();
        assert!(matches!(
            store.read(&name("repo/type/none")),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.read(&name("repo/type2/x")),
            Err(StoreError::NotFound(_))
        ));
        std::fs::write(store.root().join("repo/type/big"), [0u8; 17]).expect("write");
        assert!(matches!(
            store.read(&name("repo/type/big")),
            Err(StoreError::TooLarge { max: 16, .. })
        ));
        std::fs::write(store.root().join("repo/type/edge"), [0u8; 16]).expect("write");
        assert_eq!(
            store.read(&name("repo/type/edge")).expect("reads").len(),
            16
        );
        std::fs::create_dir_all(store.root().join("repo/type/dir")).expect("mkdir");
        assert!(matches!(
            store.read(&name("repo/type/dir")),
            Err(StoreError::NotAFile(_))
        ));
    }
}
