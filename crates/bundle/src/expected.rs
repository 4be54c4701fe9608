//! `expected.json`: the reference values of one built image, one digest per launch configuration.
//!
//! Written by `cargo xtask build` into the new image folder (inside the atomic swap, so an image
//! never stands without its prediction, and a rebuilt image never with its predecessor's) and again
//! by `cargo xtask measure <recipe>`; read by
//! `cargo xtask verify` (and by anyone's CI) to judge a report. The schema is stable: add fields,
//! never change the meaning of one. Unknown fields are ignored, so an older verifier reads a newer
//! file.

use crate::{LaunchSpec, Sha256Sum};
use serde::{Deserialize, Serialize};

/// Current schema version of `expected.json`.
pub const EXPECTED_SCHEMA: u32 = 1;

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
    /// SHA-256 of the exact bytes used.
    pub sha256: Sha256Sum,
    pub size: u64,
}

impl ExpectedInput {
    pub fn of(name: &str, bytes: &[u8]) -> ExpectedInput {
        ExpectedInput {
            name: name.to_owned(),
            sha256: Sha256Sum::of(bytes),
            size: bytes.len() as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedConfig {
    /// The launch configuration, nested rather than flattened: `LaunchSpec` denies unknown
    /// fields, which serde cannot combine with `flatten`.
    pub launch: LaunchSpec,
    /// Hex (96 digits) of the 48-byte launch digest, as it appears in a report's MEASUREMENT.
    pub measurement: String,
}

/// The bytes a launch digest covers: an image's firmware, kernel, initrd and command line, as
/// `expected.json` lists them. A build predicts from these before the image is written; `measure`
/// reads them back from the folder.
#[derive(Debug, Clone, Copy)]
pub struct MeasuredFiles<'a> {
    pub firmware: &'a [u8],
    pub kernel: &'a [u8],
    pub initrd: &'a [u8],
    /// As measured: without QEMU's trailing NUL.
    pub cmdline: &'a [u8],
}

impl MeasuredFiles<'_> {
    /// `expected.json`'s `inputs`: each file's name, SHA-256 and size, in [`Expected::INPUT_NAMES`]
    /// order.
    pub fn inputs(&self) -> Vec<ExpectedInput> {
        let [ovmf, kernel, initrd, cmdline] = Expected::INPUT_NAMES;
        vec![
            ExpectedInput::of(ovmf, self.firmware),
            ExpectedInput::of(kernel, self.kernel),
            ExpectedInput::of(initrd, self.initrd),
            ExpectedInput::of(cmdline, self.cmdline),
        ]
    }
}

/// Why no config of an `expected.json` could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigChoice {
    #[error("it has no launch configs")]
    Empty,
    #[error("it has several launch configs ({have}): pass --config NAME")]
    Ambiguous { have: String },
    #[error("it has no launch config named {name:?} (it has: {have})")]
    Unknown { name: String, have: String },
}

impl Expected {
    /// The names of the image's inputs, in the order `expected.json` lists them.
    pub const INPUT_NAMES: [&'static str; 4] = ["ovmf", "kernel", "initrd", "cmdline"];

    /// Pretty JSON with a final newline, as written into the image folder.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The config named `name`; without a name, the only one.
    pub fn config(&self, name: Option<&str>) -> Result<&ExpectedConfig, ConfigChoice> {
        let have = || {
            self.configs
                .iter()
                .map(|c| c.launch.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => self
                .configs
                .iter()
                .find(|c| c.launch.name == n)
                .ok_or_else(|| ConfigChoice::Unknown {
                    name: n.to_owned(),
                    have: have(),
                }),
            None => match self.configs.as_slice() {
                [] => Err(ConfigChoice::Empty),
                [one] => Ok(one),
                _ => Err(ConfigChoice::Ambiguous { have: have() }),
            },
        }
    }
}
