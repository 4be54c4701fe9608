//! Filling `manifest.json`: the one place the build's typed results become the manifest's fields.

use crate::layout::VerityRoot;
use snpkit_bundle::{
    Artifact, ImageLayout, Input, MANIFEST_SCHEMA, Manifest, ManifestNetwork, ManifestSecret,
    ManifestVolume, VerityMetadata,
};
use snpkit_image::gzip;
use snpkit_recipe::{Layout, Lock, Recipe};
use std::collections::BTreeMap;

/// What the build made, for the manifest.
pub(crate) struct Made<'a> {
    pub epoch: u32,
    pub kernel_release: &'a str,
    pub cmdline: &'a str,
    /// The image folder's files but the manifest, by name.
    pub artifacts: &'a [(&'a str, &'a [u8])],
    /// Everything the image was made from, in the order the build took it.
    pub inputs: Vec<Input>,
    pub verity: Option<&'a VerityRoot>,
}

pub(crate) fn manifest(
    recipe: &Recipe,
    lock: &Lock,
    tools: &BTreeMap<String, String>,
    made: Made<'_>,
) -> Manifest {
    Manifest {
        schema: MANIFEST_SCHEMA,
        recipe: recipe.name.clone(),
        layout: match recipe.layout {
            Layout::Initramfs => ImageLayout::Initramfs,
            Layout::Verity(_) => ImageLayout::Verity,
        },
        source_date_epoch: i64::from(made.epoch),
        kernel_release: made.kernel_release.to_owned(),
        cmdline: made.cmdline.to_owned(),
        artifacts: made
            .artifacts
            .iter()
            .map(|(n, b)| Artifact::of(n, b))
            .collect(),
        inputs: made.inputs,
        tools: tool_versions(lock, tools, made.verity.is_some()),
        launch: recipe.launch.clone(),
        verity: made.verity.map(verity_entry),
        volumes: recipe
            .volumes
            .iter()
            .map(|v| ManifestVolume {
                name: v.name.clone(),
                size_mib: v.size_mib,
                mount: v.mount.clone(),
                kbs: match &v.key {
                    snpkit_wire::init::VolumeKey::Kbs(resource) => Some(resource.clone()),
                    snpkit_wire::init::VolumeKey::Sealed => None,
                },
            })
            .collect(),
        secrets: recipe
            .secrets
            .iter()
            .map(|s| ManifestSecret {
                name: s.name.clone(),
                resource: s.resource.to_string(),
                path: s.path.clone(),
            })
            .collect(),
        network: recipe.network.as_ref().map(|n| ManifestNetwork {
            address: n.address,
            forward: n.forward.clone(),
        }),
    }
}

/// The caller's tool versions, and ours.
fn tool_versions(
    lock: &Lock,
    given: &BTreeMap<String, String>,
    verity: bool,
) -> BTreeMap<String, String> {
    let mut tools = given.clone();
    tools.insert("snpkit".into(), env!("CARGO_PKG_VERSION").into());
    tools.insert(
        "initramfs".into(),
        format!(
            "cpio newc (cpio crate), gzip level {} (flate2 zlib-rs, 1 MiB chunks)",
            gzip::LEVEL
        ),
    );
    if verity {
        tools.insert(
            "rootfs".into(),
            "squashfs xz (backhand), dm-verity tree (snpkit)".into(),
        );
    }
    if let Some(v) = &lock.firmware.edk2_version {
        tools.insert(
            "edk2".into(),
            format!("Debian edk2 {v}, OvmfPkg/AmdSev/AmdSevX64.dsc RELEASE GCC5"),
        );
    }
    tools
}

/// The manifest's `verity` table: what the command line says, spelled for people.
fn verity_entry(v: &VerityRoot) -> VerityMetadata {
    let p = v.params.fields();
    VerityMetadata {
        check: p.check.name().into(),
        data_block_size: p.data_block_size,
        data_blocks: p.data_blocks,
        filesystem: v.filesystem.name().into(),
        hash: p.hash.name().into(),
        hash_block_size: p.hash_block_size,
        hash_start_block: p.hash_start_block,
        on_corruption: p.corruption.name().into(),
        root_hash: p.root_hash.clone(),
        salt: p.salt.clone(),
    }
}
