//! Debian packages into the tree: the files a recipe wants from each of its entries, with the
//! package's modes; the files of the packages pulled in as dependencies wait in a [`Pool`] from
//! which the closure step ([`crate::closed`]) takes what the image's programs need.

use crate::BuildError;
use crate::check::stale;
use crate::fetch::{fetch_deb, is_locked};
use crate::options::Reporter;
use snpkit_bundle::Input;
use snpkit_image::Tree;
use snpkit_inputs::Cache;
use snpkit_inputs::deb::{DebEntry, DebEntryKind, data_entries};
use snpkit_recipe::{DebPin, LockedDeb, Recipe};
use std::collections::{BTreeMap, BTreeSet};

/// What the image did not take of the resolved packages.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// The dependency packages' entries by path (relative), each with its package: the closure
    /// takes from here. Where two packages ship a path, the first in the lock's order has it.
    pub deps: BTreeMap<String, (String, DebEntry)>,
    /// Every path of every resolved package, with its package and, for a recipe entry's file,
    /// the key whose `include` left it out: for messages naming who ships a missing library.
    pub known: BTreeMap<String, Known>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    pub package: String,
    pub left_out_by: Option<String>,
}

/// Adds every recipe entry's wanted files to `tree` and pools the dependencies' files; returns
/// the packages as inputs, in the lock's order, and the pool.
pub(crate) fn add_packages(
    recipe: &Recipe,
    packages: &[LockedDeb],
    cache: &Cache,
    reporter: &dyn Reporter,
    tree: &mut Tree,
) -> Result<(Vec<Input>, Pool), BuildError> {
    let mut inputs = Vec::new();
    let mut pool = Pool::default();
    let (entries, pulled): (Vec<&LockedDeb>, Vec<&LockedDeb>) =
        packages.iter().partition(|d| d.pulled_by.is_none());
    if recipe.packages.len() != entries.len() {
        return Err(stale(recipe, "the package list changed".into()));
    }
    for (i, (pin, deb)) in recipe.packages.iter().zip(entries).enumerate() {
        if !is_locked(pin, deb) {
            return Err(stale(
                recipe,
                format!(
                    "package {} is not the one locked ({} {})",
                    pin.name, deb.name, deb.version
                ),
            ));
        }
        let (bytes, _progress) = fetch_deb(recipe, deb, cache, reporter, &mut inputs)?;
        let all = data_entries(&bytes, &deb.filename, &|_| true)?;
        let key = format!("packages[{i}]");
        let wanted = included(recipe, &key, pin, deb, &all)?;
        let mut taken = Vec::new();
        for e in all {
            if e.kind == DebEntryKind::Dir || wanted(&e.path) {
                taken.push(e);
            } else {
                pool.known.entry(e.path).or_insert(Known {
                    package: deb.name.clone(),
                    left_out_by: Some(format!("{key}.include")),
                });
            }
        }
        for e in &taken {
            pool.known.entry(e.path.clone()).or_insert(Known {
                package: deb.name.clone(),
                left_out_by: None,
            });
        }
        add_entries(tree, taken, &wanted)?;
    }
    for deb in pulled {
        let (bytes, _progress) = fetch_deb(recipe, deb, cache, reporter, &mut inputs)?;
        for e in data_entries(&bytes, &deb.filename, &|_| true)? {
            pool.known.entry(e.path.clone()).or_insert(Known {
                package: deb.name.clone(),
                left_out_by: None,
            });
            pool.deps
                .entry(e.path.clone())
                .or_insert_with(|| (deb.name.clone(), e));
        }
    }
    Ok((inputs, pool))
}

/// The entry's `include` as a filter over package paths (everything when it has none), once
/// every pattern has been found to match something: a typo would otherwise build an image
/// without the files it meant.
pub(crate) fn included(
    recipe: &Recipe,
    key: &str,
    pin: &DebPin,
    deb: &LockedDeb,
    entries: &[DebEntry],
) -> Result<impl Fn(&str) -> bool + use<>, BuildError> {
    let include: Vec<String> = pin
        .include
        .iter()
        .map(|i| i.trim_start_matches('/').to_owned())
        .collect();
    let matches = |i: &str, p: &str| p == i || (p.starts_with(i) && p[i.len()..].starts_with('/'));
    for (j, i) in include.iter().enumerate() {
        if !entries.iter().any(|e| matches(i, &e.path)) {
            return Err(BuildError::IncludeUnmatched {
                file: recipe.file.clone(),
                key: format!("{key}.include[{j}]"),
                pattern: format!("/{i}"),
                package: format!("{} {}", deb.name, deb.version),
                filename: deb.filename.clone(),
            });
        }
    }
    Ok(move |p: &str| include.is_empty() || include.iter().any(|i| matches(i, p)))
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
