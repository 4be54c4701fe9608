//! What a recipe reads from the builder's disk, and the one rule for it: everything comes from the
//! recipe folder.
//!
//! A CI that builds a contributor's recipe change must never be able to put the builder's own
//! files into an image. So every local source (`[[files]]`, `[[archives]]`, `[[directories]]`, a
//! local kernel and its modules folder, a local firmware) is resolved through every symlink and
//! refused, naming where it leads, when that is outside the recipe folder; the builder then reads
//! what the check resolved. Inside a copied folder nothing is followed: symlinks are copied as
//! links, devices, FIFOs and sockets are refused (see docs/recipes.md).
//!
//! The size limits below bound the reads of the recipe's own two files by counting bytes (a device
//! or FIFO reports size 0 and never ends); the bounds of what a recipe copies into an image are
//! the image's (`snpkit_image::import::MAX_MEMBER`, `snpkit_bundle::Limit::KERNEL`/`FIRMWARE`).

use crate::RecipeError;
use snpkit_fsguard::{FileKind, FsError};
use std::path::{Path, PathBuf};

/// The largest recipe.toml read.
pub const MAX_RECIPE_FILE: u64 = 1 << 20;
/// The largest recipe.lock read.
pub const MAX_LOCK_FILE: u64 = 16 << 20;

const FIX: &str = "copy what it points to into the recipe folder (a symlink there must point \
                   inside it): a recipe may only put its own files into an image";

/// One local source: the key naming it, its path as the recipe gives it, and whether it is a
/// folder.
pub(crate) struct Source<'a> {
    pub key: String,
    pub path: &'a Path,
    pub folder: bool,
}

/// Checks each source: it exists, is a regular file (or a folder where one is wanted), and leads
/// to the recipe folder `dir` or inside it. Errors name the recipe file, the key, the path, where
/// it leads and the fix.
pub(crate) fn check(dir: &Path, file: &Path, sources: &[Source<'_>]) -> Result<(), RecipeError> {
    for s in sources {
        check_one(dir, file, s)?;
    }
    Ok(())
}

fn check_one(dir: &Path, file: &Path, s: &Source<'_>) -> Result<PathBuf, RecipeError> {
    let invalid = |problem: String, fix: &str| RecipeError::invalid(file, &s.key, problem, fix);
    let wanted = if s.folder { "a folder" } else { "a file" };
    let kind = match std::fs::metadata(s.path) {
        Ok(m) => FileKind::of(m.file_type()),
        Err(e) => {
            return Err(invalid(
                format!("{} is not {wanted} ({e})", s.path.display()),
                "create it or fix the path (relative to the recipe folder)",
            ));
        }
    };
    let fits = if s.folder {
        kind == FileKind::Folder
    } else {
        kind == FileKind::Regular
    };
    if !fits {
        return Err(invalid(
            format!("{} is {kind}, not {wanted}", s.path.display()),
            if kind.is_special() {
                "devices, FIFOs and sockets are never read as sources: give a regular file"
            } else {
                "fix the path (relative to the recipe folder)"
            },
        ));
    }
    snpkit_fsguard::confine(dir, s.path, &s.key, FIX).map_err(|e| match e {
        FsError::Escapes {
            given,
            resolved,
            root,
            ..
        } => invalid(
            format!(
                "{} leads to {}, outside the recipe folder {}",
                given.display(),
                resolved.display(),
                root.display()
            ),
            FIX,
        ),
        other => RecipeError::File(other),
    })
}
