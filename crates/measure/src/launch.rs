//! The launch digest: OVMF pages, SEV metadata pages (with the hashes page), then one VMSA per vCPU.
//!
//! Order and page types follow QEMU's SNP launch (`sev_snp_launch_update` of the flash, then
//! `snp_populate_metadata_pages` in metadata order, then the VMSAs) as sev-snp-measure 0.0.13
//! models it, including its EC2 (CPUID page last) and GCE (SEC_MEM unmeasured) variants.

use std::num::NonZeroU32;

use crate::config::{LaunchConfig, Vmm};
use crate::digest::{Gctx, LD_BYTES, LaunchDigest, PageType, page_hashes};
use crate::error::MeasureError;
use crate::hashes::{HashesPage, KernelHashes, hashes_page};
use crate::ovmf::{Ovmf, PAGE_SIZE, Section, SectionKind, Svsm};
use crate::vcpu::VcpuType;
use crate::vmsa;

/// An OVMF with the digest of its own pages, the part every launch of it shares.
#[derive(Debug, Clone)]
pub struct Firmware<'a> {
    ovmf: &'a Ovmf,
    pages: LaunchDigest,
}

impl<'a> Firmware<'a> {
    /// Hashes the OVMF's pages (on several threads; the chain over them is cheap).
    pub fn measure(ovmf: &'a Ovmf) -> Self {
        Self {
            ovmf,
            pages: ovmf_hash(ovmf),
        }
    }

    /// Trusts a precomputed OVMF hash (`--snp-ovmf-hash`, as from `snp:ovmf-hash` mode) and uses
    /// `ovmf` for its metadata only, as sev-snp-measure does.
    pub fn with_ovmf_hash(ovmf: &'a Ovmf, ovmf_hash: LaunchDigest) -> Self {
        Self {
            ovmf,
            pages: ovmf_hash,
        }
    }

    pub fn ovmf(&self) -> &'a Ovmf {
        self.ovmf
    }

    /// The digest after the OVMF pages (sev-snp-measure's `snp:ovmf-hash`).
    pub fn ovmf_hash(&self) -> LaunchDigest {
        self.pages
    }
}

/// The digest after the OVMF's own pages: sev-snp-measure's `snp:ovmf-hash` mode.
pub fn ovmf_hash(ovmf: &Ovmf) -> LaunchDigest {
    let mut gctx = Gctx::new();
    gctx.normal_hashed(ovmf.gpa(), &parallel_page_hashes(ovmf.bytes()));
    gctx.digest()
}

fn parallel_page_hashes(data: &[u8]) -> Vec<[u8; LD_BYTES]> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let pages = data.len().div_ceil(PAGE_SIZE);
    if threads < 2 || pages < 64 {
        return page_hashes(data);
    }
    let chunk = pages.div_ceil(threads) * PAGE_SIZE;
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|c| (c, s.spawn(move || page_hashes(c))))
            .collect();
        handles
            .into_iter()
            .flat_map(|(c, h)| h.join().unwrap_or_else(|_| page_hashes(c)))
            .collect()
    })
}

/// The launch digest of a direct kernel boot (`kernel` given: QEMU with `kernel-hashes=on`) or a
/// firmware-only launch (`None`: the SNP_KERNEL_HASHES pages are measured as zero pages).
pub fn launch_digest(
    firmware: &Firmware<'_>,
    kernel: Option<&KernelHashes>,
    config: &LaunchConfig,
) -> Result<LaunchDigest, MeasureError> {
    let page = kernel.map(|k| hashes_page(firmware.ovmf, k)).transpose()?;
    launch_digest_with_page(firmware, page.as_ref(), config)
}

/// As [`launch_digest`], from a hashes page built elsewhere (the page QEMU was given).
pub fn launch_digest_with_page(
    firmware: &Firmware<'_>,
    page: Option<&HashesPage>,
    config: &LaunchConfig,
) -> Result<LaunchDigest, MeasureError> {
    let vmsas = VmsaHashes::snp(firmware.ovmf, config)?;
    let mut gctx = Gctx::from_seed(&firmware.pages);
    metadata_pages(&mut gctx, firmware.ovmf.sections(), page, config.vmm)?;
    vmsas.extend(&mut gctx, config.vcpus.get());
    Ok(gctx.digest())
}

/// Measures the SEV metadata sections in the firmware's order.
pub(crate) fn metadata_pages(
    gctx: &mut Gctx,
    sections: &[Section],
    page: Option<&HashesPage>,
    vmm: Vmm,
) -> Result<(), MeasureError> {
    for s in sections {
        let (gpa, size) = (u64::from(s.gpa), u64::from(s.size));
        match s.kind {
            SectionKind::SnpSecMem if vmm == Vmm::Gce => {
                gctx.zero_pages(gpa, size, PageType::Unmeasured)
            }
            SectionKind::SnpSecMem | SectionKind::SvsmCaa => {
                gctx.zero_pages(gpa, size, PageType::Zero)
            }
            SectionKind::SnpSecrets => gctx.update(PageType::Secrets, gpa, &[0; LD_BYTES]),
            // EC2 measures the CPUID page after all the others.
            SectionKind::Cpuid if matches!(vmm, Vmm::Ec2(_)) => {}
            SectionKind::Cpuid => gctx.update(PageType::Cpuid, gpa, &[0; LD_BYTES]),
            SectionKind::SnpKernelHashes => match page {
                Some(p) => gctx.normal_pages(p.gpa(), p.as_bytes()),
                None => gctx.zero_pages(gpa, size, PageType::Zero),
            },
        }
    }
    if matches!(vmm, Vmm::Ec2(_)) {
        for s in sections.iter().filter(|s| s.kind == SectionKind::Cpuid) {
            gctx.update(PageType::Cpuid, u64::from(s.gpa), &[0; LD_BYTES]);
        }
    }
    if page.is_some()
        && !sections
            .iter()
            .any(|s| s.kind == SectionKind::SnpKernelHashes)
    {
        return Err(MeasureError::NoKernelHashesSection);
    }
    Ok(())
}

/// SHA-384 of the bootstrap processor's VMSA and of every other vCPU's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VmsaHashes {
    pub(crate) bsp: [u8; LD_BYTES],
    pub(crate) ap: Option<[u8; LD_BYTES]>,
}

impl VmsaHashes {
    pub(crate) fn snp(ovmf: &Ovmf, config: &LaunchConfig) -> Result<Self, MeasureError> {
        let ap_eip = ovmf.sev_es_reset_eip().ok_or(MeasureError::NoResetBlock)?;
        let sig = config.vcpu_type.signature();
        let features = config.guest_features.bits();
        let bsp = sha384(&vmsa::snp(vmsa::BSP_EIP, config.vmm, sig, features)[..]);
        let ap = (ap_eip != 0).then(|| sha384(&vmsa::snp(ap_eip, config.vmm, sig, features)[..]));
        Self::check(ap, config.vcpus)?;
        Ok(Self { bsp, ap })
    }

    fn check(ap: Option<[u8; LD_BYTES]>, vcpus: NonZeroU32) -> Result<(), MeasureError> {
        if ap.is_none() && vcpus.get() > 1 {
            return Err(MeasureError::ZeroResetEip { vcpus: vcpus.get() });
        }
        Ok(())
    }

    /// Adds the VMSA of vCPU `index` (0 is the BSP). Callers have checked the AP exists when needed.
    pub(crate) fn add(&self, gctx: &mut Gctx, index: u32) {
        match (index, self.ap) {
            (0, _) | (_, None) => gctx.vmsa(&self.bsp),
            (_, Some(ap)) => gctx.vmsa(&ap),
        }
    }

    fn extend(&self, gctx: &mut Gctx, vcpus: u32) {
        for i in 0..vcpus {
            self.add(gctx, i);
        }
    }
}

pub(crate) fn sha384(data: &[u8]) -> [u8; LD_BYTES] {
    use sha2::Digest;
    sha2::Sha384::digest(data).into()
}

/// A COCONUT-SVSM launch (`snp:svsm`): OVMF at the top of 4 GiB, its variable store below it, the
/// SVSM below that; all vCPUs start in the SVSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvsmConfig {
    pub vcpus: NonZeroU32,
    pub vcpu_type: VcpuType,
    /// Size in bytes of the OVMF_VARS store QEMU maps between SVSM and OVMF (not measured itself).
    pub vars_size: u64,
}

/// The launch digest of an SVSM launch. Only QEMU launches SVSM, and the SVSM's VMSA has fixed SEV
/// features (see `vmsa::svsm`), so neither VMM nor guest features are asked for.
pub fn svsm_launch_digest(
    ovmf: &Ovmf,
    svsm: &Svsm,
    config: &SvsmConfig,
) -> Result<LaunchDigest, MeasureError> {
    if !config.vars_size.is_multiple_of(PAGE_SIZE as u64) {
        return Err(MeasureError::VarsSize {
            vars_size: config.vars_size,
        });
    }
    let svsm_gpa = ovmf
        .gpa()
        .checked_sub(config.vars_size)
        .and_then(|end| end.checked_sub(svsm.bytes().len() as u64))
        .ok_or(MeasureError::SvsmPlacement {
            svsm_len: svsm.bytes().len(),
            ovmf_gpa: ovmf.gpa(),
            vars_size: config.vars_size,
        })?;
    let mut gctx = Gctx::from_seed(&ovmf_hash(ovmf));
    gctx.normal_hashed(svsm_gpa, &parallel_page_hashes(svsm.bytes()));
    metadata_pages(&mut gctx, svsm.sections(), None, Vmm::Qemu)?;
    let eip = u64::from(svsm.entry_offset()) + svsm_gpa;
    let page = sha384(&vmsa::svsm(eip, config.vcpu_type.signature())[..]);
    for _ in 0..config.vcpus.get() {
        gctx.vmsa(&page);
    }
    Ok(gctx.digest())
}
