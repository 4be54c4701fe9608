//! The wire between guest and host: what both sides must agree on byte for byte.
//!
//! Owns the REPORT_DATA binding of nonce and public key, the guest's init configuration (written by
//! the image builder, read by `/init`), the versioned, length-prefixed channel frames, the
//! dm-verity parameters on the kernel command line ([`verity`]), the command-line options that
//! would bypass `/init` ([`cmdline`]) and the byte layout of the attestation report ([`report`]).
//! Depends on nothing heavy, because the static guest binary links it.
#![forbid(unsafe_code)]

pub mod binding;
pub mod certs;
pub mod cmdline;
pub mod frame;
pub mod guid;
pub mod init;
pub mod report;
pub mod verity;
