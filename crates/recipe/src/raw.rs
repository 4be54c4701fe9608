//! The recipe exactly as TOML spells it. `validate` turns it into checked types; keeping the two apart
//! lets serde report syntax and unknown keys while our code reports meaning.

use crate::LaunchSpec;
use crate::identity::RawIdentity;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecipe {
    pub name: String,
    pub description: Option<String>,
    pub layout: Option<String>,
    pub source_date_epoch: Option<i64>,
    pub hardened: Option<bool>,
    pub kernel: RawKernel,
    pub firmware: RawFirmware,
    pub cmdline: String,
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default)]
    pub packages: Vec<RawPackage>,
    #[serde(default)]
    pub files: Vec<RawFile>,
    #[serde(default)]
    pub directories: Vec<RawDir>,
    #[serde(default)]
    pub archives: Vec<RawArchive>,
    #[serde(default)]
    pub symlinks: Vec<RawSymlink>,
    pub entry: RawEntry,
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub verity: Option<RawVerity>,
    #[serde(default)]
    pub launch: Vec<LaunchSpec>,
    #[serde(default)]
    pub identity: Option<RawIdentity>,
    #[serde(default)]
    pub volumes: Vec<RawVolume>,
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
    #[serde(default)]
    pub network: Option<RawNetwork>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    #[serde(default)]
    pub forward: Vec<String>,
    pub address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    pub name: String,
    pub resource: String,
    pub path: Option<String>,
    pub mode: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKernel {
    pub package: Option<String>,
    pub version: Option<String>,
    pub path: Option<String>,
    pub modules_dir: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFirmware {
    pub source: Option<String>,
    pub path: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPackage {
    pub name: String,
    pub version: Option<String>,
    pub sha256: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub dependencies: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub src: String,
    pub dst: String,
    pub mode: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDir {
    pub src: String,
    pub dst: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArchive {
    pub src: String,
    pub dst: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSymlink {
    pub path: String,
    pub target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEntry {
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub log: Option<String>,
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub group: Option<String>,
    pub gid: Option<u32>,
    pub workdir: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVerity {
    pub filesystem: Option<String>,
    pub hash: Option<String>,
    pub data_block_size: Option<u32>,
    pub hash_block_size: Option<u32>,
    pub on_corruption: Option<String>,
    pub check: Option<String>,
    pub seed: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVolume {
    pub name: String,
    pub size_mib: u64,
    pub mount: String,
    pub key: String,
}
