//! Writing `images/<recipe>/` so that a failed build changes nothing.
//!
//! All files are written and synced into a temporary folder beside the target; then the new folder
//! and the old one trade places in one `renameat2(RENAME_EXCHANGE)`, and the old one is removed.
//! Earlier boot runs (`runs/`) move over to the new folder: they are evidence and are not ours to
//! delete. `expected.json` does not: reference values of the old image must not vouch for the new.

use crate::BuildError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `files` as the image folder `images_dir/name` and returns its path.
pub(crate) fn write_image_dir(
    images_dir: &Path,
    name: &str,
    files: &[(&str, &[u8])],
) -> Result<PathBuf, BuildError> {
    std::fs::create_dir_all(images_dir).map_err(BuildError::io(images_dir))?;
    let target = images_dir.join(name);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.new-"))
        .tempdir_in(images_dir)
        .map_err(BuildError::io(images_dir))?;
    for (file, bytes) in files {
        let path = tmp.path().join(file);
        let mut f = std::fs::File::create(&path).map_err(BuildError::io(&path))?;
        f.write_all(bytes).map_err(BuildError::io(&path))?;
        f.sync_all().map_err(BuildError::io(&path))?;
    }
    // Image files are read by QEMU and people; make them 0644 whatever the umask.
    set_tree_mode(tmp.path())?;

    if target.exists() {
        let old_runs = target.join("runs");
        if old_runs.is_dir() {
            let new_runs = tmp.path().join("runs");
            std::fs::rename(&old_runs, &new_runs).map_err(BuildError::io(&old_runs))?;
        }
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            tmp.path(),
            nix::fcntl::AT_FDCWD,
            &target,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(|e| BuildError::Io {
            path: target.clone(),
            source: e.into(),
        })?;
        // `tmp` now names the old image; dropping it removes it.
    } else {
        let kept = tmp.keep();
        std::fs::rename(&kept, &target).map_err(BuildError::io(&target))?;
    }
    Ok(target)
}

fn set_tree_mode(dir: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(BuildError::io(dir))?;
    for entry in std::fs::read_dir(dir).map_err(BuildError::io(dir))? {
        let entry = entry.map_err(BuildError::io(dir))?;
        if entry
            .file_type()
            .map_err(BuildError::io(entry.path()))?
            .is_file()
        {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(BuildError::io(entry.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replaces_atomically_and_keeps_runs() {
        let dir = tempfile::tempdir().unwrap();
        let out =
            write_image_dir(dir.path(), "app", &[("a", b"1"), ("expected.json", b"{}")]).unwrap();
        std::fs::create_dir_all(out.join("runs/r1")).unwrap();
        std::fs::write(out.join("runs/r1/report.bin"), b"evidence").unwrap();
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
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["app"], "no temporary folders left behind");
    }
}
