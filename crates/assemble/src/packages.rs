//! Debian packages into the tree: the files a recipe wants from each, with the package's modes.

use crate::BuildError;
use crate::check::stale;
use crate::options::Reporter;
use snpkit_bundle::{Input, InputKind};
use snpkit_image::Tree;
use snpkit_inputs::deb::{DebEntry, DebEntryKind, data_entries};
use snpkit_inputs::{Cache, apt};
use snpkit_recipe::{Lock, Recipe};
use std::collections::BTreeSet;

/// Adds every locked package's wanted files to `tree`; returns the packages as inputs, in order.
pub(crate) fn add_packages(
    recipe: &Recipe,
    lock: &Lock,
    cache: &Cache,
    reporter: &dyn Reporter,
    tree: &mut Tree,
) -> Result<Vec<Input>, BuildError> {
    let mut inputs = Vec::new();
    if recipe.packages.len() != lock.packages.len() {
        return Err(stale(recipe, "the package list changed".into()));
    }
    for (pin, deb) in recipe.packages.iter().zip(&lock.packages) {
        if pin.name != deb.name || pin.version.as_ref().is_some_and(|v| *v != deb.version) {
            return Err(stale(
                recipe,
                format!(
                    "package {} is not the one locked ({} {})",
                    pin.name, deb.name, deb.version
                ),
            ));
        }
        let progress = reporter.step(&format!("fetching {} {}", deb.name, deb.version));
        let bytes = apt::fetch(deb, cache, &*progress, &recipe.name)?;
        let include: Vec<String> = pin
            .include
            .iter()
            .map(|i| i.trim_start_matches('/').to_owned())
            .collect();
        let wanted = move |p: &str| {
            include.is_empty()
                || include
                    .iter()
                    .any(|i| p == i || p.starts_with(&format!("{i}/")))
        };
        let entries = data_entries(&bytes, &deb.filename, &wanted)?;
        add_entries(tree, entries, &wanted)?;
        inputs.push(Input {
            kind: InputKind::Deb,
            name: deb.name.clone(),
            version: Some(deb.version.clone()),
            sha256: deb.sha256,
            size: deb.size,
        });
    }
    Ok(inputs)
}

/// Adds one package's entries (`data_entries` has already dropped the unwanted files; it returns
/// every directory). A directory keeps the package's mode, as a file does: it is content (1777 on
/// a /tmp-like folder, 0700 on a private one). Directories are taken when wanted themselves or
/// when they lead to something taken; the rest of the package's folders stay out.
fn add_entries(
    tree: &mut Tree,
    entries: Vec<DebEntry>,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<(), BuildError> {
    let mut dirs = Vec::new();
    let mut links = Vec::new();
    let mut taken = Vec::new();
    for e in entries {
        match e.kind {
            DebEntryKind::Dir => {
                if wanted(&e.path) {
                    taken.push(e.path.clone());
                }
                dirs.push((e.path, e.mode));
            }
            DebEntryKind::File(data) => {
                tree.add_file(&e.path, data, e.mode)?;
                taken.push(e.path);
            }
            DebEntryKind::Symlink(target) => {
                tree.add_symlink(&e.path, &target)?;
                taken.push(e.path);
            }
            DebEntryKind::Hardlink(target) => {
                taken.push(e.path.clone());
                links.push((e.path, target));
            }
        }
    }
    for (path, target) in links {
        tree.add_hardlink(&path, &target)?;
    }
    let mut keep: BTreeSet<&str> = BTreeSet::new();
    for path in &taken {
        let mut end = path.len();
        keep.insert(path);
        while let Some(slash) = path[..end].rfind('/') {
            keep.insert(&path[..slash]);
            end = slash;
        }
    }
    for (path, mode) in &dirs {
        if keep.contains(path.as_str()) {
            tree.add_dir(path, *mode)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dir(path: &str, mode: u32) -> DebEntry {
        DebEntry {
            path: path.into(),
            mode,
            kind: DebEntryKind::Dir,
        }
    }

    fn file(path: &str) -> DebEntry {
        DebEntry {
            path: path.into(),
            mode: 0o755,
            kind: DebEntryKind::File(b"x".to_vec()),
        }
    }

    /// A package's entries as `data_entries` returns them for `wanted`.
    fn entries(wanted: &dyn Fn(&str) -> bool) -> Vec<DebEntry> {
        [
            dir("usr", 0o755),
            dir("usr/bin", 0o750),
            file("usr/bin/tool"),
            dir("var", 0o755),
            dir("var/tmp", 0o1777),
            dir("var/lib/private", 0o700),
            file("usr/share/doc/tool/README"),
        ]
        .into_iter()
        .filter(|e| e.kind == DebEntryKind::Dir || wanted(&e.path))
        .collect()
    }

    #[test]
    fn package_directories_keep_their_modes() {
        let all = |_: &str| true;
        let mut t = Tree::new();
        add_entries(&mut t, entries(&all), &all).unwrap();
        assert_eq!(t.get("/var/tmp").unwrap().mode, 0o1777);
        assert_eq!(t.get("/var/lib/private").unwrap().mode, 0o700);
        assert_eq!(t.get("/usr/bin").unwrap().mode, 0o750);
    }

    #[test]
    fn an_include_filter_keeps_only_the_folders_leading_to_what_it_takes() {
        let only_tool = |p: &str| p == "usr/bin/tool";
        let mut t = Tree::new();
        add_entries(&mut t, entries(&only_tool), &only_tool).unwrap();
        assert_eq!(t.get("/usr/bin").unwrap().mode, 0o750, "leads to the tool");
        assert!(t.get("/var").is_none() && t.get("/var/tmp").is_none());
        assert!(t.get("/usr/share").is_none());

        let var = |p: &str| p == "var" || p.starts_with("var/");
        let mut t = Tree::new();
        add_entries(&mut t, entries(&var), &var).unwrap();
        assert_eq!(
            t.get("/var/tmp").unwrap().mode,
            0o1777,
            "wanted, though empty"
        );
        assert!(t.get("/usr").is_none());
    }
}
