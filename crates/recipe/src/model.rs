//! The checked recipe. Every `Recipe` value has passed validation (`validate.rs`): paths are
//! normalised, pins are well-formed, the entry point and launch configurations make sense, and the
//! cmdline template compiles. Later stages rely on that instead of checking again.

use crate::identity::Identity;
use crate::secrets::SecretSpec;
use crate::verity::{BootCheck, Corruption, HashAlgorithm, RootFilesystem};
use crate::volumes::VolumeSpec;
use crate::{LaunchProblem, LaunchSpec, RecipeError, Sha256Sum};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// File name of a recipe inside its folder.
pub const RECIPE_FILE: &str = "recipe.toml";

#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The folder holding `recipe.toml`; relative `src` paths are resolved against it.
    pub dir: PathBuf,
    /// The recipe file itself, for error messages.
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub layout: Layout,
    /// Timestamp for every file in the image unless `SOURCE_DATE_EPOCH` overrides it.
    pub source_date_epoch: i64,
    /// Refuse command-line options that open a door into the guest (see [`cmdline`]).
    pub hardened: bool,
    pub kernel: KernelSource,
    pub firmware: FirmwareSource,
    /// The kernel command line as a minijinja template.
    pub cmdline: String,
    /// Kernel module names (as `modprobe` spells them) to ship; dependencies are added.
    pub modules: Vec<String>,
    pub packages: Vec<DebPin>,
    pub files: Vec<FileSpec>,
    pub directories: Vec<DirSpec>,
    pub archives: Vec<ArchiveSpec>,
    pub symlinks: Vec<SymlinkSpec>,
    pub entry: EntrySpec,
    /// Values for the cmdline template, under `vars.`.
    pub vars: BTreeMap<String, toml::Value>,
    pub launch: Vec<LaunchSpec>,
    /// What `cargo xtask sign` puts into the ID blocks besides digest and policy (`[identity]`);
    /// `None` when the recipe has no such table (then the image cannot be signed).
    pub identity: Option<Identity>,
    /// Sealed volumes `/init` opens and mounts before the entry point (`[[volumes]]`).
    pub volumes: Vec<VolumeSpec>,
    /// Secrets `/init` fetches from a key broker after attesting (`[[secrets]]`).
    pub secrets: Vec<SecretSpec>,
    /// The appliance's network (`[network]`): a virtio NIC on QEMU's user network, inbound
    /// forwards from the host's loopback only. `None`: no NIC (`lo` is up all the same).
    pub network: Option<NetworkSpec>,
}

/// How the appliance is laid out, and so what the measurement covers directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Everything in the initramfs, which the hashes table binds.
    Initramfs,
    /// A small initramfs plus a read-only root filesystem whose dm-verity root hash is on the
    /// measured command line.
    Verity(VeritySpec),
}

impl Layout {
    /// The recipe's spelling (`layout = "…"`), which the cmdline template and the manifest use too.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Initramfs => "initramfs",
            Layout::Verity(_) => "verity",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeritySpec {
    pub filesystem: RootFilesystem,
    pub hash: HashAlgorithm,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub on_corruption: Corruption,
    pub check: BootCheck,
    /// Seed for the salt and UUID, so that they are reproducible (defaults to the recipe name).
    pub seed: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// A Debian kernel package, fetched with `apt-get download`.
    Debian(DebPin),
    /// A kernel image on disk (bzImage), with an optional `lib/modules/<release>` tree.
    Local {
        path: PathBuf,
        sha256: Sha256Sum,
        modules_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareSource {
    /// The AmdSev OVMF, built by `cargo xtask ovmf` from the Debian edk2 source pinned in the lock.
    AmdSev,
    /// An OVMF file on disk.
    Local { path: PathBuf, sha256: Sha256Sum },
}

/// A Debian package. Without `version` (and `sha256`), `cargo xtask lock` pins the candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPin {
    pub name: String,
    pub version: Option<String>,
    pub sha256: Option<Sha256Sum>,
    /// Paths (absolute, as inside the package) to take; empty means everything.
    pub include: Vec<String>,
    /// Package names its dependency closure must not pull in.
    pub exclude: Vec<String>,
    /// Whether its `Pre-Depends`/`Depends` closure is pulled in (`dependencies = false` for a
    /// static package that needs nothing). Always `false` for the kernel package.
    pub dependencies: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub src: PathBuf,
    pub dst: String,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    pub src: PathBuf,
    pub dst: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    pub src: PathBuf,
    pub dst: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkSpec {
    pub path: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Where the entry point's stdout and stderr go (`log = "channel"` or `"none"`).
    pub log: EntryLog,
    /// Who the entry point runs as; `None` runs it as root, with every capability.
    pub user: Option<EntryUser>,
    /// The working folder the entry point starts in (absolute; `/` when `None`).
    pub workdir: Option<String>,
}

/// The account the entry point runs as (`[entry] user`, `uid`, `group`, `gid`): the image gets
/// matching `/etc/passwd` and `/etc/group` lines, and `/init` drops to it (no capabilities, no
/// new privileges) before the entry point starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryUser {
    pub user: String,
    pub uid: u32,
    pub group: String,
    pub gid: u32,
}

/// The uid (and gid) `[entry] user` gets when the recipe names none: the first id Debian's
/// `adduser` hands out to a person, fixed so that images are reproducible.
pub const DEFAULT_ENTRY_UID: u32 = 1000;

impl Recipe {
    /// Checks that every local file and folder the recipe names exists, is of the kind wanted and
    /// lies inside the recipe folder (every symlink followed), naming the key of the first one that
    /// does not (before anything else complains about a stale lock). See [`crate::sources`].
    pub fn check_sources(&self) -> Result<(), RecipeError> {
        use crate::sources::Source;
        let mut wanted = Vec::new();
        let mut add = |key: String, path, folder| wanted.push(Source { key, path, folder });
        for (i, f) in self.files.iter().enumerate() {
            add(format!("files[{i}].src"), &f.src, false);
        }
        for (i, a) in self.archives.iter().enumerate() {
            add(format!("archives[{i}].src"), &a.src, false);
        }
        for (i, d) in self.directories.iter().enumerate() {
            add(format!("directories[{i}].src"), &d.src, true);
        }
        if let KernelSource::Local {
            path, modules_dir, ..
        } = &self.kernel
        {
            add("kernel.path".into(), path, false);
            if let Some(m) = modules_dir {
                add("kernel.modules_dir".into(), m, true);
            }
        }
        if let FirmwareSource::Local { path, .. } = &self.firmware {
            add("firmware.path".into(), path, false);
        }
        crate::sources::check(&self.dir, &self.file, &wanted)
    }

    /// Runs a check that needs knowledge this crate does not have (the CPU models, VMMs and
    /// guest features the measurement knows) on every launch configuration; a problem becomes an
    /// error naming recipe.toml, `launch[i].<field>` and the fix.
    pub fn check_launch(
        &self,
        check: &dyn Fn(&LaunchSpec) -> Result<(), LaunchProblem>,
    ) -> Result<(), RecipeError> {
        for (i, c) in self.launch.iter().enumerate() {
            check(c).map_err(|p| {
                let key = if p.field.is_empty() {
                    format!("launch[{i}]")
                } else {
                    format!("launch[{i}].{}", p.field)
                };
                RecipeError::invalid(
                    &self.file,
                    key,
                    format!("launch configuration {:?}: {}", c.name, p.problem),
                    p.fix,
                )
            })?;
        }
        Ok(())
    }

    /// The volume called `name`, or an error listing the ones there are.
    pub fn volume(&self, name: &str) -> Result<&VolumeSpec, RecipeError> {
        self.volumes.iter().find(|v| v.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.volumes.iter().map(|v| v.name.as_str()).collect();
            RecipeError::invalid(
                &self.file,
                "volumes",
                format!("no volume named {name:?}"),
                if names.is_empty() {
                    "the recipe has no [[volumes]]".to_owned()
                } else {
                    format!("choose one of: {}", names.join(", "))
                },
            )
        })
    }

    /// The launch configuration called `name`, or an error listing the ones there are.
    pub fn launch_config(&self, name: &str) -> Result<&LaunchSpec, RecipeError> {
        self.launch.iter().find(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.launch.iter().map(|c| c.name.as_str()).collect();
            RecipeError::invalid(
                &self.file,
                "launch",
                format!("no launch configuration named {name:?}"),
                format!("choose one of: {}", names.join(", ")),
            )
        })
    }
}

pub use snpkit_wire::init::EntryLog;

/// `[network]`: the guest's static address on QEMU's user network and the host's forwards into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Host 127.0.0.1:port → guest port, checked (ports 1-65535, no host port twice).
    pub forward: Vec<snpkit_bundle::Forward>,
    /// The guest's address, inside QEMU's user network [`USER_NET`]/[`USER_NET_PREFIX`].
    pub address: std::net::Ipv4Addr,
}

/// QEMU's user network (its default `net=`): the host is .2, its DNS .3, its DHCP pool from .15.
pub const USER_NET: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 0);
/// The prefix length of [`USER_NET`].
pub const USER_NET_PREFIX: u8 = 24;
/// The guest's address unless `[network] address` says otherwise (QEMU's first DHCP address).
pub const DEFAULT_GUEST_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 15);
