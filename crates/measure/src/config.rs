//! The typed launch configuration: everything besides the files that changes the digest.

use std::num::NonZeroU32;

use crate::vcpu::{VcpuType, VcpuTypeError};

/// The most vCPUs we accept from a recipe or the command line: the limit of the plain launch data
/// (beside `snpkit_bundle::LaunchSpec`), which the recipe checks too, so the two never disagree.
pub use snpkit_bundle::MAX_VCPUS;

pub(crate) const ONE: NonZeroU32 = NonZeroU32::MIN;

/// How one image is launched, as far as the launch digest is concerned.
///
/// No `Default`: there is no vCPU type or VMM that is right for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaunchConfig {
    /// One VMSA per vCPU is measured.
    pub vcpus: NonZeroU32,
    /// Goes into RDX of QEMU's VMSAs. EC2 and GCE VMSAs do not depend on it.
    pub vcpu_type: VcpuType,
    pub vmm: Vmm,
    pub guest_features: GuestFeatures,
}

/// The VMM that builds the VMSAs (and, for EC2 and GCE, orders or types some metadata pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vmm {
    Qemu,
    /// Google Compute Engine: SEC_MEM pages are unmeasured, its own PAT, RDX = 0x600.
    Gce,
    /// AWS EC2: the CPUID page is measured last; two VMSA forms are in use, see [`Ec2VmsaRdx`].
    Ec2(Ec2VmsaRdx),
}

/// The RDX value of EC2's initial VMSAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ec2VmsaRdx {
    /// RDX = 0: what real AWS reports (2023, sev-snp-measure-go vectors) match, and what the `sev`
    /// crate and sev-snp-measure ≤ 0.0.12 compute.
    Zero,
    /// RDX = 0x600: what sev-snp-measure 0.0.13 computes (its commit 4a02bf0: "used to be 0x0, but
    /// is now 0x600"); not yet seen in a report we hold.
    Value0x600,
}

impl std::fmt::Display for Vmm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Vmm::Qemu => "qemu",
            Vmm::Gce => "gce",
            Vmm::Ec2(Ec2VmsaRdx::Zero) => "ec2",
            Vmm::Ec2(Ec2VmsaRdx::Value0x600) => "ec2-rdx-0x600",
        })
    }
}

impl Vmm {
    /// Every VMM form, in the order `explain` tries them.
    pub const ALL: [Vmm; 4] = [
        Vmm::Qemu,
        Vmm::Ec2(Ec2VmsaRdx::Zero),
        Vmm::Ec2(Ec2VmsaRdx::Value0x600),
        Vmm::Gce,
    ];

    /// Parses the recipe/command-line spelling: `qemu`, `gce`, `ec2` (RDX 0, matches AWS
    /// hardware) or `ec2-rdx-0x600` (sev-snp-measure 0.0.13's form). Case is ignored.
    pub fn from_name(name: &str) -> Option<Vmm> {
        Vmm::ALL
            .into_iter()
            .find(|v| v.to_string().eq_ignore_ascii_case(name))
    }
}

/// SEV_FEATURES of every VMSA. Bit 0 (SNPActive) is required for an SNP launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestFeatures(u64);

impl GuestFeatures {
    pub const SNP_ACTIVE: u64 = 0x1;

    pub fn new(bits: u64) -> Result<Self, ConfigError> {
        if bits & Self::SNP_ACTIVE == 0 {
            return Err(ConfigError::SnpNotActive { found: bits });
        }
        Ok(Self(bits))
    }

    pub fn bits(&self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for GuestFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A launch configuration that does not describe a launch we can measure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("launch config {name:?}: field `{field}`: {problem}")]
    Field {
        name: String,
        field: &'static str,
        problem: String,
    },
    #[error("guest features {found:#x} lack bit 0 (SNPActive), which every SNP VMSA has")]
    SnpNotActive { found: u64 },
    #[error("{found} vCPUs: a launch has 1 to {MAX_VCPUS}")]
    Vcpus { found: u32 },
    #[error(transparent)]
    VcpuType(#[from] VcpuTypeError),
}

/// Checks a vCPU count.
pub fn vcpus(n: u32) -> Result<NonZeroU32, ConfigError> {
    NonZeroU32::new(n)
        .filter(|n| n.get() <= MAX_VCPUS)
        .ok_or(ConfigError::Vcpus { found: n })
}

/// Turns plain launch data (a recipe's `[[launch]]`, a manifest's or expected.json's config) into a
/// typed configuration; errors name the config and field.
pub fn launch_config_from(recipe: &snpkit_bundle::LaunchSpec) -> Result<LaunchConfig, ConfigError> {
    let field = |field: &'static str, problem: String| ConfigError::Field {
        name: recipe.name.clone(),
        field,
        problem,
    };
    let vcpus = vcpus(recipe.vcpus).map_err(|e| field("vcpus", e.to_string()))?;
    let vcpu_type =
        VcpuType::from_name(&recipe.vcpu_type).map_err(|e| field("vcpu_type", e.to_string()))?;
    let vmm = Vmm::from_name(&recipe.vmm).ok_or_else(|| {
        field(
            "vmm",
            format!(
                "unknown VMM {:?}; expected one of qemu, gce, ec2, ec2-rdx-0x600",
                recipe.vmm
            ),
        )
    })?;
    let guest_features = GuestFeatures::new(recipe.guest_features)
        .map_err(|e| field("guest_features", e.to_string()))?;
    Ok(LaunchConfig {
        vcpus,
        vcpu_type,
        vmm,
        guest_features,
    })
}

/// A recipe's launch configuration read the way the measurement will read it, so that one it
/// cannot measure is refused when the recipe is built or locked: the key, what is wrong with it
/// and the fix (for `snpkit_recipe::Recipe::check_launch`).
pub fn check_launch(
    recipe: &snpkit_bundle::LaunchSpec,
) -> Result<(), snpkit_bundle::LaunchProblem> {
    let (field, problem) = match launch_config_from(recipe) {
        Ok(_) => return Ok(()),
        Err(ConfigError::Field { field, problem, .. }) => (field, problem),
        Err(other) => ("", other.to_string()),
    };
    let fix = match field {
        "vcpu_type" => {
            "use a QEMU CPU model from that list, e.g. \"EPYC-v4\" or \"EPYC-Milan\"".into()
        }
        "vmm" => format!("use one of: {}", Vmm::ALL.map(|v| v.to_string()).join(", ")),
        "guest_features" => "set bit 0 (SNPActive), e.g. guest_features = 0x1".into(),
        "vcpus" => format!("use 1 to {MAX_VCPUS}"),
        _ => "see docs/recipes.md, [[launch]]".into(),
    };
    Err(snpkit_bundle::LaunchProblem {
        field,
        problem,
        fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> snpkit_bundle::LaunchSpec {
        snpkit_bundle::LaunchSpec {
            name: "milan-4".into(),
            vcpus: 4,
            vcpu_type: "EPYC-Milan".into(),
            vmm: "qemu".into(),
            guest_features: 0x21,
            policy: 0x30000,
            memory_mib: 2048,
        }
    }

    #[test]
    fn converts_a_good_config() {
        let c = launch_config_from(&recipe()).unwrap();
        assert_eq!(c.vcpus.get(), 4);
        assert_eq!(c.vcpu_type.signature(), 0xa00f11);
        assert_eq!(c.vmm, Vmm::Qemu);
        assert_eq!(c.guest_features.bits(), 0x21);
    }

    /// What a recipe may say, the measurement takes, and no more: one limit for both.
    #[test]
    fn the_recipe_and_the_measurement_accept_the_same_vcpu_counts() {
        let mut r = recipe();
        r.vcpus = 4096;
        assert_eq!(launch_config_from(&r).unwrap().vcpus.get(), 4096);
        r.vcpus = 4097;
        assert!(launch_config_from(&r).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        type Change = Box<dyn Fn(&mut snpkit_bundle::LaunchSpec)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|r| r.vcpus = 0), "`vcpus`"),
            (Box::new(|r| r.vcpus = 5000), "`vcpus`"),
            (Box::new(|r| r.vcpu_type = "Pentium".into()), "`vcpu_type`"),
            (Box::new(|r| r.vmm = "hyperv".into()), "`vmm`"),
            (Box::new(|r| r.guest_features = 0x20), "`guest_features`"),
        ];
        for (change, want) in cases {
            let mut r = recipe();
            change(&mut r);
            let err = launch_config_from(&r).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("milan-4"), "{err}");
        }
    }

    #[test]
    fn launch_problems_name_the_key_and_the_fix() {
        assert_eq!(check_launch(&recipe()), Ok(()));
        type Change = Box<dyn Fn(&mut snpkit_bundle::LaunchSpec)>;
        let cases: Vec<(Change, &str, &str, &str)> = vec![
            (
                Box::new(|r| r.vcpu_type = "Pentium".into()),
                "vcpu_type",
                "\"Pentium\"",
                "use a QEMU CPU model from that list, e.g. \"EPYC-v4\" or \"EPYC-Milan\"",
            ),
            (
                Box::new(|r| r.vmm = "hyperv".into()),
                "vmm",
                "unknown VMM \"hyperv\"",
                "use one of: qemu, ec2, ec2-rdx-0x600, gce",
            ),
            (
                Box::new(|r| r.guest_features = 0x20),
                "guest_features",
                "0x20",
                "set bit 0 (SNPActive), e.g. guest_features = 0x1",
            ),
            (
                Box::new(|r| r.vcpus = 0),
                "vcpus",
                "0 vCPUs",
                "use 1 to 4096",
            ),
        ];
        for (change, field, problem, fix) in cases {
            let mut r = recipe();
            change(&mut r);
            let p = check_launch(&r).unwrap_err();
            assert_eq!((p.field, p.fix.as_str()), (field, fix));
            assert!(p.problem.contains(problem), "{}", p.problem);
            // The problem is the field's, without the config's name (the recipe error adds it).
            assert!(!p.problem.contains("milan-4"), "{}", p.problem);
        }
    }

    #[test]
    fn vmm_names_round_trip() {
        for v in Vmm::ALL {
            assert_eq!(Vmm::from_name(&v.to_string()), Some(v));
        }
        assert_eq!(Vmm::from_name("QEMU"), Some(Vmm::Qemu));
        assert_eq!(Vmm::from_name("EC2"), Some(Vmm::Ec2(Ec2VmsaRdx::Zero)));
    }
}
