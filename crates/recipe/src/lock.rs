//! `recipe.lock`: every input of a build, resolved and pinned by SHA-256.
//!
//! `cargo xtask lock <recipe>` writes it; `cargo xtask build` refuses to run on a lock that does not
//! match the recipe, so a build never quietly takes a different input than the one reviewed.

use crate::{RecipeError, Sha256Sum};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const LOCK_FILE: &str = "recipe.lock";
/// Format 2: `[[packages]]` holds the entries' dependency closure (`pulled_by`) and the
/// maintainer scripts each package has.
pub const LOCK_VERSION: u32 = 2;

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
    /// Every local input the recipe reads (files, archives, everything under directories), by path
    /// relative to the recipe folder, with everything of it that reaches the image.
    #[serde(default)]
    pub files: Vec<LockedFile>,
}

/// A local input, pinned by all of it that changes the image. Each kind has its own keys, so
/// the lock reads plainly: `path` + `sha256` + `size` (+ `mode`), `symlink` + `target`, or `dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum LockedFile {
    /// A regular file's bytes. Files under `[[directories]]` also carry the mode the image gives
    /// them (`0755` or `0644`, from the host's execute bit); for `[[files]]` and `[[archives]]`
    /// the recipe or the archive decides modes, so none is recorded.
    File {
        path: String,
        sha256: Sha256Sum,
        size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
    },
    /// A symlink under `[[directories]]`, copied into the image as a link.
    Symlink { symlink: String, target: String },
    /// A folder under `[[directories]]`: even an empty one is an entry of the image.
    Dir { dir: String },
}

impl LockedFile {
    /// The input's path relative to the recipe folder.
    pub fn path(&self) -> &str {
        match self {
            LockedFile::File { path, .. } => path,
            LockedFile::Symlink { symlink, .. } => symlink,
            LockedFile::Dir { dir } => dir,
        }
    }
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
    /// For a package pulled in as a dependency: the recipe entry's package whose closure reached
    /// it. Absent for the recipe's own entries (and the kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_by: Option<String>,
    /// Maintainer scripts the package has (`preinst`, `postinst`) that snpkit does not run: what
    /// they would have done (users, alternatives, caches) is the recipe's to provide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainer_scripts: Vec<String>,
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
        let text =
            match snpkit_fsguard::read_string(path, "recipe.lock", crate::sources::MAX_LOCK_FILE) {
                Ok(text) => text,
                Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => {
                    return Err(RecipeError::LockMissing {
                        recipe: recipe.to_owned(),
                        path: path.to_owned(),
                    });
                }
                Err(e) => return Err(e.into()),
            };
        let syntax = |e: toml::de::Error| RecipeError::LockSyntax {
            recipe: recipe.to_owned(),
            path: path.to_owned(),
            message: e.to_string(),
        };
        // The format version first: a lock of another format is stale, not malformed.
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version = toml::from_str::<Version>(&text).map_err(syntax)?.version;
        if version != LOCK_VERSION {
            return Err(RecipeError::LockStale {
                recipe: recipe.to_owned(),
                path: path.to_owned(),
                what: format!("lock format {version} (this snpkit writes {LOCK_VERSION})"),
            });
        }
        toml::from_str(&text).map_err(syntax)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Files {
        files: Vec<LockedFile>,
    }

    #[test]
    fn local_inputs_read_back_by_their_keys() {
        let sha = Sha256Sum::of(b"x");
        let files = Files {
            files: vec![
                LockedFile::File {
                    path: "files/app".into(),
                    sha256: sha,
                    size: 1,
                    mode: None,
                },
                LockedFile::File {
                    path: "tree/bin/tool".into(),
                    sha256: sha,
                    size: 1,
                    mode: Some("0755".into()),
                },
                LockedFile::Symlink {
                    symlink: "tree/bin/sh".into(),
                    target: "tool".into(),
                },
                LockedFile::Dir {
                    dir: "tree/var/empty".into(),
                },
            ],
        };
        let text = toml::to_string(&files).unwrap();
        assert!(
            text.contains("symlink = \"tree/bin/sh\"\ntarget = \"tool\""),
            "{text}"
        );
        assert!(text.contains("mode = \"0755\""), "{text}");
        let back: Files = toml::from_str(&text).unwrap();
        assert_eq!(back.files, files.files);
        assert_eq!(back.files[2].path(), "tree/bin/sh");

        // Keys of two kinds in one entry are refused, not read as whichever kind fits first.
        let mixed = "[[files]]\ndir = \"a\"\ntarget = \"b\"\n";
        assert!(toml::from_str::<Files>(mixed).is_err());
    }

    #[test]
    fn another_format_is_stale_not_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, "version = 99\nsomething = \"else\"\n").unwrap();
        let err = Lock::read(&path, "app").unwrap_err().to_string();
        assert!(
            err.contains("lock format 99") && err.contains("cargo xtask lock app"),
            "{err}"
        );
    }
}
