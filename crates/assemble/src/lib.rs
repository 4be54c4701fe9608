//! Assemble: turning a recipe and its lock into `images/<recipe>/` (the `build` step).
//!
//! Owns the composition of the pipeline's first step: resolving a recipe's inputs into a lock
//! ([`lock`]), fetching and checking every input against that lock, assembling the appliance's
//! file tree and the guest's init configuration, and writing the image folder atomically
//! ([`build`]): everything lands in a temporary folder next to the target, which then replaces the
//! old image in one `renameat2(RENAME_EXCHANGE)`, so a failed build leaves the previous image as
//! it was.
//!
//! Relies on `snpkit-recipe` for what a recipe says, `snpkit-inputs` for bytes, `snpkit-image` for
//! formats; it knows nothing of measurement, QEMU or attestation. The guest `/init` binary is an
//! input (built by xtask with cargo), so this crate never runs the Rust toolchain.
#![forbid(unsafe_code)]

mod assemble;
mod entry;
mod error;
mod output;
mod overlap;
mod packages;
mod resolve;

pub use assemble::{BuildOptions, BuiltImage, build};
pub use error::BuildError;
pub use overlap::refuse_image_over_recipe;
pub use resolve::lock;

/// Creates one progress display per long step.
pub trait Reporter {
    fn step(&self, message: &str) -> Box<dyn snpkit_inputs::Progress + '_>;
}

/// A [`Reporter`] that shows nothing.
pub struct Silent;

impl Reporter for Silent {
    fn step(&self, _: &str) -> Box<dyn snpkit_inputs::Progress + '_> {
        Box::new(snpkit_inputs::NoProgress)
    }
}
