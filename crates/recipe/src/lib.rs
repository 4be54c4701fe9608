//! Recipes: what an appliance is made of and how it is launched.
//!
//! Owns the `recipes/<name>/recipe.toml` format ([`Recipe`]), its validation (every error names the
//! file, the key and the fix), the minijinja rendering of the kernel command line
//! ([`render_cmdline`]), the launch configurations ([`LaunchConfig`]) and the `recipe.lock` file
//! ([`Lock`]) that pins every resolved input.
//!
//! Knows nothing of how inputs are fetched (`snpkit-inputs`), how images are laid out
//! (`snpkit-image`) or how digests are computed (`snpkit-measure`): a recipe is data. The only I/O
//! here is reading and writing the two TOML files, and looking at (never reading) the local
//! sources to hold them inside the recipe folder ([`sources`]).
//!
//! The format is documented for users in `docs/recipes.md`.
#![forbid(unsafe_code)]

mod cmdline;
mod error;
mod launch;
mod lock;
mod model;
mod raw;
mod sha256;
pub mod sources;
mod verity;

pub use cmdline::{
    CmdlineContext, UNRESOLVED_RELEASE, VerityContext, check_cmdline, render_cmdline,
};
pub use error::RecipeError;
pub use launch::{LaunchConfig, LaunchProblem};
pub use lock::{
    LOCK_FILE, LOCK_VERSION, Lock, LockedBlob, LockedDeb, LockedFile, LockedFirmware, LockedKernel,
};
pub use model::{
    ArchiveSpec, DebPin, DirSpec, EntrySpec, FileSpec, FirmwareSource, KernelSource, Layout,
    RECIPE_FILE, Recipe, SymlinkSpec, VeritySpec,
};
pub use sha256::Sha256Sum;
pub use verity::{BootCheck, Corruption, HashAlgorithm, RootFilesystem};
