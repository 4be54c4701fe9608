//! The GUID-tagged certificate table that comes with an extended SNP report.
//!
//! `SNP_GET_EXT_REPORT` (and configfs-tsm's `auxblob` for the sev_guest provider) hand back the
//! host's certificate buffer as-is: a table of 24-byte entries `{ guid[16], offset: u32, length: u32 }`
//! ended by an all-zero entry, followed by the blobs the entries point into (GHCB spec, "SNP Extended
//! Guest Request", certificate table). The host fills it, so the guest and the verifier treat every
//! byte as hostile: offsets and lengths are bounds-checked, duplicates are refused.

pub use crate::guid::Guid;

/// AMD Root Key certificate.
pub const GUID_ARK: Guid = Guid::from_text("c0b406a4-a803-4952-9743-3fb6014cd0ae");
/// AMD SEV Key certificate.
pub const GUID_ASK: Guid = Guid::from_text("4ab7b379-bbac-4fe4-a02f-05aef327c782");
/// Versioned Chip Endorsement Key certificate.
pub const GUID_VCEK: Guid = Guid::from_text("63da758d-e664-4564-adc5-f4b93be8accd");
/// Versioned Loaded Endorsement Key certificate.
pub const GUID_VLEK: Guid = Guid::from_text("a8074bc2-a25a-483e-aae6-39c045a0b8a1");
/// Certificate revocation list.
pub const GUID_CRL: Guid = Guid::from_text("92f81bc3-5811-4d3d-97ff-d19f88dc67ea");

/// One certificate (or CRL) blob and the GUID that says what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    pub guid: Guid,
    pub data: Vec<u8>,
}

/// Most entries a table may carry; AMD defines five kinds, a host that sends more is misbehaving.
pub const MAX_CERT_ENTRIES: usize = 16;

const ENTRY_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertTableError {
    #[error("certificate table is {len} bytes and has no all-zero terminator entry")]
    Unterminated { len: usize },
    #[error("certificate table has more than {max} entries")]
    TooManyEntries { max: usize },
    #[error(
        "certificate table entry {index} ({guid}) points at bytes {offset}..{end} of a {len}-byte buffer"
    )]
    OutOfBounds {
        index: usize,
        guid: Guid,
        offset: u64,
        end: u64,
        len: usize,
    },
    #[error("certificate table entry {index} ({guid}) is empty")]
    EmptyEntry { index: usize, guid: Guid },
    #[error("certificate table has two entries for {guid}")]
    Duplicate { guid: Guid },
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Parses a certificate buffer. An empty buffer or one that starts with the terminator is an empty
/// table (the host supplied no certificates).
pub fn parse_cert_table(buf: &[u8]) -> Result<Vec<CertEntry>, CertTableError> {
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let mut entries: Vec<CertEntry> = Vec::new();
    let mut index = 0;
    loop {
        let at = index * ENTRY_LEN;
        let Some(raw) = buf.get(at..at + ENTRY_LEN) else {
            return Err(CertTableError::Unterminated { len: buf.len() });
        };
        if raw.iter().all(|&b| b == 0) {
            return Ok(entries);
        }
        if index == MAX_CERT_ENTRIES {
            return Err(CertTableError::TooManyEntries {
                max: MAX_CERT_ENTRIES,
            });
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&raw[..16]);
        let guid = Guid(guid);
        let offset = u64::from(u32_at(raw, 16));
        let length = u64::from(u32_at(raw, 20));
        let end = offset + length;
        if end > buf.len() as u64 {
            return Err(CertTableError::OutOfBounds {
                index,
                guid,
                offset,
                end,
                len: buf.len(),
            });
        }
        if length == 0 {
            return Err(CertTableError::EmptyEntry { index, guid });
        }
        if entries.iter().any(|e| e.guid == guid) {
            return Err(CertTableError::Duplicate { guid });
        }
        // Bounds were checked against buf.len() above, so both fit in usize.
        let data = buf[offset as usize..end as usize].to_vec();
        entries.push(CertEntry { guid, data });
        index += 1;
    }
}

/// Builds a certificate buffer in the layout [`parse_cert_table`] reads (as a host or the
/// emulated PSP would hand it to the guest).
pub fn encode_cert_table(entries: &[CertEntry]) -> Vec<u8> {
    let table_len = (entries.len() + 1) * ENTRY_LEN;
    let mut out = vec![0u8; table_len];
    for (i, entry) in entries.iter().enumerate() {
        let offset = out.len();
        out.extend_from_slice(&entry.data);
        let at = i * ENTRY_LEN;
        out[at..at + 16].copy_from_slice(&entry.guid.0);
        out[at + 16..at + 20].copy_from_slice(&(offset as u32).to_le_bytes());
        out[at + 20..at + 24].copy_from_slice(&(entry.data.len() as u32).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(guid: Guid, data: &[u8]) -> CertEntry {
        CertEntry {
            guid,
            data: data.to_vec(),
        }
    }

    #[test]
    fn guid_text_round_trips_in_efi_byte_order() {
        assert_eq!(
            GUID_VCEK.to_string(),
            "63da758d-e664-4564-adc5-f4b93be8accd"
        );
        // data1 is little-endian in the table.
        assert_eq!(&GUID_VCEK.0[..4], &[0x8d, 0x75, 0xda, 0x63]);
        assert_eq!(
            &GUID_VCEK.0[8..],
            &[0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd]
        );
    }

    #[test]
    fn table_round_trips() {
        let certs = vec![
            entry(GUID_VCEK, b"vcek-der"),
            entry(GUID_ASK, b"ask"),
            entry(GUID_ARK, b"ark"),
        ];
        let buf = encode_cert_table(&certs);
        assert_eq!(parse_cert_table(&buf), Ok(certs));
    }

    #[test]
    fn empty_buffer_and_lone_terminator_are_empty_tables() {
        assert_eq!(parse_cert_table(&[]), Ok(vec![]));
        assert_eq!(parse_cert_table(&[0u8; 4096]), Ok(vec![]));
    }

    #[test]
    fn missing_terminator_is_refused() {
        // One entry whose blob directly follows it: no room is left for the terminator.
        let mut buf = GUID_VCEK.0.to_vec();
        buf.extend_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
        buf.extend_from_slice(&4u32.to_le_bytes());
        buf.extend_from_slice(b"cert");
        assert_eq!(
            parse_cert_table(&buf),
            Err(CertTableError::Unterminated { len: ENTRY_LEN + 4 })
        );
    }

    #[test]
    fn entry_pointing_past_the_buffer_is_refused() {
        let mut buf = encode_cert_table(&[entry(GUID_VCEK, b"abc")]);
        buf[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_cert_table(&buf),
            Err(CertTableError::OutOfBounds { index: 0, .. })
        ));
    }

    #[test]
    fn empty_and_duplicate_entries_are_refused() {
        let mut buf = encode_cert_table(&[entry(GUID_VCEK, b"abc")]);
        buf[20..24].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            parse_cert_table(&buf),
            Err(CertTableError::EmptyEntry {
                index: 0,
                guid: GUID_VCEK
            })
        );
        let buf = encode_cert_table(&[entry(GUID_VCEK, b"a"), entry(GUID_VCEK, b"b")]);
        assert_eq!(
            parse_cert_table(&buf),
            Err(CertTableError::Duplicate { guid: GUID_VCEK })
        );
    }

    #[test]
    fn too_many_entries_are_refused() {
        let certs: Vec<_> = (0..=MAX_CERT_ENTRIES as u8)
            .map(|i| entry(Guid([i + 1; 16]), b"x"))
            .collect();
        let buf = encode_cert_table(&certs);
        assert_eq!(
            parse_cert_table(&buf),
            Err(CertTableError::TooManyEntries {
                max: MAX_CERT_ENTRIES
            })
        );
    }
}
