//! End-to-end tests: drive the `xtask` binary the way a user does, on real inputs.
//!
//! They need what `cargo xtask test` prepares (system packages, the AmdSev OVMF, oracles) and fail
//! with the command to run when something is missing: they never skip themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod appliance_repo;
mod architecture;
mod boot;
mod build;
mod copied_checkout;
mod demo;
mod errors;
mod hostile;
mod kbs;
mod measure;
mod network;
mod project;
mod reproducible;
mod schemas;
mod sealed;
mod secrets;
mod sign;
mod support;
mod verify;
mod verity;
mod verity_boot;
