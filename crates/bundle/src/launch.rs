//! [`LaunchSpec`]: one way to launch an image, as recipes, `manifest.json` and `expected.json`
//! write it.

use serde::{Deserialize, Serialize};

/// The most vCPUs a launch configuration may have, wherever it is given (a recipe's `[[launch]]`,
/// `measure --vcpus`): QEMU's limit for the q35 machine snpkit launches (4096 since QEMU 9.0,
/// which needs KVM built with 4096 vCPUs, `CONFIG_KVM_MAX_NR_VCPUS`/`MAXSMP`, and an edk2 from
/// 2024-05 or later to boot them). SEV-SNP sets none of its own: each vCPU adds one VMSA page to
/// the launch digest. A host that allows fewer refuses the launch with QEMU's own message. Here,
/// beside [`LaunchSpec`], so that the recipe's check and the measurement's share one limit
/// without either depending on the other.
pub const MAX_VCPUS: u32 = 4096;

/// One way to launch an image, written down: a recipe's `[[launch]]` table, copied verbatim into
/// `manifest.json` and into every config of `expected.json`.
///
/// Named *spec* and not *config* on purpose: it is plain data (strings and integers, as a person
/// wrote them), while `snpkit_measure::LaunchConfig` is the checked, typed configuration a launch
/// digest is computed from (`snpkit_measure::launch_config_from` turns one into the other). The
/// typed one keeps the shorter name because the measurement code, its tests and its fuzz target
/// use it everywhere; this one lives where it is stored, so a verifier can read `expected.json`
/// without the measurement or the recipe format.
///
/// The CPU model, VMM and guest features are checked by the measurement before a build or lock
/// starts, so this crate does not track those lists (and cannot drift from them). There is
/// deliberately no `Default`: every field changes the launch digest or the guest's security, and
/// none has an answer that is right for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
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

/// What a check found wrong with one field of a [`LaunchSpec`]: the measurement's reading of
/// CPU model, VMM and guest features, which the recipe crate reports against `recipe.toml`.
/// Here, beside the spec, so that neither the measurement nor the recipe depends on the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchProblem {
    /// The key inside `[[launch]]`, e.g. `vcpu_type` (empty: the configuration as a whole).
    pub field: &'static str,
    pub problem: String,
    pub fix: String,
}
