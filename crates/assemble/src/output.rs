//! Writing `images/<recipe>/` so that a failed build changes nothing.
//!
//! All files are written and synced into a temporary folder beside the target; then the new folder
//! and the old one trade places in one `renameat2(RENAME_EXCHANGE)`, and the old one is removed.
//! Earlier boot runs (`runs/`) move over to the new folder: they are evidence and are not ours to
//! delete. They move only after the swap, out of the old folder that has just been swapped out:
//! moved before, a failed swap would delete them with the temporary folder. If they cannot move,
//! the old image is swapped back in, runs and all. `expected.json` does not move: reference values
//! of the old image must not vouch for the new.

use crate::BuildError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `files` as the image folder `images_dir/name` and returns its path.
pub(crate) fn write_image_dir(
    images_dir: &Path,
    name: &str,
    files: &[(&str, &[u8])],
) -> Result<PathBuf, BuildError> {
    write_with(images_dir, name, files, &Renames::REAL)
}

/// The renames of a swap, apart so that tests can make each one fail.
struct Renames {
    exchange: fn(&Path, &Path) -> std::io::Result<()>,
    rename: fn(&Path, &Path) -> std::io::Result<()>,
}

impl Renames {
    const REAL: Renames = Renames { exchange, rename };
}

fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE).map_err(Into::into)
}

fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)
}

fn write_with(
    images_dir: &Path,
    name: &str,
    files: &[(&str, &[u8])],
    renames: &Renames,
) -> Result<PathBuf, BuildError> {
    let needed: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let space = |file: &str| {
        let file = file.to_owned();
        move |e: std::io::Error| out_of_space(e, images_dir, &file, needed)
    };
    std::fs::create_dir_all(images_dir).map_err(space(name))?;
    let target = images_dir.join(name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.new-"))
        .tempdir_in(images_dir)
        .map_err(space(name))?;
    for (file, bytes) in files {
        let path = tmp.path().join(file);
        let mut f = std::fs::File::create(&path).map_err(space(file))?;
        f.write_all(bytes).map_err(space(file))?;
        f.sync_all().map_err(space(file))?;
    }
    // Image files are read by QEMU and people; make them 0644 whatever the umask.
    set_tree_mode(tmp.path())?;
    sync_dir(tmp.path())?;

    if std::fs::symlink_metadata(&target).is_err() {
        (renames.rename)(tmp.path(), &target)
            .map_err(BuildError::io("move the new image to", &target))?;
        // The folder now has its final name; nothing is left for `tmp` to remove.
        let _ = tmp.keep();
        sync_dir(images_dir)?;
        return Ok(target);
    }

    // A failure here leaves the old image where it was; `tmp` (the new files) is removed.
    (renames.exchange)(tmp.path(), &target)
        .map_err(BuildError::io("swap the new image with", &target))?;
    // `tmp` now names the old image.
    let old_runs = tmp.path().join("runs");
    if old_runs.is_dir()
        && let Err(source) = (renames.rename)(&old_runs, &target.join("runs"))
    {
        return Err(match (renames.exchange)(tmp.path(), &target) {
            // Back as it was; dropping `tmp` removes only the new image.
            Ok(()) => BuildError::RunsNotMoved {
                target,
                source,
                outcome: "the previous image is back in place, runs/ included".into(),
            },
            Err(e) => {
                let kept = tmp.keep();
                BuildError::RunsNotMoved {
                    target,
                    source,
                    outcome: format!(
                        "swapping the previous image back failed too ({e}): it is kept, runs/ \
                         included, in {}; move its runs/ into the new image by hand",
                        kept.display()
                    ),
                }
            }
        });
    }
    sync_dir(&target)?;
    sync_dir(images_dir)?;
    // Dropping `tmp` removes the old image, which no longer holds runs/.
    drop(tmp);
    Ok(target)
}

/// ENOSPC or EDQUOT become advice; other errors stay what they were.
fn out_of_space(e: std::io::Error, images_dir: &Path, file: &str, needed: u64) -> BuildError {
    use nix::errno::Errno;
    let full = [Errno::ENOSPC, Errno::EDQUOT]
        .iter()
        .any(|n| e.raw_os_error() == Some(*n as i32));
    if full {
        BuildError::OutOfSpace {
            dir: images_dir.to_owned(),
            file: file.to_owned(),
            needed_mb: needed.div_ceil(1_000_000),
        }
    } else {
        BuildError::io("write", images_dir.join(file))(e)
    }
}

/// Makes the folder's entries (names, renames) durable, not only its files.
fn sync_dir(dir: &Path) -> Result<(), BuildError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(BuildError::io("sync", dir))
}

fn set_tree_mode(dir: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(BuildError::io("set the permissions of", dir))?;
    for entry in std::fs::read_dir(dir).map_err(BuildError::io("list", dir))? {
        let entry = entry.map_err(BuildError::io("list", dir))?;
        if entry
            .file_type()
            .map_err(BuildError::io("inspect", entry.path()))?
            .is_file()
        {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(BuildError::io("set the permissions of", entry.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::cell::Cell;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// An image folder holding `a` = "1" and one boot run.
    fn old_image(dir: &Path) -> PathBuf {
        let out = write_image_dir(dir, "app", &[("a", b"1"), ("expected.json", b"{}")]).unwrap();
        std::fs::create_dir_all(out.join("runs/r1")).unwrap();
        std::fs::write(out.join("runs/r1/report.bin"), b"evidence").unwrap();
        out
    }

    fn assert_old_image_intact(dir: &Path, out: &Path) {
        assert_eq!(std::fs::read(out.join("a")).unwrap(), b"1");
        assert_eq!(std::fs::read(out.join("expected.json")).unwrap(), b"{}");
        assert_eq!(
            std::fs::read(out.join("runs/r1/report.bin")).unwrap(),
            b"evidence",
            "boot evidence must survive a failed build"
        );
        assert_eq!(listing(dir), ["app"], "no temporary folders left behind");
    }

    fn injected(_: &Path, _: &Path) -> std::io::Result<()> {
        Err(std::io::Error::other("injected failure"))
    }

    #[test]
    fn replaces_atomically_and_keeps_runs() {
        let dir = tempfile::tempdir().unwrap();
        let out = old_image(dir.path());
        write_image_dir(dir.path(), "app", &[("a", b"2")]).unwrap();
        assert_eq!(std::fs::read(out.join("a")).unwrap(), b"2");
        assert!(
            !out.join("expected.json").exists(),
            "old reference values must not survive a rebuild"
        );
        assert_eq!(
            std::fs::read(out.join("runs/r1/report.bin")).unwrap(),
            b"evidence"
        );
        assert_eq!(
            listing(dir.path()),
            ["app"],
            "no temporary folders left behind"
        );
    }

    #[test]
    fn a_failed_swap_keeps_the_old_image_and_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let out = old_image(dir.path());
        let renames = Renames {
            exchange: injected,
            rename,
        };
        let err = write_with(dir.path(), "app", &[("a", b"2")], &renames).unwrap_err();
        let err = snpkit_testkit::errors::chain_text(&err);
        assert!(err.contains("injected failure"), "{err}");
        assert_old_image_intact(dir.path(), &out);
    }

    #[test]
    fn runs_that_cannot_move_bring_the_old_image_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = old_image(dir.path());
        let renames = Renames {
            exchange,
            rename: injected,
        };
        let err = write_with(dir.path(), "app", &[("a", b"2")], &renames)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("runs") && err.contains("previous image is back in place"),
            "{err}"
        );
        assert_old_image_intact(dir.path(), &out);
    }

    thread_local! {
        static EXCHANGES: Cell<u32> = const { Cell::new(0) };
    }

    /// The swap works, the swap back does not.
    fn exchange_once(a: &Path, b: &Path) -> std::io::Result<()> {
        let n = EXCHANGES.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        if n == 1 {
            exchange(a, b)
        } else {
            injected(a, b)
        }
    }

    #[test]
    fn runs_are_never_deleted_even_when_nothing_can_be_undone() {
        let dir = tempfile::tempdir().unwrap();
        old_image(dir.path());
        let renames = Renames {
            exchange: exchange_once,
            rename: injected,
        };
        let err = write_with(dir.path(), "app", &[("a", b"2")], &renames)
            .unwrap_err()
            .to_string();
        let kept = listing(dir.path())
            .into_iter()
            .find(|n| n.starts_with(".app.new-"))
            .expect("the old image is kept under its temporary name");
        assert!(err.contains(&kept) && err.contains("by hand"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join(&kept).join("runs/r1/report.bin")).unwrap(),
            b"evidence"
        );
    }

    #[test]
    fn a_full_disk_is_named_with_what_to_do() {
        let dir = Path::new("/srv/images");
        let full = std::io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32);
        let err = out_of_space(full, dir, "vmlinuz", 17_300_001).to_string();
        assert_eq!(
            err,
            "/srv/images/ is out of space writing vmlinuz (about 18 MB needed); free space and \
             rerun; the previous image is unchanged"
        );
        let other = std::io::Error::from_raw_os_error(nix::errno::Errno::EACCES as i32);
        assert!(matches!(
            out_of_space(other, dir, "vmlinuz", 1),
            BuildError::Io { .. }
        ));
    }
}
