//! The `[[volumes]]` table: writable disks the host stores and `/init` opens as sealed volumes
//! (issue 12; the layout and keys are `snpkit_wire::volume`'s, the guest's step is
//! `crates/guest/src/volumes.rs`, users read `docs/volumes.md`).
//!
//! ```toml
//! [[volumes]]
//! name = "data"        # 1 to 9 of a-z, 0-9, '-': the disk's serial is snpkit-vol-<name>
//! size_mib = 64        # the file the host creates (sparse) on first boot
//! mount = "/var/lib/app"
//! key = "sealed"       # derived in the guest from the chip, this image and its policy
//! ```
//!
//! `key = "kbs:<repo>/<type>/<tag>"`: a key (32 bytes or more) the key broker releases to the
//! attested guest (issue 11, `boot --kbs`), so a volume survives image updates the broker admits.
//!
//! Every check runs when the recipe is read, so `cargo xtask lock` and `cargo xtask build` refuse
//! the same tables.

use crate::RecipeError;
use crate::raw::RawVolume;
use std::path::Path;

pub use snpkit_wire::init::VolumeKey;

/// Smallest volume: the header, dm-integrity's superblock, journal and tags, and the 8 MiB
/// filesystem `/init`'s formatter writes at the least.
pub const MIN_VOLUME_MIB: u64 = 16;
/// Largest volume. First boot writes every inode table and the whole journal through dm-crypt
/// (unwritten blocks have no tag and read as I/O errors), which takes minutes beyond this.
pub const MAX_VOLUME_MIB: u64 = 1 << 20;

/// The prefix of a key released by a key broker.
const KBS_PREFIX: &str = "kbs:";

/// Paths the kernel or `/init` own in the running appliance: a volume over one would hide it.
const SYSTEM_MOUNTS: &[&str] = &["/proc", "/sys", "/dev", "/etc/snpkit", "/init"];

/// A checked `[[volumes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The volume's name: in its file name, its disk's serial and every key derived for it.
    pub name: String,
    /// The size of the volume file the host creates, in MiB.
    pub size_mib: u64,
    /// Absolute, normalised path in the appliance's root where the filesystem is mounted.
    pub mount: String,
    pub key: VolumeKey,
}

impl VolumeSpec {
    /// The size of the volume file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_mib << 20
    }
}

/// Checks the `[[volumes]]` entries of the recipe read from `file`. `abs_path` is the recipe's
/// check of a path inside the image (absolute, normalised).
pub(crate) fn check(
    file: &Path,
    raw: &[RawVolume],
    abs_path: &dyn Fn(&str, &str) -> Result<String, RecipeError>,
) -> Result<Vec<VolumeSpec>, RecipeError> {
    let err =
        |key: String, problem: String, fix: &str| RecipeError::invalid(file, key, problem, fix);
    let mut out: Vec<VolumeSpec> = Vec::with_capacity(raw.len());
    for (i, v) in raw.iter().enumerate() {
        let key = |field: &str| format!("volumes[{i}].{field}");
        snpkit_wire::volume::check_name(&v.name).map_err(|e| {
            err(
                key("name"),
                e.to_string(),
                "the disk's serial is snpkit-vol-<name> and must fit virtio's 20 bytes, e.g. name = \"data\"",
            )
        })?;
        if out.iter().any(|w| w.name == v.name) {
            return Err(err(
                key("name"),
                format!("volume {:?} is named twice", v.name),
                "give every volume its own name (it is in the volume's keys and file name)",
            ));
        }
        if !(MIN_VOLUME_MIB..=MAX_VOLUME_MIB).contains(&v.size_mib) {
            return Err(err(
                key("size_mib"),
                format!("{} MiB is outside what a sealed volume can be", v.size_mib),
                &format!(
                    "use {MIN_VOLUME_MIB} to {MAX_VOLUME_MIB} MiB (dm-integrity's journal and tags and an 8 MiB filesystem need the minimum)"
                ),
            ));
        }
        let mount = abs_path(&key("mount"), &v.mount)?;
        if mount == "/" {
            return Err(err(
                key("mount"),
                "a volume cannot be mounted over the appliance's root".into(),
                "mount it on a folder such as /var/lib/<app>",
            ));
        }
        if let Some(s) = SYSTEM_MOUNTS.iter().find(|s| within(&mount, s)) {
            return Err(err(
                key("mount"),
                format!("{mount} is under {s}, which the kernel or snpkit's /init own"),
                "mount it on a folder such as /var/lib/<app>",
            ));
        }
        if let Some(w) = out
            .iter()
            .find(|w| within(&mount, &w.mount) || within(&w.mount, &mount))
        {
            return Err(err(
                key("mount"),
                format!(
                    "{mount} and volume {:?}'s mount {} are the same or one holds the other",
                    w.name, w.mount
                ),
                "give every volume its own folder, none inside another",
            ));
        }
        let key_source =
            key_source(&v.key).map_err(|(problem, fix)| err(key("key"), problem, &fix))?;
        out.push(VolumeSpec {
            name: v.name.clone(),
            size_mib: v.size_mib,
            mount,
            key: key_source,
        });
    }
    Ok(out)
}

/// `path` is `dir` or lies under it (both normalised absolute paths).
fn within(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn key_source(spelled: &str) -> Result<VolumeKey, (String, String)> {
    if spelled == "sealed" {
        return Ok(VolumeKey::Sealed);
    }
    if let Some(path) = spelled.strip_prefix(KBS_PREFIX) {
        return match snpkit_kbs::ResourcePath::parse(path) {
            Ok(resource) => Ok(VolumeKey::Kbs(resource.to_string())),
            Err(e) => Err((
                format!("key {spelled:?}: {e}"),
                "write key = \"kbs:<repository>/<type>/<tag>\", the broker resource that holds the volume's key (32 bytes or more)".into(),
            )),
        };
    }
    Err((
        format!("{spelled:?} is not a key source"),
        "use key = \"sealed\" (derived in the guest from the chip, the measurement and the policy) \
         or key = \"kbs:<repository>/<type>/<tag>\" (released by a key broker, `boot --kbs`)"
            .into(),
    ))
}
