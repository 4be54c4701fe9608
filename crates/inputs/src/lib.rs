//! Build inputs: getting the bytes a recipe names, checked against their pins.
//!
//! Owns the content-addressed cache under the XDG cache directory ([`Cache`]), Debian packages
//! ([`apt`]: resolved with `apt-cache`, fetched with `apt-get download`, so whichever archive the
//! machine's apt sources name is used and no mirror is written here), their unpacking in Rust
//! ([`deb`]: ar + tar + xz/zstd/gzip), their dependency closure from the same index
//! ([`debian`]: Debian version order, relationship fields, the resolver), kernel modules with their dependencies from `modules.dep`
//! ([`modules`]), and the AmdSev OVMF built from the pinned Debian edk2 source ([`ovmf`]).
//!
//! Every byte that leaves this crate has been checked against a SHA-256 from the recipe or its lock.
//! Knows nothing of image layout, measurement or launches.
#![forbid(unsafe_code)]

pub mod apt;
mod cache;
pub mod deb;
pub mod debian;
mod error;
pub mod kernel;
pub mod modules;
pub mod ovmf;
mod process;
mod workdir;

pub use process::tool_version as process_version;

pub use cache::Cache;
pub use error::InputError;

/// Reports progress of a long step: `(done, total)` in the step's own unit (bytes, lines…).
pub trait Progress {
    fn set_message(&self, message: &str);
    fn set_total(&self, total: u64);
    fn set_position(&self, done: u64);
}

/// A [`Progress`] that shows nothing, for tests and `--json` runs.
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_message(&self, _: &str) {}
    fn set_total(&self, _: u64) {}
    fn set_position(&self, _: u64) {}
}
