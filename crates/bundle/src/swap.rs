//! Writing `images/<recipe>/` so that a failed build changes nothing.
//!
//! All files are written and synced into a temporary folder beside the target; then the new folder
//! and the old one trade places in one `renameat2(RENAME_EXCHANGE)`, and the old one is removed.
//! What the old image holds that is not ours to delete — the entries of [`KEPT`]: boot runs today,
//! sealed volumes and ID blocks later — moves over to the new folder. They move only after the
//! swap, out of the old folder that has just been swapped out: moved before, a failed swap would
//! delete them with the temporary folder. If one cannot move, those already moved go back and the
//! old image is swapped back in, whole. `expected.json` does not move: reference values of the old
//! image must not vouch for the new (a build writes the new image's own).

use crate::fsio::sync_dir;
use crate::{BundleError, ImageDir, files};
use std::io::Write;
use std::path::Path;

/// Entries of an image folder that outlive a rebuild: evidence and state that belong to the
/// machine, not to the image. Adding a folder here is all it takes to keep it across builds.
pub const KEPT: &[&str] = &[files::RUNS];

/// Writes `files` (name, bytes) as the image folder `images_dir/recipe`, replacing the old image
/// in one step and carrying over its [`KEPT`] entries.
pub fn write_image(
    images_dir: &Path,
    recipe: &str,
    files: &[(&str, &[u8])],
) -> Result<ImageDir, BundleError> {
    write_with(images_dir, recipe, files, KEPT, &Renames::REAL)
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

/// A file name directly inside the image folder, and not one of the kept entries.
fn check_name(name: &str, kept: &[&str]) -> Result<(), BundleError> {
    let bad = |why| BundleError::BadName {
        name: name.to_owned(),
        why,
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(bad("a plain file name is expected"));
    }
    if kept.contains(&name) {
        return Err(bad(
            "it is kept from the previous image, never written by a build",
        ));
    }
    Ok(())
}

fn write_with(
    images_dir: &Path,
    recipe: &str,
    files: &[(&str, &[u8])],
    kept: &[&str],
    renames: &Renames,
) -> Result<ImageDir, BundleError> {
    check_name(recipe, &[])?;
    for (name, _) in files {
        check_name(name, kept)?;
    }
    let needed: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let space = |file: &str| {
        let file = file.to_owned();
        move |e: std::io::Error| out_of_space(e, images_dir, &file, needed)
    };
    std::fs::create_dir_all(images_dir).map_err(space(recipe))?;
    let image = ImageDir::new(images_dir, recipe);
    let target = image.path();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{recipe}.new-"))
        .tempdir_in(images_dir)
        .map_err(space(recipe))?;
    for (file, bytes) in files {
        let path = tmp.path().join(file);
        let mut f = std::fs::File::create(&path).map_err(space(file))?;
        f.write_all(bytes).map_err(space(file))?;
        f.sync_all().map_err(space(file))?;
    }
    // Image files are read by QEMU and people; make them 0644 whatever the umask.
    set_tree_mode(tmp.path())?;
    sync_dir(tmp.path())?;

    if std::fs::symlink_metadata(target).is_err() {
        (renames.rename)(tmp.path(), target)
            .map_err(BundleError::change("move the new image to", target))?;
        // The folder now has its final name; nothing is left for `tmp` to remove.
        let _ = tmp.keep();
        sync_dir(images_dir)?;
        return Ok(image);
    }

    // A failure here leaves the old image where it was; `tmp` (the new files) is removed.
    (renames.exchange)(tmp.path(), target)
        .map_err(BundleError::change("swap the new image with", target))?;
    // `tmp` now names the old image.
    let mut moved: Vec<&str> = Vec::new();
    for entry in kept {
        let old = tmp.path().join(entry);
        if std::fs::symlink_metadata(&old).is_err() {
            continue;
        }
        if let Err(source) = (renames.rename)(&old, &target.join(entry)) {
            let outcome = undo(tmp, target, &moved, renames);
            return Err(BundleError::KeptNotMoved {
                target: target.to_owned(),
                entry: (*entry).to_owned(),
                source,
                outcome,
            });
        }
        moved.push(entry);
    }
    sync_dir(target)?;
    sync_dir(images_dir)?;
    // Dropping `tmp` removes the old image, which no longer holds anything kept.
    drop(tmp);
    Ok(image)
}

/// After a kept entry failed to move: the ones moved go back, the old image is swapped back in.
/// Whatever cannot be undone is left in place, never deleted, and the outcome says where.
fn undo(old: tempfile::TempDir, target: &Path, moved: &[&str], renames: &Renames) -> String {
    for (i, entry) in moved.iter().enumerate().rev() {
        if let Err(e) = (renames.rename)(&target.join(entry), &old.path().join(entry)) {
            let kept = old.keep();
            let in_new: Vec<String> = moved[..=i].iter().map(|e| format!("{e}/")).collect();
            return format!(
                "moving {entry}/ back failed too ({e}): the new image in {} holds {}; the previous image \
                 is kept in {} with the rest; merge them by hand",
                target.display(),
                in_new.join(", "),
                kept.display()
            );
        }
    }
    match (renames.exchange)(old.path(), target) {
        // Back as it was; dropping `old` removes only the new image.
        Ok(()) => "the previous image is back in place, everything kept included".into(),
        Err(e) => {
            let kept = old.keep();
            format!(
                "swapping the previous image back failed too ({e}): it is kept, with what it holds, in {}; \
                 move its {} into the new image by hand",
                kept.display(),
                kept_names()
            )
        }
    }
}

fn kept_names() -> String {
    KEPT.iter()
        .map(|k| format!("{k}/"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ENOSPC or EDQUOT become advice; other errors stay what they were.
fn out_of_space(e: std::io::Error, images_dir: &Path, file: &str, needed: u64) -> BundleError {
    use nix::errno::Errno;
    let full = [Errno::ENOSPC, Errno::EDQUOT]
        .iter()
        .any(|n| e.raw_os_error() == Some(*n as i32));
    if full {
        BundleError::OutOfSpace {
            dir: images_dir.to_owned(),
            file: file.to_owned(),
            needed_mb: needed.div_ceil(1_000_000),
        }
    } else {
        BundleError::write(images_dir.join(file))(e)
    }
}

fn set_tree_mode(dir: &Path) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(BundleError::change("set the permissions of", dir))?;
    for entry in std::fs::read_dir(dir).map_err(BundleError::read(dir))? {
        let entry = entry.map_err(BundleError::read(dir))?;
        if entry
            .file_type()
            .map_err(BundleError::read(entry.path()))?
            .is_file()
        {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(BundleError::change("set the permissions of", entry.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
