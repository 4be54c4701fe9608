//! Recipes: what an appliance is made of and how it is launched.
//!
//! Owns the `recipes/<name>/recipe.toml` format ([`Recipe`]), its validation (every error names the
//! file, the key and the fix), the minijinja rendering of the kernel command line
//! ([`render_cmdline`]), the sealed volumes (`[[volumes]]`, [`VolumeSpec`]), the launch
//! configurations (`[[launch]]`, as `snpkit_bundle::LaunchSpec`), the network (`[network]`,
//! [`NetworkSpec`]), the identity an owner signs into
//! the image's ID blocks (`[identity]`, [`Identity`]) and the `recipe.lock` file ([`Lock`]) that
//! pins every resolved input.
//!
//! Knows nothing of how inputs are fetched (`snpkit-inputs`), how images are laid out
//! (`snpkit-image`) or how digests are computed (`snpkit-measure`): a recipe is data. The only I/O
//! here is reading and writing the two TOML files, and looking at (never reading) the local
//! sources to hold them inside the recipe folder ([`sources`]).
//!
//! The format is documented for users in `docs/recipes.md`.
#![forbid(unsafe_code)]

mod cmdline;
mod entry;
mod error;
mod identity;
mod launch;
mod load;
mod lock;
mod model;
mod network;
mod raw;
mod secrets;
pub mod sources;
mod validate;
mod verity;
mod volumes;

// The lock's checksums and the launch tables are the image folder's types: this crate writes them
// into no file but recipe.lock, and the pipeline reads them from manifest.json without the recipe.
use snpkit_bundle::{LaunchSpec, Sha256Sum};

pub use cmdline::{
    CmdlineContext, UNRESOLVED_RELEASE, VerityContext, check_cmdline, render_cmdline,
};
pub use error::RecipeError;
pub use identity::{Identity, parse_id};
pub use launch::LaunchProblem;
pub use lock::{
    LOCK_FILE, LOCK_VERSION, Lock, LockedBlob, LockedDeb, LockedFile, LockedFirmware, LockedKernel,
};
pub use model::{
    ArchiveSpec, DEFAULT_ENTRY_UID, DEFAULT_GUEST_ADDRESS, DebPin, DirSpec, EntryLog, EntrySpec,
    EntryUser, FileSpec, FirmwareSource, KernelSource, Layout, NetworkSpec, RECIPE_FILE, Recipe,
    SymlinkSpec, USER_NET, USER_NET_PREFIX, VeritySpec,
};
pub use secrets::{DEFAULT_SECRET_MODE, SECRETS_DIR, SecretSpec};
pub use verity::{BootCheck, Corruption, HashAlgorithm, RootFilesystem};
pub use volumes::{MAX_VOLUME_MIB, MIN_VOLUME_MIB, VolumeKey, VolumeSpec};
