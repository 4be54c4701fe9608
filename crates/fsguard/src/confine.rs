//! Keeping sources inside their folder.

use crate::FsError;
use std::path::{Path, PathBuf};

/// Where `path` really leads (every symlink in it followed), if that is `root` or inside it;
/// otherwise [`FsError::Escapes`] naming `what`, the path as given, where it leads and `fix`.
/// Read the returned path, not `path`: it has no symlinks left to change under the reader.
pub fn confine(root: &Path, path: &Path, what: &str, fix: &str) -> Result<PathBuf, FsError> {
    let resolve = |p: &Path, doing| {
        p.canonicalize().map_err(|error| FsError::Io {
            path: p.to_path_buf(),
            what: what.to_owned(),
            doing,
            error,
        })
    };
    let root = resolve(root, "resolve the folder")?;
    let resolved = resolve(path, "resolve")?;
    if inside(&root, &resolved) {
        Ok(resolved)
    } else {
        Err(FsError::Escapes {
            what: what.to_owned(),
            given: path.to_path_buf(),
            resolved,
            root,
            fix: fix.to_owned(),
        })
    }
}

/// Whether the canonical path `resolved` is the canonical folder `root` or below it (by whole
/// components: `/a/bc` is not inside `/a/b`).
pub fn inside(root: &Path, resolved: &Path) -> bool {
    resolved.starts_with(root)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_followed_and_must_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("recipe");
        std::fs::create_dir_all(root.join("files")).unwrap();
        std::fs::write(root.join("files/a"), b"a").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        symlink("a", root.join("files/ok")).unwrap();
        symlink("../../secret", root.join("files/out")).unwrap();
        symlink("/etc", root.join("etc")).unwrap();
        symlink(dir.path(), root.join("up")).unwrap();
        std::fs::create_dir(dir.path().join("recipe2")).unwrap();
        std::fs::write(dir.path().join("recipe2/x"), b"x").unwrap();

        let fix = "copy it into the recipe folder";
        let ok = confine(&root, &root.join("files/ok"), "files[0].src", fix).unwrap();
        assert_eq!(ok, root.canonicalize().unwrap().join("files/a"));
        for escaping in [
            root.join("files/out"),
            root.join("etc/hostname"),
            root.join("up/secret"),
            root.join("files/../../recipe2/x"),
        ] {
            let err = confine(&root, &escaping, "files[0].src", fix).unwrap_err();
            assert_eq!(err.kind(), "escapes_folder", "{err}");
            let text = err.to_string();
            assert!(text.contains("leads to") && text.contains(fix), "{text}");
        }
        // The folder itself is inside; a sibling sharing its name's prefix is not.
        assert!(confine(&root, &root, "dir", fix).is_ok());
        assert!(!inside(Path::new("/a/b"), Path::new("/a/bc")));
        // A dangling link cannot be resolved, and says so.
        symlink("nowhere", root.join("dangling")).unwrap();
        assert_eq!(
            confine(&root, &root.join("dangling"), "x", fix)
                .unwrap_err()
                .kind(),
            "io"
        );
    }
}
