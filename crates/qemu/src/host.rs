//! What an SNP launch needs from the host: KVM with SEV-SNP enabled, `/dev/sev`, and the C-bit
//! position and physical-address reduction that go into `sev-snp-guest` (CPUID 0x8000001F EBX bits 5:0
//! and EBX bits 11:6, AMD APM vol. 3, "Function 8000_001Fh"). They depend on the CPU, so they are read
//! here rather than written into recipes (a hard-coded 51/1 is wrong on some parts).

use std::path::{Path, PathBuf};

/// The host's SEV-SNP parameters. Made by [`detect_snp_host`], or by [`SnpHostCaps::assume`] when
/// the argv is built for another machine (or a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnpHostCaps {
    cbitpos: u8,
    reduced_phys_bits: u8,
}

impl SnpHostCaps {
    /// Values read elsewhere (another host's CPUID); nothing is checked about this machine.
    pub fn assume(cbitpos: u8, reduced_phys_bits: u8) -> SnpHostCaps {
        SnpHostCaps {
            cbitpos,
            reduced_phys_bits,
        }
    }
    pub fn cbitpos(&self) -> u8 {
        self.cbitpos
    }
    pub fn reduced_phys_bits(&self) -> u8 {
        self.reduced_phys_bits
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    #[error("this host's CPU is not x86_64; SEV-SNP needs an AMD EPYC host")]
    NotX86,
    #[error(
        "this CPU does not report SEV-SNP (CPUID 0x8000001F EAX bit 4 is clear): it is not an SNP-capable AMD EPYC, \
         or SNP is off in the BIOS, or this is a VM; use the emulated launch here"
    )]
    CpuWithoutSnp,
    #[error(
        "KVM has no SEV-SNP on this host: {path} is {found:?}; load kvm_amd with sev_snp=1 on an SNP-enabled host, or use the emulated launch"
    )]
    KvmWithoutSnp { path: PathBuf, found: String },
    #[error(
        "{path} is missing: the AMD PSP driver (ccp) is not loaded or the firmware has no SEV; use the emulated launch here"
    )]
    NoSevDevice { path: PathBuf },
}

const KVM_SNP_PARAM: &str = "/sys/module/kvm_amd/parameters/sev_snp";
const SEV_DEVICE: &str = "/dev/sev";

/// Checks that this host can run an SEV-SNP guest and reads its CPUID parameters.
pub fn detect_snp_host() -> Result<SnpHostCaps, HostError> {
    let caps = cpuid_caps()?;
    let param = Path::new(KVM_SNP_PARAM);
    let found =
        std::fs::read_to_string(param).unwrap_or_else(|_| "(absent: kvm_amd is not loaded)".into());
    if !matches!(found.trim(), "Y" | "y" | "1") {
        return Err(HostError::KvmWithoutSnp {
            path: param.to_owned(),
            found: found.trim().to_owned(),
        });
    }
    if !Path::new(SEV_DEVICE).exists() {
        return Err(HostError::NoSevDevice {
            path: SEV_DEVICE.into(),
        });
    }
    Ok(caps)
}

/// Decodes CPUID 0x8000001F: EAX bit 4 = SEV-SNP; EBX bits 5:0 = C-bit position, EBX bits 11:6 =
/// physical address bits lost to encryption.
pub fn caps_from_cpuid(
    max_extended_leaf: u32,
    eax: u32,
    ebx: u32,
) -> Result<SnpHostCaps, HostError> {
    if max_extended_leaf < 0x8000_001f || eax & (1 << 4) == 0 {
        return Err(HostError::CpuWithoutSnp);
    }
    Ok(SnpHostCaps {
        cbitpos: (ebx & 0x3f) as u8,
        reduced_phys_bits: ((ebx >> 6) & 0x3f) as u8,
    })
}

#[cfg(target_arch = "x86_64")]
fn cpuid_caps() -> Result<SnpHostCaps, HostError> {
    use core::arch::x86_64::__cpuid;
    let max = __cpuid(0x8000_0000).eax;
    let leaf = if max >= 0x8000_001f {
        __cpuid(0x8000_001f)
    } else {
        __cpuid(0x8000_0000)
    };
    caps_from_cpuid(max, leaf.eax, leaf.ebx)
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_caps() -> Result<SnpHostCaps, HostError> {
    Err(HostError::NotX86)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_fields_decode() {
        // A Genoa: SME|SEV|…|SNP in EAX, C-bit 51, one bit of reduction.
        let caps =
            caps_from_cpuid(0x8000_0028, 0x0101_fd3f, 51 | (1 << 6) | (0x1f << 12)).expect("snp");
        assert_eq!((caps.cbitpos(), caps.reduced_phys_bits()), (51, 1));
        assert_eq!(
            caps_from_cpuid(0x8000_0028, 0x0f, 51),
            Err(HostError::CpuWithoutSnp)
        );
        assert_eq!(
            caps_from_cpuid(0x8000_001e, 0x1f, 51),
            Err(HostError::CpuWithoutSnp)
        );
    }

    #[test]
    fn this_host_is_refused_with_a_reason() {
        // The machines this project runs on have no SEV-SNP; on one that has, the check passes.
        match detect_snp_host() {
            Ok(caps) => assert!(caps.cbitpos() > 0),
            Err(err) => assert!(err.to_string().contains("emulated launch"), "{err}"),
        }
    }
}
