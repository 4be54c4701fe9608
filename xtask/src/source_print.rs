//! A fingerprint of the guest's sources, computed twice by the same code: by `build.rs` when the
//! xtask binary is compiled (into `SNPKIT_GUEST_SOURCES`), and at run time over the source tree
//! the binary finds. When they differ, the binary would compile a guest `/init` from other
//! sources than its own host side was built with (an installed binary and an updated checkout),
//! so `build` stops and says to rebuild instead.
//!
//! Only std: `build.rs` includes this file. The crates are `crates/guest` and the `snpkit-*`
//! crates its manifests name under a dependency table, by the workspace's convention
//! `snpkit-<x>` = `crates/<x>`; the cache key of the `/init` itself is `guest_key`'s, which reads
//! the manifests properly.

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};

/// The crate folders hashed, relative to the source tree, sorted.
pub fn guest_crate_dirs(root: &Path) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut todo = vec!["crates/guest".to_owned()];
    while let Some(dir) = todo.pop() {
        if seen.contains(&dir) {
            continue;
        }
        let manifest =
            std::fs::read_to_string(root.join(&dir).join("Cargo.toml")).unwrap_or_default();
        let mut in_deps = false;
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line.ends_with("dependencies]") && !line.contains("dev-dependencies");
            } else if in_deps && let Some(rest) = line.strip_prefix("snpkit-") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                todo.push(format!("crates/{name}"));
            }
        }
        seen.push(dir);
    }
    seen.sort();
    seen
}

/// The fingerprint: every file under each crate's `src/`, its `Cargo.toml` and `build.rs`, and
/// the workspace's `Cargo.lock`, by relative path and contents. Unreadable files count as empty.
pub fn fingerprint(root: &Path) -> u64 {
    let mut files = vec![PathBuf::from("Cargo.lock")];
    for dir in guest_crate_dirs(root) {
        files.push(Path::new(&dir).join("Cargo.toml"));
        files.push(Path::new(&dir).join("build.rs"));
        walk(root, &Path::new(&dir).join("src"), &mut files);
    }
    files.sort();
    let mut h = DefaultHasher::new();
    for rel in files {
        let bytes = std::fs::read(root.join(&rel)).unwrap_or_default();
        h.write(rel.to_string_lossy().as_bytes());
        h.write_u64(bytes.len() as u64);
        h.write(&bytes);
    }
    h.finish()
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let child = rel.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &child, out);
        } else {
            out.push(child);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_crates_are_those_the_cache_key_reads_from_the_manifests() {
        let root = crate::cli::built_from();
        let key = crate::guest_key::key(&root, "r", "t", &[]).unwrap();
        assert_eq!(guest_crate_dirs(&root), key.crates);
    }

    #[test]
    fn a_changed_source_or_lock_changes_the_fingerprint_a_recipe_does_not() {
        let t = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = t.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("Cargo.lock", "1");
        w(
            "crates/guest/Cargo.toml",
            "[dependencies]\nsnpkit-wire.workspace = true\n[dev-dependencies]\nsnpkit-testkit.workspace = true\n",
        );
        w("crates/guest/src/main.rs", "fn main() {}");
        w("crates/wire/src/lib.rs", "");
        w("crates/testkit/src/lib.rs", "");
        assert_eq!(guest_crate_dirs(t.path()), ["crates/guest", "crates/wire"]);
        let first = fingerprint(t.path());
        w("recipes/hello/files/hello", "echo");
        w("crates/testkit/src/lib.rs", "pub fn f() {}");
        assert_eq!(fingerprint(t.path()), first);
        w("crates/wire/src/lib.rs", "pub fn f() {}");
        let wire = fingerprint(t.path());
        assert_ne!(wire, first);
        w("Cargo.lock", "2");
        assert_ne!(fingerprint(t.path()), wire);
    }
}
