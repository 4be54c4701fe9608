//! Where a snpkit project is, found at run time, and where snpkit's own sources are.
//!
//! A *project* is a folder holding `recipes/` (one folder per recipe) or the marker file
//! `snpkit.toml`, with `images/` beside `recipes/` as the output. The snpkit checkout is one; a
//! team's appliance repository is another. Which one a command acts on is decided here, in this
//! order: `--project DIR`, else `$SNPKIT_PROJECT`, else the first folder holding either, upwards
//! from the current folder ([`Project::find`]). Nothing about it is compiled into a binary, so a
//! copied checkout (or a CI cache restoring `target/`) acts on itself, never on the tree it was
//! built in.
//!
//! snpkit's *source tree* (the guest `/init`'s crates, the fuzz targets) is another question,
//! answered by [`SourceTree::find`]: `$SNPKIT_SOURCE`, else the tree whose `target/` holds the
//! running binary, else the tree the binary was built from, checked at run time to still be one.
//!
//! Owns only locations and the rules for finding them; what is inside `recipes/<name>/` and
//! `images/<name>/` belongs to `snpkit-recipe` and `snpkit-bundle`.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
mod find;
mod source;

pub use error::ProjectError;
pub use find::{Found, MARKER, Project, RECIPES_DIR};
pub use source::{SourceFound, SourceTree};

/// The environment variable naming the project folder (below `--project`, above the search).
pub const PROJECT_ENV: &str = "SNPKIT_PROJECT";
/// The environment variable naming snpkit's source tree (above every other way of finding it).
pub const SOURCE_ENV: &str = "SNPKIT_SOURCE";
