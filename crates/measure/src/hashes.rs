//! The SEV hashes table and the page that carries it, exactly as QEMU builds them.
//!
//! QEMU `target/i386/sev.c`, `build_kernel_loader_hashes` and `snp_launch_update_kernel_hashes`:
//! a `SevHashTable` (header GUID and length, then cmdline, initrd and kernel entries of GUID,
//! length and SHA-256) padded with zeros to a multiple of 16 bytes, copied at offset
//! `area->base & 0xfff` into the SNP_KERNEL_HASHES section, whose other bytes are all zero, and
//! measured as normal pages. The cmdline hash covers the raw command line plus its terminating
//! NUL (QEMU never trims); without `-initrd` the initrd hash is that of zero bytes (so "no
//! initrd" and "empty initrd" are one and the same to the PSP).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::MeasureError;
use crate::ovmf::{Ovmf, PAGE_SIZE, Section};
use snpkit_wire::guid::Guid;

const HEADER_GUID: [u8; 16] = Guid::from_text("9438d606-4f22-4cc9-b479-a793d411fd21").0;
const KERNEL_GUID: [u8; 16] = Guid::from_text("4de79437-abd2-427f-b835-d5b172d2045b").0;
const INITRD_GUID: [u8; 16] = Guid::from_text("44baf731-3a2f-4bd7-9af1-41e29169781d").0;
const CMDLINE_GUID: [u8; 16] = Guid::from_text("97d02dd8-bd20-4c94-aa78-e7714d36ab2a").0;

const ENTRY_LEN: usize = 16 + 2 + 32;
const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// `PaddedSevHashTable`: the table rounded up to 16 bytes.
pub const PADDED_TABLE_LEN: usize = TABLE_LEN.div_ceil(16) * 16;

/// A command line QEMU would not pass on as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmdlineError {
    #[error(
        "the kernel command line has a NUL byte at position {position}: QEMU passes it as a C string and would cut it there"
    )]
    Nul { position: usize },
}

/// SHA-256 of the command line as QEMU hashes it: the raw bytes plus a terminating NUL.
pub fn cmdline_hash(cmdline: &[u8]) -> Result<[u8; 32], CmdlineError> {
    if let Some(position) = cmdline.iter().position(|&b| b == 0) {
        return Err(CmdlineError::Nul { position });
    }
    let mut h = Sha256::new();
    h.update(cmdline);
    h.update([0u8]);
    Ok(h.finalize().into())
}

/// The three SHA-256 values QEMU puts in the hashes table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHashes {
    pub kernel: [u8; 32],
    pub initrd: [u8; 32],
    pub cmdline: [u8; 32],
}

impl KernelHashes {
    /// Hashes kernel and initrd (in parallel: they are the bulk of a measurement's time) and the
    /// command line. Pass an empty initrd when there is none.
    pub fn compute(kernel: &[u8], initrd: &[u8], cmdline: &[u8]) -> Result<Self, CmdlineError> {
        let cmdline = cmdline_hash(cmdline)?;
        let (kernel, initrd) = std::thread::scope(|s| {
            let k = s.spawn(|| sha256(kernel));
            let i = sha256(initrd);
            // A panic in SHA-256 is not something outside bytes can cause; recompute rather than unwrap.
            (k.join().unwrap_or_else(|_| sha256(kernel)), i)
        });
        Ok(Self {
            kernel,
            initrd,
            cmdline,
        })
    }

    /// The padded table (`PaddedSevHashTable`) as QEMU lays it out.
    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut t = [0u8; PADDED_TABLE_LEN];
        t[..16].copy_from_slice(&HEADER_GUID);
        t[16..18].copy_from_slice(&(TABLE_LEN as u16).to_le_bytes());
        let entries = [
            (CMDLINE_GUID, &self.cmdline),
            (INITRD_GUID, &self.initrd),
            (KERNEL_GUID, &self.kernel),
        ];
        for (i, (g, hash)) in entries.iter().enumerate() {
            let at = 18 + i * ENTRY_LEN;
            t[at..at + 16].copy_from_slice(g);
            t[at + 16..at + 18].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
            t[at + 18..at + 50].copy_from_slice(*hash);
        }
        t
    }
}

/// Reading the kernel or initrd failed while hashing it.
#[derive(Debug, thiserror::Error)]
pub enum HashInputError {
    #[error("reading the kernel")]
    Kernel(#[source] std::io::Error),
    #[error("reading the initrd")]
    Initrd(#[source] std::io::Error),
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
}

impl KernelHashes {
    /// As [`KernelHashes::compute`], streaming kernel and initrd from readers on two threads so
    /// that reading overlaps hashing and nothing is held in memory.
    pub fn from_readers<K, I>(kernel: K, initrd: I, cmdline: &[u8]) -> Result<Self, HashInputError>
    where
        K: std::io::Read + Send,
        I: std::io::Read + Send,
    {
        let cmdline = cmdline_hash(cmdline)?;
        let (kernel, initrd) = std::thread::scope(|s| {
            let k = s.spawn(|| sha256_stream(kernel));
            let i = sha256_stream(initrd);
            let k = k.join().unwrap_or_else(|_| {
                Err(std::io::Error::other("the kernel hashing thread panicked"))
            });
            (k, i)
        });
        Ok(Self {
            kernel: kernel.map_err(HashInputError::Kernel)?,
            initrd: initrd.map_err(HashInputError::Initrd)?,
            cmdline,
        })
    }
}

/// SHA-256 of a stream, with reading on its own thread so it overlaps hashing (on the benchmark's
/// 50 MB initrd that is the difference between ~1.6× and ~1× the bare hashing time). For the
/// kernel and initrd hashes of [`KernelHashes`] when the caller schedules the streams itself.
pub fn sha256_stream<R: std::io::Read + Send>(mut r: R) -> std::io::Result<[u8; 32]> {
    use std::sync::mpsc::sync_channel;
    // Small enough that a chunk is still in cache when hashed right after being read.
    const CHUNK: usize = 256 << 10;
    const BUFFERS: usize = 4;
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        // Cannot fail: the receiver is alive and the channel has room for every buffer.
        let _ = empty_tx.send(vec![0u8; CHUNK]);
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> std::io::Result<()> {
            while let Ok(mut buf) = empty_rx.recv() {
                let n = fill(&mut r, &mut buf)?;
                if full_tx.send((buf, n)).is_err() || n == 0 {
                    break;
                }
            }
            Ok(())
        });
        let mut h = Sha256::new();
        while let Ok((buf, n)) = full_rx.recv() {
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        reader
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the reading thread panicked")))?;
        Ok(h.finalize().into())
    })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The SNP_KERNEL_HASHES section's contents: what the emulated launch loads at [`HashesPage::gpa`]
/// (`-device loader,file=…,addr=…,force-raw=on`) and what the PSP measures there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashesPage {
    gpa: u64,
    bytes: Vec<u8>,
}

impl HashesPage {
    /// Guest-physical address of the first byte (the SNP_KERNEL_HASHES section's base).
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// The page: 4 KiB (a firmware with a larger SNP_KERNEL_HASHES section is refused).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes the page to `path` (for QEMU's `-device loader`).
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.bytes)
    }

    /// Takes a page from elsewhere (a file QEMU was given) after checking that it fits this OVMF's
    /// SNP_KERNEL_HASHES section.
    pub fn from_bytes(ovmf: &Ovmf, bytes: Vec<u8>) -> Result<Self, MeasureError> {
        let section = kernel_hashes_section(ovmf)?;
        if bytes.len() != section.size as usize {
            return Err(MeasureError::HashesPageSize {
                expected: section.size as usize,
                found: bytes.len(),
            });
        }
        Ok(Self {
            gpa: u64::from(section.gpa),
            bytes,
        })
    }
}

/// The SNP_KERNEL_HASHES section, if it can carry a hashes page.
///
/// The parser lets the section be as large as any metadata (256 MiB), and QEMU would zero and
/// measure all of it; but the table sits inside the first page (at `base & 0xfff`), every real
/// firmware declares one page, and sev-snp-measure asserts exactly that. Refusing anything else
/// here keeps a hostile image from making us allocate and hash up to 256 MiB per guess.
fn kernel_hashes_section(ovmf: &Ovmf) -> Result<Section, MeasureError> {
    let section = ovmf
        .kernel_hashes_section()
        .ok_or(MeasureError::NoKernelHashesSection)?;
    if section.size as usize != PAGE_SIZE {
        return Err(MeasureError::KernelHashesSectionSize { size: section.size });
    }
    Ok(section)
}

/// Builds the hashes page for `ovmf`: refuses a firmware that would not bind kernel, initrd and
/// cmdline to the measurement, or whose hashes table area QEMU would reject.
pub fn hashes_page(ovmf: &Ovmf, hashes: &KernelHashes) -> Result<HashesPage, MeasureError> {
    let section = kernel_hashes_section(ovmf)?;
    let area = ovmf
        .hash_table_area()
        .ok_or(MeasureError::NoHashTableEntry)?;
    if area.base == 0 || (area.size as usize) < PADDED_TABLE_LEN {
        return Err(MeasureError::HashTableArea {
            base: area.base,
            size: area.size,
        });
    }
    let offset = (area.base & 0xfff) as usize;
    if offset + PADDED_TABLE_LEN > section.size as usize {
        return Err(MeasureError::HashTableOutsideSection {
            offset,
            section_size: section.size,
        });
    }
    let mut bytes = vec![0u8; section.size as usize];
    bytes[offset..offset + PADDED_TABLE_LEN].copy_from_slice(&hashes.table());
    Ok(HashesPage {
        gpa: u64::from(section.gpa),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout_matches_qemu() {
        assert_eq!(TABLE_LEN, 168);
        assert_eq!(PADDED_TABLE_LEN, 176);
        let h = KernelHashes::compute(b"", b"", b"").unwrap();
        let t = h.table();
        assert_eq!(hex::encode(&t[..16]), "06d63894224fc94cb479a793d411fd21");
        assert_eq!(&t[16..18], &[168, 0]);
        // First entry is the cmdline, its hash is SHA-256("\0").
        assert_eq!(
            hex::encode(&t[18..34]),
            "d82dd097-20bd-944c-aa78-e7714d36ab2a".replace('-', "")
        );
        assert_eq!(
            hex::encode(&t[36..68]),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        // Empty initrd: SHA-256 of nothing.
        assert_eq!(
            hex::encode(&t[86..118]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(&t[168..], &[0u8; 8]);
    }

    #[test]
    fn readers_and_bytes_agree() {
        let kernel: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 + 7) as u8).collect();
        let initrd = b"initrd".to_vec();
        let a = KernelHashes::compute(&kernel, &initrd, b"x ").unwrap();
        let b = KernelHashes::from_readers(&kernel[..], &initrd[..], b"x ").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_kernel_hashes_section_must_be_one_page() {
        use crate::ovmf::tests::amdsev_like;
        let hashes = KernelHashes::compute(b"k", b"i", b"c").unwrap();
        let one = Ovmf::parse(&amdsev_like(0x1000)).unwrap();
        let page = hashes_page(&one, &hashes).unwrap();
        assert_eq!(page.as_bytes().len(), 4096);
        assert_eq!(
            &page.as_bytes()[0xc00..0xc00 + PADDED_TABLE_LEN],
            &hashes.table()
        );

        // Two pages, and the largest section the parser lets through (a hostile image that used
        // to cost a 255 MiB allocation and hash per guess): refused, naming the size.
        for size in [0x2000u32, 0x0ff0_0000] {
            let ovmf = Ovmf::parse(&amdsev_like(size)).unwrap();
            let err = hashes_page(&ovmf, &hashes).unwrap_err();
            assert_eq!(err, MeasureError::KernelHashesSectionSize { size });
            assert!(err.to_string().contains(&format!("{size:#x}")), "{err}");
            assert_eq!(
                HashesPage::from_bytes(&ovmf, vec![0; 4096]).unwrap_err(),
                MeasureError::KernelHashesSectionSize { size }
            );
        }
        // Without a kernel nothing is allocated for it: the section is measured as zero pages,
        // as QEMU does.
        let two = Ovmf::parse(&amdsev_like(0x2000)).unwrap();
        let config = crate::LaunchConfig {
            vcpus: crate::config::ONE,
            vcpu_type: crate::VcpuType::Signature(0xa00f11),
            vmm: crate::Vmm::Qemu,
            guest_features: crate::GuestFeatures::new(1).unwrap(),
        };
        let firmware = crate::Firmware::measure(&two);
        assert!(crate::launch_digest(&firmware, None, &config).is_ok());
        assert_eq!(
            crate::launch_digest(&firmware, Some(&hashes), &config).unwrap_err(),
            MeasureError::KernelHashesSectionSize { size: 0x2000 }
        );
    }

    #[test]
    fn cmdline_is_hashed_raw_with_nul() {
        assert_ne!(
            cmdline_hash(b"console=ttyS0").unwrap(),
            cmdline_hash(b"console=ttyS0 ").unwrap()
        );
        assert_eq!(cmdline_hash(b"ab").unwrap(), sha256(b"ab\0"));
        assert_eq!(
            cmdline_hash(b"a\0b").unwrap_err(),
            CmdlineError::Nul { position: 1 }
        );
    }
}
