//! The first step of a build: the recipe, its lock and its local files agree, before anything is
//! fetched; and the errors every later step raises when an input is not what the lock pins.

use crate::BuildError;
use crate::options::BuildOptions;
use crate::resolve::local_files;
use snpkit_recipe::{Lock, LockedFile, Recipe};
use std::path::Path;

/// A lock checked against the recipe it was written for, and the timestamp every file gets.
pub(crate) struct CheckedLock {
    pub lock: Lock,
    /// `SOURCE_DATE_EPOCH` (the environment's, else the recipe's), as newc stores it.
    pub epoch: u32,
}

/// Launch configurations, local sources, the lock's freshness and the local files it pins.
pub(crate) fn check(
    recipe: &Recipe,
    recipe_text: &[u8],
    opts: &BuildOptions<'_>,
) -> Result<CheckedLock, BuildError> {
    recipe.check_launch(opts.check_launch)?;
    recipe.check_sources()?;
    let lock_path = recipe.dir.join(snpkit_recipe::LOCK_FILE);
    let lock = Lock::read(&lock_path, &recipe.name)?;
    lock.check_fresh(recipe_text, &lock_path, &recipe.name)?;
    check_local_files(recipe, &lock, &lock_path)?;
    let epoch = epoch(recipe, opts.source_date_epoch)?;
    Ok(CheckedLock { lock, epoch })
}

fn epoch(recipe: &Recipe, env: Option<&str>) -> Result<u32, BuildError> {
    let value = match env {
        Some(s) => s.trim().parse::<i64>().map_err(|e| BuildError::BadEpoch {
            value: s.to_owned(),
            why: e.to_string(),
        })?,
        None => recipe.source_date_epoch,
    };
    // newc stores mtimes as 32-bit unsigned seconds.
    u32::try_from(value).map_err(|_| BuildError::BadEpoch {
        value: value.to_string(),
        why: "cpio newc stores times from 1970 to 2106 only".into(),
    })
}

/// Every local file must still be what the lock says: a changed file is a changed input.
fn check_local_files(recipe: &Recipe, lock: &Lock, lock_path: &Path) -> Result<(), BuildError> {
    let now = local_files(recipe)?;
    if now != lock.files {
        let mut changed: Vec<&str> = now
            .iter()
            .filter(|f| !lock.files.contains(f))
            .map(LockedFile::path)
            .chain(
                lock.files
                    .iter()
                    .filter(|f| !now.iter().any(|n| n.path() == f.path()))
                    .map(LockedFile::path),
            )
            .collect();
        changed.sort_unstable();
        changed.dedup();
        let changed = changed.join(", ");
        return Err(snpkit_recipe::RecipeError::LockStale {
            recipe: recipe.name.clone(),
            path: lock_path.to_owned(),
            what: format!("local files changed since the lock was written: {changed}"),
        }
        .into());
    }
    Ok(())
}

/// An input whose bytes differ from the lock's pin under the same name.
pub(crate) fn mismatch(recipe: &Recipe, what: &str, locked: &str, found: &str) -> BuildError {
    BuildError::LockMismatch {
        what: what.to_owned(),
        locked: locked.to_owned(),
        found: found.to_owned(),
        fix: format!(
            "an input changed under the same pin; find out why before running `cargo xtask lock {}`",
            recipe.name
        ),
    }
}

/// The recipe names other inputs than the lock pins.
pub(crate) fn stale(recipe: &Recipe, what: String) -> BuildError {
    snpkit_recipe::RecipeError::LockStale {
        recipe: recipe.name.clone(),
        path: recipe.dir.join(snpkit_recipe::LOCK_FILE),
        what,
    }
    .into()
}
