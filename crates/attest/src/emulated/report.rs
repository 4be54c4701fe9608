//! The emulated PSP's report: a version 3 ATTESTATION_REPORT with the real layout, signed by the
//! test VCEK.

use super::chain::TestChain;
use crate::report::layout::*;
use p384::ecdsa::signature::hazmat::PrehashSigner;
use rand_core::{OsRng, RngCore};

/// The fields of a report the emulated launch decides (the measurement, the binding, the policy,
/// the identity); everything else comes from the emulated platform. Not a launch description:
/// that is `snpkit_qemu::EmulatedLaunch`, from which the measurement here is computed.
#[derive(Debug, Clone)]
pub struct ReportFields {
    /// The launch digest computed from exactly what QEMU was given.
    pub measurement: [u8; 48],
    pub report_data: [u8; 64],
    /// The guest policy QEMU was told (bit 17 must be set).
    pub policy: u64,
    pub vmpl: u32,
    /// CPUID family, model and stepping the PSP reports. This is the chip's, not the vCPU
    /// model's: use [`Cpuid::TEST_CHIP`] unless testing the verifier's product detection.
    pub cpuid: Cpuid,
    pub host_data: [u8; 32],
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub guest_svn: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpuid {
    pub family: u8,
    pub model: u8,
    pub stepping: u8,
}

impl Cpuid {
    /// A Milan B1 (family 0x19, model 0x01, stepping 0x01), the product of the test VCEK.
    pub const TEST_CHIP: Cpuid = Cpuid {
        family: 0x19,
        model: 0x01,
        stepping: 0x01,
    };
}

impl ReportFields {
    /// Fields with the given digest and binding and zero for every optional one.
    pub fn new(measurement: [u8; 48], report_data: [u8; 64], policy: u64) -> ReportFields {
        ReportFields {
            measurement,
            report_data,
            policy,
            vmpl: 0,
            cpuid: Cpuid::TEST_CHIP,
            host_data: [0; 32],
            family_id: [0; 16],
            image_id: [0; 16],
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            guest_svn: 0,
        }
    }
}

/// SEV-SNP firmware 1.55 build 21, as a current Milan reports.
const FW_VERSION: (u8, u8, u8) = (1, 55, 21);
/// PLATFORM_INFO: SMT enabled, TSME enabled.
const PLATFORM_INFO_VALUE: u64 = 0x3;

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    buf[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Build and sign a version 3 report as the PSP would.
pub fn emulated_report(chain: &TestChain, fields: &ReportFields) -> [u8; REPORT_LEN] {
    let mut b = [0u8; REPORT_LEN];
    let tcb = chain.tcb.raw.to_le_bytes();
    put(&mut b, VERSION, &3u32.to_le_bytes());
    put(&mut b, GUEST_SVN, &fields.guest_svn.to_le_bytes());
    put(&mut b, POLICY, &fields.policy.to_le_bytes());
    put(&mut b, FAMILY_ID.start, &fields.family_id);
    put(&mut b, IMAGE_ID.start, &fields.image_id);
    put(&mut b, VMPL, &fields.vmpl.to_le_bytes());
    put(&mut b, SIGNATURE_ALGO, &1u32.to_le_bytes());
    put(&mut b, CURRENT_TCB, &tcb);
    put(&mut b, PLATFORM_INFO, &PLATFORM_INFO_VALUE.to_le_bytes());
    put(&mut b, KEY_INFO, &0u32.to_le_bytes()); // signed by the VCEK, chip key not masked
    put(&mut b, REPORT_DATA.start, &fields.report_data);
    put(&mut b, MEASUREMENT.start, &fields.measurement);
    put(&mut b, HOST_DATA.start, &fields.host_data);
    put(&mut b, ID_KEY_DIGEST.start, &fields.id_key_digest);
    put(&mut b, AUTHOR_KEY_DIGEST.start, &fields.author_key_digest);
    let mut report_id = [0u8; 32];
    OsRng.fill_bytes(&mut report_id);
    put(&mut b, REPORT_ID.start, &report_id);
    put(&mut b, REPORT_ID_MA.start, &[0xFF; 32]); // no migration agent
    put(&mut b, REPORTED_TCB, &tcb);
    b[CPUID_FAM_ID] = fields.cpuid.family;
    b[CPUID_MOD_ID] = fields.cpuid.model;
    b[CPUID_STEP] = fields.cpuid.stepping;
    put(&mut b, CHIP_ID.start, &chain.chip_id);
    put(&mut b, COMMITTED_TCB, &tcb);
    let (major, minor, build) = FW_VERSION;
    b[CURRENT_BUILD] = build;
    b[CURRENT_MINOR] = minor;
    b[CURRENT_MAJOR] = major;
    b[COMMITTED_BUILD] = build;
    b[COMMITTED_MINOR] = minor;
    b[COMMITTED_MAJOR] = major;
    put(&mut b, LAUNCH_TCB, &tcb);
    sign(chain, &mut b);
    b
}

/// (Re)sign a report in place with the test VCEK: R and S little-endian, zero-padded to 72 bytes.
pub fn sign(chain: &TestChain, report: &mut [u8; REPORT_LEN]) {
    sign_with(chain.vcek_key(), report);
}

/// Sign a report in place with any P-384 key (tests: a VEK from [`TestChain::issue_vek`]).
pub fn sign_with(key: &p384::ecdsa::SigningKey, report: &mut [u8; REPORT_LEN]) {
    let digest = crate::certs::sha384(&report[SIGNED]);
    let sig: p384::ecdsa::Signature = match key.sign_prehash(&digest) {
        Ok(s) => s,
        // A 48-byte prehash is always accepted for P-384; leave the signature zero (invalid) otherwise.
        Err(_) => return,
    };
    let (r, s) = sig.split_bytes();
    let mut r = r.to_vec();
    let mut s = s.to_vec();
    r.reverse();
    s.reverse();
    report[SIG_R].fill(0);
    report[SIG_S].fill(0);
    put(report, SIG_R.start, &r);
    put(report, SIG_S.start, &s);
}
