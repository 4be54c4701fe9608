//! `recipe.lock`: every input of a build, resolved and pinned by SHA-256.
//!
//! `cargo xtask lock <recipe>` writes it; `cargo xtask build` refuses to run on a lock that does not
//! match the recipe, so a build never quietly takes a different input than the one reviewed.

use crate::{RecipeError, Sha256Sum};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const LOCK_FILE: &str = "recipe.lock";
pub const LOCK_VERSION: u32 = 1;

const HEADER: &str =
    "# Written by `cargo xtask lock`; do not edit by hand. It pins every input of the build.\n";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    /// SHA-256 of recipe.toml when the lock was written: a changed recipe needs a new lock.
    pub recipe_sha256: Sha256Sum,
    pub kernel: LockedKernel,
    pub firmware: LockedFirmware,
    /// Kernel modules to ship, with their dependencies, in load order (dependencies first), as
    /// paths relative to `lib/modules/<release>/`.
    pub modules: Vec<String>,
    #[serde(default)]
    pub packages: Vec<LockedDeb>,
    /// Every local file the recipe reads (files, archives, everything under directories), by path
    /// relative to the recipe folder.
    #[serde(default)]
    pub files: Vec<LockedBlob>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedKernel {
    /// `uname -r` of the kernel.
    pub release: String,
    /// The Debian package, when the kernel comes from one.
    pub deb: Option<LockedDeb>,
    /// The kernel image inside it (or the local file).
    pub image: LockedBlob,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedDeb {
    pub name: String,
    pub version: String,
    /// The .deb's file name as the archive has it (for messages and the cache).
    pub filename: String,
    pub sha256: Sha256Sum,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBlob {
    pub path: String,
    pub sha256: Sha256Sum,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFirmware {
    /// `amdsev` (built from source) or `local`.
    pub source: String,
    /// For `amdsev`: the Debian edk2 source package version and its two tarballs.
    pub edk2_version: Option<String>,
    #[serde(default)]
    pub edk2_sources: Vec<LockedBlob>,
    /// The firmware itself: for `amdsev`, what a reproducible build of those sources yields.
    pub ovmf: LockedBlob,
}

impl Lock {
    pub fn read(path: &Path, recipe: &str) -> Result<Lock, RecipeError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RecipeError::LockMissing {
                    recipe: recipe.to_owned(),
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(RecipeError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let lock: Lock = toml::from_str(&text).map_err(|e| RecipeError::LockSyntax {
            recipe: recipe.to_owned(),
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if lock.version != LOCK_VERSION {
            return Err(RecipeError::LockStale {
                recipe: recipe.to_owned(),
                path: path.to_owned(),
                what: format!(
                    "lock format {} (this snpkit writes {LOCK_VERSION})",
                    lock.version
                ),
            });
        }
        Ok(lock)
    }

    /// Checks that the lock was written for this exact recipe text.
    pub fn check_fresh(
        &self,
        recipe_text: &[u8],
        path: &Path,
        recipe: &str,
    ) -> Result<(), RecipeError> {
        let now = Sha256Sum::of(recipe_text);
        if now != self.recipe_sha256 {
            return Err(RecipeError::LockStale {
                recipe: recipe.to_owned(),
                path: path.to_owned(),
                what: "recipe.toml changed since the lock was written".into(),
            });
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Writes the lock atomically (temp file in the same folder, then rename).
    pub fn write(&self, path: &Path) -> Result<(), RecipeError> {
        let tmp = path.with_extension("lock.tmp");
        let werr = |source| RecipeError::Write {
            path: path.to_owned(),
            source,
        };
        std::fs::write(&tmp, self.to_toml()).map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)
    }
}
