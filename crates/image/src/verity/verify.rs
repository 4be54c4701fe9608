//! Checking a hash tree against a root hash the way the kernel does: from the root down, each
//! block against the digest its (already checked) parent holds, so the first failure names the
//! block that is wrong rather than every block above it. Like `veritysetup verify`, it also
//! insists that the unused bytes of hash blocks are zero.

use super::params::TreeParams;
use super::tree::{digest, digest_into};
use super::{Mismatch, VerityError};
use rayon::prelude::*;
use snpkit_wire::verity::tree_level_blocks;
use std::io::Read;

/// Where the tree is and how big the data is; from a superblock or given by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeLayout {
    pub tree: TreeParams,
    pub data_blocks: u64,
    /// First block of the tree on the hash device, in hash blocks.
    pub hash_start_block: u64,
}

/// Checks the first `layout.data_blocks` blocks of `data` and the tree in `hash_device` (the
/// whole hash device, from byte 0) against `root_hash`.
pub fn verify<R: Read + Send>(
    data: R,
    hash_device: &[u8],
    layout: &TreeLayout,
    root_hash: &[u8],
) -> Result<(), VerityError> {
    let tree = &layout.tree;
    let len = tree.hash.digest_len();
    if root_hash.len() != len {
        return Err(VerityError::RootHashLength {
            hash: tree.hash,
            expected: len,
            found: root_hash.len(),
        });
    }
    if layout.data_blocks == 0 {
        return Err(VerityError::Empty);
    }
    let hbs = tree.hash_block_size.bytes();
    let counts = tree_level_blocks(len, tree.hash_block_size.get(), layout.data_blocks);
    let tree_blocks: u64 = counts.iter().sum();
    let needed = layout
        .hash_start_block
        .checked_add(tree_blocks)
        .and_then(|b| b.checked_mul(hbs as u64))
        .ok_or(VerityError::Overflow)?;
    if (hash_device.len() as u64) < needed {
        return Err(VerityError::HashDeviceTooSmall {
            needed,
            found: hash_device.len() as u64,
        });
    }
    // Level i starts after every level above it.
    let mut starts = vec![0u64; counts.len()];
    let mut at = layout.hash_start_block;
    for i in (0..counts.len()).rev() {
        starts[i] = at;
        at += counts[i];
    }
    let level = |i: usize| -> &[u8] {
        // In bounds: the device holds `needed` bytes.
        let from = starts[i] as usize * hbs;
        &hash_device[from..from + counts[i] as usize * hbs]
    };

    let Some(top) = counts.len().checked_sub(1) else {
        // One data block: its digest is the root hash.
        let dbs = tree.data_block_size.u64();
        let mut block = Vec::new();
        let read = data
            .take(dbs)
            .read_to_end(&mut block)
            .map_err(VerityError::Read)?;
        if (read as u64) < dbs {
            return Err(VerityError::DataTooShort {
                needed: dbs,
                found: read as u64,
            });
        }
        return check_root(tree, &digest(tree, &block), root_hash, None);
    };
    check_root(
        tree,
        &digest(tree, level(top)),
        root_hash,
        Some(starts[top]),
    )?;
    for i in (0..top).rev() {
        check_spare(tree, level(i + 1), counts[i], starts[i + 1])?;
        check_level(tree, level(i), hbs, level(i + 1), starts[i])?;
    }
    check_spare(tree, level(0), layout.data_blocks, starts[0])?;
    check_data(tree, data, layout.data_blocks, level(0))
}

fn check_root(
    tree: &TreeParams,
    computed: &[u8],
    expected: &[u8],
    top_block: Option<u64>,
) -> Result<(), VerityError> {
    if computed == expected {
        return Ok(());
    }
    Err(VerityError::Corrupted(Mismatch::RootHash {
        top_block,
        expected: hex::encode(expected),
        computed: hex::encode(computed),
        hash: tree.hash,
    }))
}

/// The digest of `child` block j must be in slot j of `parent`.
fn check_level(
    tree: &TreeParams,
    children: &[u8],
    block_size: usize,
    parent: &[u8],
    first_child: u64,
) -> Result<(), VerityError> {
    let bad = children
        .par_chunks(block_size)
        .enumerate()
        .position_first(|(j, block)| !slot_matches(tree, parent, j, block));
    match bad {
        None => Ok(()),
        Some(j) => Err(VerityError::Corrupted(Mismatch::HashBlock {
            block: first_child + j as u64,
        })),
    }
}

fn slot_matches(tree: &TreeParams, parent: &[u8], j: usize, block: &[u8]) -> bool {
    let (per, slot, len) = (tree.per_block(), tree.slot(), tree.hash.digest_len());
    let hbs = tree.hash_block_size.bytes();
    let at = (j / per) * hbs + (j % per) * slot;
    let mut computed = [0u8; 64];
    digest_into(tree, block, &mut computed[..len]);
    parent[at..at + len] == computed[..len]
}

/// Bytes of `parent` (holding `children` digests) that hold no digest must be zero.
fn check_spare(
    tree: &TreeParams,
    parent: &[u8],
    children: u64,
    first_block: u64,
) -> Result<(), VerityError> {
    let (per, slot, len) = (tree.per_block(), tree.slot(), tree.hash.digest_len());
    let hbs = tree.hash_block_size.bytes();
    let bad = parent
        .par_chunks(hbs)
        .enumerate()
        .position_first(|(b, block)| {
            let used = children.saturating_sub((b * per) as u64).min(per as u64) as usize;
            let slots_dirty = (0..used).any(|i| {
                block[i * slot + len..(i + 1) * slot]
                    .iter()
                    .any(|&x| x != 0)
            });
            slots_dirty || block[used * slot..].iter().any(|&x| x != 0)
        });
    match bad {
        None => Ok(()),
        Some(b) => Err(VerityError::Corrupted(Mismatch::SpareArea {
            block: first_block + b as u64,
        })),
    }
}

fn check_data<R: Read + Send>(
    tree: &TreeParams,
    data: R,
    data_blocks: u64,
    level0: &[u8],
) -> Result<(), VerityError> {
    let dbs = tree.data_block_size.bytes();
    let wanted = data_blocks * dbs as u64;
    let mut first_bad = None;
    let mut done = 0u64;
    let read = super::tree::for_each_chunk(tree, data.take(wanted), |chunk| {
        if first_bad.is_none() {
            let base = done / dbs as u64;
            first_bad = chunk
                .par_chunks(dbs)
                .enumerate()
                .position_first(|(j, block)| {
                    !slot_matches(tree, level0, (base as usize) + j, block)
                })
                .map(|j| base + j as u64);
        }
        done += chunk.len() as u64;
    })?;
    if read < wanted {
        return Err(VerityError::DataTooShort {
            needed: wanted,
            found: read,
        });
    }
    match first_bad {
        None => Ok(()),
        Some(block) => Err(VerityError::Corrupted(Mismatch::DataBlock {
            block,
            offset: block * dbs as u64,
        })),
    }
}
