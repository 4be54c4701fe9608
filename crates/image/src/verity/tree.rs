//! Hashing blocks and building the tree, level by level, on every core.
//!
//! Layout (cryptsetup's `lib/verity/verity_hash.c`, the kernel's `dm-verity-target.c`): level 0
//! holds the digests of the data blocks, level n+1 the digests of level n's hash blocks, until a
//! level fits in one block, whose digest is the root hash. On the device the top level comes first.
//! Data is read in large chunks by a second thread while the rayon pool hashes the previous chunk;
//! the whole tree (about 1/128 of the data at 4 KiB and sha256) stays in memory.

use super::VerityError;
use super::params::{HashAlgorithm, HashFormat, SUPERBLOCK_LEN, TreeParams};
use rayon::prelude::*;
use sha2::Digest;
use std::io::Read;
use std::sync::mpsc::sync_channel;

/// Bytes of data hashed per step; large enough that the threads rarely wait on each other.
const CHUNK: usize = 8 << 20;

/// The digest of one block under the tree's salt rule: format 1 is H(salt ‖ block), format 0
/// (Chrome OS) is H(block ‖ salt).
pub(crate) fn digest_into(tree: &TreeParams, block: &[u8], out: &mut [u8]) {
    fn run<D: Digest>(tree: &TreeParams, block: &[u8], out: &mut [u8]) {
        let mut d = D::new();
        let salt = tree.salt.as_bytes();
        match tree.format {
            HashFormat::V1 => {
                d.update(salt);
                d.update(block);
            }
            HashFormat::ChromeOs => {
                d.update(block);
                d.update(salt);
            }
        }
        out.copy_from_slice(&d.finalize());
    }
    match tree.hash {
        HashAlgorithm::Sha1 => run::<sha1::Sha1>(tree, block, out),
        HashAlgorithm::Sha256 => run::<sha2::Sha256>(tree, block, out),
        HashAlgorithm::Sha512 => run::<sha2::Sha512>(tree, block, out),
    }
}

pub(crate) fn digest(tree: &TreeParams, block: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; tree.hash.digest_len()];
    digest_into(tree, block, &mut out);
    out
}

/// Hashes `input`, a whole number of `block_size` blocks, into hash blocks: the digest of block i
/// goes to slot i mod per_block of hash block i / per_block; the rest stays zero.
pub(crate) fn hash_level(tree: &TreeParams, input: &[u8], block_size: usize) -> Vec<u8> {
    let (per, slot, len) = (tree.per_block(), tree.slot(), tree.hash.digest_len());
    let hbs = tree.hash_block_size.bytes();
    let blocks = input.len() / block_size;
    let mut out = vec![0u8; blocks.div_ceil(per) * hbs];
    out.par_chunks_mut(hbs)
        .zip(input.par_chunks(per * block_size))
        .for_each(|(hash_block, group)| {
            for (i, block) in group.chunks_exact(block_size).enumerate() {
                digest_into(tree, block, &mut hash_block[i * slot..i * slot + len]);
            }
        });
    out
}

/// Positional reads from something that holds the data: a file (`pread`) or bytes in memory.
pub trait ReadAt: Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = self
            .get(start..)
            .and_then(|rest| rest.get(..buf.len()))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Level 0 of the first `len` bytes of `src` (a whole number of data blocks): each task reads the
/// data of one level-0 hash block into its own buffer and hashes it while it is still in cache.
pub(crate) fn hash_level0_at<S: ReadAt + ?Sized>(
    tree: &TreeParams,
    src: &S,
    len: u64,
) -> Result<Vec<u8>, VerityError> {
    let (per, slot, digest_len) = (tree.per_block(), tree.slot(), tree.hash.digest_len());
    let (dbs, hbs) = (tree.data_block_size.bytes(), tree.hash_block_size.bytes());
    let group = (per * dbs) as u64;
    let hash_blocks = usize::try_from(len.div_ceil(group)).map_err(|_| VerityError::Overflow)?;
    let mut level0 = vec![0u8; hash_blocks * hbs];
    level0
        .par_chunks_mut(hbs)
        .enumerate()
        .try_for_each_init(
            || vec![0u8; per * dbs],
            |buf, (i, hash_block)| {
                let offset = i as u64 * group;
                let n = (len - offset).min(group) as usize;
                src.read_exact_at(&mut buf[..n], offset)?;
                for (j, block) in buf[..n].chunks_exact(dbs).enumerate() {
                    digest_into(
                        tree,
                        block,
                        &mut hash_block[j * slot..j * slot + digest_len],
                    );
                }
                Ok(())
            },
        )
        .map_err(VerityError::Read)?;
    Ok(level0)
}

/// A computed tree: its levels (bottom first) and root hash.
pub(crate) struct Tree {
    pub levels: Vec<Vec<u8>>,
    pub root: Vec<u8>,
}

/// Builds the levels above level 0. With a single data block there is no tree: its digest (the
/// first slot of the one level-0 block) is the root hash, as veritysetup does.
pub(crate) fn finish(tree: &TreeParams, level0: Vec<u8>, data_blocks: u64) -> Tree {
    let hbs = tree.hash_block_size.bytes();
    if data_blocks == 1 {
        let root = level0[..tree.hash.digest_len()].to_vec();
        return Tree {
            levels: Vec::new(),
            root,
        };
    }
    let mut levels = vec![level0];
    while let Some(top) = levels.last().filter(|top| top.len() > hbs) {
        let next = hash_level(tree, top, hbs);
        levels.push(next);
    }
    let root = digest(tree, levels.last().map_or(&[][..], |top| &top[..hbs]));
    Tree { levels, root }
}

/// Reads `data` to its end in chunks and returns level 0 and the number of bytes read.
pub(crate) fn hash_stream<R: Read + Send>(
    tree: &TreeParams,
    data: R,
) -> Result<(Vec<u8>, u64), VerityError> {
    let dbs = tree.data_block_size.bytes();
    let mut level0 = Vec::new();
    let total = for_each_chunk(tree, data, |chunk| {
        // A partial block at the end is refused by the caller, once the total is known.
        level0.extend(hash_level(tree, &chunk[..chunk.len() / dbs * dbs], dbs));
    })?;
    Ok((level0, total))
}

/// Calls `f` on consecutive chunks of `data` (each a whole number of level-0 hash blocks' worth
/// of data blocks, but the last) and returns the number of bytes read. A reader thread fills one
/// buffer while `f` (hashing on the rayon pool) works on the other.
pub(crate) fn for_each_chunk<R: Read + Send, F: FnMut(&[u8])>(
    tree: &TreeParams,
    mut data: R,
    mut f: F,
) -> Result<u64, VerityError> {
    let group = tree.per_block() * tree.data_block_size.bytes();
    let chunk = (CHUNK / group).max(1) * group;
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(1);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(3);
        for _ in 0..2 {
            // Cannot fail: the receiver is alive and the channel has room.
            let _ = empty_tx.send(vec![0u8; chunk]);
        }
        let reader = scope.spawn(move || -> std::io::Result<u64> {
            let mut total = 0u64;
            while let Ok(mut buf) = empty_rx.recv() {
                let filled = fill(&mut data, &mut buf)?;
                total += filled as u64;
                let end = filled < buf.len();
                if filled > 0 && full_tx.send((buf, filled)).is_err() {
                    break;
                }
                if end {
                    break;
                }
            }
            Ok(total)
        });
        for (buf, filled) in full_rx {
            f(&buf[..filled]);
            let _ = empty_tx.send(buf);
        }
        match reader.join() {
            Ok(result) => result.map_err(VerityError::Read),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Reads until `buf` is full or the reader ends; returns how much was read.
fn fill<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The hash area (from the hash offset on): the superblock if any, zeros up to the tree's first
/// block, then the levels, top first.
pub(crate) fn assemble(
    levels: &[Vec<u8>],
    superblock: Option<&[u8; SUPERBLOCK_LEN]>,
    tree_start: usize,
) -> Vec<u8> {
    let tree_len: usize = levels.iter().map(Vec::len).sum();
    let mut area = Vec::with_capacity(tree_start + tree_len);
    if let Some(sb) = superblock {
        area.extend_from_slice(sb);
    }
    area.resize(tree_start, 0);
    for level in levels.iter().rev() {
        area.extend_from_slice(level);
    }
    area
}
