//! SNP evidence in the form Trustee's SNP verifier reads (`deps/verifier/src/snp/mod.rs`,
//! `SnpEvidence`): the report as serde_json writes the `sev` crate's `AttestationReport` (every
//! field decoded, byte arrays as arrays of numbers) and the certificate table as a list of
//! `{"cert_type": "VCEK", "data": [DER bytes…]}`.
//!
//! The format carries decoded fields, not the signed bytes, so the verifier must re-encode them:
//! [`decode`] writes the 1184-byte report back from the fields (reserved ranges zero, TCB values in
//! the product's layout), and the signature is then checked over those bytes, as Trustee does
//! through `sev`. A report whose reserved bytes were not zero cannot survive the trip — its
//! signature fails — which is what the verifier demands of reserved bytes anyway. [`encode`] refuses
//! such a report up front, so the guest says why rather than the broker.
//!
//! Field offsets are those of the SEV-SNP ABI (ATTESTATION_REPORT, rev 1.58 table 23), as in
//! `snpkit_attest::report::layout` (a broker test compares the two: this crate must not link the
//! verifier).

use serde::{Deserialize, Serialize};
use serde_big_array::BigArray;
use snpkit_wire::frame::REPORT_LEN;

/// Most certificate table entries we read.
pub const MAX_CERTS: usize = 16;
/// Largest certificate or CRL in the table (AMD's ARK is about 1.6 KiB; a CRL a few KiB).
pub const MAX_CERT_LEN: usize = 16 * 1024;

// Offsets (SEV-SNP ABI, ATTESTATION_REPORT).
const VERSION: usize = 0x000;
const GUEST_SVN: usize = 0x004;
const POLICY: usize = 0x008;
const FAMILY_ID: usize = 0x010;
const IMAGE_ID: usize = 0x020;
const VMPL: usize = 0x030;
const SIG_ALGO: usize = 0x034;
const CURRENT_TCB: usize = 0x038;
const PLAT_INFO: usize = 0x040;
const KEY_INFO: usize = 0x048;
const REPORT_DATA: usize = 0x050;
const MEASUREMENT: usize = 0x090;
const HOST_DATA: usize = 0x0C0;
const ID_KEY_DIGEST: usize = 0x0E0;
const AUTHOR_KEY_DIGEST: usize = 0x110;
const REPORT_ID: usize = 0x140;
const REPORT_ID_MA: usize = 0x160;
const REPORTED_TCB: usize = 0x180;
const CPUID_FAM_ID: usize = 0x188;
const CPUID_MOD_ID: usize = 0x189;
const CPUID_STEP: usize = 0x18A;
const CHIP_ID: usize = 0x1A0;
const COMMITTED_TCB: usize = 0x1E0;
const CURRENT_VERSION: usize = 0x1E8; // build, minor, major
const COMMITTED_VERSION: usize = 0x1EC;
const LAUNCH_TCB: usize = 0x1F0;
const LAUNCH_MIT_VECTOR: usize = 0x1F8;
const CURRENT_MIT_VECTOR: usize = 0x200;
const SIG_R: usize = 0x2A0;
const SIG_S: usize = 0x2E8;
const SIG_PART: usize = 72;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("report version {0} is not one this format carries (2 to 5)")]
    Version(u32),
    #[error("CPUID family {0:#x} is not an SEV-SNP processor family (0x19 or 0x1a)")]
    Family(u8),
    #[error(
        "the version {version} report {has} CPUID fields; version 2 has none and later versions have them"
    )]
    Cpuid { version: u32, has: &'static str },
    #[error(
        "the version {version} report {has} mitigation vectors; only version 5 and later have them"
    )]
    MitigationVectors { version: u32, has: &'static str },
    #[error("the {field} TCB {has} an FMC value, which only Turin-family (0x1a) chips have")]
    Fmc {
        field: &'static str,
        has: &'static str,
    },
    #[error(
        "a version 2 report with a masked CHIP_ID does not say its TCB layout; it cannot be carried"
    )]
    MaskedChipId,
    #[error(
        "the report has nonzero bytes where the format has no field ({0}); its signature could not be checked after the trip"
    )]
    Lossy(&'static str),
    #[error("the certificate table has {0} entries, more than {MAX_CERTS}")]
    TooManyCerts(usize),
    #[error("the certificate table's {kind} is {len} bytes, more than {MAX_CERT_LEN}")]
    CertTooLarge { kind: &'static str, len: usize },
    #[error("the certificate table has two {0} entries")]
    DuplicateCert(&'static str),
}

/// `SnpEvidence` of Trustee's verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpEvidence {
    pub attestation_report: ReportFields,
    pub cert_chain: Option<Vec<CertTableEntry>>,
}

/// The serde form of `sev::firmware::guest::AttestationReport` (sev 7.1 and 8.0 alike), field
/// for field and in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportFields {
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub sig_algo: u32,
    pub current_tcb: TcbFields,
    pub plat_info: u64,
    pub key_info: u32,
    #[serde(with = "BigArray")]
    pub report_data: [u8; 64],
    #[serde(with = "BigArray")]
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    #[serde(with = "BigArray")]
    pub id_key_digest: [u8; 48],
    #[serde(with = "BigArray")]
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: TcbFields,
    pub cpuid_fam_id: Option<u8>,
    pub cpuid_mod_id: Option<u8>,
    pub cpuid_step: Option<u8>,
    #[serde(with = "BigArray")]
    pub chip_id: [u8; 64],
    pub committed_tcb: TcbFields,
    pub current: VersionFields,
    pub committed: VersionFields,
    pub launch_tcb: TcbFields,
    pub launch_mit_vector: Option<u64>,
    pub current_mit_vector: Option<u64>,
    pub signature: SignatureFields,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcbFields {
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionFields {
    pub major: u8,
    pub minor: u8,
    pub build: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFields {
    #[serde(with = "BigArray")]
    pub r: [u8; SIG_PART],
    #[serde(with = "BigArray")]
    pub s: [u8; SIG_PART],
}

/// `sev::firmware::host::CertType` as serde writes it (`"VCEK"`, `{"OTHER": "<uuid>"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertType {
    Empty,
    ARK,
    ASK,
    VCEK,
    VLEK,
    CRL,
    OTHER(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertTableEntry {
    pub cert_type: CertType,
    pub data: Vec<u8>,
}

/// What a certificate table entry is, for the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Ark,
    Ask,
    Vcek,
    Vlek,
    Crl,
}

impl CertKind {
    pub fn name(self) -> &'static str {
        match self {
            CertKind::Ark => "ARK",
            CertKind::Ask => "ASK",
            CertKind::Vcek => "VCEK",
            CertKind::Vlek => "VLEK",
            CertKind::Crl => "CRL",
        }
    }

    fn cert_type(self) -> CertType {
        match self {
            CertKind::Ark => CertType::ARK,
            CertKind::Ask => CertType::ASK,
            CertKind::Vcek => CertType::VCEK,
            CertKind::Vlek => CertType::VLEK,
            CertKind::Crl => CertType::CRL,
        }
    }
}

/// Evidence as bytes: the report as the verifier checks it, and the certificates that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub report: Box<[u8; REPORT_LEN]>,
    /// DER (or PEM) bytes by kind; entries of other types (`Empty`, `OTHER`) are dropped.
    pub certs: Vec<(CertKind, Vec<u8>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TcbLayout {
    /// Milan, Genoa: bootloader, tee, 4 reserved, snp, microcode.
    PreTurin,
    /// Turin and later (family 0x1a): fmc, bootloader, tee, snp, 3 reserved, microcode.
    Turin,
}

fn layout(
    version: u32,
    cpuid_family: Option<u8>,
    chip_id: &[u8; 64],
) -> Result<TcbLayout, EvidenceError> {
    match (version, cpuid_family) {
        // Version 2 has no CPUID: `sev` (and so Trustee) tells Turin by its 8-byte CHIP_ID.
        (2, _) if chip_id.iter().all(|&b| b == 0) => Err(EvidenceError::MaskedChipId),
        (2, _) if chip_id[8..].iter().all(|&b| b == 0) => Ok(TcbLayout::Turin),
        (2, _) => Ok(TcbLayout::PreTurin),
        (_, Some(0x19)) => Ok(TcbLayout::PreTurin),
        (_, Some(0x1A)) => Ok(TcbLayout::Turin),
        (_, Some(f)) => Err(EvidenceError::Family(f)),
        (v, None) => Err(EvidenceError::Cpuid {
            version: v,
            has: "lacks",
        }),
    }
}

fn tcb_decode(b: [u8; 8], layout: TcbLayout) -> (TcbFields, bool) {
    match layout {
        TcbLayout::PreTurin => (
            TcbFields {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            b[2..6] == [0; 4],
        ),
        TcbLayout::Turin => (
            TcbFields {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
            b[4..7] == [0; 3],
        ),
    }
}

fn tcb_encode(
    t: &TcbFields,
    layout: TcbLayout,
    field: &'static str,
) -> Result<[u8; 8], EvidenceError> {
    let mut b = [0u8; 8];
    match (layout, t.fmc) {
        (TcbLayout::PreTurin, None) => {
            b[0] = t.bootloader;
            b[1] = t.tee;
            b[6] = t.snp;
            b[7] = t.microcode;
        }
        (TcbLayout::Turin, Some(fmc)) => {
            b[0] = fmc;
            b[1] = t.bootloader;
            b[2] = t.tee;
            b[3] = t.snp;
            b[7] = t.microcode;
        }
        (TcbLayout::PreTurin, Some(_)) => return Err(EvidenceError::Fmc { field, has: "has" }),
        (TcbLayout::Turin, None) => {
            return Err(EvidenceError::Fmc {
                field,
                has: "lacks",
            });
        }
    }
    Ok(b)
}

fn arr<const N: usize>(r: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&r[at..at + N]);
    out
}

fn u32_at(r: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(arr(r, at))
}

fn u64_at(r: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(arr(r, at))
}

fn version_at(r: &[u8], at: usize) -> VersionFields {
    VersionFields {
        build: r[at],
        minor: r[at + 1],
        major: r[at + 2],
    }
}

/// The report's fields and the certificates, as the guest sends them. Refuses a report the
/// format cannot carry without loss (see the module docs).
pub fn encode(
    report: &[u8; REPORT_LEN],
    certs: &[(CertKind, &[u8])],
) -> Result<SnpEvidence, EvidenceError> {
    let r = &report[..];
    let version = u32_at(r, VERSION);
    if !(2..=5).contains(&version) {
        return Err(EvidenceError::Version(version));
    }
    let has_cpuid = version >= 3;
    let chip_id: [u8; 64] = arr(r, CHIP_ID);
    let family = has_cpuid.then(|| r[CPUID_FAM_ID]);
    let layout = layout(version, family, &chip_id)?;
    let mut tcb_reserved_zero = true;
    let mut tcb = |at: usize| {
        let (t, zero) = tcb_decode(arr(r, at), layout);
        tcb_reserved_zero &= zero;
        t
    };
    let fields = ReportFields {
        version,
        guest_svn: u32_at(r, GUEST_SVN),
        policy: u64_at(r, POLICY),
        family_id: arr(r, FAMILY_ID),
        image_id: arr(r, IMAGE_ID),
        vmpl: u32_at(r, VMPL),
        sig_algo: u32_at(r, SIG_ALGO),
        current_tcb: tcb(CURRENT_TCB),
        plat_info: u64_at(r, PLAT_INFO),
        key_info: u32_at(r, KEY_INFO),
        report_data: arr(r, REPORT_DATA),
        measurement: arr(r, MEASUREMENT),
        host_data: arr(r, HOST_DATA),
        id_key_digest: arr(r, ID_KEY_DIGEST),
        author_key_digest: arr(r, AUTHOR_KEY_DIGEST),
        report_id: arr(r, REPORT_ID),
        report_id_ma: arr(r, REPORT_ID_MA),
        reported_tcb: tcb(REPORTED_TCB),
        cpuid_fam_id: family,
        cpuid_mod_id: has_cpuid.then(|| r[CPUID_MOD_ID]),
        cpuid_step: has_cpuid.then(|| r[CPUID_STEP]),
        chip_id,
        committed_tcb: tcb(COMMITTED_TCB),
        current: version_at(r, CURRENT_VERSION),
        committed: version_at(r, COMMITTED_VERSION),
        launch_tcb: tcb(LAUNCH_TCB),
        launch_mit_vector: (version >= 5).then(|| u64_at(r, LAUNCH_MIT_VECTOR)),
        current_mit_vector: (version >= 5).then(|| u64_at(r, CURRENT_MIT_VECTOR)),
        signature: SignatureFields {
            r: arr(r, SIG_R),
            s: arr(r, SIG_S),
        },
    };
    if !tcb_reserved_zero {
        return Err(EvidenceError::Lossy("reserved bytes of a TCB_VERSION"));
    }
    let evidence = SnpEvidence {
        attestation_report: fields,
        cert_chain: Some(
            certs
                .iter()
                .map(|(kind, data)| CertTableEntry {
                    cert_type: kind.cert_type(),
                    data: data.to_vec(),
                })
                .collect(),
        ),
    };
    // Whatever the fields do not carry is lost on the way: say so now, not at the broker.
    let back = report_bytes(&evidence.attestation_report)?;
    if back[..] != report[..] {
        return Err(EvidenceError::Lossy("a reserved range"));
    }
    check_certs(&evidence)?;
    Ok(evidence)
}

/// The report's bytes as the fields give them (reserved ranges zero).
pub fn report_bytes(f: &ReportFields) -> Result<Box<[u8; REPORT_LEN]>, EvidenceError> {
    let v = f.version;
    if !(2..=5).contains(&v) {
        return Err(EvidenceError::Version(v));
    }
    let cpuid = [f.cpuid_fam_id, f.cpuid_mod_id, f.cpuid_step];
    match (
        v >= 3,
        cpuid.iter().all(Option::is_some),
        cpuid.iter().all(Option::is_none),
    ) {
        (true, true, _) | (false, _, true) => {}
        (true, _, _) => {
            return Err(EvidenceError::Cpuid {
                version: v,
                has: "lacks",
            });
        }
        (false, _, _) => {
            return Err(EvidenceError::Cpuid {
                version: v,
                has: "has",
            });
        }
    }
    let mit = [f.launch_mit_vector, f.current_mit_vector];
    match (
        v >= 5,
        mit.iter().all(Option::is_some),
        mit.iter().all(Option::is_none),
    ) {
        (true, true, _) | (false, _, true) => {}
        (true, _, _) => {
            return Err(EvidenceError::MitigationVectors {
                version: v,
                has: "lacks",
            });
        }
        (false, _, _) => {
            return Err(EvidenceError::MitigationVectors {
                version: v,
                has: "has",
            });
        }
    }
    let layout = layout(v, f.cpuid_fam_id, &f.chip_id)?;
    let mut b = Box::new([0u8; REPORT_LEN]);
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(VERSION, &v.to_le_bytes());
    put(GUEST_SVN, &f.guest_svn.to_le_bytes());
    put(POLICY, &f.policy.to_le_bytes());
    put(FAMILY_ID, &f.family_id);
    put(IMAGE_ID, &f.image_id);
    put(VMPL, &f.vmpl.to_le_bytes());
    put(SIG_ALGO, &f.sig_algo.to_le_bytes());
    put(CURRENT_TCB, &tcb_encode(&f.current_tcb, layout, "current")?);
    put(PLAT_INFO, &f.plat_info.to_le_bytes());
    put(KEY_INFO, &f.key_info.to_le_bytes());
    put(REPORT_DATA, &f.report_data);
    put(MEASUREMENT, &f.measurement);
    put(HOST_DATA, &f.host_data);
    put(ID_KEY_DIGEST, &f.id_key_digest);
    put(AUTHOR_KEY_DIGEST, &f.author_key_digest);
    put(REPORT_ID, &f.report_id);
    put(REPORT_ID_MA, &f.report_id_ma);
    put(
        REPORTED_TCB,
        &tcb_encode(&f.reported_tcb, layout, "reported")?,
    );
    if let [Some(fam), Some(model), Some(step)] = cpuid {
        put(CPUID_FAM_ID, &[fam]);
        put(CPUID_MOD_ID, &[model]);
        put(CPUID_STEP, &[step]);
    }
    put(CHIP_ID, &f.chip_id);
    put(
        COMMITTED_TCB,
        &tcb_encode(&f.committed_tcb, layout, "committed")?,
    );
    put(
        CURRENT_VERSION,
        &[f.current.build, f.current.minor, f.current.major],
    );
    put(
        COMMITTED_VERSION,
        &[f.committed.build, f.committed.minor, f.committed.major],
    );
    put(LAUNCH_TCB, &tcb_encode(&f.launch_tcb, layout, "launch")?);
    if let [Some(launch), Some(current)] = mit {
        put(LAUNCH_MIT_VECTOR, &launch.to_le_bytes());
        put(CURRENT_MIT_VECTOR, &current.to_le_bytes());
    }
    put(SIG_R, &f.signature.r);
    put(SIG_S, &f.signature.s);
    Ok(b)
}

fn check_certs(e: &SnpEvidence) -> Result<Vec<(CertKind, Vec<u8>)>, EvidenceError> {
    let table = e.cert_chain.as_deref().unwrap_or_default();
    if table.len() > MAX_CERTS {
        return Err(EvidenceError::TooManyCerts(table.len()));
    }
    let mut certs: Vec<(CertKind, Vec<u8>)> = Vec::new();
    for entry in table {
        let kind = match entry.cert_type {
            CertType::ARK => CertKind::Ark,
            CertType::ASK => CertKind::Ask,
            CertType::VCEK => CertKind::Vcek,
            CertType::VLEK => CertKind::Vlek,
            CertType::CRL => CertKind::Crl,
            // Trustee skips these too; nothing of them is trusted.
            CertType::Empty | CertType::OTHER(_) => continue,
        };
        if entry.data.len() > MAX_CERT_LEN {
            return Err(EvidenceError::CertTooLarge {
                kind: kind.name(),
                len: entry.data.len(),
            });
        }
        if certs.iter().any(|(k, _)| *k == kind) {
            return Err(EvidenceError::DuplicateCert(kind.name()));
        }
        certs.push((kind, entry.data.clone()));
    }
    Ok(certs)
}

/// The report bytes and certificates of received evidence (the broker's side).
pub fn decode(e: &SnpEvidence) -> Result<Evidence, EvidenceError> {
    Ok(Evidence {
        report: report_bytes(&e.attestation_report)?,
        certs: check_certs(e)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 3 Milan-shaped report with every field distinct.
    fn sample(version: u32, family: u8) -> Box<[u8; REPORT_LEN]> {
        let mut b = Box::new([0u8; REPORT_LEN]);
        let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
        put(VERSION, &version.to_le_bytes());
        put(GUEST_SVN, &7u32.to_le_bytes());
        put(POLICY, &0x30000u64.to_le_bytes());
        put(FAMILY_ID, &[1; 16]);
        put(IMAGE_ID, &[2; 16]);
        put(SIG_ALGO, &1u32.to_le_bytes());
        let tcb: [u8; 8] = if family == 0x1A {
            [1, 2, 3, 4, 0, 0, 0, 9]
        } else {
            [4, 0, 0, 0, 0, 0, 24, 219]
        };
        for at in [CURRENT_TCB, REPORTED_TCB, COMMITTED_TCB, LAUNCH_TCB] {
            put(at, &tcb);
        }
        put(PLAT_INFO, &3u64.to_le_bytes());
        put(REPORT_DATA, &[3; 64]);
        put(MEASUREMENT, &[4; 48]);
        put(HOST_DATA, &[5; 32]);
        put(REPORT_ID, &[6; 32]);
        put(REPORT_ID_MA, &[0xFF; 32]);
        if version >= 3 {
            put(CPUID_FAM_ID, &[family, 0x01, 0x01]);
        }
        put(CHIP_ID, &[8; 64]);
        put(CURRENT_VERSION, &[21, 55, 1]);
        put(COMMITTED_VERSION, &[21, 55, 1]);
        if version >= 5 {
            put(LAUNCH_MIT_VECTOR, &[0xAA; 8]);
            put(CURRENT_MIT_VECTOR, &[0xBB; 8]);
        }
        put(SIG_R, &[9; 48]);
        put(SIG_S, &[10; 48]);
        b
    }

    #[test]
    fn reports_of_every_version_and_layout_round_trip() {
        for (version, family) in [(3, 0x19), (5, 0x19), (3, 0x1A), (5, 0x1A), (4, 0x19)] {
            let raw = sample(version, family);
            let e = encode(&raw, &[(CertKind::Vcek, b"der")]).expect("encodes");
            assert_eq!(
                e.attestation_report.current_tcb.fmc.is_some(),
                family == 0x1A
            );
            let text = serde_json::to_vec(&e).expect("JSON");
            let back: SnpEvidence = serde_json::from_slice(&text).expect("parses");
            let d = decode(&back).expect("decodes");
            assert_eq!(d.report, raw, "v{version} family {family:#x}");
            assert_eq!(d.certs, vec![(CertKind::Vcek, b"der".to_vec())]);
        }
    }

    #[test]
    fn version_2_uses_the_chip_id_to_tell_turin() {
        let mut raw = sample(2, 0x19);
        assert!(
            encode(&raw, &[])
                .expect("genoa-like")
                .attestation_report
                .current_tcb
                .fmc
                .is_none()
        );
        raw[CHIP_ID + 8..CHIP_ID + 64].fill(0);
        // Milan's TCB bytes read in Turin's layout leave reserved bytes set.
        assert!(matches!(encode(&raw, &[]), Err(EvidenceError::Lossy(_))));
        raw[CHIP_ID..CHIP_ID + 8].fill(0);
        assert_eq!(encode(&raw, &[]), Err(EvidenceError::MaskedChipId));
    }

    #[test]
    fn nonzero_reserved_bytes_are_refused_before_sending() {
        let mut raw = sample(3, 0x19);
        raw[0x4C] = 1; // reserved after KEY_INFO
        assert!(matches!(encode(&raw, &[]), Err(EvidenceError::Lossy(_))));
        let mut raw = sample(3, 0x19);
        raw[CURRENT_TCB + 3] = 1; // reserved TCB byte (pre-Turin)
        assert!(matches!(encode(&raw, &[]), Err(EvidenceError::Lossy(_))));
        let mut raw = sample(3, 0x19);
        raw[REPORT_LEN - 1] = 1;
        assert!(matches!(encode(&raw, &[]), Err(EvidenceError::Lossy(_))));
    }

    #[test]
    fn inconsistent_fields_are_refused_on_decode() {
        let e = encode(&sample(3, 0x19), &[]).expect("encodes");
        let with = |f: &dyn Fn(&mut ReportFields)| {
            let mut e2 = e.clone();
            f(&mut e2.attestation_report);
            decode(&e2)
        };
        assert_eq!(with(&|r| r.version = 1), Err(EvidenceError::Version(1)));
        assert_eq!(with(&|r| r.version = 6), Err(EvidenceError::Version(6)));
        assert!(matches!(
            with(&|r| r.cpuid_step = None),
            Err(EvidenceError::Cpuid { .. })
        ));
        assert!(matches!(
            with(&|r| r.launch_mit_vector = Some(1)),
            Err(EvidenceError::MitigationVectors { .. })
        ));
        assert!(matches!(
            with(&|r| r.reported_tcb.fmc = Some(1)),
            Err(EvidenceError::Fmc {
                field: "reported",
                ..
            })
        ));
        assert_eq!(
            with(&|r| r.cpuid_fam_id = Some(0x17)),
            Err(EvidenceError::Family(0x17))
        );
        assert!(matches!(
            with(&|r| {
                r.version = 2;
                r.cpuid_fam_id = None;
                r.cpuid_mod_id = None;
                r.cpuid_step = None;
                r.chip_id = [0; 64];
            }),
            Err(EvidenceError::MaskedChipId)
        ));
    }

    #[test]
    fn certificate_tables_are_bounded_and_unambiguous() {
        let raw = sample(3, 0x19);
        let e = encode(&raw, &[(CertKind::Vcek, b"a")]).expect("encodes");
        let with = |entries: Vec<CertTableEntry>| {
            let mut e2 = e.clone();
            e2.cert_chain = Some(entries);
            decode(&e2)
        };
        let entry = |t: CertType, n: usize| CertTableEntry {
            cert_type: t,
            data: vec![0; n],
        };
        assert_eq!(
            with(vec![entry(CertType::VCEK, 1), entry(CertType::VCEK, 1)]),
            Err(EvidenceError::DuplicateCert("VCEK"))
        );
        assert_eq!(
            with(vec![entry(CertType::ASK, MAX_CERT_LEN + 1)]),
            Err(EvidenceError::CertTooLarge {
                kind: "ASK",
                len: MAX_CERT_LEN + 1
            })
        );
        assert_eq!(
            with(vec![entry(CertType::Empty, 0); MAX_CERTS + 1]),
            Err(EvidenceError::TooManyCerts(MAX_CERTS + 1))
        );
        let d = with(vec![
            entry(CertType::OTHER("x".into()), 3),
            entry(CertType::Empty, 0),
            entry(CertType::CRL, 2),
        ])
        .expect("decodes");
        assert_eq!(d.certs, vec![(CertKind::Crl, vec![0, 0])]);
        let mut e3 = e.clone();
        e3.cert_chain = None;
        assert!(decode(&e3).expect("no table").certs.is_empty());
    }

    #[test]
    fn json_with_unknown_or_missing_fields_or_wrong_sizes_is_refused() {
        let e = encode(&sample(3, 0x19), &[]).expect("encodes");
        let v = serde_json::to_value(&e).expect("JSON");
        let parse = |v: &serde_json::Value| serde_json::from_value::<SnpEvidence>(v.clone());
        assert!(parse(&v).is_ok());
        let mut v2 = v.clone();
        v2["attestation_report"]["extra"] = 1.into();
        assert!(parse(&v2).is_err());
        let mut v2 = v.clone();
        v2["attestation_report"]["measurement"] = serde_json::Value::from(vec![0u8; 47]);
        assert!(parse(&v2).is_err());
        let mut v2 = v.clone();
        v2["attestation_report"]["measurement"][0] = 256.into();
        assert!(parse(&v2).is_err());
        let mut v2 = v.clone();
        v2["attestation_report"]
            .as_object_mut()
            .expect("object")
            .remove("signature");
        assert!(parse(&v2).is_err());
        let mut v2 = v;
        v2["cert_chain"] = serde_json::json!([{"cert_type": "PEK", "data": []}]);
        assert!(parse(&v2).is_err());
    }
}
