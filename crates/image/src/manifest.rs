//! `manifest.json`: what an image is made of, for people, CI and the later pipeline steps.
//!
//! Contains no timestamps, paths of the build machine or host names, so it is as reproducible as
//! the image itself. `measure`, `boot` and `verify` read the launch configurations from here, so
//! an image folder is all they need.

use serde::{Deserialize, Serialize};
use snpkit_recipe::{LaunchConfig, Sha256Sum};
use std::collections::BTreeMap;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_SCHEMA: u32 = 1;

/// File names inside `images/<recipe>/`.
pub mod files {
    pub const KERNEL: &str = "vmlinuz";
    pub const INITRD: &str = "initrd.cpio.gz";
    pub const CMDLINE: &str = "cmdline";
    pub const FIRMWARE: &str = "OVMF.fd";
    pub const ROOTFS: &str = "rootfs.img";
    pub const VERITY: &str = "rootfs.verity";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub recipe: String,
    /// `initramfs` or `verity`.
    pub layout: String,
    pub source_date_epoch: i64,
    pub kernel_release: String,
    /// The kernel command line, exactly as measured (without QEMU's trailing NUL).
    pub cmdline: String,
    /// The files of the image folder, by name.
    pub artifacts: Vec<Artifact>,
    /// Everything the image was made from.
    pub inputs: Vec<Input>,
    /// Versions of the tools whose output is in the image.
    pub tools: BTreeMap<String, String>,
    /// How the image may be launched (from the recipe).
    pub launch: Vec<LaunchConfig>,
    /// dm-verity parameters, for verity layouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verity: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub name: String,
    pub sha256: Sha256Sum,
    pub size: u64,
}

impl Artifact {
    pub fn of(name: &str, bytes: &[u8]) -> Artifact {
        Artifact {
            name: name.to_owned(),
            sha256: Sha256Sum::of(bytes),
            size: bytes.len() as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// `deb`, `file`, `firmware`, `edk2-source`, `guest-init`, `kernel-module`.
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub sha256: Sha256Sum,
    pub size: u64,
}

impl Manifest {
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    pub fn from_json(text: &str) -> Result<Manifest, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn artifact(&self, name: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.name == name)
    }
}
