//! `manifest.json`: what an image is made of, for people, CI and the later pipeline steps.
//!
//! Contains no timestamps, paths of the build machine or host names, so it is as reproducible as
//! the image itself. `measure`, `boot` and `verify` read the launch configurations from here, so
//! an image folder is all they need. The JSON is the one `snpkit-image` wrote before this crate
//! existed, byte for byte: the enums serialize to the strings the fields held, and the dm-verity
//! metadata keeps its alphabetical keys and decimal strings.

use crate::{LaunchSpec, Sha256Sum};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Current schema version of `manifest.json`.
pub const MANIFEST_SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub recipe: String,
    pub layout: ImageLayout,
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
    pub launch: Vec<LaunchSpec>,
    /// dm-verity parameters, for verity layouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verity: Option<VerityMetadata>,
    /// The sealed volumes `/init` opens (from the recipe's `[[volumes]]`): what `boot` attaches.
    /// Absent when there are none, so images without volumes keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ManifestVolume>,
    /// The appliance's network (the recipe's `[network]`): `boot` gives the guest a NIC on QEMU's
    /// user network with these inbound forwards. Absent when the recipe has none, so images
    /// without a network keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ManifestNetwork>,
    /// The secrets `/init` asks a key broker for (from the recipe's `[[secrets]]`): `boot`
    /// refuses to start such an image without `--kbs`. Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ManifestSecret>,
}

/// What the host needs of an appliance's network: the guest's address (where QEMU's forwards
/// deliver; `/init` reads its own copy in init.json) and the inbound forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestNetwork {
    pub address: std::net::Ipv4Addr,
    /// Host 127.0.0.1 ports forwarded into the guest, in the recipe's order.
    #[serde(default)]
    pub forward: Vec<crate::Forward>,
}

/// A secret of the image: which broker resource, and where the appliance finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSecret {
    pub name: String,
    /// `<repository>/<type>/<tag>`.
    pub resource: String,
    /// Below `/run/secrets` in the appliance's root.
    pub path: String,
}

/// A sealed volume of the image: its file is `volumes/<name>.img`, made `size_mib` large on the
/// first boot, attached as the virtio disk with serial `snpkit-vol-<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestVolume {
    pub name: String,
    pub size_mib: u64,
    /// Where the appliance sees it (for people; `/init` reads its own copy in init.json).
    pub mount: String,
    /// The key broker resource of its key (`key = "kbs:…"`): `boot` needs `--kbs`. Absent for
    /// sealed volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kbs: Option<String>,
}

/// Where the appliance lives: in the initramfs, or in a dm-verity root filesystem beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageLayout {
    Initramfs,
    Verity,
}

impl ImageLayout {
    /// The name manifests and the cmdline template use (`initramfs`, `verity`).
    pub fn name(self) -> &'static str {
        match self {
            ImageLayout::Initramfs => "initramfs",
            ImageLayout::Verity => "verity",
        }
    }
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
    pub kind: InputKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub sha256: Sha256Sum,
    pub size: u64,
}

/// What kind of thing an image was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// A Debian package (the kernel's, or one of `[[packages]]`).
    Deb,
    /// A file of the recipe folder.
    File,
    /// The OVMF firmware.
    Firmware,
    /// A tarball the AmdSev OVMF was built from.
    Edk2Source,
    /// snpkit's `/init`.
    GuestInit,
    /// A kernel module `/init` loads.
    KernelModule,
}

/// The dm-verity parameters of a verity image, as `veritysetup` would name them. Every value is
/// also on the measured kernel command line; this is the readable copy.
///
/// Fields are in alphabetical order and numbers are decimal strings: the form the manifest has had
/// since it was a string map, kept so that images stay byte-identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerityMetadata {
    /// `full` or `lazy` (the recipe's `[verity] check`).
    pub check: String,
    #[serde(with = "decimal")]
    pub data_block_size: u32,
    #[serde(with = "decimal")]
    pub data_blocks: u64,
    /// The root filesystem's type (`squashfs`, `erofs`).
    pub filesystem: String,
    /// The hash algorithm (`sha256`, …).
    pub hash: String,
    #[serde(with = "decimal")]
    pub hash_block_size: u32,
    /// Where the tree starts on the hash device, in hash blocks.
    #[serde(with = "decimal")]
    pub hash_start_block: u64,
    /// `panic` or `restart` (the recipe's `[verity] on_corruption`).
    pub on_corruption: String,
    #[serde(with = "lower_hex")]
    pub root_hash: Vec<u8>,
    #[serde(with = "lower_hex")]
    pub salt: Vec<u8>,
}

impl Manifest {
    /// Pretty JSON with a final newline, as written into the image folder.
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

    /// The launch configuration named `name`, or the first when `None`.
    pub fn launch_spec(&self, name: Option<&str>) -> Option<&LaunchSpec> {
        match name {
            None => self.launch.first(),
            Some(n) => self.launch.iter().find(|c| c.name == n),
        }
    }

    /// The volume called `name`.
    pub fn volume(&self, name: &str) -> Option<&ManifestVolume> {
        self.volumes.iter().find(|v| v.name == name)
    }

    /// The names of the launch configurations, for messages (`qemu-1, qemu-4`).
    pub fn launch_names(&self) -> String {
        names(&self.launch)
    }
}

pub(crate) fn names(specs: &[LaunchSpec]) -> String {
    specs
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number written as a decimal string (`"4096"`).
mod decimal {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        // FromStr for integers accepts a leading `+`; the manifest never writes one.
        if !text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty() {
            return Err(serde::de::Error::custom(format!(
                "{text:?} is not a decimal number"
            )));
        }
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Bytes written as lowercase hex (`""` for none).
mod lower_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom(format!(
                "{text:?} is not lowercase hex"
            )));
        }
        hex::decode(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn verity_manifest() -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA,
            recipe: "verity-hello".into(),
            layout: ImageLayout::Verity,
            source_date_epoch: 1_735_689_600,
            kernel_release: "6.12.95+deb12-cloud-amd64".into(),
            cmdline: "console=hvc0 snpkit.verity=format=1".into(),
            artifacts: vec![Artifact::of(crate::files::KERNEL, b"kernel")],
            inputs: vec![Input {
                kind: InputKind::Edk2Source,
                name: "edk2_2025.02.orig.tar.xz".into(),
                version: Some("2025.02-8".into()),
                sha256: Sha256Sum::of(b"edk2"),
                size: 4,
            }],
            tools: BTreeMap::from([("snpkit".into(), "0.1.0".into())]),
            launch: vec![crate::launch_spec_example("qemu-1")],
            verity: Some(VerityMetadata {
                check: "full".into(),
                data_block_size: 4096,
                data_blocks: 1234,
                filesystem: "squashfs".into(),
                hash: "sha256".into(),
                hash_block_size: 4096,
                hash_start_block: 0,
                on_corruption: "panic".into(),
                root_hash: vec![0xab; 32],
                salt: vec![0x01, 0x02],
            }),
            volumes: Vec::new(),
            network: None,
            secrets: Vec::new(),
        }
    }

    /// The manifest as `snpkit-image` declared it, stringly: the typed one must write the same bytes.
    #[derive(Serialize, Deserialize)]
    struct StringlyManifest {
        schema: u32,
        recipe: String,
        layout: String,
        source_date_epoch: i64,
        kernel_release: String,
        cmdline: String,
        artifacts: Vec<Artifact>,
        inputs: Vec<StringlyInput>,
        tools: BTreeMap<String, String>,
        launch: Vec<LaunchSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verity: Option<BTreeMap<String, String>>,
    }

    #[derive(Serialize, Deserialize)]
    struct StringlyInput {
        kind: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        sha256: Sha256Sum,
        size: u64,
    }

    #[test]
    fn typed_fields_write_the_bytes_the_string_map_wrote() {
        let json = verity_manifest().to_json();
        let old: StringlyManifest = serde_json::from_str(&json).unwrap();
        let mut old_json = serde_json::to_string_pretty(&old).unwrap();
        old_json.push('\n');
        assert_eq!(json, old_json);
        let verity = old.verity.unwrap();
        assert_eq!(verity["data_block_size"], "4096");
        assert_eq!(verity["root_hash"], "ab".repeat(32));
        assert_eq!(verity["salt"], "0102");
        assert_eq!(old.layout, "verity");
        assert_eq!(old.inputs[0].kind, "edk2-source");
        assert_eq!(Manifest::from_json(&json).unwrap(), verity_manifest());
    }

    #[test]
    fn every_input_kind_keeps_its_name() {
        let kinds = [
            (InputKind::Deb, "deb"),
            (InputKind::File, "file"),
            (InputKind::Firmware, "firmware"),
            (InputKind::Edk2Source, "edk2-source"),
            (InputKind::GuestInit, "guest-init"),
            (InputKind::KernelModule, "kernel-module"),
        ];
        for (kind, name) in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<InputKind>(name.into()).unwrap(),
                kind
            );
        }
        for (layout, name) in [
            (ImageLayout::Initramfs, "initramfs"),
            (ImageLayout::Verity, "verity"),
        ] {
            assert_eq!(serde_json::to_value(layout).unwrap(), name);
            assert_eq!(layout.name(), name);
        }
    }

    #[test]
    fn volumes_are_written_only_when_there_are_some() {
        let plain = verity_manifest().to_json();
        assert!(!plain.contains("volumes"), "{plain}");
        let mut m = verity_manifest();
        m.volumes.push(ManifestVolume {
            name: "data".into(),
            size_mib: 64,
            mount: "/var/lib/app".into(),
            kbs: None,
        });
        let json = m.to_json();
        let back = Manifest::from_json(&json).unwrap();
        assert_eq!(back.volume("data").unwrap().size_mib, 64);
        assert!(back.volume("other").is_none());
        let bad = json.replacen("\"size_mib\": 64", "\"size_mib\": -64", 1);
        assert!(Manifest::from_json(&bad).is_err());
        let extra = json.replacen("\"size_mib\": 64", "\"size_mib\": 64, \"key\": \"x\"", 1);
        assert!(Manifest::from_json(&extra).is_err());
    }

    /// What a string map would have let through and the typed struct refuses.
    #[test]
    fn malformed_manifests_are_refused() {
        let good = verity_manifest().to_json();
        let cases = [
            ("\"layout\": \"verity\"", "\"layout\": \"squash\""),
            ("\"kind\": \"edk2-source\"", "\"kind\": \"tarball\""),
            ("\"data_block_size\": \"4096\"", "\"data_block_size\": 4096"),
            (
                "\"data_block_size\": \"4096\"",
                "\"data_block_size\": \"+4096\"",
            ),
            ("\"data_blocks\": \"1234\"", "\"data_blocks\": \"-1\""),
            ("\"salt\": \"0102\"", "\"salt\": \"0G\""),
            ("\"salt\": \"0102\"", "\"salt\": \"AB\""),
            ("\"check\": \"full\",\n", ""),
            ("\"schema\": 1,", "\"schema\": 1, \"extra\": 2,"),
        ];
        for (from, to) in cases {
            assert!(good.contains(from), "test bug: {from}");
            let bad = good.replacen(from, to, 1);
            assert!(Manifest::from_json(&bad).is_err(), "{from} -> {to} passed");
        }
    }
}
