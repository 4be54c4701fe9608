//! Filling `manifest.json`: the one place the build's typed results become the manifest's fields.

use crate::layout::VerityRoot;
use snpkit_image::gzip;
use snpkit_image::manifest::{Artifact, Input, MANIFEST_SCHEMA, Manifest};
use snpkit_recipe::{Lock, Recipe};
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
        layout: recipe.layout.name().into(),
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
fn verity_entry(v: &VerityRoot) -> BTreeMap<String, String> {
    let p = v.params.spec();
    let mut m = BTreeMap::new();
    m.insert("filesystem".into(), v.filesystem.name().into());
    m.insert("hash".into(), p.hash.name().into());
    m.insert("root_hash".into(), hex::encode(&p.root_hash));
    m.insert("salt".into(), hex::encode(&p.salt));
    m.insert("data_block_size".into(), p.data_block_size.to_string());
    m.insert("hash_block_size".into(), p.hash_block_size.to_string());
    m.insert("data_blocks".into(), p.data_blocks.to_string());
    m.insert("hash_start_block".into(), p.hash_start_block.to_string());
    m.insert("on_corruption".into(), p.corruption.name().into());
    m.insert("check".into(), p.check.name().into());
    m
}
