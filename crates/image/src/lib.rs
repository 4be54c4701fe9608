//! Images: the reproducible bytes snpkit boots.
//!
//! Owns the in-memory file tree of an appliance ([`Tree`]), the initramfs writer ([`cpio`]: newc,
//! through the `cpio` crate's header builder, with every header field chosen by us), its gzip
//! compression ([`gzip`]: flate2, fixed level, parallel but deterministic), the read-only root
//! filesystem, and the dm-verity hash tree ([`verity`], byte-identical to `veritysetup format`). The
//! image folder these bytes land in, and its manifest, belong to `snpkit-bundle`.
//!
//! Everything here takes values and returns bytes or writes to a writer, except [`import`], the one
//! module that reads host files and archives into a tree. No network, no processes, no recipe
//! parsing, no QEMU.
//!
//! Reproducibility is the point of this crate: the same tree and epoch give the same bytes in any
//! directory, umask, time zone, locale or clock, on any number of cores.
#![forbid(unsafe_code)]

pub mod cpio;
mod error;
pub mod gzip;
pub mod import;
pub mod rootfs;
mod tree;
pub mod verity;

pub use error::ImageError;
pub use tree::{Node, NodeKind, Tree, Unresolved};
