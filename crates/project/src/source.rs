//! Finding snpkit's own source tree: what the guest `/init` and the fuzz targets are built from.
//!
//! Not the project: an appliance repository holds recipes only, and the tool it is built with
//! lives elsewhere. The rule, decided here once:
//! 1. `$SNPKIT_SOURCE`, which must be a source tree;
//! 2. the source tree whose folder holds the running binary (`<tree>/target/debug/xtask`), so a
//!    copied checkout with its `target/` builds from its own sources, whatever path the binary
//!    was compiled with;
//! 3. the tree the binary was built from (compiled in), if it is still one: an installed binary;
//! 4. else an error naming both places, instead of compiling some other tree's guest.
//!
//! When 2 finds a tree other than the one the binary was built from, [`SourceTree::built_from`]
//! says so (`cargo xtask where` prints it): the sources used are the ones beside the binary, and
//! the guest `/init` built from them is keyed by a hash of those sources, never by a path. That
//! the sources found are the ones the binary was built with is xtask's check (its `build.rs`
//! records their fingerprint, `build` compares), since only the binary knows what it was built from.

use crate::ProjectError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How the source tree was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFound {
    Env,
    BesideBinary,
    BuiltFrom,
}

impl std::fmt::Display for SourceFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceFound::Env => "$SNPKIT_SOURCE",
            SourceFound::BesideBinary => "the checkout whose target/ holds the running binary",
            SourceFound::BuiltFrom => "the checkout the binary was built from",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTree {
    root: PathBuf,
    found: SourceFound,
    /// The tree the binary was compiled in, when that is not `root` (a copied checkout).
    built_from: Option<PathBuf>,
}

impl SourceTree {
    /// The rule of the module doc, on the process's values; `built_from` is the compiled-in
    /// workspace root of the calling binary.
    pub fn locate(built_from: &Path) -> Result<SourceTree, ProjectError> {
        SourceTree::find(
            std::env::var_os(crate::SOURCE_ENV),
            std::env::current_exe().ok(),
            built_from,
        )
    }

    pub fn find(
        env: Option<OsString>,
        exe: Option<PathBuf>,
        built_from: &Path,
    ) -> Result<SourceTree, ProjectError> {
        let built_real = std::fs::canonicalize(built_from).ok();
        let differs = |root: &Path| match &built_real {
            Some(b) if b == root => None,
            _ => Some(built_from.to_path_buf()),
        };
        if let Some(dir) = env.filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(dir);
            let how = format!("{}={}", crate::SOURCE_ENV, dir.display());
            let root = std::fs::canonicalize(&dir)
                .ok()
                .filter(|r| is_source_tree(r))
                .ok_or(ProjectError::NotASourceTree { how, path: dir })?;
            return Ok(SourceTree {
                built_from: differs(&root),
                root,
                found: SourceFound::Env,
            });
        }
        let exe_real = exe.as_deref().and_then(|e| std::fs::canonicalize(e).ok());
        if let Some(root) = exe_real
            .as_deref()
            .and_then(|e| e.ancestors().skip(1).find(|d| is_source_tree(d)))
        {
            let root = root.to_path_buf();
            return Ok(SourceTree {
                built_from: differs(&root),
                root,
                found: SourceFound::BesideBinary,
            });
        }
        match built_real.filter(|b| is_source_tree(b)) {
            Some(root) => Ok(SourceTree {
                root,
                found: SourceFound::BuiltFrom,
                built_from: None,
            }),
            None => Err(ProjectError::NoSourceTree {
                built_from: built_from.to_path_buf(),
                exe: exe.unwrap_or_default(),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn found(&self) -> SourceFound {
        self.found
    }

    /// The tree the running binary was compiled in, when it is not [`SourceTree::root`].
    pub fn built_from(&self) -> Option<&Path> {
        self.built_from.as_deref()
    }
}

/// A snpkit checkout: the workspace manifest, xtask's and the guest's.
pub fn is_source_tree(dir: &Path) -> bool {
    ["Cargo.toml", "xtask/Cargo.toml", "crates/guest/Cargo.toml"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(at: &Path) -> PathBuf {
        for f in ["Cargo.toml", "xtask/Cargo.toml", "crates/guest/Cargo.toml"] {
            let p = at.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::fs::create_dir_all(at.join("target/debug")).unwrap();
        std::fs::write(at.join("target/debug/xtask"), "").unwrap();
        std::fs::canonicalize(at).unwrap()
    }

    #[test]
    fn a_copied_checkout_builds_from_its_own_sources_and_says_where_it_was_built() {
        let t = tempfile::tempdir().unwrap();
        let a = checkout(&t.path().join("a"));
        let b = checkout(&t.path().join("b"));
        let s = SourceTree::find(None, Some(b.join("target/debug/xtask")), &a).unwrap();
        assert_eq!(s.root(), b);
        assert_eq!(s.found(), SourceFound::BesideBinary);
        assert_eq!(s.built_from(), Some(a.as_path()));
        // In its own tree, nothing to say.
        let s = SourceTree::find(None, Some(a.join("target/debug/xtask")), &a).unwrap();
        assert_eq!((s.root(), s.built_from()), (a.as_path(), None));
    }

    #[test]
    fn an_installed_binary_uses_the_tree_it_was_built_from_while_it_exists() {
        let t = tempfile::tempdir().unwrap();
        let a = checkout(&t.path().join("a"));
        let bin = t.path().join("bin/snpkit");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "").unwrap();
        let s = SourceTree::find(None, Some(bin.clone()), &a).unwrap();
        assert_eq!((s.root(), s.found()), (a.as_path(), SourceFound::BuiltFrom));
        std::fs::remove_dir_all(&a).unwrap();
        let e = SourceTree::find(None, Some(bin), &a).unwrap_err();
        assert!(e.to_string().contains("SNPKIT_SOURCE"), "{e}");
    }

    #[test]
    fn the_variable_wins_and_must_name_a_checkout() {
        let t = tempfile::tempdir().unwrap();
        let a = checkout(&t.path().join("a"));
        let b = checkout(&t.path().join("b"));
        let s = SourceTree::find(
            Some(b.clone().into()),
            Some(a.join("target/debug/xtask")),
            &a,
        )
        .unwrap();
        assert_eq!((s.root(), s.found()), (b.as_path(), SourceFound::Env));
        let e = SourceTree::find(Some(t.path().into()), None, &a).unwrap_err();
        assert!(matches!(e, ProjectError::NotASourceTree { .. }), "{e}");
    }
}
