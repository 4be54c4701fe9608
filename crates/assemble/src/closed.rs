//! A closed image: every program in it can start, and no symlink leads nowhere.
//!
//! Every x86-64 ELF file of the tree is read ([`crate::elf`]); its interpreter and each
//! `DT_NEEDED` library are looked up as the guest's loader will look them up: in the object's
//! `DT_RUNPATH` (else `DT_RPATH`, `$ORIGIN` being its own folder), then the default library
//! folders, every symlink followed inside the image. What is not in the image is taken from the
//! dependency packages' files ([`Pool`]), with the folders and symlinks on its way, and read in
//! turn; what no dependency ships stops the build, naming the program, the library and, where a
//! resolved package ships it, that package. A library loaded with `dlopen` (NSS modules, gconv,
//! plugins) is not named by any ELF header and so is not found here: a recipe adds it by listing
//! its package as an entry with `include`.

use crate::BuildError;
use crate::elf::{Needs, is_elf, needs};
use crate::packages::Pool;
use snpkit_image::{NodeKind, Tree, Unresolved};
use snpkit_inputs::deb::{DebEntry, DebEntryKind};
use std::collections::{BTreeSet, VecDeque};

/// Where the loader looks after the object's own paths (Debian's ld.so.conf for amd64, then
/// the built-in defaults).
pub(crate) const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Folders `/init` mounts over at boot: a symlink into them (`/dev/stdin -> /proc/self/fd/0`)
/// resolves in the running guest, not in the image.
const RUNTIME_MOUNTS: &[&str] = &["proc", "sys", "dev", "run", "tmp"];

/// What the closure step took from the dependency packages, by package then path.
pub(crate) type Taken = Vec<(String, String)>;

/// Completes `tree` from the pool until every ELF file's needs are in it, then checks that no
/// symlink dangles. `mounts` are the recipe's volume mount points (absolute).
pub(crate) fn close(tree: &mut Tree, pool: &Pool, mounts: &[String]) -> Result<Taken, BuildError> {
    let mut taken = Taken::new();
    let mut queue: VecDeque<String> = elf_files(tree).into_iter().collect();
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    while let Some(path) = queue.pop_front() {
        let Some(needs) = read(tree, &path)? else {
            continue;
        };
        let mut found = Vec::new();
        if let Some(interp) = &needs.interpreter {
            let at =
                find(tree, pool, std::slice::from_ref(interp), &mut taken).ok_or_else(|| {
                    missing(pool, &path, &format!("its interpreter {interp}"), interp)
                })?;
            found.push(at);
        }
        for lib in &needs.needed {
            let candidates = candidates(&path, &needs, lib);
            let at = find(tree, pool, &candidates, &mut taken)
                .ok_or_else(|| missing(pool, &path, &format!("the library {lib}"), lib))?;
            found.push(at);
        }
        for at in found {
            if seen.insert(at.clone()) {
                queue.push_back(at);
            }
        }
    }
    dangling(tree, mounts)?;
    Ok(taken)
}

/// Regular files that begin like ELF, by path (hard links are the same file: skipped).
fn elf_files(tree: &Tree) -> Vec<String> {
    tree.iter()
        .filter(|(_, n)| matches!(&n.kind, NodeKind::File(d) if is_elf(d)))
        .map(|(p, _)| p.to_owned())
        .collect()
}

fn read(tree: &Tree, path: &str) -> Result<Option<Needs>, BuildError> {
    let Some(node) = tree.get(path) else {
        return Ok(None);
    };
    let NodeKind::File(data) = &node.kind else {
        return Ok(None);
    };
    if !is_elf(data) {
        return Ok(None);
    }
    needs(data).map_err(|why| BuildError::NotClosed {
        path: format!("/{path}"),
        missing: "a readable ELF header".into(),
        fix: format!("it is not a valid ELF file ({why}); remove it or replace it"),
    })
}

/// Absolute paths to try for `lib`, needed by the object at `path` (relative, real).
fn candidates(path: &str, needs: &Needs, lib: &str) -> Vec<String> {
    if lib.contains('/') {
        // A path, not a name: the loader opens it as written (relative to the working folder,
        // which for an appliance is `/` unless `[entry] workdir` says otherwise).
        return vec![format!("/{}", lib.trim_start_matches('/'))];
    }
    let origin = match path.rfind('/') {
        Some(i) => format!("/{}", &path[..i]),
        None => String::new(),
    };
    needs
        .search
        .iter()
        .map(|d| d.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin))
        // Relative entries are relative to the process's working folder: unknowable here.
        .filter(|d| d.starts_with('/'))
        .chain(LIBRARY_DIRS.iter().map(|d| (*d).to_owned()))
        .map(|d| format!("{}/{lib}", d.trim_end_matches('/')))
        .collect()
}

/// The first candidate that resolves to a regular file, in the image or after taking what is
/// missing on its way from the pool; returns its real path (relative). A candidate that does not
/// resolve leaves the tree as it was.
fn find(tree: &mut Tree, pool: &Pool, candidates: &[String], taken: &mut Taken) -> Option<String> {
    for c in candidates {
        if let Ok((at, node)) = tree.resolve(c)
            && matches!(node.kind, NodeKind::File(_))
        {
            return Some(at);
        }
        let mut trial = tree.clone();
        let mut took = Vec::new();
        // Each round takes one missing entry on the way; a path has only so many.
        for _ in 0..64 {
            match trial.resolve(c) {
                Ok((at, node)) if matches!(node.kind, NodeKind::File(_)) => {
                    *tree = trial;
                    taken.extend(took);
                    return Some(at);
                }
                Err(Unresolved::Missing(at)) => {
                    if let Some((package, entry)) = pool.deps.get(&at) {
                        if take(&mut trial, pool, entry).is_err() {
                            break;
                        }
                        took.push((package.clone(), format!("/{at}")));
                    } else if let Some(package) = holds(pool, &at) {
                        // A folder the package's archive implies without an entry of its own.
                        if trial.add_dir(&at, 0o755).is_err() {
                            break;
                        }
                        took.push((package.to_owned(), format!("/{at}")));
                    } else {
                        break;
                    }
                }
                _ => break,
            }
        }
    }
    None
}

/// The package of the first pooled entry under the folder `dir`, if any.
fn holds<'p>(pool: &'p Pool, dir: &str) -> Option<&'p str> {
    let prefix = format!("{dir}/");
    pool.deps
        .range(prefix.clone()..)
        .next()
        .filter(|(p, _)| p.starts_with(&prefix))
        .map(|(_, (package, _))| package.as_str())
}

/// Adds one pooled entry (a hard link's file first, as the tree needs it).
fn take(tree: &mut Tree, pool: &Pool, e: &DebEntry) -> Result<(), snpkit_image::ImageError> {
    match &e.kind {
        DebEntryKind::Dir => tree.add_dir(&e.path, e.mode),
        DebEntryKind::File(data) => tree.add_file(&e.path, data.clone(), e.mode),
        DebEntryKind::Symlink(target) => tree.add_symlink(&e.path, target),
        DebEntryKind::Hardlink(target) => {
            if tree.get(target).is_none()
                && let Some((_, file)) = pool.deps.get(target)
            {
                take(tree, pool, file)?;
            }
            tree.add_hardlink(&e.path, target)
        }
    }
}

/// The build error for a need nothing provides, naming who ships it where a resolved package
/// does.
fn missing(pool: &Pool, path: &str, what: &str, name: &str) -> BuildError {
    let base = name.rsplit('/').next().unwrap_or(name);
    let shipped: Vec<String> = pool
        .known
        .iter()
        .filter(|(p, _)| p.rsplit('/').next() == Some(base))
        .map(|(p, k)| match &k.left_out_by {
            Some(key) => format!("{} ships /{p}, but {key} leaves it out", k.package),
            None => format!("{} ships /{p}", k.package),
        })
        .take(3)
        .collect();
    let fix = if shipped.is_empty() {
        "no package of the recipe or of its dependencies ships it: add the package that does as a \
         [[packages]] entry (`dpkg -S` on a Debian machine names it), or remove dependencies = false \
         from the entry that needs it"
            .to_owned()
    } else {
        format!(
            "{}; add its path to that include, or list the package as an entry",
            shipped.join("; ")
        )
    };
    BuildError::NotClosed {
        path: format!("/{path}"),
        missing: what.to_owned(),
        fix,
    }
}

/// Every symlink must lead to something in the image (or into a folder `/init` mounts).
fn dangling(tree: &Tree, mounts: &[String]) -> Result<(), BuildError> {
    let runtime = |at: &str| {
        RUNTIME_MOUNTS
            .iter()
            .map(|m| (*m).to_owned())
            .chain(mounts.iter().map(|m| m.trim_start_matches('/').to_owned()))
            .any(|m| at == m || at.starts_with(&format!("{m}/")))
    };
    for (path, node) in tree.iter() {
        let NodeKind::Symlink(target) = &node.kind else {
            continue;
        };
        match tree.resolve(path) {
            Ok(_) => {}
            Err(Unresolved::Missing(at)) if runtime(&at) => {}
            Err(why) => {
                return Err(BuildError::DanglingSymlink {
                    path: format!("/{path}"),
                    target: target.clone(),
                    why: why.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
