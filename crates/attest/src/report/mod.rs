//! The SEV-SNP ATTESTATION_REPORT: parsing with every structural rule of the ABI enforced.
//!
//! Our own parser rather than `sev::firmware::guest::AttestationReport::from_bytes`: that one maps
//! unknown versions 4 and ≥ 6 onto known layouts, fails on a version 2 report whose chip id is masked
//! (every VLEK report), fails on CPU models it does not list, ignores reserved ranges, and its
//! verification re-encodes the parsed struct instead of hashing the bytes that were signed. We keep
//! the raw bytes, check every must-be-zero range (the bytes after the signature too), and decode the
//! policy, platform and key bit fields with the `sev` crate's own bitfield types.

pub mod layout;
pub mod tcb;

use crate::product::{Product, TcbLayout};
use layout::*;
pub use tcb::Tcb;

/// Report versions whose layout we know.
pub const KNOWN_VERSIONS: [u32; 3] = [2, 3, 5];
/// Signature algorithm 1: ECDSA P-384 with SHA-384 (the only one the ABI defines).
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Guest policy bit 17 is reserved and must be 1.
pub const POLICY_RESERVED_ONE: u64 = 1 << 17;
/// Guest policy bits the ABI (rev 1.58) defines; anything above is reserved and must be zero, because
/// a verifier that does not know what a bit means must not accept it.
pub const POLICY_KNOWN_BITS: u64 = (1 << 26) - 1;

/// Which key signed the report (KEY_INFO bits 4:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    Vcek,
    Vlek,
    /// The firmware did not sign the report (MaskChipKey set): it proves nothing.
    None,
}

impl std::fmt::Display for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningKey::Vcek => "VCEK",
            SigningKey::Vlek => "VLEK",
            SigningKey::None => "no key",
        })
    }
}

/// A report whose structure is valid: right size, known version, reserved ranges zero, known
/// signature algorithm, policy bit 17 set. Says nothing yet about who signed it.
#[derive(Debug, Clone)]
pub struct Report {
    raw: Box<[u8; REPORT_LEN]>,
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub signature_algo: u32,
    pub current_tcb: u64,
    pub platform_info: u64,
    pub key_info: u32,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: u64,
    /// (family, model, stepping), version 3 and later.
    pub cpuid: Option<(u8, u8, u8)>,
    pub chip_id: [u8; 64],
    pub committed_tcb: u64,
    /// (major, minor, build)
    pub current_version: (u8, u8, u8),
    pub committed_version: (u8, u8, u8),
    pub launch_tcb: u64,
    /// (launch, current), version 5 and later.
    pub mit_vectors: Option<(u64, u64)>,
    pub signing_key: SigningKey,
}

/// Why bytes are not a well-formed report. Each variant names the rule and where it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("a report is exactly {REPORT_LEN} bytes, this input has {found}")]
    Size { found: usize },
    #[error("report version {found} is not one this verifier knows (2, 3 or 5)")]
    Version { found: u32 },
    #[error("{field} (bytes {start:#05x}..{end:#05x}) must be zero, found {found}")]
    Reserved {
        field: &'static str,
        start: usize,
        end: usize,
        found: String,
    },
    #[error("signature algorithm {found} is not ECDSA P-384 with SHA-384 (1)")]
    SignatureAlgo { found: u32 },
    #[error("guest policy {found:#x} has reserved bit 17 clear; the ABI requires it set")]
    PolicyBit17 { found: u64 },
    #[error("guest policy {found:#x} sets reserved bits {bits:#x}")]
    PolicyReserved { found: u64, bits: u64 },
    #[error("KEY_INFO {found:#x} sets reserved bits 31:5")]
    KeyInfoReserved { found: u32 },
    #[error("KEY_INFO {found:#x} names signing key {key}, which the ABI reserves")]
    KeyInfoSigningKey { found: u32, key: u32 },
    #[error("VMPL {found} does not exist (0 to 3)")]
    Vmpl { found: u32 },
}

impl ReportError {
    /// The structural rule that broke, as the `report.format` line's `found` names it.
    pub fn rule(&self) -> &'static str {
        match self {
            ReportError::Size { .. } => "size",
            ReportError::Version { .. } => "version",
            ReportError::Reserved { .. } => "reserved_zero",
            ReportError::SignatureAlgo { .. } => "signature_algo",
            ReportError::PolicyBit17 { .. } | ReportError::PolicyReserved { .. } => {
                "policy_reserved"
            }
            ReportError::KeyInfoReserved { .. } | ReportError::KeyInfoSigningKey { .. } => {
                "key_info"
            }
            ReportError::Vmpl { .. } => "vmpl_range",
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn array<const N: usize>(b: &[u8], r: std::ops::Range<usize>) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[r]);
    a
}

fn check_zero(
    b: &[u8],
    ranges: &[(&'static str, std::ops::Range<usize>)],
) -> Result<(), ReportError> {
    for (field, r) in ranges {
        let bytes = &b[r.clone()];
        if let Some(i) = bytes.iter().position(|&x| x != 0) {
            return Err(ReportError::Reserved {
                field,
                start: r.start,
                end: r.end,
                found: format!("{:#04x} at {:#05x}", bytes[i], r.start + i),
            });
        }
    }
    Ok(())
}

/// Parse a report, enforcing every structural rule. Never panics on any input.
pub fn parse(bytes: &[u8]) -> Result<Report, ReportError> {
    if bytes.len() != REPORT_LEN {
        return Err(ReportError::Size { found: bytes.len() });
    }
    let b = bytes;
    let version = u32_at(b, VERSION);
    if !KNOWN_VERSIONS.contains(&version) {
        return Err(ReportError::Version { found: version });
    }
    check_zero(b, RESERVED_ALL)?;
    if version == 2 {
        check_zero(b, RESERVED_V2)?;
    }
    if version < 5 {
        check_zero(b, RESERVED_BEFORE_V5)?;
    }
    let signature_algo = u32_at(b, SIGNATURE_ALGO);
    if signature_algo != SIG_ALGO_ECDSA_P384_SHA384 {
        return Err(ReportError::SignatureAlgo {
            found: signature_algo,
        });
    }
    let policy = u64_at(b, POLICY);
    if policy & POLICY_RESERVED_ONE == 0 {
        return Err(ReportError::PolicyBit17 { found: policy });
    }
    if policy & !POLICY_KNOWN_BITS != 0 {
        return Err(ReportError::PolicyReserved {
            found: policy,
            bits: policy & !POLICY_KNOWN_BITS,
        });
    }
    let key_info = u32_at(b, KEY_INFO);
    if key_info >> 5 != 0 {
        return Err(ReportError::KeyInfoReserved { found: key_info });
    }
    let signing_key = match sev::firmware::guest::KeyInfo::from(key_info).signing_key() {
        0 => SigningKey::Vcek,
        1 => SigningKey::Vlek,
        7 => SigningKey::None,
        key => {
            return Err(ReportError::KeyInfoSigningKey {
                found: key_info,
                key,
            });
        }
    };
    let vmpl = u32_at(b, VMPL);
    if vmpl > 3 {
        return Err(ReportError::Vmpl { found: vmpl });
    }
    let mut raw = Box::new([0u8; REPORT_LEN]);
    raw.copy_from_slice(b);
    Ok(Report {
        version,
        guest_svn: u32_at(b, GUEST_SVN),
        policy,
        family_id: array(b, FAMILY_ID),
        image_id: array(b, IMAGE_ID),
        vmpl,
        signature_algo,
        current_tcb: u64_at(b, CURRENT_TCB),
        platform_info: u64_at(b, PLATFORM_INFO),
        key_info,
        report_data: array(b, REPORT_DATA),
        measurement: array(b, MEASUREMENT),
        host_data: array(b, HOST_DATA),
        id_key_digest: array(b, ID_KEY_DIGEST),
        author_key_digest: array(b, AUTHOR_KEY_DIGEST),
        report_id: array(b, REPORT_ID),
        report_id_ma: array(b, REPORT_ID_MA),
        reported_tcb: u64_at(b, REPORTED_TCB),
        cpuid: (version >= 3).then(|| (b[CPUID_FAM_ID], b[CPUID_MOD_ID], b[CPUID_STEP])),
        chip_id: array(b, CHIP_ID),
        committed_tcb: u64_at(b, COMMITTED_TCB),
        current_version: (b[CURRENT_MAJOR], b[CURRENT_MINOR], b[CURRENT_BUILD]),
        committed_version: (b[COMMITTED_MAJOR], b[COMMITTED_MINOR], b[COMMITTED_BUILD]),
        launch_tcb: u64_at(b, LAUNCH_TCB),
        mit_vectors: (version >= 5)
            .then(|| (u64_at(b, LAUNCH_MIT_VECTOR), u64_at(b, CURRENT_MIT_VECTOR))),
        signing_key,
        raw,
    })
}

impl Report {
    /// The exact bytes that were parsed.
    pub fn raw(&self) -> &[u8; REPORT_LEN] {
        &self.raw
    }

    /// The bytes the signature covers, as received (never re-encoded).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[SIGNED]
    }

    /// Signature components R and S as 48-byte big-endian integers.
    pub fn signature_rs(&self) -> ([u8; 48], [u8; 48]) {
        let mut r = [0u8; 48];
        let mut s = [0u8; 48];
        r.copy_from_slice(&self.raw[SIG_R.start..SIG_R.start + SIG_COMPONENT_USED]);
        s.copy_from_slice(&self.raw[SIG_S.start..SIG_S.start + SIG_COMPONENT_USED]);
        r.reverse();
        s.reverse();
        (r, s)
    }

    /// The product the chip says it is (CPUID fields, version 3 and later).
    pub fn cpuid_product(&self) -> Option<Product> {
        let (family, model, _) = self.cpuid?;
        Product::from_cpuid(family, model)
    }

    pub fn policy_bits(&self) -> sev::firmware::guest::GuestPolicy {
        sev::firmware::guest::GuestPolicy::from(self.policy)
    }

    pub fn tcb(&self, raw: u64, product: Product) -> Tcb {
        Tcb::decode(raw, product.tcb_layout())
    }

    /// CHIP_ID as the VCEK's hwID and the KDS URL use it: 64 bytes, or the first 8 on Turin.
    pub fn chip_id_for(&self, product: Product) -> &[u8] {
        match product.tcb_layout() {
            TcbLayout::Turin => &self.chip_id[..8],
            TcbLayout::PreTurin => &self.chip_id[..],
        }
    }
}

#[cfg(test)]
mod tests;
