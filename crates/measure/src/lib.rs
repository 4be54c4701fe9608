//! Reference values: the SEV-SNP launch digest the AMD security processor will compute.
//!
//! Owns the launch digest (OVMF pages, SEV metadata pages, the SEV hashes table, VMSAs), the
//! hashes-table page exactly as QEMU builds it, the typed launch configuration (read from the
//! plain `snpkit_bundle::LaunchSpec` that recipes and `expected.json` carry) and its checks, the
//! prediction an image's `expected.json` holds ([`predict`]), the emulated PSP's digest of a launch
//! as it was given ([`given_launch_digest`]), the order in which streamed inputs are hashed
//! ([`hash_launch_inputs`]), whether a firmware can be used for measured direct boot
//! ([`check_direct_boot_firmware`]), and the search that explains a mismatching digest. Knows nothing of QEMU processes, of reports
//! beyond their MEASUREMENT field, or of verification: it takes bytes and returns values (the
//! one exception, [`HashesPage::write_to`], writes the page QEMU is given).
//!
//! ```text
//! Ovmf::parse(bytes) ─▶ Firmware::measure(&ovmf) ─┐
//! KernelHashes::compute(kernel, initrd, cmdline) ─┼─▶ launch_digest(&firmware, Some(&hashes), &config) ─▶ LaunchDigest
//! launch_config_from(&recipe_launch) ─────────────┘
//! ```
//!
//! # Relation to the `sev` crate
//! The `sev` crate (virtee, 8.0) has a measurement module ported from sev-snp-measure. We do not
//! call it on the production path, because wrapping it would have meant re-implementing most of
//! it anyway:
//! - it takes file paths, not bytes, and asserts (panics) on sizes derived from the files;
//! - it trims the kernel command line before hashing, while QEMU hashes it raw plus a NUL, so a
//!   trailing space gives another digest;
//! - it has no GCE VMM, no COCONUT-SVSM mode, only the RDX = 0 form of the EC2 VMSA, and accepts
//!   vCPU signatures of five named models only (no family/model/stepping or raw signature);
//! - its page-by-page digest builder (`Gctx`, behind its crypto features) can neither be cloned
//!   nor name its typestate outside the crate, so `explain` could not snapshot the SHA-384 state
//!   after the OVMF pages, and it allocates a buffer per page (too slow for ≥ 100,000 guesses/s).
//!
//! So the digest is implemented here (under 2,000 lines with docs and input checks), and `sev` is a
//! dev-dependency: the tests compare our VMSA pages byte for byte with `sev`'s for the forms it
//! has (QEMU and EC2 RDX = 0, several CPU types and feature sets) and our CPU signature table with
//! its `CpuType`. Together with the published vectors and the differential test against
//! sev-snp-measure 0.0.13, that makes three independent implementations agree.
//!
//! # What is not measured
//! ACPI tables, SMBIOS and most fw_cfg data reach the guest unmeasured; only the firmware, the
//! hashes table (kernel, initrd, cmdline) and the VMSAs are. A pflash variable store is not
//! measured either: launch with `-bios` and the stateless AmdSev OVMF.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
mod digest;
mod error;
mod explain;
mod fitness;
mod given;
mod hashes;
mod launch;
mod ovmf;
mod predict;
mod schedule;
mod vcpu;
mod vmsa;

pub use config::{
    ConfigError, Ec2VmsaRdx, GuestFeatures, LaunchConfig, MAX_VCPUS, Vmm, check_launch,
    launch_config_from, vcpus,
};
pub use digest::{DigestError, FoundReport, LaunchDigest, find_report};
pub use error::MeasureError;
pub use explain::{
    BootCandidate, Explanation, FirmwareCandidate, KernelBoot, Match, SearchSpace, explain,
};
pub use fitness::{UnfitFirmware, check_direct_boot_firmware};
pub use given::{GivenLaunch, GivenLaunchError, given_launch_digest};
pub use hashes::{
    CmdlineError, HashInputError, HashesPage, KernelHashes, PADDED_TABLE_LEN, cmdline_hash,
    hashes_page, sha256_stream,
};
pub use launch::{
    Firmware, SvsmConfig, launch_digest, launch_digest_with_page, ovmf_hash, svsm_launch_digest,
};
pub use ovmf::{HashTableArea, Ovmf, OvmfError, Section, SectionKind, Svsm};
pub use predict::{PredictError, predict};
pub use schedule::{HashedInputs, KernelStreams, SizedStream, hash_launch_inputs};
pub use vcpu::{
    CPU_MODELS, CpuModel, HOST_CPUS, VcpuType, VcpuTypeError, signature as cpu_signature,
};
