//! The image folder `images/<recipe>/`: the spine of the pipeline, and its one owner.
//!
//! ```text
//! images/<recipe>/
//!   vmlinuz  initrd.cpio.gz  cmdline  OVMF.fd  [rootfs.img  rootfs.verity]   build (the image)
//!   manifest.json   what the image is made of                          Manifest      build
//!   expected.json   the predicted launch digests                       Expected      build, measure
//!   runs/<id>/      one boot: run.json report.bin nonce pubkey.bin     RunDir        boot
//!                   pubkey console.log appliance.log hashes-page.bin   RunRecord
//!                   certs/*.pem
//!   id/<config>.id-block  <config>.id-auth   the signed identities     IdFiles       sign
//!   volumes/<name>.img  a sealed volume, sparse, made on first boot       prepare_volume boot
//! ```
//!
//! Owns every name in that folder ([`files`], [`run_files`], [`CertName`]), the formats of its
//! JSON files ([`Manifest`] with its network's [`Forward`]s — the host side always 127.0.0.1 —,
//! [`Expected`], [`RunRecord`], and [`LaunchSpec`], the launch
//! configuration they all carry, with its one vCPU limit [`MAX_VCPUS`]), the paths and bounded reads of [`ImageDir`] and [`RunDir`],
//! atomic writes, the volume files (created once, never replaced), the swap that replaces an image
//! while keeping its boot runs, signatures and volumes ([`write_image`], [`KEPT`]), the signed
//! identities' folder ([`ImageDir::read_id`], [`ImageDir::write_id`]), and the life cycle of a run
//! folder (`.partial`, `.failed`,
//! [`RunId`]).
//!
//! Must not know how the files are made or judged: no measurement, no QEMU, no verification, no
//! recipe format. It depends on serde, the file system and `snpkit-fsguard` only, so the verifier can read an image
//! folder without the builder's stack, and every crate of the pipeline can depend on it.
//!
//! Every read of the folder is bounded by counting bytes and refuses what is not a regular file
//! (a FIFO would block, `/dev/zero` never ends); every write is a temporary file, synced and
//! renamed: both through `snpkit-fsguard`, the one mechanism every crate reads and writes with
//! ([`Limit`] holds the folder's bounds).
#![forbid(unsafe_code)]

mod error;
mod expected;
mod forward;
mod id_dir;
mod image_dir;
mod json;
mod launch;
mod limits;
mod manifest;
mod run_dir;
mod run_record;
mod sha256;
mod swap;
mod volume_file;

pub use error::BundleError;
pub use expected::{
    ConfigChoice, EXPECTED_SCHEMA, Expected, ExpectedConfig, ExpectedInput, MeasuredFiles,
};
pub use forward::{BadForward, FORWARD_HOST, Forward, ForwardProtocol, duplicate_forward};
pub use id_dir::{IdFiles, IdPair};
pub use image_dir::{ImageDir, check_recipe_name};
pub use launch::{BadHostData, HostData, LaunchProblem, LaunchSpec, MAX_VCPUS};
pub use limits::Limit;
pub use manifest::{
    Artifact, ImageLayout, Input, InputKind, MANIFEST_SCHEMA, Manifest, ManifestNetwork,
    ManifestSecret, ManifestVolume, VerityMetadata,
};
pub use run_dir::{CertName, PartialRun, RunDir, RunId};
pub use run_record::{RUN_SCHEMA, RunAppLog, RunLaunch, RunRecord, RunSigned};
pub use sha256::{BadSha256, Sha256Sum};
pub use swap::{KEPT, write_image};
pub use volume_file::{VolumeFile, prepare_volume};

/// The default folder of images, beside `recipes/` in a workspace.
pub const IMAGES_DIR: &str = "images";

/// File names inside `images/<recipe>/`.
pub mod files {
    pub const KERNEL: &str = "vmlinuz";
    pub const INITRD: &str = "initrd.cpio.gz";
    pub const CMDLINE: &str = "cmdline";
    pub const FIRMWARE: &str = "OVMF.fd";
    /// The dm-verity data device (verity layouts).
    pub const ROOTFS: &str = "rootfs.img";
    /// The dm-verity hash device (verity layouts).
    pub const VERITY: &str = "rootfs.verity";
    pub const MANIFEST: &str = "manifest.json";
    pub const EXPECTED: &str = "expected.json";
    /// The folder of boot runs.
    pub const RUNS: &str = "runs";
    /// The folder of sealed volume files, `volumes/<name>.img`.
    pub const VOLUMES: &str = "volumes";
    /// `cargo xtask export trustee`'s output: derived from `expected.json`, so a rebuild drops it
    /// (it is not [`KEPT`](crate::KEPT)) rather than keep reference values of an image now gone.
    pub const TRUSTEE: &str = "trustee";
    /// What follows a volume's name in its file name.
    pub const VOLUME_SUFFIX: &str = ".img";

    /// The folder of signed identities (`cargo xtask sign`), see [`crate::id_files`].
    pub const ID: &str = "id";
}

/// File names inside `images/<recipe>/id/`: `<config>.<BLOCK_EXT>` and `<config>.<AUTH_EXT>`.
pub mod id_files {
    /// The 96-byte ID block of a launch config.
    pub const BLOCK_EXT: &str = "id-block";
    /// The 4096-byte ID authentication information of a launch config.
    pub const AUTH_EXT: &str = "id-auth";
}

/// File names inside `images/<recipe>/runs/<id>/`.
pub mod run_files {
    /// The run record.
    pub const RECORD: &str = "run.json";
    /// The raw report, as snpguest writes it.
    pub const REPORT: &str = "report.bin";
    /// The guest's public key, raw.
    pub const PUBKEY: &str = "pubkey.bin";
    /// The guest's public key, hex.
    pub const PUBKEY_HEX: &str = "pubkey";
    /// The nonce, hex.
    pub const NONCE: &str = "nonce";
    pub const CONSOLE_LOG: &str = "console.log";
    /// The appliance's stdout and stderr, from the guest's `AppLog` frames (capped).
    pub const APPLIANCE_LOG: &str = "appliance.log";
    /// The SEV hashes page of an emulated launch.
    pub const HASHES_PAGE: &str = "hashes-page.bin";
    /// The certificates the guest's provider returned (see [`crate::CertName`]).
    pub const CERTS: &str = "certs";
    /// The emulated PSP's certificates, named so that no AMD tool reads them as AMD's: a folder
    /// and file names (`emulated-ark.pem`, …) that snpguest does not look for.
    pub const EMULATED_CERTS: &str = "emulated-certs";
    /// The prefix of every emulated certificate's file name.
    pub const EMULATED_PREFIX: &str = "emulated-";
    /// The mark of an emulated run's folder: a file that says, to people and tools, that nothing
    /// in the folder is AMD's.
    pub const EMULATED_MARK: &str = "EMULATED-NOT-AMD";
    /// A run folder while its run goes on: `runs/<id>.partial/`.
    pub const PARTIAL_SUFFIX: &str = ".partial";
    /// A run that failed, kept for its console log: `runs/<id>.failed/`.
    pub const FAILED_SUFFIX: &str = ".failed";
}

#[cfg(test)]
pub(crate) fn launch_spec_example(name: &str) -> LaunchSpec {
    LaunchSpec {
        name: name.into(),
        vcpus: 1,
        vcpu_type: "EPYC-v4".into(),
        vmm: "qemu".into(),
        guest_features: 1,
        policy: 0x30000,
        memory_mib: 512,
        host_data: None,
    }
}

#[cfg(test)]
mod tests;
