//! The guest's init configuration, `/etc/snpkit/init.json` inside the initramfs.
//!
//! The image builder writes it and `/init` reads it. It lives in the initramfs, so it is measured
//! through the initrd hash in the SEV hashes table: the guest can trust it. What the guest must not
//! trust is anything from fw_cfg, ACPI or the channel.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where `/init` reads its configuration.
pub const INIT_CONFIG_PATH: &str = "/etc/snpkit/init.json";

/// Current schema of [`InitConfig`].
pub const INIT_SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    pub schema: u32,
    /// The appliance (recipe) name, for messages.
    pub appliance: String,
    /// What to run once the guest has attested.
    pub entry: Entry,
    /// Kernel modules to load, as absolute paths inside the initramfs, dependencies first.
    pub modules: Vec<String>,
    /// Where the appliance's files live.
    pub root: Root,
    /// Writable volumes `/init` opens (formats on first boot) and mounts before the entry point,
    /// and closes at power-off (issue 12). None by default, so older configs read the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// What to fetch from the key broker once attested, before the entry point starts (recipe
    /// `[[secrets]]`). Left out of the file when empty, so images without secrets keep their
    /// bytes and their measurement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    /// The NIC `/init` brings up before the entry point (recipe `[network]`); `lo` comes up
    /// always. Left out when there is none, so images without a network keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

/// The guest's one NIC, configured statically (no DHCP: nothing the host says sets it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub address: std::net::Ipv4Addr,
    /// Prefix length, 1 to 30.
    pub prefix: u8,
}

/// Where the entry point's stdout and stderr go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryLog {
    /// Through pipes that `/init` reads and sends to the host as `AppLog` frames.
    #[default]
    Channel,
    /// To `/dev/null`: for appliances whose output is sensitive.
    None,
}

impl EntryLog {
    /// The recipe's spelling.
    pub fn name(self) -> &'static str {
        match self {
            EntryLog::Channel => "channel",
            EntryLog::None => "none",
        }
    }

    fn is_default(&self) -> bool {
        *self == EntryLog::default()
    }
}

/// A volume: a virtio disk with serial `snpkit-vol-<name>` ([`crate::volume`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// 1 to 9 of `a-z0-9-` ([`crate::volume::check_name`]); part of every key of the volume.
    pub name: String,
    /// Absolute path inside the appliance's root where the filesystem is mounted.
    pub mount: String,
    pub key: VolumeKey,
}

/// Where a volume's key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeKey {
    /// MSG_KEY_REQ: root VCEK, guest policy | measurement | TCB version, then HKDF per volume.
    /// Bound to this image on this chip: an image update or a move needs the volume re-keyed.
    Sealed,
    /// A key of at least 32 bytes the key broker releases to the attested guest (resource
    /// `<repo>/<type>/<tag>`), then HKDF per volume: whichever image the broker's rule admits
    /// opens the volume, so it survives image updates.
    Kbs(String),
}

/// One secret: a KBS resource written to a file of a tmpfs in the appliance's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The recipe's name for it, for messages (never its bytes).
    pub name: String,
    /// `<repository>/<type>/<tag>`, as the broker's `GET /kbs/v0/resource/…` names it.
    pub resource: String,
    /// Absolute path under `/run/secrets` in the appliance's root.
    pub path: String,
    /// Permission bits of the file.
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `argv[0]` is an absolute path inside the appliance's root.
    pub argv: Vec<String>,
    /// Environment of the entry point (nothing is inherited from the kernel's).
    pub env: BTreeMap<String, String>,
    /// Left out when it is the default, so images made before it keep their bytes.
    #[serde(default, skip_serializing_if = "EntryLog::is_default")]
    pub log: EntryLog,
    /// Who the entry point runs as. Absent: root, as before (so images without `[entry] user`
    /// keep their bytes and their measurement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Account>,
    /// The folder the entry point starts in; absent: `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

/// The ids `/init` switches to before the entry point starts. It also sets no_new_privs and
/// empties every capability set, the bounding set included, so the entry point and everything
/// it runs stay unprivileged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary group only, as snpkit writes /etc/group).
    pub groups: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Root {
    /// Everything is in the initramfs; the entry point runs from it.
    Initramfs,
    /// The appliance lives in a read-only filesystem protected by dm-verity. The root hash, salt and
    /// geometry are not here but on the kernel command line (`snpkit.verity=`), also measured.
    Verity {
        /// Filesystem type to mount (`squashfs` or `erofs`).
        fstype: String,
        /// Block device holding the filesystem image (e.g. `/dev/vda`).
        data_device: String,
        /// Block device holding the hash tree (e.g. `/dev/vdb`).
        hash_device: String,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> InitConfig {
        InitConfig {
            schema: INIT_SCHEMA,
            appliance: "hello".into(),
            entry: Entry {
                argv: vec!["/usr/bin/hello".into()],
                env: BTreeMap::new(),
                log: EntryLog::Channel,
                user: None,
                workdir: None,
            },
            modules: Vec::new(),
            root: Root::Initramfs,
            volumes: Vec::new(),
            secrets: Vec::new(),
            network: None,
        }
    }

    #[test]
    fn defaults_leave_the_file_as_it_was_and_the_rest_round_trips() {
        // An image without a network and with the default log keeps its init.json bytes.
        let plain = serde_json::to_string(&config()).unwrap();
        assert!(
            !plain.contains("network") && !plain.contains("log"),
            "{plain}"
        );
        let mut c = config();
        c.entry.log = EntryLog::None;
        c.network = Some(Network {
            address: std::net::Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
        });
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains(r#""log":"none""#), "{text}");
        assert!(
            text.contains(r#""network":{"address":"10.0.2.15","prefix":24}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<InitConfig>(&text).unwrap(), c);
    }
}
