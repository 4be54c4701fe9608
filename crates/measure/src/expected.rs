//! `expected.json`: the reference values of one built image, one digest per launch configuration.
//!
//! Written by `cargo xtask measure <recipe>` into `images/<recipe>/expected.json` and read by
//! `cargo xtask verify` (and by anyone's CI) to judge a report. The schema is stable: add fields,
//! never change the meaning of one.

use serde::{Deserialize, Serialize};
use snpkit_recipe::LaunchConfig;

/// Current schema version of `expected.json`.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub schema: u32,
    /// Recipe name.
    pub recipe: String,
    /// The files the digests were computed from, by name (`ovmf`, `kernel`, `initrd`, `cmdline`).
    pub inputs: Vec<ExpectedInput>,
    pub configs: Vec<ExpectedConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedInput {
    pub name: String,
    /// Hex SHA-256 of the exact bytes used.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedConfig {
    /// The launch configuration, nested rather than flattened: `LaunchConfig` denies unknown
    /// fields, which serde cannot combine with `flatten`.
    pub launch: LaunchConfig,
    /// Hex (96 digits) of the 48-byte launch digest, as it appears in a report's MEASUREMENT.
    pub measurement: String,
}
