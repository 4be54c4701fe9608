//! A small ext4 formatter for sealed volumes: a journalled filesystem with extents, written by
//! `/init` itself on a volume's first boot.
//!
//! Hand-written rather than shipping `mke2fs`: the initramfs holds only the static `/init`, and
//! e2fsprogs would bring a dynamic loader and five shared libraries into it; busybox's `mke2fs`
//! makes ext2 without a journal and with a random UUID and the current time, so it is neither
//! crash-safe nor reproducible. No Rust crate formats ext4. What this writes is checked by
//! `e2fsck -fn` in the tests (the real tool as the oracle).
//!
//! What it makes, in 4 KiB blocks: the features `has_journal`, `filetype`, `extents`,
//! `sparse_super`, `large_file`, `dir_nlink`, `extra_isize` (what the 6.12 kernel's ext4 mounts
//! read-write, no checksums or flex_bg to get wrong), 32768 blocks per group, one inode per
//! 16 KiB, 256-byte inodes, superblock backups in groups 0, 1 and powers of 3, 5 and 7, the
//! root directory and `lost+found`, and a journal (jbd2 v2) in one extent of group 0.
//!
//! **Reproducible:** the UUID, hash seed and label come from the caller (derived from the volume
//! name), every timestamp is 0, so the same size gives the same bytes.
//!
//! **Every block the filesystem may read before writing it is written here** — superblocks,
//! descriptors, bitmaps, the whole inode tables, both directories and the whole journal (jbd2
//! reads past the last transaction when it recovers). On a sealed volume a block that was never
//! written fails authentication, so this is what makes "unwritten sectors read as errors" harmless:
//! ext4 never reads a data block it did not write (new blocks are zero-filled in memory, unwritten
//! extents read as zeros without I/O).

use std::fs::File;
use std::os::unix::fs::FileExt;

pub const BLOCK: u64 = 4096;
const BLOCKS_PER_GROUP: u64 = 32768;
const INODE_SIZE: u64 = 256;
const INODES_PER_BLOCK: u64 = BLOCK / INODE_SIZE;
const BYTES_PER_INODE: u64 = 16384;
const FIRST_INO: u32 = 11;
const ROOT_INO: u32 = 2;
const JOURNAL_INO: u32 = 8;
const LOST_FOUND_INO: u32 = 11;
/// jbd2 refuses journals below 1024 blocks.
const MIN_JOURNAL_BLOCKS: u64 = 1024;
/// Smallest filesystem we make: room for the journal and some data.
pub const MIN_BLOCKS: u64 = 2048;

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_EXTENTS: u32 = 0x40;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_LARGE_FILE: u32 = 0x2;
const RO_COMPAT_DIR_NLINK: u32 = 0x20;
const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
const EXTENTS_FL: u32 = 0x0008_0000;
const S_IFDIR: u16 = 0o040000;
const S_IFREG: u16 = 0o100000;

#[derive(Debug, thiserror::Error)]
pub enum MkfsError {
    #[error(
        "{bytes} bytes is too small for a filesystem; at least {} MiB are needed",
        (MIN_BLOCKS * BLOCK) >> 20
    )]
    TooSmall { bytes: u64 },
    #[error("{bytes} bytes is larger than this formatter's 16 TiB")]
    TooLarge { bytes: u64 },
    #[error("writing the filesystem at byte {offset}")]
    Write {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

/// What to make.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// Size of the device; the filesystem uses whole groups of it (a last group too small to
    /// hold its own metadata is left out).
    pub bytes: u64,
    pub uuid: [u8; 16],
    pub hash_seed: [u8; 16],
    /// At most 16 bytes are kept.
    pub label: &'a str,
}

/// The layout a size gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    pub blocks: u64,
    pub groups: u64,
    pub inodes_per_group: u64,
    pub itable_blocks: u64,
    pub gdt_blocks: u64,
    pub journal_blocks: u64,
}

fn has_super(group: u64) -> bool {
    if group <= 1 {
        return true;
    }
    [3u64, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < group {
            p *= base;
        }
        p == group
    })
}

impl Geometry {
    pub fn for_bytes(bytes: u64) -> Result<Geometry, MkfsError> {
        let mut blocks = bytes / BLOCK;
        if blocks < MIN_BLOCKS {
            return Err(MkfsError::TooSmall { bytes });
        }
        if blocks > u64::from(u32::MAX) {
            return Err(MkfsError::TooLarge { bytes });
        }
        loop {
            let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
            let inodes = (blocks * BLOCK / BYTES_PER_INODE).max(INODES_PER_BLOCK);
            let inodes_per_group = inodes
                .div_ceil(groups)
                .next_multiple_of(INODES_PER_BLOCK)
                .min(BLOCK * 8);
            let itable_blocks = inodes_per_group / INODES_PER_BLOCK;
            let gdt_blocks = (groups * 32).div_ceil(BLOCK);
            let journal_blocks = match blocks {
                b if b < 32768 => MIN_JOURNAL_BLOCKS,
                b if b < 262_144 => 4096,
                _ => 16384,
            };
            let g = Geometry {
                blocks,
                groups,
                inodes_per_group,
                itable_blocks,
                gdt_blocks,
                journal_blocks,
            };
            let last = g.group_blocks(groups - 1);
            // A last group must hold its metadata and some data, or it is left out.
            if groups > 1 && last < g.overhead(groups - 1) + 64 {
                blocks -= last;
                continue;
            }
            if g.data_start(0) + 2 + journal_blocks > g.group_blocks(0) {
                return Err(MkfsError::TooSmall { bytes });
            }
            return Ok(g);
        }
    }

    fn group_start(&self, group: u64) -> u64 {
        group * BLOCKS_PER_GROUP
    }

    fn group_blocks(&self, group: u64) -> u64 {
        (self.blocks - self.group_start(group)).min(BLOCKS_PER_GROUP)
    }

    fn overhead(&self, group: u64) -> u64 {
        let sb = if has_super(group) {
            1 + self.gdt_blocks
        } else {
            0
        };
        sb + 2 + self.itable_blocks
    }

    fn block_bitmap(&self, group: u64) -> u64 {
        self.group_start(group) + self.overhead(group) - 2 - self.itable_blocks
    }

    fn inode_bitmap(&self, group: u64) -> u64 {
        self.block_bitmap(group) + 1
    }

    fn inode_table(&self, group: u64) -> u64 {
        self.block_bitmap(group) + 2
    }

    fn data_start(&self, group: u64) -> u64 {
        self.group_start(group) + self.overhead(group)
    }

    fn root_dir_block(&self) -> u64 {
        self.data_start(0)
    }

    fn lost_found_block(&self) -> u64 {
        self.data_start(0) + 1
    }

    fn journal_start(&self) -> u64 {
        self.data_start(0) + 2
    }

    pub fn inodes(&self) -> u64 {
        self.inodes_per_group * self.groups
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put32be(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn set_bit(b: &mut [u8], bit: u64) {
    b[(bit / 8) as usize] |= 1 << (bit % 8);
}

/// `i_block` holding one extent of `len` blocks at `start`, in a tree of depth 0.
fn extent_root(start: u64, len: u64) -> [u8; 60] {
    let mut b = [0u8; 60];
    put16(&mut b, 0, 0xF30A); // eh_magic
    put16(&mut b, 2, 1); // eh_entries
    put16(&mut b, 4, 4); // eh_max
    // eh_depth 0, eh_generation 0, then ee_block 0
    put16(&mut b, 16, len as u16); // ee_len (≤ 32768 here)
    put16(&mut b, 18, (start >> 32) as u16);
    put32(&mut b, 20, start as u32);
    b
}

fn inode(mode: u16, links: u16, size: u64, blocks: u64, i_block: &[u8; 60]) -> [u8; 256] {
    let mut b = [0u8; 256];
    put16(&mut b, 0, mode);
    put32(&mut b, 4, size as u32);
    put16(&mut b, 26, links);
    put32(&mut b, 28, (blocks * BLOCK / 512) as u32); // i_blocks in 512-byte units
    put32(&mut b, 32, EXTENTS_FL);
    b[40..100].copy_from_slice(i_block);
    put32(&mut b, 108, (size >> 32) as u32);
    put16(&mut b, 128, 32); // i_extra_isize
    b
}

/// A directory block with `.`, `..` and `extra` entries (file type 2: directory).
fn dir_block(me: u32, parent: u32, extra: &[(u32, &str)]) -> Vec<u8> {
    let mut entries: Vec<(u32, &str)> = vec![(me, "."), (parent, "..")];
    entries.extend_from_slice(extra);
    let mut b = vec![0u8; BLOCK as usize];
    let mut at = 0usize;
    for (i, (ino, name)) in entries.iter().enumerate() {
        let len = (8 + name.len()).next_multiple_of(4);
        let rec_len = if i + 1 == entries.len() {
            BLOCK as usize - at
        } else {
            len
        };
        put32(&mut b, at, *ino);
        put16(&mut b, at + 4, rec_len as u16);
        b[at + 6] = name.len() as u8;
        b[at + 7] = 2;
        b[at + 8..at + 8 + name.len()].copy_from_slice(name.as_bytes());
        at += rec_len;
    }
    b
}

fn write(dev: &File, block: u64, bytes: &[u8]) -> Result<(), MkfsError> {
    let offset = block * BLOCK;
    dev.write_all_at(bytes, offset)
        .map_err(|source| MkfsError::Write { offset, source })
}

fn write_zeros(dev: &File, block: u64, count: u64) -> Result<(), MkfsError> {
    const CHUNK: u64 = 256; // 1 MiB
    let zeros = vec![0u8; (CHUNK * BLOCK) as usize];
    let mut done = 0;
    while done < count {
        let n = (count - done).min(CHUNK);
        write(dev, block + done, &zeros[..(n * BLOCK) as usize])?;
        done += n;
    }
    Ok(())
}

/// Formats `dev` (a block device or file of at least `spec.bytes`) and syncs it. The primary
/// superblock is written last, so an interrupted format leaves no filesystem behind.
pub fn format(dev: &File, spec: &Spec) -> Result<Geometry, MkfsError> {
    let g = Geometry::for_bytes(spec.bytes)?;
    let mut free_blocks_total = 0u64;
    let mut descriptors = vec![0u8; (g.gdt_blocks * BLOCK) as usize];
    for group in 0..g.groups {
        let mut used: Vec<u64> = (g.group_start(group)..g.data_start(group)).collect();
        let mut used_dirs = 0u16;
        let mut used_inodes = 0u64;
        if group == 0 {
            used.extend([g.root_dir_block(), g.lost_found_block()]);
            used.extend(g.journal_start()..g.journal_start() + g.journal_blocks);
            used_dirs = 2;
            used_inodes = u64::from(FIRST_INO);
        }
        let mut block_bitmap = vec![0u8; BLOCK as usize];
        for b in &used {
            set_bit(&mut block_bitmap, b - g.group_start(group));
        }
        // Padding past the group's end is marked used.
        for bit in g.group_blocks(group)..BLOCK * 8 {
            set_bit(&mut block_bitmap, bit);
        }
        let mut inode_bitmap = vec![0u8; BLOCK as usize];
        for bit in (0..used_inodes).chain(g.inodes_per_group..BLOCK * 8) {
            set_bit(&mut inode_bitmap, bit);
        }
        write(dev, g.block_bitmap(group), &block_bitmap)?;
        write(dev, g.inode_bitmap(group), &inode_bitmap)?;
        write_zeros(dev, g.inode_table(group), g.itable_blocks)?;
        let free_blocks = g.group_blocks(group) - used.len() as u64;
        free_blocks_total += free_blocks;
        let d = &mut descriptors[(group * 32) as usize..(group * 32 + 32) as usize];
        put32(d, 0, g.block_bitmap(group) as u32);
        put32(d, 4, g.inode_bitmap(group) as u32);
        put32(d, 8, g.inode_table(group) as u32);
        put16(d, 12, free_blocks as u16);
        put16(d, 14, (g.inodes_per_group - used_inodes) as u16);
        put16(d, 16, used_dirs);
    }

    // Inodes 2 (root), 8 (journal), 11 (lost+found) in group 0's table; the rest stay zero.
    let journal_bytes = g.journal_blocks * BLOCK;
    let inodes: [(u32, [u8; 256]); 3] = [
        (
            ROOT_INO,
            inode(
                S_IFDIR | 0o755,
                3,
                BLOCK,
                1,
                &extent_root(g.root_dir_block(), 1),
            ),
        ),
        (
            JOURNAL_INO,
            inode(
                S_IFREG | 0o600,
                1,
                journal_bytes,
                g.journal_blocks,
                &extent_root(g.journal_start(), g.journal_blocks),
            ),
        ),
        (
            LOST_FOUND_INO,
            inode(
                S_IFDIR | 0o700,
                2,
                BLOCK,
                1,
                &extent_root(g.lost_found_block(), 1),
            ),
        ),
    ];
    let mut table_block = vec![0u8; BLOCK as usize];
    for (ino, bytes) in &inodes {
        let at = ((ino - 1) as u64 * INODE_SIZE) as usize;
        table_block[at..at + 256].copy_from_slice(bytes);
    }
    write(dev, g.inode_table(0), &table_block)?;
    write(
        dev,
        g.root_dir_block(),
        &dir_block(ROOT_INO, ROOT_INO, &[(LOST_FOUND_INO, "lost+found")]),
    )?;
    write(
        dev,
        g.lost_found_block(),
        &dir_block(LOST_FOUND_INO, ROOT_INO, &[]),
    )?;

    // The journal: its superblock, then zeros to the end (read during recovery).
    let mut jsb = vec![0u8; BLOCK as usize];
    put32be(&mut jsb, 0, 0xC03B_3998); // h_magic
    put32be(&mut jsb, 4, 4); // superblock v2
    put32be(&mut jsb, 12, BLOCK as u32);
    put32be(&mut jsb, 16, g.journal_blocks as u32); // s_maxlen
    put32be(&mut jsb, 20, 1); // s_first
    put32be(&mut jsb, 24, 1); // s_sequence
    jsb[48..64].copy_from_slice(&spec.uuid);
    put32be(&mut jsb, 64, 1); // s_nr_users
    write(dev, g.journal_start(), &jsb)?;
    write_zeros(dev, g.journal_start() + 1, g.journal_blocks - 1)?;

    let free_inodes = g.inodes() - u64::from(FIRST_INO);
    let journal_i_block = inodes[1].1;
    let superblock = |group: u64| -> Vec<u8> {
        let mut s = vec![0u8; 1024];
        put32(&mut s, 0, g.inodes() as u32);
        put32(&mut s, 4, g.blocks as u32);
        put32(&mut s, 12, free_blocks_total as u32);
        put32(&mut s, 16, free_inodes as u32);
        put32(&mut s, 24, 2); // log2(block size) - 10
        put32(&mut s, 28, 2);
        put32(&mut s, 32, BLOCKS_PER_GROUP as u32);
        put32(&mut s, 36, BLOCKS_PER_GROUP as u32);
        put32(&mut s, 40, g.inodes_per_group as u32);
        put16(&mut s, 54, 0xFFFF); // s_max_mnt_count -1: no forced checks
        put16(&mut s, 56, 0xEF53);
        put16(&mut s, 58, 1); // clean
        put16(&mut s, 60, 2); // errors: remount read-only
        put32(&mut s, 76, 1); // dynamic revision
        put32(&mut s, 84, FIRST_INO);
        put16(&mut s, 88, INODE_SIZE as u16);
        put16(&mut s, 90, group as u16);
        put32(&mut s, 92, COMPAT_HAS_JOURNAL);
        put32(&mut s, 96, INCOMPAT_FILETYPE | INCOMPAT_EXTENTS);
        put32(
            &mut s,
            100,
            RO_COMPAT_SPARSE_SUPER
                | RO_COMPAT_LARGE_FILE
                | RO_COMPAT_DIR_NLINK
                | RO_COMPAT_EXTRA_ISIZE,
        );
        s[104..120].copy_from_slice(&spec.uuid);
        let label = spec.label.as_bytes();
        let n = label.len().min(16);
        s[120..120 + n].copy_from_slice(&label[..n]);
        put32(&mut s, 224, JOURNAL_INO);
        s[236..252].copy_from_slice(&spec.hash_seed);
        s[252] = 1; // half_md4
        s[253] = 1; // s_jnl_backup_type: the journal inode's blocks are copied below
        s[268..268 + 60].copy_from_slice(&journal_i_block[40..100]);
        put32(&mut s, 268 + 60, (journal_bytes >> 32) as u32);
        put32(&mut s, 268 + 64, journal_bytes as u32);
        put16(&mut s, 348, 32); // s_min_extra_isize
        put16(&mut s, 350, 32); // s_want_extra_isize
        put32(&mut s, 352, 1); // signed directory hash
        s
    };
    // Backups first, then the primary group's descriptors, then its superblock.
    for group in (1..g.groups).filter(|&g| has_super(g)) {
        let start = g.group_start(group);
        let mut block = vec![0u8; BLOCK as usize];
        block[..1024].copy_from_slice(&superblock(group));
        write(dev, start, &block)?;
        write(dev, start + 1, &descriptors)?;
    }
    write(dev, 1, &descriptors)?;
    let mut block0 = vec![0u8; BLOCK as usize];
    block0[1024..2048].copy_from_slice(&superblock(0));
    write(dev, 0, &block0)?;
    dev.sync_all()
        .map_err(|source| MkfsError::Write { offset: 0, source })?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::process::Command;

    fn spec(bytes: u64) -> Spec<'static> {
        Spec {
            bytes,
            uuid: *b"0123456789abcdef",
            hash_seed: [7; 16],
            label: "data",
        }
    }

    fn e2fsck(path: &std::path::Path) -> String {
        let out = Command::new("e2fsck")
            .args(["-fn"])
            .arg(path)
            .output()
            .expect("e2fsck is installed (apt-get install e2fsprogs)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "e2fsck -fn found problems:\n{text}");
        text
    }

    #[test]
    fn e2fsck_finds_nothing_to_fix_at_any_size() {
        // One small group, one full group plus a part, a last group too small to keep, many
        // groups with backups in 1, 3, 5, 7 and 9.
        for mib in [8u64, 64, 129, 130, 300, 1100] {
            let tmp = tempfile::NamedTempFile::new().unwrap();
            let bytes = mib << 20;
            tmp.as_file().set_len(bytes).unwrap();
            let g = format(tmp.as_file(), &spec(bytes)).unwrap();
            let text = e2fsck(tmp.path());
            assert!(
                text.contains(&format!("11/{} files", g.inodes())),
                "{mib} MiB: {text}"
            );
            let dump = Command::new("dumpe2fs")
                .arg("-h")
                .arg(tmp.path())
                .output()
                .unwrap();
            let dump = String::from_utf8_lossy(&dump.stdout);
            for want in [
                "has_journal",
                "extent",
                "filetype",
                "sparse_super",
                "Filesystem UUID:          30313233-3435-3637-3839-616263646566",
                "Filesystem volume name:   data",
                "Total journal size:",
            ] {
                assert!(dump.contains(want), "{mib} MiB: no {want:?} in\n{dump}");
            }
        }
    }

    #[test]
    fn the_same_size_gives_the_same_bytes() {
        let bytes = 40 << 20;
        let image = || {
            let tmp = tempfile::NamedTempFile::new().unwrap();
            tmp.as_file().set_len(bytes).unwrap();
            format(tmp.as_file(), &spec(bytes)).unwrap();
            std::fs::read(tmp.path()).unwrap()
        };
        assert!(image() == image());
    }

    #[test]
    fn sizes_and_groups() {
        assert!(matches!(
            Geometry::for_bytes(4 << 20),
            Err(MkfsError::TooSmall { .. })
        ));
        let g = Geometry::for_bytes(129 << 20).unwrap();
        // 33024 blocks: the 256-block tail is too small for a group of its own and is left out.
        assert_eq!((g.groups, g.blocks), (1, 32768));
        let g = Geometry::for_bytes(300 << 20).unwrap();
        assert_eq!(g.groups, 3);
        assert_eq!(g.inodes_per_group % 16, 0);
        assert!((0..12).filter(|&n| has_super(n)).eq([0, 1, 3, 5, 7, 9]));
    }
}
