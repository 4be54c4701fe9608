//! OVMF (and COCONUT-SVSM) firmware images: the GUIDed footer table and the SEV metadata.
//!
//! Layout (edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`, QEMU `hw/i386/pc_sysfw_ovmf.c`):
//! the image ends 32 bytes after a footer entry `{u16 size, GUID 96b582de-…}`; the footer's size
//! covers a table of entries that grows downwards, each `{data, u16 size, GUID}` with `size`
//! counting data + 18. The SEV metadata entry points (as an offset from the end of the image) at
//! an `ASEV` header followed by `{u32 gpa, u32 size, u32 type}` section descriptors
//! (`OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm`).
//!
//! Everything here is read from outside bytes, so every offset is checked and every problem is an
//! [`OvmfError`]; nothing panics (the fuzz target in `fuzz/` and the seeded random test hold us to it).

use std::ops::Range;

use snpkit_wire::guid::Guid;

pub(crate) const PAGE_SIZE: usize = 4096;
const FOUR_GIB: u64 = 1 << 32;

const FOOTER_GUID: [u8; 16] = Guid::from_text("96b582de-1fb2-45f7-baea-a366c55a082d").0;
const SEV_HASH_TABLE_RV_GUID: [u8; 16] = Guid::from_text("7255371f-3a3b-4b04-927b-1da6efa8d454").0;
const SEV_ES_RESET_BLOCK_GUID: [u8; 16] = Guid::from_text("00f771de-1a7e-4fcb-890e-68c77e2fb44e").0;
const SEV_METADATA_GUID: [u8; 16] = Guid::from_text("dc886566-984a-4798-a75e-5585a7bf67cc").0;
const SVSM_INFO_GUID: [u8; 16] = Guid::from_text("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd").0;

/// The footer entry sits this far before the end (the reset vector and padding follow it).
const FOOTER_END_GAP: usize = 32;
const ENTRY_HEADER: usize = 18;
const METADATA_HEADER: usize = 16;
const SECTION_DESC: usize = 12;
/// Every page of a section costs a digest update; real firmware declares well under 1 MiB
/// (our AmdSev OVMF: 0x1e000 bytes). A bound keeps a hostile image from costing seconds per digest
/// (the fuzzer found a 3.7 GiB SEC_MEM section that took 8 s over eight digests).
const MAX_METADATA_BYTES: u64 = 256 << 20;

/// Why a firmware image cannot be used for a launch digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OvmfError {
    #[error(
        "the firmware image is {len} bytes: too small to hold an OVMF footer table (at least {min} bytes)"
    )]
    TooSmall { len: usize, min: usize },
    #[error(
        "the firmware image is {len} bytes, not a whole number of 4 KiB pages: it is mapped and measured page by page"
    )]
    NotPageMultiple { len: usize },
    #[error("the firmware image is {len} bytes: more than the 4 GiB below which it is mapped")]
    TooLarge { len: usize },
    #[error(
        "no OVMF footer table (GUID {}) 50 bytes before the end of the image: this is not an OVMF built for SEV; \
         use an AmdSev OVMF (`cargo xtask ovmf` builds one)",
        Guid(FOOTER_GUID)
    )]
    NoFooterTable,
    #[error("the OVMF footer table declares {declared} bytes but only {available} precede it")]
    FooterTableSize { declared: usize, available: usize },
    #[error(
        "OVMF footer table entry at byte {offset} declares size {size}: an entry holds at least its 18-byte header \
         and must fit in the {remaining} bytes of table left"
    )]
    EntrySize {
        offset: usize,
        size: usize,
        remaining: usize,
    },
    #[error(
        "OVMF footer table entry {} has {found} bytes of data, expected at least {expected}",
        Guid(*guid)
    )]
    EntryTooShort {
        guid: [u8; 16],
        expected: usize,
        found: usize,
    },
    #[error(
        "the SEV metadata offset {offset} (counted from the end) points outside the {len}-byte image or at too few bytes for its header"
    )]
    MetadataOffset { offset: u32, len: usize },
    #[error("the SEV metadata header signature is {found:?}, expected \"ASEV\"")]
    MetadataSignature { found: [u8; 4] },
    #[error("the SEV metadata version is {found}, expected 1")]
    MetadataVersion { found: u32 },
    #[error(
        "the SEV metadata declares {declared} bytes holding {items} sections ({needed} bytes needed) from byte {start} \
         of a {len}-byte image"
    )]
    MetadataSize {
        declared: u32,
        items: u32,
        needed: u64,
        start: usize,
        len: usize,
    },
    #[error(
        "SEV metadata section {index} has unknown type {found:#x} (known: 1 SEC_MEM, 2 SECRETS, 3 CPUID, 4 SVSM_CAA, 0x10 KERNEL_HASHES)"
    )]
    SectionType { index: usize, found: u32 },
    #[error(
        "SEV metadata section {index} ({kind}) at GPA {gpa:#x}, size {size:#x}: not whole 4 KiB pages"
    )]
    SectionAlignment {
        index: usize,
        kind: SectionKind,
        gpa: u32,
        size: u32,
    },
    #[error(
        "SEV metadata section {index} ({kind}) at GPA {gpa:#x}, size {size:#x}: runs past 4 GiB"
    )]
    SectionOverflow {
        index: usize,
        kind: SectionKind,
        gpa: u32,
        size: u32,
    },
    #[error(
        "SEV metadata section {index} ({kind}) is {size:#x} bytes: a {kind} section is exactly one page"
    )]
    SectionSize {
        index: usize,
        kind: SectionKind,
        size: u32,
    },
    #[error(
        "the SEV metadata sections cover {total:#x} bytes, more than the {MAX_METADATA_BYTES:#x} any real firmware comes near"
    )]
    MetadataTooLarge { total: u64 },
    #[error("SEV metadata sections overlap: {first} and {second}")]
    SectionOverlap { first: Section, second: Section },
    #[error(
        "the SVSM image has no SVSM information entry (GUID {}) in its footer table",
        Guid(SVSM_INFO_GUID)
    )]
    NoSvsmInfo,
}

/// The type of an SEV metadata section: it decides how the PSP measures its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// Pre-validated memory the firmware uses before it can validate its own.
    SnpSecMem,
    /// The secrets page the PSP fills.
    SnpSecrets,
    /// The CPUID page the PSP checks.
    Cpuid,
    /// The SVSM calling area.
    SvsmCaa,
    /// The page that receives QEMU's kernel/initrd/cmdline hashes table.
    SnpKernelHashes,
}

impl SectionKind {
    fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::SnpSecMem,
            2 => Self::SnpSecrets,
            3 => Self::Cpuid,
            4 => Self::SvsmCaa,
            0x10 => Self::SnpKernelHashes,
            _ => return None,
        })
    }
}

impl std::fmt::Display for SectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SnpSecMem => "SNP_SEC_MEM",
            Self::SnpSecrets => "SNP_SECRETS",
            Self::Cpuid => "CPUID",
            Self::SvsmCaa => "SVSM_CAA",
            Self::SnpKernelHashes => "SNP_KERNEL_HASHES",
        })
    }
}

/// One SEV metadata section: guest-physical pages the PSP measures at launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub gpa: u32,
    pub size: u32,
    pub kind: SectionKind,
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {:#x}..{:#x}",
            self.kind,
            self.gpa,
            u64::from(self.gpa) + u64::from(self.size)
        )
    }
}

/// Where OVMF expects the SEV hashes table (QEMU's `SevHashTableDescriptor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashTableArea {
    pub base: u32,
    pub size: u32,
}

/// A footer table entry: its GUID and where its data lies in the image.
type Entry = ([u8; 16], Range<usize>);

/// A parsed firmware image: its bytes, footer table and SEV metadata sections.
#[derive(Debug, Clone)]
struct Image {
    data: Vec<u8>,
    entries: Vec<Entry>,
    sections: Vec<Section>,
}

impl Image {
    /// The size checks, before anything is copied.
    fn check_len(len: usize) -> Result<(), OvmfError> {
        let min = FOOTER_END_GAP + ENTRY_HEADER;
        if len < min {
            return Err(OvmfError::TooSmall { len, min });
        }
        if !len.is_multiple_of(PAGE_SIZE) {
            return Err(OvmfError::NotPageMultiple { len });
        }
        if len as u64 > FOUR_GIB {
            return Err(OvmfError::TooLarge { len });
        }
        Ok(())
    }

    fn parse_borrowed(data: &[u8]) -> Result<Self, OvmfError> {
        Self::check_len(data.len())?;
        Self::parse(data.to_vec())
    }

    fn parse(data: Vec<u8>) -> Result<Self, OvmfError> {
        Self::check_len(data.len())?;
        let entries = parse_footer_table(&data)?;
        let mut image = Image {
            data,
            entries,
            sections: Vec::new(),
        };
        if let Some(entry) = image.entry(&SEV_METADATA_GUID) {
            let offset = le32(entry, &SEV_METADATA_GUID)?;
            image.sections = parse_metadata(&image.data, offset)?;
        }
        Ok(image)
    }

    fn entry(&self, guid: &[u8; 16]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(g, _)| g == guid)
            .and_then(|(_, range)| self.data.get(range.clone()))
    }

    fn entry_u32(&self, guid: &[u8; 16]) -> Result<Option<u32>, OvmfError> {
        self.entry(guid).map(|data| le32(data, guid)).transpose()
    }
}

fn le32(data: &[u8], guid: &[u8; 16]) -> Result<u32, OvmfError> {
    match data.get(..4) {
        Some(&[a, b, c, d]) => Ok(u32::from_le_bytes([a, b, c, d])),
        _ => Err(OvmfError::EntryTooShort {
            guid: *guid,
            expected: 4,
            found: data.len(),
        }),
    }
}

fn u16_at(data: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([data[at], data[at + 1]]))
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn guid_at(data: &[u8], at: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&data[at..at + 16]);
    g
}

/// Walks the footer table from its end down. Callers guarantee `data.len() >= 50`.
fn parse_footer_table(data: &[u8]) -> Result<Vec<Entry>, OvmfError> {
    let footer = data.len() - FOOTER_END_GAP - ENTRY_HEADER;
    if guid_at(data, footer + 2) != FOOTER_GUID {
        return Err(OvmfError::NoFooterTable);
    }
    let declared = u16_at(data, footer);
    let table_size = declared
        .checked_sub(ENTRY_HEADER)
        .ok_or(OvmfError::FooterTableSize {
            declared,
            available: footer,
        })?;
    if table_size > footer {
        return Err(OvmfError::FooterTableSize {
            declared,
            available: footer,
        });
    }
    let start = footer - table_size;
    let mut end = footer;
    let mut entries = Vec::new();
    while end - start >= ENTRY_HEADER {
        let header = end - ENTRY_HEADER;
        let size = u16_at(data, header);
        let remaining = end - start;
        if size < ENTRY_HEADER || size > remaining {
            return Err(OvmfError::EntrySize {
                offset: header,
                size,
                remaining,
            });
        }
        entries.push((guid_at(data, header + 2), end - size..header));
        end -= size;
    }
    Ok(entries)
}

fn parse_metadata(data: &[u8], offset: u32) -> Result<Vec<Section>, OvmfError> {
    let len = data.len();
    let start = usize::try_from(offset)
        .ok()
        .and_then(|o| len.checked_sub(o))
        .filter(|s| s + METADATA_HEADER <= len)
        .ok_or(OvmfError::MetadataOffset { offset, len })?;
    let signature = [
        data[start],
        data[start + 1],
        data[start + 2],
        data[start + 3],
    ];
    if &signature != b"ASEV" {
        return Err(OvmfError::MetadataSignature { found: signature });
    }
    let declared = u32_at(data, start + 4);
    let version = u32_at(data, start + 8);
    if version != 1 {
        return Err(OvmfError::MetadataVersion { found: version });
    }
    let items = u32_at(data, start + 12);
    let needed = METADATA_HEADER as u64 + u64::from(items) * SECTION_DESC as u64;
    if u64::from(declared) < needed || (start as u64 + u64::from(declared)) > len as u64 {
        return Err(OvmfError::MetadataSize {
            declared,
            items,
            needed,
            start,
            len,
        });
    }
    let mut sections = Vec::new();
    for index in 0..items as usize {
        let at = start + METADATA_HEADER + index * SECTION_DESC;
        let gpa = u32_at(data, at);
        let size = u32_at(data, at + 4);
        let raw = u32_at(data, at + 8);
        let kind =
            SectionKind::from_raw(raw).ok_or(OvmfError::SectionType { index, found: raw })?;
        if !(gpa as usize).is_multiple_of(PAGE_SIZE)
            || !(size as usize).is_multiple_of(PAGE_SIZE)
            || size == 0
        {
            return Err(OvmfError::SectionAlignment {
                index,
                kind,
                gpa,
                size,
            });
        }
        if u64::from(gpa) + u64::from(size) > FOUR_GIB {
            return Err(OvmfError::SectionOverflow {
                index,
                kind,
                gpa,
                size,
            });
        }
        // sev-snp-measure measures one page for these whatever the size, QEMU the whole size:
        // refuse the case where they would disagree rather than pick one.
        if matches!(kind, SectionKind::SnpSecrets | SectionKind::Cpuid)
            && size as usize != PAGE_SIZE
        {
            return Err(OvmfError::SectionSize { index, kind, size });
        }
        sections.push(Section { gpa, size, kind });
    }
    let total: u64 = sections.iter().map(|s| u64::from(s.size)).sum();
    if total > MAX_METADATA_BYTES {
        return Err(OvmfError::MetadataTooLarge { total });
    }
    let mut sorted = sections.clone();
    sorted.sort_by_key(|s| s.gpa);
    for pair in sorted.windows(2) {
        if u64::from(pair[0].gpa) + u64::from(pair[0].size) > u64::from(pair[1].gpa) {
            return Err(OvmfError::SectionOverlap {
                first: pair[0],
                second: pair[1],
            });
        }
    }
    Ok(sections)
}

/// An OVMF image as QEMU maps it: ending at 4 GiB, with its footer table and SEV metadata checked.
#[derive(Debug, Clone)]
pub struct Ovmf {
    image: Image,
}

impl Ovmf {
    /// Parses an OVMF image. Fails on anything QEMU or the PSP would choke on, or that
    /// sev-snp-measure would read differently from QEMU.
    pub fn parse(bytes: &[u8]) -> Result<Ovmf, OvmfError> {
        Self::checked(Image::parse_borrowed(bytes)?)
    }

    /// As [`Ovmf::parse`], keeping `bytes` rather than copying them (a 4 MiB firmware copy is a
    /// few percent of a whole measurement).
    pub fn parse_owned(bytes: Vec<u8>) -> Result<Ovmf, OvmfError> {
        Self::checked(Image::parse(bytes)?)
    }

    fn checked(image: Image) -> Result<Ovmf, OvmfError> {
        // Read the fixed-size entries once so a short one is a parse error, not a later surprise.
        image.entry_u32(&SEV_ES_RESET_BLOCK_GUID)?;
        if let Some(data) = image.entry(&SEV_HASH_TABLE_RV_GUID)
            && data.len() < 8
        {
            return Err(OvmfError::EntryTooShort {
                guid: SEV_HASH_TABLE_RV_GUID,
                expected: 8,
                found: data.len(),
            });
        }
        Ok(Ovmf { image })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.image.data
    }

    /// Guest-physical address of the first byte: the image ends at 4 GiB.
    pub fn gpa(&self) -> u64 {
        FOUR_GIB - self.image.data.len() as u64
    }

    /// The SEV metadata sections, in the order the firmware lists them (the order they are measured in).
    pub fn sections(&self) -> &[Section] {
        &self.image.sections
    }

    /// The SNP_KERNEL_HASHES section, present only in AmdSev builds.
    pub fn kernel_hashes_section(&self) -> Option<Section> {
        self.sections()
            .iter()
            .copied()
            .find(|s| s.kind == SectionKind::SnpKernelHashes)
    }

    /// Where OVMF reads the SEV hashes table from (its SEV_HASH_TABLE_RV_GUID entry).
    pub fn hash_table_area(&self) -> Option<HashTableArea> {
        let data = self.image.entry(&SEV_HASH_TABLE_RV_GUID)?;
        Some(HashTableArea {
            base: u32_at(data, 0),
            size: u32_at(data, 4),
        })
    }

    /// The application processors' reset address (SEV-ES reset block), if the image has one.
    pub fn sev_es_reset_eip(&self) -> Option<u32> {
        self.image
            .entry_u32(&SEV_ES_RESET_BLOCK_GUID)
            .ok()
            .flatten()
    }
}

/// A COCONUT-SVSM image, mapped by QEMU just below the OVMF and its variable store.
#[derive(Debug, Clone)]
pub struct Svsm {
    image: Image,
    entry_offset: u32,
}

impl Svsm {
    pub fn parse(bytes: &[u8]) -> Result<Svsm, OvmfError> {
        let image = Image::parse_borrowed(bytes)?;
        let entry_offset = image
            .entry_u32(&SVSM_INFO_GUID)?
            .ok_or(OvmfError::NoSvsmInfo)?;
        Ok(Svsm {
            image,
            entry_offset,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.image.data
    }

    pub fn sections(&self) -> &[Section] {
        &self.image.sections
    }

    /// Offset of the SVSM entry point from the image start (coconut-svsm QEMU `sev.c`: the vCPUs
    /// start there, at image GPA + offset).
    pub fn entry_offset(&self) -> u32 {
        self.entry_offset
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-page AmdSev-shaped image: reset block, hashes table area at 0x810c00, SEC_MEM,
    /// SECRETS, CPUID and an SNP_KERNEL_HASHES section of `kernel_hashes_size` bytes.
    pub(crate) fn amdsev_like(kernel_hashes_size: u32) -> Vec<u8> {
        image(
            &[
                reset(0x80b004),
                (
                    SEV_HASH_TABLE_RV_GUID,
                    [0x00u8, 0x0c, 0x81, 0, 0, 4, 0, 0].to_vec(),
                ),
            ],
            Some(metadata(&[
                (0x800000, 0x9000, 1),
                (0x80d000, 0x1000, 2),
                (0x80e000, 0x1000, 3),
                (0x810000, kernel_hashes_size, 0x10),
            ])),
        )
    }

    /// A minimal image: footer table with the given entries, optional metadata, page sized.
    pub(crate) fn image(entries: &[([u8; 16], Vec<u8>)], metadata: Option<Vec<u8>>) -> Vec<u8> {
        let mut img = vec![0u8; PAGE_SIZE];
        let footer = PAGE_SIZE - FOOTER_END_GAP - ENTRY_HEADER;
        let mut table = Vec::new();
        let mut all: Vec<([u8; 16], Vec<u8>)> = entries.to_vec();
        if let Some(meta) = &metadata {
            let meta_start = 0x400;
            img[meta_start..meta_start + meta.len()].copy_from_slice(meta);
            all.push((
                SEV_METADATA_GUID,
                ((PAGE_SIZE - meta_start) as u32).to_le_bytes().to_vec(),
            ));
        }
        for (g, data) in all.iter().rev() {
            table.extend_from_slice(data);
            table.extend_from_slice(&((data.len() + ENTRY_HEADER) as u16).to_le_bytes());
            table.extend_from_slice(g);
        }
        img[footer - table.len()..footer].copy_from_slice(&table);
        img[footer..footer + 2]
            .copy_from_slice(&((table.len() + ENTRY_HEADER) as u16).to_le_bytes());
        img[footer + 2..footer + 18].copy_from_slice(&FOOTER_GUID);
        img
    }

    pub(crate) fn metadata(sections: &[(u32, u32, u32)]) -> Vec<u8> {
        let mut m = b"ASEV".to_vec();
        m.extend_from_slice(
            &((METADATA_HEADER + SECTION_DESC * sections.len()) as u32).to_le_bytes(),
        );
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&(sections.len() as u32).to_le_bytes());
        for (gpa, size, kind) in sections {
            m.extend_from_slice(&gpa.to_le_bytes());
            m.extend_from_slice(&size.to_le_bytes());
            m.extend_from_slice(&kind.to_le_bytes());
        }
        m
    }

    fn reset(eip: u32) -> ([u8; 16], Vec<u8>) {
        (SEV_ES_RESET_BLOCK_GUID, eip.to_le_bytes().to_vec())
    }

    #[test]
    fn parses_a_synthetic_image() {
        let img = image(
            &[reset(0x80b004)],
            Some(metadata(&[(0x800000, 0x9000, 1), (0x80d000, 0x1000, 2)])),
        );
        let ovmf = Ovmf::parse(&img).unwrap();
        assert_eq!(ovmf.sev_es_reset_eip(), Some(0x80b004));
        assert_eq!(ovmf.sections().len(), 2);
        assert_eq!(
            ovmf.sections()[1],
            Section {
                gpa: 0x80d000,
                size: 0x1000,
                kind: SectionKind::SnpSecrets
            }
        );
        assert_eq!(ovmf.gpa(), 0xffff_f000);
        assert!(ovmf.kernel_hashes_section().is_none());
    }

    #[test]
    fn refuses_an_image_without_footer() {
        assert_eq!(
            Ovmf::parse(&vec![0u8; 8192]).unwrap_err(),
            OvmfError::NoFooterTable
        );
        let msg = OvmfError::NoFooterTable.to_string();
        assert!(msg.contains("cargo xtask ovmf"), "{msg}");
    }

    #[test]
    fn refuses_truncated_and_odd_sizes() {
        assert!(matches!(
            Ovmf::parse(&[0u8; 10]),
            Err(OvmfError::TooSmall { len: 10, .. })
        ));
        assert!(matches!(
            Ovmf::parse(&vec![0u8; 5000]),
            Err(OvmfError::NotPageMultiple { len: 5000 })
        ));
        let mut img = image(&[reset(1)], None);
        img.remove(0);
        assert!(Ovmf::parse(&img).is_err());
    }

    #[test]
    fn refuses_bad_metadata_offsets() {
        // Metadata entry pointing beyond the start of the image.
        let img = image(
            &[(SEV_METADATA_GUID, 0x9999u32.to_le_bytes().to_vec())],
            None,
        );
        assert!(matches!(
            Ovmf::parse(&img),
            Err(OvmfError::MetadataOffset { offset: 0x9999, .. })
        ));
        // Pointing at zero bytes from the end.
        let img = image(&[(SEV_METADATA_GUID, 0u32.to_le_bytes().to_vec())], None);
        assert!(matches!(
            Ovmf::parse(&img),
            Err(OvmfError::MetadataOffset { offset: 0, .. })
        ));
        // Pointing at something that is not ASEV.
        let img = image(
            &[(SEV_METADATA_GUID, 0x800u32.to_le_bytes().to_vec())],
            None,
        );
        assert!(matches!(
            Ovmf::parse(&img),
            Err(OvmfError::MetadataSignature { .. })
        ));
        // A short metadata entry.
        let img = image(&[(SEV_METADATA_GUID, vec![1, 2])], None);
        assert!(matches!(
            Ovmf::parse(&img),
            Err(OvmfError::EntryTooShort {
                expected: 4,
                found: 2,
                ..
            })
        ));
    }

    #[test]
    fn refuses_more_items_than_declared() {
        let mut meta = metadata(&[(0x800000, 0x1000, 1)]);
        meta[12..16].copy_from_slice(&1000u32.to_le_bytes());
        let img = image(&[reset(1)], Some(meta));
        assert!(matches!(
            Ovmf::parse(&img),
            Err(OvmfError::MetadataSize { items: 1000, .. })
        ));
    }

    #[test]
    fn refuses_bad_sections() {
        type Sections = Vec<(u32, u32, u32)>;
        let cases: Vec<(Sections, &str)> = vec![
            (vec![(0x800000, 0x1000, 7)], "unknown type"),
            (vec![(0x800800, 0x1000, 1)], "not whole 4 KiB"),
            (vec![(0x800000, 0, 1)], "not whole 4 KiB"),
            (vec![(0xffff_f000, 0x2000, 1)], "past 4 GiB"),
            (vec![(0x800000, 0x2000, 2)], "exactly one page"),
            (
                vec![(0x800000, 0x3000, 1), (0x802000, 0x1000, 3)],
                "overlap",
            ),
        ];
        for (sections, want) in cases {
            let img = image(&[reset(1)], Some(metadata(&sections)));
            let err = Ovmf::parse(&img).unwrap_err().to_string();
            assert!(err.contains(want), "{sections:x?}: {err}");
        }
    }

    #[test]
    fn refuses_bad_footer_sizes() {
        let mut img = image(&[reset(1)], None);
        let footer = PAGE_SIZE - FOOTER_END_GAP - ENTRY_HEADER;
        img[footer..footer + 2].copy_from_slice(&3u16.to_le_bytes());
        assert!(matches!(
            Ovmf::parse(&img),
            Err(OvmfError::FooterTableSize { declared: 3, .. })
        ));
        // An entry whose size runs past the table.
        let mut img = image(&[reset(1)], None);
        img[footer - ENTRY_HEADER..footer - ENTRY_HEADER + 2]
            .copy_from_slice(&500u16.to_le_bytes());
        assert!(matches!(
            Ovmf::parse(&img),
            Err(OvmfError::EntrySize { size: 500, .. })
        ));
    }

    /// Outside bytes never panic the parser: flip, truncate and randomise synthetic and real-shaped
    /// images over many seeds (the deterministic stand-in for the cargo-fuzz target).
    #[test]
    fn random_bytes_never_panic() {
        let base = image(
            &[
                reset(0x80b004),
                (
                    SEV_HASH_TABLE_RV_GUID,
                    [0x00u8, 0x0c, 0x81, 0, 0, 4, 0, 0].to_vec(),
                ),
            ],
            Some(metadata(&[
                (0x800000, 0x9000, 1),
                (0x80d000, 0x1000, 2),
                (0x810000, 0x1000, 0x10),
            ])),
        );
        let mut rng = snpkit_testkit::rng::SplitMix64::new(0x5eed);
        let mut next = move || rng.next_u64();
        for _ in 0..20_000 {
            let mut img = base.clone();
            // Mutate bytes in the interesting tail (footer table, metadata) and anywhere.
            for _ in 0..(next() % 8 + 1) {
                let r = next();
                let at = if r % 3 == 0 {
                    (next() as usize) % img.len()
                } else {
                    0x400 + (next() as usize) % (img.len() - 0x400)
                };
                img[at] = next() as u8;
            }
            let _ = Ovmf::parse(&img);
            let _ = Svsm::parse(&img);
            // Keep the tail (where the tables are) and pad the front back to whole pages, so
            // truncation reaches the table walk rather than stopping at the size check.
            let cut = (next() as usize) % (img.len() + 1);
            let mut tail = vec![0u8; (PAGE_SIZE - cut % PAGE_SIZE) % PAGE_SIZE];
            tail.extend_from_slice(&img[img.len() - cut..]);
            let _ = Ovmf::parse(&tail);
            let _ = Ovmf::parse(&img[..cut]);
        }
        for len in [0usize, 1, 49, 50, 4096, 8192] {
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = Ovmf::parse(&junk);
        }
    }
}
