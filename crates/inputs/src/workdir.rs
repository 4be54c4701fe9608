//! The fixed folder the AmdSev OVMF is built in, made safe to use although it is predictable.
//!
//! The firmware records its build path, so the path must be a function of the inputs alone
//! (`/var/tmp/snpkit-edk2-<key>`) and the same for every user, checkout and cache. A predictable
//! name in a world-writable folder is an invitation: another user could create it first, to block
//! the build or to swap sources in before the firmware's hash is recorded. So:
//! - one lock file beside it (`<folder>.lock`), taken by every cache, serialises builds of a key;
//! - an existing folder is used only if it is a real directory (not a symlink), owned by us and
//!   mode 0700 — then it is an interrupted build of ours and is emptied; anything else is refused;
//! - the folder is made with `mkdir` (which fails if anyone re-creates it in between) mode 0700,
//!   so nobody else can write into it while we build.

use crate::InputError;
use nix::fcntl::{Flock, FlockArg, OFlag};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where builds of the firmware with cache key `key` happen.
pub(crate) fn build_dir(key: &str) -> PathBuf {
    PathBuf::from(format!(
        "/var/tmp/snpkit-edk2-{}",
        &key[..key.len().min(16)]
    ))
}

/// The lock file beside `dir`.
pub(crate) fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The effective user id, which files we make belong to.
pub(crate) fn our_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn unsafe_path(path: &Path, problem: String) -> InputError {
    InputError::UnsafeBuildPath {
        path: path.to_owned(),
        problem,
    }
}

/// Takes the exclusive lock at `path` (created if missing), waiting for another build to finish.
/// `uid` is who the lock file must belong to (us, except in tests).
pub(crate) fn lock(path: &Path, uid: u32) -> Result<Flock<File>, InputError> {
    let nofollow = OFlag::O_NOFOLLOW.bits();
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nofollow)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            check_owned(path, uid, false)?;
            OpenOptions::new()
                .read(true)
                .custom_flags(nofollow)
                .open(path)
                .map_err(InputError::io("open", path))?
        }
        Err(e) => return Err(InputError::io("create", path)(e)),
    };
    // Check what we opened, not only what the name pointed at a moment ago.
    let meta = file.metadata().map_err(InputError::io("inspect", path))?;
    check_meta(path, &meta, uid, false)?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| InputError::io("lock", path)(e.into()))
}

/// Makes `dir` an empty folder of ours, mode 0700. An existing one must already be ours (a
/// build that was interrupted); anything else is refused untouched. Call with the lock held.
pub(crate) fn prepare(dir: &Path, uid: u32) -> Result<(), InputError> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {
            check_owned(dir, uid, true)?;
            // std's remove_dir_all does not follow symlinks inside the folder.
            std::fs::remove_dir_all(dir).map_err(InputError::io("empty", dir))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(InputError::io("inspect", dir)(e)),
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                unsafe_path(dir, "appeared again while snpkit was emptying it".into())
            } else {
                InputError::io("create the folder", dir)(e)
            }
        })?;
    // The umask may have taken bits from 0700; the check above wants exactly 0700 next time.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(InputError::io("set the permissions of", dir))?;
    check_owned(dir, uid, true)
}

fn check_owned(path: &Path, uid: u32, dir: bool) -> Result<(), InputError> {
    let meta = std::fs::symlink_metadata(path).map_err(InputError::io("inspect", path))?;
    check_meta(path, &meta, uid, dir)
}

fn check_meta(
    path: &Path,
    meta: &std::fs::Metadata,
    uid: u32,
    dir: bool,
) -> Result<(), InputError> {
    let ft = meta.file_type();
    let want = if dir { "directory" } else { "regular file" };
    if ft.is_symlink() || (dir && !ft.is_dir()) || (!dir && !ft.is_file()) {
        return Err(unsafe_path(
            path,
            format!(
                "is a {} where snpkit expects its own {want}",
                if ft.is_symlink() {
                    "symlink"
                } else if ft.is_dir() {
                    "directory"
                } else {
                    "file"
                }
            ),
        ));
    }
    if meta.uid() != uid {
        return Err(unsafe_path(
            path,
            format!(
                "belongs to uid {}, not to uid {uid} that is building",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    let ok = if dir {
        mode == 0o700
    } else {
        mode & 0o022 == 0
    };
    if !ok {
        return Err(unsafe_path(
            path,
            format!(
                "has mode {mode:04o}; snpkit makes it {}",
                if dir { "0700" } else { "0600" }
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn path_depends_on_the_key_only() {
        let key = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            build_dir(key),
            Path::new("/var/tmp/snpkit-edk2-0123456789abcdef")
        );
        assert_eq!(
            lock_path(&build_dir(key)),
            Path::new("/var/tmp/snpkit-edk2-0123456789abcdef.lock")
        );
    }

    #[test]
    fn a_fresh_folder_is_private_and_a_leftover_of_ours_is_emptied() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("snpkit-edk2-x");
        prepare(&dir, our_uid()).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::write(dir.join("planted-by-an-old-build"), b"x").unwrap();
        prepare(&dir, our_uid()).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "emptied");
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn folders_that_are_not_ours_are_refused_untouched() {
        let parent = tempfile::tempdir().unwrap();

        // Open to others: whoever made it could have changed the sources.
        let open = parent.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(open.join("source.c"), b"planted").unwrap();
        let err = prepare(&open, our_uid()).unwrap_err().to_string();
        assert!(
            err.contains("mode 0777") && err.contains("remove it"),
            "{err}"
        );
        assert_eq!(std::fs::read(open.join("source.c")).unwrap(), b"planted");

        // Another owner (the check compares with the uid it is given).
        let theirs = parent.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = prepare(&theirs, our_uid() + 1).unwrap_err().to_string();
        assert!(
            err.contains(&format!("belongs to uid {}", our_uid())),
            "{err}"
        );
        assert!(theirs.is_dir());

        // A symlink to somewhere else: never followed, never emptied.
        let elsewhere = parent.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(elsewhere.join("keep"), b"k").unwrap();
        let link = parent.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let err = prepare(&link, our_uid()).unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
        assert!(elsewhere.join("keep").exists());

        // A plain file in its place.
        let file = parent.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = prepare(&file, our_uid()).unwrap_err().to_string();
        assert!(err.contains("is a file"), "{err}");
    }

    #[test]
    fn the_lock_excludes_a_second_holder_and_refuses_planted_files() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("x.lock");
        let held = lock(&path, our_uid()).unwrap();
        assert_eq!(mode(&path), 0o600);
        // Another open file description (as another cache's build would have) cannot take it.
        let second = File::open(&path).unwrap();
        let busy = Flock::lock(second, FlockArg::LockExclusiveNonblock);
        assert!(busy.is_err(), "the lock must exclude a second build");
        drop(held);
        // Released: the same uid takes it again through the existing file.
        drop(lock(&path, our_uid()).unwrap());

        let err = lock(&path, our_uid() + 1).unwrap_err().to_string();
        assert!(err.contains("belongs to uid"), "{err}");

        let writable = parent.path().join("w.lock");
        std::fs::write(&writable, b"").unwrap();
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = lock(&writable, our_uid()).unwrap_err().to_string();
        assert!(err.contains("mode 0666"), "{err}");

        let link = parent.path().join("l.lock");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = lock(&link, our_uid()).unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
    }
}
