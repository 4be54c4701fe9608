//! Byte offsets of the ATTESTATION_REPORT structure (SEV-SNP ABI specification, rev 1.58, table 23),
//! and of the MSG_REPORT_RSP that brings it to the guest.
//!
//! The report is 1184 bytes in every version; versions add fields in ranges that were reserved
//! before, so the reserved ranges depend on the version.
//!
//! The one table of these offsets for every reader of reports: the guest (the report's length),
//! `snpkit-measure` (MEASUREMENT and the CPUID fields) and `snpkit-attest` (all of it, as
//! `snpkit_attest::report::layout`). It lives here because this is the one crate below all three.

use std::ops::Range;

pub const REPORT_LEN: usize = 0x4A0;

pub const VERSION: usize = 0x000;
pub const GUEST_SVN: usize = 0x004;
pub const POLICY: usize = 0x008;
pub const FAMILY_ID: Range<usize> = 0x010..0x020;
pub const IMAGE_ID: Range<usize> = 0x020..0x030;
pub const VMPL: usize = 0x030;
pub const SIGNATURE_ALGO: usize = 0x034;
pub const CURRENT_TCB: usize = 0x038;
pub const PLATFORM_INFO: usize = 0x040;
pub const KEY_INFO: usize = 0x048;
pub const REPORT_DATA: Range<usize> = 0x050..0x090;
pub const MEASUREMENT: Range<usize> = 0x090..0x0C0;
pub const HOST_DATA: Range<usize> = 0x0C0..0x0E0;
pub const ID_KEY_DIGEST: Range<usize> = 0x0E0..0x110;
pub const AUTHOR_KEY_DIGEST: Range<usize> = 0x110..0x140;
pub const REPORT_ID: Range<usize> = 0x140..0x160;
pub const REPORT_ID_MA: Range<usize> = 0x160..0x180;
pub const REPORTED_TCB: usize = 0x180;
/// Version 3 and later: CPUID family, model, stepping of the chip.
pub const CPUID_FAM_ID: usize = 0x188;
pub const CPUID_MOD_ID: usize = 0x189;
pub const CPUID_STEP: usize = 0x18A;
pub const CHIP_ID: Range<usize> = 0x1A0..0x1E0;
pub const COMMITTED_TCB: usize = 0x1E0;
pub const CURRENT_BUILD: usize = 0x1E8;
pub const CURRENT_MINOR: usize = 0x1E9;
pub const CURRENT_MAJOR: usize = 0x1EA;
pub const COMMITTED_BUILD: usize = 0x1EC;
pub const COMMITTED_MINOR: usize = 0x1ED;
pub const COMMITTED_MAJOR: usize = 0x1EE;
pub const LAUNCH_TCB: usize = 0x1F0;
/// Version 5 and later: mitigation vectors.
pub const LAUNCH_MIT_VECTOR: usize = 0x1F8;
pub const CURRENT_MIT_VECTOR: usize = 0x200;

/// The signed part of the report: everything before the signature.
pub const SIGNED: Range<usize> = 0x000..0x2A0;
/// ECDSA P-384 signature: R then S, each 72 bytes little-endian, of which only 48 are used.
pub const SIG_R: Range<usize> = 0x2A0..0x2E8;
pub const SIG_S: Range<usize> = 0x2E8..0x330;
pub const SIG_COMPONENT_USED: usize = 48;

/// Reserved ranges that must be zero in every version, named as in the ABI table.
pub const RESERVED_ALL: &[(&str, Range<usize>)] = &[
    ("reserved after KEY_INFO", 0x04C..0x050),
    ("reserved after CPUID fields", 0x18B..0x1A0),
    ("reserved after CURRENT_MAJOR", 0x1EB..0x1EC),
    ("reserved after COMMITTED_MAJOR", 0x1EF..0x1F0),
    ("reserved before the signature", 0x208..0x2A0),
    ("unused high bytes of signature R", 0x2D0..0x2E8),
    ("unused high bytes of signature S", 0x318..0x330),
    ("reserved after the signature", 0x330..0x4A0),
];

/// MSG_REPORT_RSP (SNP ABI, "MSG_REPORT_RSP Message Structure"), as Linux's SNP_GET_REPORT returns
/// it in `struct snp_report_resp`: a fixed 4000-byte buffer holding the status, the report's size,
/// 24 reserved bytes, then the report.
pub const RESPONSE_LEN: usize = 4000;
pub const RESPONSE_STATUS: Range<usize> = 0x00..0x04;
pub const RESPONSE_REPORT_SIZE: Range<usize> = 0x04..0x08;
pub const RESPONSE_REPORT: Range<usize> = 0x20..0x20 + REPORT_LEN;

/// Reserved in version 2 only (later versions put the CPUID fields there).
pub const RESERVED_V2: &[(&str, Range<usize>)] =
    &[("CPUID fields (reserved in version 2)", 0x188..0x18B)];

/// Reserved before version 5 (version 5 puts the mitigation vectors there).
pub const RESERVED_BEFORE_V5: &[(&str, Range<usize>)] = &[(
    "mitigation vectors (reserved before version 5)",
    0x1F8..0x208,
)];
