//! Assemble: turning a recipe and its lock into `images/<recipe>/` (the `build` step).
//!
//! Owns the composition of the pipeline's first step: resolving a recipe's inputs into a lock
//! ([`lock`]), fetching and checking every input against that lock, assembling the appliance's
//! file tree and the guest's init configuration, and writing the image folder atomically
//! ([`build`]) through `snpkit-bundle`, which owns that folder: everything lands in a temporary
//! folder next to the target, which then replaces the old image in one
//! `renameat2(RENAME_EXCHANGE)`, so a failed build leaves the previous image as it was.
//!
//! Relies on `snpkit-recipe` for what a recipe says, `snpkit-inputs` for bytes, `snpkit-image` for
//! formats; it knows nothing of measurement, QEMU or attestation: the firmware check and the
//! prediction written as `expected.json` are passed in ([`BuildOptions`]). The guest `/init` binary is an
//! input (built by xtask with cargo), so this crate never runs the Rust toolchain.
#![forbid(unsafe_code)]

mod assemble;
mod check;
mod closed;
mod elf;
mod entry;
mod error;
mod fetch;
mod initramfs;
mod layout;
mod manifest;
mod options;
mod overlap;
mod packages;
mod paths;
mod resolve;
mod tree;

pub use assemble::{BuiltImage, build, script_warnings};
pub use error::BuildError;
pub use options::{BuildOptions, Predict, PredictionFailed, Reporter, Silent, UnfitReason};
pub use overlap::refuse_image_over_recipe;
pub use resolve::lock;
