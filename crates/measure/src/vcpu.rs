//! vCPU types: what goes into RDX of a QEMU-launched VMSA (the CPUID 1 EAX signature).

/// A named QEMU CPU model and its CPUID family/model/stepping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuModel {
    pub name: &'static str,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

impl CpuModel {
    pub const fn signature(&self) -> u32 {
        signature(self.family, self.model, self.stepping)
    }
}

const fn m(name: &'static str, family: u32, model: u32, stepping: u32) -> CpuModel {
    CpuModel {
        name,
        family,
        model,
        stepping,
    }
}

/// Every name sev-snp-measure 0.0.13 accepts (QEMU's `builtin_x86_defs`), plus the versions the
/// `sev` crate or QEMU 10.0's `-cpu help` list on top (same signatures as their base models).
pub const CPU_MODELS: &[CpuModel] = &[
    m("EPYC", 23, 1, 2),
    m("EPYC-v1", 23, 1, 2),
    m("EPYC-v2", 23, 1, 2),
    m("EPYC-IBPB", 23, 1, 2),
    m("EPYC-v3", 23, 1, 2),
    m("EPYC-v4", 23, 1, 2),
    m("EPYC-Rome", 23, 49, 0),
    m("EPYC-Rome-v1", 23, 49, 0),
    m("EPYC-Rome-v2", 23, 49, 0),
    m("EPYC-Rome-v3", 23, 49, 0),
    m("EPYC-Rome-v4", 23, 49, 0),
    m("EPYC-Milan", 25, 1, 1),
    m("EPYC-Milan-v1", 25, 1, 1),
    m("EPYC-Milan-v2", 25, 1, 1),
    m("EPYC-Genoa", 25, 17, 0),
    m("EPYC-Genoa-v1", 25, 17, 0),
    m("EPYC-Turin", 26, 0, 0),
    m("EPYC-Turin-v1", 26, 0, 0),
    m("EPYC-Turin-v2", 26, 0, 0),
];

/// CPUID signatures of real SNP hosts, as a guest started with `-cpu host` sees them (QEMU then
/// puts the host's own signature in RDX). Taken from the CPUID_FAM_ID/MOD_ID/STEP fields of the
/// hardware reports in ../shared/vectors (project-oak, confidential-containers-trustee, teekit),
/// so only steppings somebody has actually been seen running are listed; `explain` adds any
/// other through `--vcpu-sig` or `--vcpu-family/--vcpu-model/--vcpu-stepping`.
pub const HOST_CPUS: &[CpuModel] = &[
    m("Milan (host)", 0x19, 0x01, 1),
    m("Genoa (host)", 0x19, 0x11, 1),
    m("Bergamo/Siena (host)", 0x19, 0xa0, 2),
    m("Turin (host)", 0x1a, 0x02, 1),
];

/// The vCPU type of a QEMU launch, by model name, by family/model/stepping or by raw signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VcpuType {
    Model(CpuModel),
    FamilyModelStepping {
        family: u32,
        model: u32,
        stepping: u32,
    },
    Signature(u32),
}

/// A vCPU type that cannot be turned into a CPUID signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VcpuTypeError {
    #[error("unknown vCPU type {found:?}; known types: {}", known_names())]
    UnknownName { found: String },
    #[error(
        "vCPU family {family}, model {model}, stepping {stepping} does not fit a CPUID signature \
         (family ≤ 270, model ≤ 255, stepping ≤ 15)"
    )]
    OutOfRange {
        family: u32,
        model: u32,
        stepping: u32,
    },
}

fn known_names() -> String {
    CPU_MODELS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl VcpuType {
    /// Looks a QEMU CPU model up by name (exact, else ignoring ASCII case).
    pub fn from_name(name: &str) -> Result<Self, VcpuTypeError> {
        CPU_MODELS
            .iter()
            .find(|m| m.name == name)
            .or_else(|| {
                CPU_MODELS
                    .iter()
                    .find(|m| m.name.eq_ignore_ascii_case(name))
            })
            .map(|m| VcpuType::Model(*m))
            .ok_or_else(|| VcpuTypeError::UnknownName {
                found: name.to_owned(),
            })
    }

    /// Family/model/stepping, checked to fit the CPUID 1 EAX fields.
    pub fn from_family_model_stepping(
        family: u32,
        model: u32,
        stepping: u32,
    ) -> Result<Self, VcpuTypeError> {
        if family > 0xf + 0xff || model > 0xff || stepping > 0xf {
            return Err(VcpuTypeError::OutOfRange {
                family,
                model,
                stepping,
            });
        }
        Ok(VcpuType::FamilyModelStepping {
            family,
            model,
            stepping,
        })
    }

    /// The CPUID family/model/stepping a version 3+ attestation report carries (offsets
    /// 0x188..0x18b), as a guess for `explain`; `None` for older reports or a zero family.
    pub fn from_report(report: &[u8]) -> Option<Self> {
        use snpkit_wire::report::{CPUID_FAM_ID, CPUID_STEP, VERSION};
        let version = u32::from_le_bytes(report.get(VERSION..VERSION + 4)?.try_into().ok()?);
        let fms = report.get(CPUID_FAM_ID..CPUID_STEP + 1)?;
        if version < 3 || fms[0] == 0 {
            return None;
        }
        Self::from_family_model_stepping(fms[0].into(), fms[1].into(), fms[2].into()).ok()
    }

    /// The CPUID Fn0000_0001 EAX value QEMU puts in RDX at reset.
    pub fn signature(&self) -> u32 {
        match *self {
            VcpuType::Model(m) => m.signature(),
            VcpuType::FamilyModelStepping {
                family,
                model,
                stepping,
            } => signature(family, model, stepping),
            VcpuType::Signature(sig) => sig,
        }
    }
}

impl std::fmt::Display for VcpuType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VcpuType::Model(m) => f.write_str(m.name),
            VcpuType::FamilyModelStepping {
                family,
                model,
                stepping,
            } => {
                write!(f, "family {family} model {model} stepping {stepping}")
            }
            VcpuType::Signature(sig) => write!(f, "signature {sig:#x}"),
        }
    }
}

/// CPUID Fn0000_0001 EAX from family/model/stepping (AMD CPUID specification #25481): families
/// above 0xF are stored as base 0xF plus an extended family.
pub const fn signature(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, (family - 0xf) & 0xff)
    } else {
        (family, 0)
    };
    (family_high << 20)
        | (((model >> 4) & 0xf) << 16)
        | (family_low << 8)
        | ((model & 0xf) << 4)
        | (stepping & 0xf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_amd_cpuid_encoding() {
        // sev-snp-measure's tests/test_vcpu_types.py.
        assert_eq!(signature(14, 1, 2), 0x0e12);
        assert_eq!(signature(23, 1, 2), 0x800f12);
        assert_eq!(
            VcpuType::from_name("EPYC-Milan").unwrap().signature(),
            0xa00f11
        );
        assert_eq!(
            VcpuType::from_name("epyc-genoa").unwrap().signature(),
            0xa10f10
        );
        assert_eq!(
            VcpuType::from_name("EPYC-Turin").unwrap().signature(),
            0xb00f00
        );
    }

    #[test]
    fn host_signatures_follow_the_cpuid_encoding() {
        // Family 19h/1Ah are stored as base family 0xF plus extended family 0xA/0xB; the model's
        // high nibble is the extended model (bits 19:16), its low nibble bits 7:4.
        let want = [0xa00f11, 0xa10f11, 0xaa0f02, 0xb00f21];
        let got: Vec<u32> = HOST_CPUS.iter().map(|c| c.signature()).collect();
        assert_eq!(got, want);
        // Hand-assembled fields of the Turin value, independent of `signature`.
        let turin = (0xb << 20) | (0xf << 8) | (0x2 << 4) | 0x1;
        assert_eq!(turin, 0xb00f21);
    }

    #[test]
    fn host_signatures_are_those_of_real_reports() {
        let vectors = snpkit_testkit::vectors::dir();
        let reports = [
            "project-oak-oak/derived/milan_oc_release.report.bin",
            "project-oak-oak/derived/genoa_oc.report.bin",
            "confidential-containers-trustee/derived/e2e-evidence.report.bin",
            "project-oak-oak/derived/turin_oc.report.bin",
        ];
        for (host, report) in HOST_CPUS.iter().zip(reports) {
            let bytes = std::fs::read(vectors.join(report)).unwrap();
            let seen = VcpuType::from_report(&bytes).unwrap();
            assert_eq!(
                seen.signature(),
                host.signature(),
                "{} in {report}",
                host.name
            );
        }
    }

    #[test]
    fn names_agree_with_the_sev_crate() {
        use sev::measurement::vcpu_types::CpuType;
        for m in CPU_MODELS {
            if let Ok(theirs) = CpuType::try_from(m.name) {
                assert_eq!(theirs.sig() as u32, m.signature(), "{}", m.name);
            }
        }
    }

    #[test]
    fn report_cpuid_is_read_from_v3_reports() {
        let mut report = vec![0u8; 0x4a0];
        report[0] = 3;
        report[0x188..0x18b].copy_from_slice(&[0x19, 0x01, 0x01]);
        assert_eq!(
            VcpuType::from_report(&report).map(|t| t.signature()),
            Some(0xa00f11)
        );
        report[0] = 2;
        assert_eq!(VcpuType::from_report(&report), None);
        assert_eq!(VcpuType::from_report(&report[..10]), None);
    }

    #[test]
    fn unknown_and_out_of_range_are_errors() {
        let err = VcpuType::from_name("EPYC-Bogus").unwrap_err().to_string();
        assert!(
            err.contains("EPYC-Bogus") && err.contains("EPYC-Milan"),
            "{err}"
        );
        assert!(VcpuType::from_family_model_stepping(25, 256, 0).is_err());
        assert!(VcpuType::from_family_model_stepping(25, 1, 16).is_err());
        assert_eq!(
            VcpuType::from_family_model_stepping(25, 1, 1)
                .unwrap()
                .signature(),
            0xa00f11
        );
    }
}
