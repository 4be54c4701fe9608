//! Launch configurations: how one image is started, and so which digest the PSP will compute.

use serde::{Deserialize, Serialize};

/// The most vCPUs a launch configuration may have, wherever it is given (a recipe's `[[launch]]`,
/// `measure --vcpus`): QEMU's limit for the q35 machine snpkit launches (4096 since QEMU 9.0,
/// which needs KVM built with 4096 vCPUs, `CONFIG_KVM_MAX_NR_VCPUS`/`MAXSMP`, and an edk2 from
/// 2024-05 or later to boot them). SEV-SNP sets none of its own: each vCPU adds one VMSA page to
/// the launch digest. A host that allows fewer refuses the launch with QEMU's own message.
pub const MAX_VCPUS: u32 = 4096;

/// One way to launch an image, as written in a recipe's `[[launch]]` table.
///
/// Plain data: `vcpu_type`, `vmm` and `guest_features` are checked against what `snpkit-measure`
/// knows, through [`crate::Recipe::check_launch`] before a build or lock starts, so this crate
/// does not track the lists of CPU models and VMMs (and cannot drift from them).
/// There is deliberately no `Default`: every field changes the launch digest or the guest's
/// security, and none has an answer that is right for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchConfig {
    /// Name used on the command line (`--config NAME`) and in expected.json.
    pub name: String,
    /// Number of vCPUs; one VMSA per vCPU is measured.
    pub vcpus: u32,
    /// QEMU CPU model (`EPYC-v4`, `EPYC-Milan`, …) whose CPUID signature goes into the VMSAs.
    pub vcpu_type: String,
    /// The VMM that launches the guest (`qemu`, `ec2`, `gce`, …: they build different VMSAs).
    pub vmm: String,
    /// SEV_FEATURES written into every VMSA (e.g. 0x1 = SNP active; QEMU ≥ 9.1 with KVM's
    /// newer init path uses other values).
    pub guest_features: u64,
    /// The SNP guest policy (e.g. 0x30000: SMT allowed, reserved bit 17 set, no debug).
    pub policy: u64,
    /// Guest memory in MiB.
    pub memory_mib: u32,
}

/// What a check from outside this crate found wrong with one field of a launch configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchProblem {
    /// The key inside `[[launch]]`, e.g. `vcpu_type` (empty: the configuration as a whole).
    pub field: &'static str,
    pub problem: String,
    pub fix: String,
}
