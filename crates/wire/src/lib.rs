//! The wire between guest and host: what both sides must agree on byte for byte.
//!
//! Owns the REPORT_DATA binding of nonce and public key, the guest's init configuration (written by
//! the image builder, read by `/init`), the versioned, length-prefixed channel frames, and the
//! dm-verity parameters on the kernel command line ([`verity`]). Depends on nothing heavy, because
//! the static guest binary links it.
#![forbid(unsafe_code)]

pub mod binding;
pub mod certs;
pub mod frame;
pub mod init;
pub mod verity;
