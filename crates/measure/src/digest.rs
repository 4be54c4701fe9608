//! The launch digest and the PAGE_INFO chain that produces it.
//!
//! SEV-SNP firmware ABI specification (AMD #56860), SNP_LAUNCH_UPDATE and Table "PAGE_INFO": for
//! every page added to the guest, `LD := SHA-384(LD ‖ CONTENTS ‖ LENGTH=0x70 ‖ PAGE_TYPE ‖ IMI_PAGE ‖
//! VMPL3..1_PERMS ‖ 0 ‖ GPA)`, where CONTENTS is the SHA-384 of the page for normal and VMSA pages
//! and zero for the others. LD starts as 48 zero bytes (or as a given OVMF hash).

use base64::Engine as _;
use sha2::{Digest, Sha384};
use snpkit_wire::report::{
    MEASUREMENT, REPORT_LEN as REPORT_BYTES, RESPONSE_LEN as REPORT_RSP_BYTES, RESPONSE_REPORT,
    RESPONSE_REPORT_SIZE, RESPONSE_STATUS,
};

pub(crate) const LD_BYTES: usize = 48;
/// Where Linux's `struct snp_report_resp` (`/dev/sev-guest`, SNP_GET_REPORT) holds the report.
const REPORT_RSP_REPORT_OFFSET: usize = RESPONSE_REPORT.start;
/// The VMSA's RMP entry is recorded at GPA -1, page-aligned and cut to 52 bits.
const VMSA_GPA: u64 = 0x0000_ffff_ffff_f000;

/// A 48-byte SEV-SNP launch digest, as it appears in a report's MEASUREMENT field.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaunchDigest([u8; LD_BYTES]);

/// Why a text or report does not hold a launch digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("a launch digest is 96 hex digits (48 bytes); got {found} characters")]
    HexLength { found: usize },
    #[error("a launch digest is 96 hex digits; {found:?} at position {position} is not one")]
    HexDigit { position: usize, found: char },
    #[error("an SNP attestation report is {REPORT_BYTES} bytes; this one is {found}")]
    ReportLength { found: usize },
    #[error(
        "{found} bytes hold no report we know how to find: expected a raw {REPORT_BYTES}-byte report (report.bin, \
         as snpguest or configfs-tsm's outblob give it) or a {REPORT_RSP_BYTES}-byte SNP_GET_REPORT response \
         with the report at offset {REPORT_RSP_REPORT_OFFSET:#x}"
    )]
    UnknownReportBlob { found: usize },
    #[error(
        "this {REPORT_RSP_BYTES}-byte SNP_GET_REPORT response has status {status:#x} and report size {size} \
         (a good one has status 0 and size {REPORT_BYTES}): the firmware returned no report"
    )]
    FailedReportResponse { status: u32, size: u32 },
}

/// A report found in a file, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundReport<'a> {
    /// The 1184 bytes of the report.
    pub report: &'a [u8],
    /// Offset of the report in the file.
    pub offset: usize,
    /// What held it, for people to read; `None` for a bare report.
    pub container: Option<&'static str>,
}

/// Finds the attestation report in a file: a bare 1184-byte report, or the 4000-byte response
/// buffer of Linux's SNP_GET_REPORT ioctl (status 0, report size 1184, report at 0x20). Nothing
/// else is guessed at: a wrong guess would explain a digest that was never measured.
pub fn find_report(blob: &[u8]) -> Result<FoundReport<'_>, DigestError> {
    match blob.len() {
        REPORT_BYTES => Ok(FoundReport {
            report: blob,
            offset: 0,
            container: None,
        }),
        REPORT_RSP_BYTES => {
            let word = |at: std::ops::Range<usize>| {
                let mut w = [0u8; 4];
                w.copy_from_slice(&blob[at]);
                u32::from_le_bytes(w)
            };
            let (status, size) = (word(RESPONSE_STATUS), word(RESPONSE_REPORT_SIZE));
            if status != 0 || size as usize != REPORT_BYTES {
                return Err(DigestError::FailedReportResponse { status, size });
            }
            Ok(FoundReport {
                report: &blob[RESPONSE_REPORT],
                offset: REPORT_RSP_REPORT_OFFSET,
                container: Some("SNP_GET_REPORT response (Linux snp_report_resp)"),
            })
        }
        found => Err(DigestError::UnknownReportBlob { found }),
    }
}

impl LaunchDigest {
    pub const fn from_bytes(bytes: [u8; LD_BYTES]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; LD_BYTES] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Parses 96 hex digits (either case; surrounding whitespace and a `0x` prefix are allowed).
    pub fn from_hex(text: &str) -> Result<Self, DigestError> {
        let trimmed = text.trim();
        let digits = trimmed.strip_prefix("0x").unwrap_or(trimmed);
        if let Some((position, found)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(DigestError::HexDigit { position, found });
        }
        if digits.len() != 2 * LD_BYTES {
            return Err(DigestError::HexLength {
                found: digits.len(),
            });
        }
        let mut bytes = [0u8; LD_BYTES];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| DigestError::HexLength {
            found: digits.len(),
        })?;
        Ok(Self(bytes))
    }

    /// The MEASUREMENT field of a raw 1184-byte attestation report (`report.bin`).
    pub fn from_report(report: &[u8]) -> Result<Self, DigestError> {
        if report.len() != REPORT_BYTES {
            return Err(DigestError::ReportLength {
                found: report.len(),
            });
        }
        let mut bytes = [0u8; LD_BYTES];
        bytes.copy_from_slice(&report[MEASUREMENT]);
        Ok(Self(bytes))
    }
}

impl std::fmt::Display for LaunchDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for LaunchDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LaunchDigest({})", self.to_hex())
    }
}

impl std::str::FromStr for LaunchDigest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// PAGE_TYPE values of SNP_LAUNCH_UPDATE.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(crate) enum PageType {
    Normal = 1,
    Vmsa = 2,
    Zero = 3,
    Unmeasured = 4,
    Secrets = 5,
    Cpuid = 6,
}

/// The guest context's running launch digest. Cloning it is how `explain` reuses a prefix.
#[derive(Clone, Copy)]
pub(crate) struct Gctx {
    ld: [u8; LD_BYTES],
}

impl Gctx {
    pub(crate) fn new() -> Self {
        Self { ld: [0; LD_BYTES] }
    }

    pub(crate) fn from_seed(seed: &LaunchDigest) -> Self {
        Self { ld: seed.0 }
    }

    pub(crate) fn ld(&self) -> &[u8; LD_BYTES] {
        &self.ld
    }

    pub(crate) fn digest(&self) -> LaunchDigest {
        LaunchDigest(self.ld)
    }

    pub(crate) fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; LD_BYTES]) {
        let mut info = [0u8; 0x70];
        info[..48].copy_from_slice(&self.ld);
        info[48..96].copy_from_slice(contents);
        info[96..98].copy_from_slice(&0x70u16.to_le_bytes());
        info[98] = page_type as u8;
        // IMI_PAGE and the VMPL permissions stay 0 for a plain launch.
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.ld.copy_from_slice(&Sha384::digest(info));
    }

    /// Adds pages whose contents' SHA-384 are already known (one per 4 KiB page from `gpa`).
    pub(crate) fn normal_hashed(&mut self, gpa: u64, page_hashes: &[[u8; LD_BYTES]]) {
        for (i, h) in page_hashes.iter().enumerate() {
            self.update(PageType::Normal, gpa + (i as u64) * 4096, h);
        }
    }

    pub(crate) fn normal_pages(&mut self, gpa: u64, data: &[u8]) {
        self.normal_hashed(gpa, &page_hashes(data));
    }

    pub(crate) fn zero_pages(&mut self, gpa: u64, len: u64, page_type: PageType) {
        for offset in (0..len).step_by(4096) {
            self.update(page_type, gpa + offset, &[0; LD_BYTES]);
        }
    }

    pub(crate) fn vmsa(&mut self, page_hash: &[u8; LD_BYTES]) {
        self.update(PageType::Vmsa, VMSA_GPA, page_hash);
    }
}

/// SHA-384 of each 4 KiB page (a short last page is hashed as it is; callers pass whole pages).
///
/// Firmware images are mostly runs of identical pages (erased flash: 859 of the 1024 pages of our
/// AmdSev OVMF repeat the page before), so a page equal to the previous one reuses its hash: a
/// 4 KiB comparison costs a fraction of a SHA-384.
pub(crate) fn page_hashes(data: &[u8]) -> Vec<[u8; LD_BYTES]> {
    let mut out: Vec<[u8; LD_BYTES]> = Vec::with_capacity(data.len().div_ceil(4096));
    let mut previous: Option<&[u8]> = None;
    for page in data.chunks(4096) {
        let hash = match (previous, out.last()) {
            (Some(p), Some(h)) if p == page => *h,
            _ => Sha384::digest(page).into(),
        };
        out.push(hash);
        previous = Some(page);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c2c84b9364fc9f0f54b04534768c860c6e0e386ad98b96e8b98eca46ac8971d05c531ba48373f054c880cfd1f4a0a84e";

    #[test]
    fn hex_round_trip_and_base64() {
        let d = LaunchDigest::from_hex(HEX).unwrap();
        assert_eq!(d.to_string(), HEX);
        assert_eq!(
            LaunchDigest::from_hex(&format!("  0x{}\n", HEX.to_uppercase())).unwrap(),
            d
        );
        let b64 = d.to_base64();
        assert_eq!(b64.len(), 64);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
            d.as_bytes().to_vec()
        );
    }

    #[test]
    fn malformed_hex_is_refused() {
        assert_eq!(
            LaunchDigest::from_hex("abc").unwrap_err(),
            DigestError::HexLength { found: 3 }
        );
        let bad = format!("{}zz", &HEX[..94]);
        assert_eq!(
            LaunchDigest::from_hex(&bad).unwrap_err(),
            DigestError::HexDigit {
                position: 94,
                found: 'z'
            }
        );
        assert!(LaunchDigest::from_hex("").is_err());
        assert!(LaunchDigest::from_hex(&format!("{HEX}00")).is_err());
    }

    #[test]
    fn repeated_pages_hash_like_fresh_ones() {
        let mut data = vec![0xffu8; 4096 * 5];
        data[4096 * 2] = 0;
        let fresh: Vec<[u8; LD_BYTES]> = data
            .chunks(4096)
            .map(|p| Sha384::digest(p).into())
            .collect();
        assert_eq!(page_hashes(&data), fresh);
    }

    #[test]
    fn report_measurement_is_at_0x90() {
        let mut report = vec![0u8; REPORT_BYTES];
        report[0x90..0xc0].copy_from_slice(LaunchDigest::from_hex(HEX).unwrap().as_bytes());
        assert_eq!(LaunchDigest::from_report(&report).unwrap().to_hex(), HEX);
        assert_eq!(
            LaunchDigest::from_report(&report[..100]).unwrap_err(),
            DigestError::ReportLength { found: 100 }
        );
    }

    #[test]
    fn reports_are_found_bare_or_in_an_ioctl_response() {
        let mut report = vec![0u8; REPORT_BYTES];
        report[0] = 5;
        report[0x90..0xc0].copy_from_slice(LaunchDigest::from_hex(HEX).unwrap().as_bytes());
        let bare = find_report(&report).unwrap();
        assert_eq!((bare.offset, bare.container), (0, None));
        assert_eq!(
            LaunchDigest::from_report(bare.report).unwrap().to_hex(),
            HEX
        );

        let mut rsp = vec![0u8; REPORT_RSP_BYTES];
        rsp[4..8].copy_from_slice(&(REPORT_BYTES as u32).to_le_bytes());
        rsp[0x20..0x20 + REPORT_BYTES].copy_from_slice(&report);
        let inner = find_report(&rsp).unwrap();
        assert_eq!(inner.offset, 0x20);
        assert!(inner.container.unwrap().contains("SNP_GET_REPORT"));
        assert_eq!(inner.report, &report[..]);

        // A failed response holds no report.
        rsp[0] = 0x16;
        assert_eq!(
            find_report(&rsp).unwrap_err(),
            DigestError::FailedReportResponse {
                status: 0x16,
                size: REPORT_BYTES as u32
            }
        );
        rsp[0] = 0;
        rsp[4] = 0;
        assert!(matches!(
            find_report(&rsp),
            Err(DigestError::FailedReportResponse { status: 0, .. })
        ));
        // Any other size is named in the error, with what was expected.
        let err = find_report(&[0u8; 2000]).unwrap_err();
        assert_eq!(err, DigestError::UnknownReportBlob { found: 2000 });
        let msg = err.to_string();
        assert!(
            msg.contains("2000") && msg.contains("1184") && msg.contains("4000"),
            "{msg}"
        );
    }
}
