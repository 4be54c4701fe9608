//! The cache key of the guest `/init`: a hash of everything its bytes are made from.
//!
//! The inputs: the sources of every workspace crate `snpkit-guest` depends on, itself included
//! (each crate's `Cargo.toml`, `build.rs` and `src/`, found by following `snpkit-*` dependencies
//! through `[workspace.dependencies]`), the workspace `Cargo.toml` (profiles, versions) and
//! `Cargo.lock`, `.cargo/config.toml` and a `rust-toolchain` file when present, `rustc -vV`,
//! the target and the flags. Paths are hashed relative to the source tree and the flags without
//! the folders they remap (the binary holds the fixed names only), so two checkouts of the same
//! sources share one `/init`. A recipe is no input: editing one rebuilds nothing Rust. Not
//! inputs either: cargo settings from the environment (`CARGO_PROFILE_*`, a user's
//! `~/.cargo/config.toml`); the build passes its flags itself and removes `RUSTFLAGS`, and
//! `SNPKIT_FRESH_INIT=1` is the way to check a kept `/init` against a fresh one.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Changing how the key is made (or what the build does with the same inputs) bumps this.
const KEY_VERSION: &str = "snpkit guest /init key v1";

/// The key, in hex, and the crate folders it covered (for `-v`).
pub struct GuestKey {
    pub hex: String,
    pub crates: Vec<String>,
}

/// Hashes the inputs of the `/init` build in `root` made with `rustc_vv` (`rustc -vV`'s output)
/// for `target` with `fixed_flags` (the flags, without machine-specific paths).
pub fn key(
    root: &Path,
    rustc_vv: &str,
    target: &str,
    fixed_flags: &[&str],
) -> anyhow::Result<GuestKey> {
    let mut h = Sha256::new();
    let mut field = |name: &str, bytes: &[u8]| {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field("version", KEY_VERSION.as_bytes());
    field("rustc -vV", rustc_vv.as_bytes());
    field("target", target.as_bytes());
    field("flags", fixed_flags.join("\x1f").as_bytes());
    for top in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
        ".cargo/config",
        "rust-toolchain",
        "rust-toolchain.toml",
    ] {
        let path = root.join(top);
        if path.is_file() {
            field(top, &read(&path)?);
        }
    }
    let crates = guest_crates(root)?;
    for dir in &crates {
        let mut files = Vec::new();
        for name in ["Cargo.toml", "build.rs"] {
            let f = root.join(dir).join(name);
            if f.is_file() {
                files.push(f);
            }
        }
        walk(&root.join(dir).join("src"), &mut files)?;
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(root)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            field(&rel, &read(&f)?);
        }
    }
    Ok(GuestKey {
        hex: hex::encode(h.finalize()),
        crates,
    })
}

/// The source files of the guest's crates are small; anything larger is not a source.
const MAX_SOURCE: u64 = 16 << 20;

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    Ok(snpkit_fsguard::read(
        path,
        "a guest /init source",
        MAX_SOURCE,
    )?)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// `crates/guest` and the folders of every `snpkit-*` crate it depends on (normal and build
/// dependencies, any target), relative to `root`, sorted.
fn guest_crates(root: &Path) -> anyhow::Result<Vec<String>> {
    let workspace: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml"))?)
        .context("parsing the workspace Cargo.toml")?;
    let paths = workspace
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(toml::Value::as_table)
        .context("the workspace Cargo.toml has no [workspace.dependencies]")?;
    let mut seen = BTreeSet::new();
    let mut todo = vec!["crates/guest".to_owned()];
    while let Some(dir) = todo.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let manifest = root.join(&dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
        for name in dependency_names(&table) {
            if !name.starts_with("snpkit-") {
                continue;
            }
            let Some(path) = paths
                .get(&name)
                .and_then(|d| d.get("path"))
                .and_then(toml::Value::as_str)
            else {
                bail!(
                    "{} depends on {name}, which [workspace.dependencies] gives no path: the guest \
                     /init's inputs cannot be hashed",
                    manifest.display()
                );
            };
            todo.push(path.trim_end_matches('/').to_owned());
        }
    }
    Ok(seen.into_iter().collect())
}

/// The names under `[dependencies]`, `[build-dependencies]` and their `[target.*.…]` forms.
fn dependency_names(manifest: &toml::Table) -> Vec<String> {
    let kinds = ["dependencies", "build-dependencies"];
    let mut tables: Vec<&toml::Table> = kinds
        .iter()
        .filter_map(|k| manifest.get(*k).and_then(toml::Value::as_table))
        .collect();
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for t in targets.values() {
            tables.extend(
                kinds
                    .iter()
                    .filter_map(|k| t.get(*k).and_then(toml::Value::as_table)),
            );
        }
    }
    tables
        .iter()
        .flat_map(|t| t.iter())
        .map(|(name, spec)| {
            // `foo = { package = "snpkit-x", … }` renames a dependency.
            spec.get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(name)
                .to_owned()
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree(at: &Path) {
        let w = |rel: &str, text: &str| {
            let p = at.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "Cargo.toml",
            "[workspace.dependencies]\nsnpkit-wire = { path = \"crates/wire\" }\nsnpkit-x = { path = \"crates/x\" }\n",
        );
        w("Cargo.lock", "lock");
        w(
            "crates/guest/Cargo.toml",
            "[dependencies]\nsnpkit-wire.workspace = true\nanyhow = \"1\"\n",
        );
        w("crates/guest/src/main.rs", "fn main() {}");
        w("crates/wire/Cargo.toml", "[dependencies]\n");
        w("crates/wire/src/lib.rs", "");
        w("crates/x/Cargo.toml", "");
        w("crates/x/src/lib.rs", "");
        w("recipes/hello/files/hello", "echo hi");
    }

    #[test]
    fn the_key_follows_the_guest_sources_and_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        tree(&a);
        let k = |root: &Path| key(root, "rustc 1.0", "t", &["-C", "x"]).unwrap();
        let first = k(&a);
        assert_eq!(first.crates, ["crates/guest", "crates/wire"]);
        // Another folder with the same sources: the same key.
        let b = t.path().join("elsewhere/b");
        tree(&b);
        assert_eq!(k(&b).hex, first.hex);
        // A recipe's file, a crate the guest does not use: the same key.
        std::fs::write(a.join("recipes/hello/files/hello"), "echo changed").unwrap();
        std::fs::write(a.join("crates/x/src/lib.rs"), "pub fn f() {}").unwrap();
        assert_eq!(k(&a).hex, first.hex);
        // A dependency's source, the lock, the compiler, the flags: another key.
        std::fs::write(a.join("crates/wire/src/lib.rs"), "pub fn f() {}").unwrap();
        let wire = k(&a).hex;
        assert_ne!(wire, first.hex);
        std::fs::write(a.join("Cargo.lock"), "lock 2").unwrap();
        assert_ne!(k(&a).hex, wire);
        assert_ne!(
            key(&b, "rustc 1.1", "t", &["-C", "x"]).unwrap().hex,
            first.hex
        );
        assert_ne!(
            key(&b, "rustc 1.0", "t", &["-C", "y"]).unwrap().hex,
            first.hex
        );
        // A new file in the guest's src/ changes it too.
        std::fs::write(b.join("crates/guest/src/extra.rs"), "").unwrap();
        assert_ne!(k(&b).hex, first.hex);
    }

    #[test]
    fn a_dependency_without_a_path_is_an_error_not_a_guess() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        std::fs::write(
            t.path().join("crates/guest/Cargo.toml"),
            "[dependencies]\nsnpkit-nowhere.workspace = true\n",
        )
        .unwrap();
        let e = key(t.path(), "r", "t", &[]).err().unwrap().to_string();
        assert!(e.contains("snpkit-nowhere"), "{e}");
    }
}
