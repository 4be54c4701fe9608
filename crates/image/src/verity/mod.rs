//! dm-verity hash trees, byte for byte what `veritysetup format` writes (cryptsetup 2.6, checked
//! against it by a differential test and against cryptsetup's own test vectors).
//!
//! Written here rather than wrapped: no Rust crate writes veritysetup's exact on-disk format (the
//! superblock, format 0's salt order and packing, the hash offset), and running `veritysetup` from
//! the builder would tie reproducibility to a host tool. It is plain RustCrypto hashing (sha1,
//! sha2, which use SHA-NI when the CPU has it) spread over every core with rayon.
//!
//! - [`format`] hashes a slice in memory, [`format_at`] reads a file with positional reads on every
//!   core (each task reads the data of one hash block and hashes it while it is in cache: the
//!   fastest path), [`format_reader`] streams any reader. None needs the image in memory, only its
//!   tree (about 8 MiB for 1 GiB). Each returns a [`Formatted`]: the bytes that belong at the hash
//!   offset of the hash device, and the root hash.
//! - [`verify`] rechecks data and a hash device against a root hash, naming the first bad block.
//! - [`VeritySuperblock`] reads and writes the v1 superblock.
//! - [`salt_from_seed`] and [`uuid_from_seed`] derive the salt and UUID from a recipe's seed: a
//!   random salt, as veritysetup picks by default, would make every build differ.

mod error;
mod params;
mod seed;
mod superblock;
mod tree;
mod verify;

#[cfg(test)]
mod tests;

pub use error::{Mismatch, VerityError};
pub use params::{
    BlockSize, HashAlgorithm, HashFormat, SUPERBLOCK_LEN, Salt, Superblock, TreeParams,
    VerityOptions,
};
pub use seed::{salt_from_seed, uuid_from_seed};
pub use superblock::VeritySuperblock;
pub use tree::ReadAt;
pub use uuid::Uuid;
pub use verify::{TreeLayout, verify};

use snpkit_wire::verity::VerityFields;
/// What the builder needs to put the parameters on the kernel command line.
pub use snpkit_wire::verity::{BootCheck, Corruption, VerityParams};
use std::io::Read;

/// The result of formatting: what to write to the hash device, and the root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatted {
    pub options: VerityOptions,
    /// The hash area: the bytes that belong at `options.hash_offset` on the hash device (the
    /// superblock, zeros up to the next hash block, the tree), so the device is
    /// `hash_offset + hash_area.len()` bytes long.
    pub hash_area: Vec<u8>,
    pub root_hash: Vec<u8>,
    pub data_blocks: u64,
    /// First block of the tree on the hash device, in hash blocks.
    pub hash_start_block: u64,
    /// Blocks in the tree (veritysetup's "Hash blocks").
    pub hash_blocks: u64,
}

impl Formatted {
    /// Where the tree is, for [`verify`].
    pub fn layout(&self) -> TreeLayout {
        TreeLayout {
            tree: self.options.tree.clone(),
            data_blocks: self.data_blocks,
            hash_start_block: self.hash_start_block,
        }
    }

    /// The parameters for the kernel command line (`snpkit.verity=`) and the guest's dm table.
    ///
    /// The kernel never reads a superblock, so its bytes (and the zeros up to the tree) are
    /// covered by nothing: for an appliance image, where a flipped byte anywhere on the hash
    /// device must stop the boot, format with [`Superblock::None`] and every byte of the hash
    /// device is then part of the tree that the root hash covers.
    pub fn kernel_params(
        &self,
        corruption: Corruption,
        check: BootCheck,
    ) -> Result<VerityParams, VerityError> {
        let tree = &self.options.tree;
        VerityParams::new(VerityFields {
            format: tree.format,
            hash: tree.hash,
            data_block_size: tree.data_block_size.get(),
            hash_block_size: tree.hash_block_size.get(),
            data_blocks: self.data_blocks,
            hash_start_block: self.hash_start_block,
            root_hash: self.root_hash.clone(),
            salt: tree.salt.as_bytes().to_vec(),
            corruption,
            check,
        })
        .map_err(VerityError::Params)
    }
}

/// Formats `data`, held in memory.
pub fn format(data: &[u8], options: &VerityOptions) -> Result<Formatted, VerityError> {
    let tree = &options.tree;
    let blocks = data_blocks(data.len() as u64, tree)?;
    options.hash_start_block()?;
    let level0 = tree::hash_level(tree, data, tree.data_block_size.bytes());
    finish(options, level0, blocks)
}

/// Formats the first `len` bytes of `src` (an open file, say), read with positional reads by every
/// core at once: the fastest way for data that is not in memory yet.
pub fn format_at<S: ReadAt + ?Sized>(
    src: &S,
    len: u64,
    options: &VerityOptions,
) -> Result<Formatted, VerityError> {
    let blocks = data_blocks(len, &options.tree)?;
    options.hash_start_block()?;
    let level0 = tree::hash_level0_at(&options.tree, src, len)?;
    finish(options, level0, blocks)
}

/// Formats everything `data` yields until its end, reading it in chunks on a second thread.
pub fn format_reader<R: Read + Send>(
    data: R,
    options: &VerityOptions,
) -> Result<Formatted, VerityError> {
    options.hash_start_block()?;
    let (level0, len) = tree::hash_stream(&options.tree, data)?;
    let blocks = data_blocks(len, &options.tree)?;
    finish(options, level0, blocks)
}

fn data_blocks(len: u64, tree: &TreeParams) -> Result<u64, VerityError> {
    let size = tree.data_block_size.u64();
    if len == 0 {
        return Err(VerityError::Empty);
    }
    if !len.is_multiple_of(size) {
        return Err(VerityError::NotBlockAligned {
            len,
            block_size: tree.data_block_size.get(),
        });
    }
    Ok(len / size)
}

fn finish(
    options: &VerityOptions,
    level0: Vec<u8>,
    data_blocks: u64,
) -> Result<Formatted, VerityError> {
    let tree = &options.tree;
    let hash_start_block = options.hash_start_block()?;
    let built = tree::finish(tree, level0, data_blocks);
    let superblock = match options.superblock {
        Superblock::V1 { uuid } => Some(
            VeritySuperblock {
                uuid,
                tree: tree.clone(),
                data_blocks,
            }
            .encode(),
        ),
        Superblock::None => None,
    };
    let hbs = tree.hash_block_size.u64();
    let tree_start = hash_start_block * hbs - options.hash_offset;
    let hash_blocks = built.levels.iter().map(|l| l.len() as u64).sum::<u64>() / hbs;
    let hash_area = tree::assemble(&built.levels, superblock.as_ref(), tree_start as usize);
    Ok(Formatted {
        options: options.clone(),
        hash_area,
        root_hash: built.root,
        data_blocks,
        hash_start_block,
        hash_blocks,
    })
}

/// Reads the superblock at `hash_offset` of a hash device and says where the tree is.
pub fn read_superblock(
    hash_device: &[u8],
    hash_offset: u64,
) -> Result<(VeritySuperblock, TreeLayout), VerityError> {
    let at = usize::try_from(hash_offset).map_err(|_| VerityError::Overflow)?;
    let sb = VeritySuperblock::parse(hash_device.get(at..).unwrap_or_default())?;
    let options = VerityOptions {
        tree: sb.tree.clone(),
        superblock: Superblock::V1 { uuid: sb.uuid },
        hash_offset,
    };
    let layout = TreeLayout {
        tree: sb.tree.clone(),
        data_blocks: sb.data_blocks,
        hash_start_block: options.hash_start_block()?,
    };
    Ok((sb, layout))
}

/// Parses a root hash as veritysetup takes it (hex, either case) for `hash`.
pub fn parse_root_hash(text: &str, hash: HashAlgorithm) -> Result<Vec<u8>, VerityError> {
    let bytes = hex::decode(text.trim()).map_err(|e| VerityError::BadHex {
        what: "root hash",
        found: text.into(),
        problem: e.to_string(),
    })?;
    if bytes.len() != hash.digest_len() {
        return Err(VerityError::RootHashLength {
            hash,
            expected: hash.digest_len(),
            found: bytes.len(),
        });
    }
    Ok(bytes)
}
