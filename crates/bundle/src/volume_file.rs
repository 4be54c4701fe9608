//! Sealed volumes on the host: `images/<recipe>/volumes/<name>.img`, created sparse at its size on
//! the first boot and from then on only ever opened.
//!
//! The file is the guest's state: ciphertext the host cannot read, but cannot recreate either.
//! So an existing file is never truncated, extended or replaced, whatever size the recipe says
//! now (the guest reads the size it was formatted with from the volume's header); a file is
//! created only where there is none, under a temporary name and then linked into place, which
//! fails rather than replaces if another boot made one meanwhile. The folder is kept across
//! rebuilds ([`crate::KEPT`]).

use crate::{BundleError, ImageDir, files};
use snpkit_fsguard::sync_dir;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A volume file ready to be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    pub path: PathBuf,
    /// Its size in bytes now.
    pub bytes: u64,
    /// True when this call created it (blank: the guest formats it on this boot).
    pub created: bool,
}

impl ImageDir {
    /// The folder of the image's volume files, `volumes/`.
    pub fn volumes(&self) -> PathBuf {
        self.path().join(files::VOLUMES)
    }

    /// The file of volume `name`, `volumes/<name>.img`. The name must be one file-name
    /// component (the recipe's check is stricter; this one keeps the path inside the folder).
    pub fn volume(&self, name: &str) -> Result<PathBuf, BundleError> {
        let why = if name.is_empty() {
            Some("it is empty")
        } else if name.starts_with('.') {
            Some("it starts with '.'")
        } else if name.contains(['/', '\0']) {
            Some("it holds '/' or NUL")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(BundleError::BadName {
                name: name.to_owned(),
                why,
            });
        }
        Ok(self
            .volumes()
            .join(format!("{name}{}", files::VOLUME_SUFFIX)))
    }
}

/// The volume file at `path`: created sparse at `bytes` if there is none, else the one there,
/// untouched. What is there must be a regular file or a block device (never a folder, FIFO or
/// symlink to one): QEMU attaches it as a disk.
pub fn prepare_volume(path: &Path, bytes: u64) -> Result<VolumeFile, BundleError> {
    if let Some(found) = existing(path)? {
        return Ok(found);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(BundleError::change("create", dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let made = create_sparse(&tmp, bytes).and_then(|()| {
        // A hard link never replaces: if another boot created the file meanwhile, we use theirs.
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(BundleError::change("create", path)(e)),
        }
    });
    let _ = std::fs::remove_file(&tmp);
    let created = made?;
    sync_dir(dir, "the folder of volumes")?;
    if !created {
        return existing(path)?.ok_or_else(|| {
            BundleError::change("create", path)(std::io::ErrorKind::NotFound.into())
        });
    }
    Ok(VolumeFile {
        path: path.to_owned(),
        bytes,
        created: true,
    })
}

fn create_sparse(tmp: &Path, bytes: u64) -> Result<(), BundleError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(BundleError::change("create", tmp))?;
    // set_len makes a hole: no block is allocated until the guest writes one.
    file.set_len(bytes)
        .and_then(|()| file.sync_all())
        .map_err(BundleError::change("size", tmp))
}

/// The volume file at `path` if there is one (following symlinks), refusing what cannot be one.
fn existing(path: &Path) -> Result<Option<VolumeFile>, BundleError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink must not make us create a file at its target.
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(BundleError::NotAVolume {
                    path: path.to_owned(),
                    kind: "a dangling symlink",
                });
            }
            return Ok(None);
        }
        Err(e) => return Err(BundleError::read(path)(e)),
    };
    let ft = meta.file_type();
    let bytes = if ft.is_file() {
        meta.len()
    } else if ft.is_block_device() {
        // A block device reports 0; its size is the guest's to find out.
        0
    } else {
        return Err(BundleError::NotAVolume {
            path: path.to_owned(),
            kind: if ft.is_dir() {
                "a folder"
            } else if ft.is_fifo() {
                "a FIFO"
            } else {
                "a special file"
            },
        });
    };
    Ok(Some(VolumeFile {
        path: path.to_owned(),
        bytes,
        created: false,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn first_call_creates_a_sparse_private_file_later_calls_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        let image = ImageDir::new(dir.path(), "app");
        let path = image.volume("data").unwrap();
        assert_eq!(path, dir.path().join("app/volumes/data.img"));
        let made = prepare_volume(&path, 64 << 20).unwrap();
        assert!(made.created);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "not sparse: {} blocks",
            meta.blocks()
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);

        // The guest wrote something; a later boot (even with another size) changes nothing.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, b"SNPKVOL\0", 0))
            .unwrap();
        for size in [64 << 20, 16 << 20, 128 << 20] {
            let again = prepare_volume(&path, size).unwrap();
            assert!(!again.created);
            assert_eq!(again.bytes, 64 << 20);
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len(), &bytes[..8]), (64 << 20, &b"SNPKVOL\0"[..]));
        assert_eq!(
            std::fs::read_dir(image.volumes()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn names_stay_inside_the_folder() {
        let image = ImageDir::new(Path::new("/i"), "r");
        for bad in ["", "../x", "a/b", ".hidden", "a\0b"] {
            assert!(
                matches!(image.volume(bad), Err(BundleError::BadName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn what_cannot_be_a_disk_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("folder.img");
        std::fs::create_dir(&folder).unwrap();
        let fifo = dir.path().join("fifo.img");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).unwrap();
        let dangling = dir.path().join("dangling.img");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        for (path, kind) in [
            (&folder, "a folder"),
            (&fifo, "a FIFO"),
            (&dangling, "a dangling symlink"),
        ] {
            let err = prepare_volume(path, 16 << 20).unwrap_err().to_string();
            assert!(err.contains(kind), "{err}");
        }
        assert!(!dir.path().join("nowhere").exists());
    }
}
