//! The initial VMSA (SEV-ES save area) of each vCPU, as each VMM builds it.
//!
//! Field offsets are those of the save area in AMD APM vol. 2, table B-4 (Linux `struct
//! sev_es_save_area`). The register values follow what QEMU/KVM, AWS EC2 and Google GCE put in
//! them at reset, as sev-snp-measure 0.0.13 records them; `tests` compares our QEMU and EC2 (RDX 0)
//! pages byte for byte with the `sev` crate's.

use crate::config::{Ec2VmsaRdx, Vmm};

pub(crate) const VMSA_SIZE: usize = 4096;
/// The bootstrap processor starts at the x86 reset vector.
pub(crate) const BSP_EIP: u32 = 0xffff_fff0;

const ES: usize = 0x00;
const CS: usize = 0x10;
const SS: usize = 0x20;
const DS: usize = 0x30;
const FS: usize = 0x40;
const GS: usize = 0x50;
const GDTR: usize = 0x60;
const LDTR: usize = 0x70;
const IDTR: usize = 0x80;
const TR: usize = 0x90;
const EFER: usize = 0xd0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3b0;
const XCR0: usize = 0x3e8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

/// PAT MSR reset value (AMD APM vol. 2, A.3).
const DEFAULT_G_PAT: u64 = 0x0007_0406_0007_0406;
/// GCE's hypervisor overwrites the PAT.
const GCE_G_PAT: u64 = 0x0007_0106;

pub(crate) type Page = Box<[u8; VMSA_SIZE]>;

fn put64(p: &mut [u8; VMSA_SIZE], at: usize, v: u64) {
    p[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn segment(p: &mut [u8; VMSA_SIZE], at: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
    p[at..at + 2].copy_from_slice(&selector.to_le_bytes());
    p[at + 2..at + 4].copy_from_slice(&attrib.to_le_bytes());
    p[at + 4..at + 8].copy_from_slice(&limit.to_le_bytes());
    put64(p, at + 8, base);
}

/// The VMSA of one vCPU of a plain SNP launch, starting at `eip`.
pub(crate) fn snp(eip: u32, vmm: Vmm, signature: u32, sev_features: u64) -> Page {
    struct Regs {
        cs: u16,
        ss: u16,
        tr: u16,
        rdx: u64,
        mxcsr: u32,
        fcw: u16,
        g_pat: u64,
    }
    let r = match vmm {
        Vmm::Qemu => Regs {
            cs: 0x9b,
            ss: 0x93,
            tr: 0x8b,
            rdx: u64::from(signature),
            mxcsr: 0x1f80,
            fcw: 0x37f,
            g_pat: DEFAULT_G_PAT,
        },
        Vmm::Ec2(rdx) => Regs {
            // EC2 leaves the accessed bit clear in the BSP's CS only.
            cs: if eip == BSP_EIP { 0x9a } else { 0x9b },
            ss: 0x92,
            tr: 0x83,
            rdx: match rdx {
                Ec2VmsaRdx::Zero => 0,
                Ec2VmsaRdx::Value0x600 => 0x600,
            },
            mxcsr: 0,
            fcw: 0,
            g_pat: DEFAULT_G_PAT,
        },
        Vmm::Gce => Regs {
            cs: 0x9b,
            ss: 0x93,
            tr: 0x8b,
            rdx: 0x600,
            mxcsr: 0,
            fcw: 0,
            g_pat: GCE_G_PAT,
        },
    };
    let mut p: Page = Box::new([0u8; VMSA_SIZE]);
    let eip = u64::from(eip);
    segment(&mut p, ES, 0, 0x93, 0xffff, 0);
    segment(&mut p, CS, 0xf000, r.cs, 0xffff, eip & 0xffff_0000);
    segment(&mut p, SS, 0, r.ss, 0xffff, 0);
    segment(&mut p, DS, 0, 0x93, 0xffff, 0);
    segment(&mut p, FS, 0, 0x93, 0xffff, 0);
    segment(&mut p, GS, 0, 0x93, 0xffff, 0);
    segment(&mut p, GDTR, 0, 0, 0xffff, 0);
    segment(&mut p, IDTR, 0, 0, 0xffff, 0);
    segment(&mut p, LDTR, 0, 0x82, 0xffff, 0);
    segment(&mut p, TR, 0, r.tr, 0xffff, 0);
    common(
        &mut p,
        0x10,
        eip & 0xffff,
        r.g_pat,
        r.rdx,
        sev_features,
        r.mxcsr,
        r.fcw,
    );
    p
}

/// The VMSA of a vCPU entering COCONUT-SVSM in 32-bit protected mode at `eip`.
///
/// SEV features are fixed to SNPActive and x87 FCW stays 0: that is what sev-snp-measure 0.0.13
/// computes (its SVSM VMSA passes `fcw=` instead of `x87_fcw=`), and its SVSM vectors, said to
/// match hardware, encode it.
pub(crate) fn svsm(eip: u64, signature: u32) -> Page {
    let mut p: Page = Box::new([0u8; VMSA_SIZE]);
    segment(&mut p, ES, 16, 0xc93, 0xffff_ffff, 0);
    segment(&mut p, CS, 8, 0xc9b, 0xffff_ffff, 0);
    segment(&mut p, SS, 16, 0xc93, 0xffff_ffff, 0);
    segment(&mut p, DS, 16, 0xc93, 0xffff_ffff, 0);
    segment(&mut p, FS, 16, 0xc93, 0xffff_ffff, 0);
    segment(&mut p, GS, 0, 0x93, 0xffff, 0);
    segment(&mut p, GDTR, 0, 0, 0xffff, 0);
    segment(&mut p, IDTR, 0, 0, 0xffff, 0);
    segment(&mut p, LDTR, 0, 0x82, 0xffff, 0);
    segment(&mut p, TR, 0, 0x8b, 0xffff, 0);
    common(
        &mut p,
        0x11,
        eip,
        DEFAULT_G_PAT,
        u64::from(signature),
        0x1,
        0x1f80,
        0,
    );
    p
}

#[allow(clippy::too_many_arguments)]
fn common(
    p: &mut [u8; VMSA_SIZE],
    cr0: u64,
    rip: u64,
    g_pat: u64,
    rdx: u64,
    features: u64,
    mxcsr: u32,
    fcw: u16,
) {
    // KVM sets EFER.SVME and CR4.MCE.
    put64(p, EFER, 0x1000);
    put64(p, CR4, 0x40);
    put64(p, CR0, cr0);
    put64(p, DR7, 0x400);
    put64(p, DR6, 0xffff_0ff0);
    put64(p, RFLAGS, 0x2);
    put64(p, RIP, rip);
    put64(p, G_PAT, g_pat);
    put64(p, RDX, rdx);
    put64(p, SEV_FEATURES, features);
    put64(p, XCR0, 0x1);
    p[MXCSR..MXCSR + 4].copy_from_slice(&mxcsr.to_le_bytes());
    p[X87_FCW..X87_FCW + 2].copy_from_slice(&fcw.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use sev::measurement::vcpu_types::CpuType;
    use sev::measurement::vmsa::{GuestFeatures, VMMType, VMSA};

    /// The `sev` crate is a second, independent implementation for the forms it has.
    #[test]
    fn qemu_and_ec2_zero_pages_equal_the_sev_crate() {
        let ap_eip = 0x80b004u32;
        for (theirs_vmm, ours_vmm) in [
            (VMMType::QEMU, Vmm::Qemu),
            (VMMType::EC2, Vmm::Ec2(Ec2VmsaRdx::Zero)),
        ] {
            for cpu in [
                CpuType::EpycV4,
                CpuType::EpycMilan,
                CpuType::EpycGenoa,
                CpuType::EpycTurin,
            ] {
                for features in [0x1u64, 0x21, 0x8001] {
                    // SAFETY of the cast: GuestFeatures is a bitfield newtype built from its raw value.
                    let theirs = VMSA::new(
                        u64::from(ap_eip),
                        cpu,
                        theirs_vmm,
                        None,
                        guest_features(features),
                    );
                    let pages = theirs.pages(2).unwrap();
                    let sig = cpu.sig() as u32;
                    assert_eq!(
                        &pages[0][..],
                        &snp(BSP_EIP, ours_vmm, sig, features)[..],
                        "BSP {cpu:?} {features:#x}"
                    );
                    assert_eq!(
                        &pages[1][..],
                        &snp(ap_eip, ours_vmm, sig, features)[..],
                        "AP {cpu:?} {features:#x}"
                    );
                }
            }
        }
    }

    fn guest_features(v: u64) -> GuestFeatures {
        // GuestFeatures has no public constructor from u64 other than its serde/Decoder forms.
        use sev::parser::ByteParser;
        GuestFeatures::from_bytes(&v.to_le_bytes()).unwrap()
    }

    #[test]
    fn ec2_forms_differ_only_in_rdx() {
        let a = snp(BSP_EIP, Vmm::Ec2(Ec2VmsaRdx::Zero), 0, 1);
        let b = snp(BSP_EIP, Vmm::Ec2(Ec2VmsaRdx::Value0x600), 0, 1);
        let diff: Vec<usize> = (0..VMSA_SIZE).filter(|&i| a[i] != b[i]).collect();
        assert_eq!(diff, vec![RDX + 1]);
    }
}
