//! What `veritysetup format` is told: algorithm, format, block sizes, salt, superblock, offset.

use super::VerityError;
pub use snpkit_wire::verity::{HashAlgorithm, HashFormat};
use snpkit_wire::verity::{MAX_BLOCK_SIZE, MAX_SALT_LEN, MIN_BLOCK_SIZE};
use std::fmt;
use uuid::Uuid;

/// A dm-verity block size: a power of two from 512 to 4096 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockSize(u32);

impl BlockSize {
    pub const B512: BlockSize = BlockSize(512);
    pub const B4096: BlockSize = BlockSize(4096);

    pub fn new(bytes: u32) -> Result<Self, VerityError> {
        if bytes.is_power_of_two() && (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bytes) {
            Ok(Self(bytes))
        } else {
            Err(VerityError::BlockSize { found: bytes })
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn bytes(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn u64(self) -> u64 {
        u64::from(self.0)
    }
}

impl fmt::Display for BlockSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The salt: 0 to 256 bytes (the superblock's `salt[256]`).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Salt(Vec<u8>);

impl Salt {
    pub fn new(bytes: Vec<u8>) -> Result<Self, VerityError> {
        if bytes.len() > MAX_SALT_LEN {
            return Err(VerityError::SaltTooLong { found: bytes.len() });
        }
        Ok(Self(bytes))
    }

    pub(crate) fn from_bytes32(bytes: [u8; 32]) -> Self {
        Self(bytes.to_vec())
    }

    /// veritysetup's spelling: hex digits (either case), or `-` for no salt.
    pub fn from_hex(text: &str) -> Result<Self, VerityError> {
        if text == "-" {
            return Ok(Self::default());
        }
        let bytes = hex::decode(text).map_err(|e| VerityError::BadHex {
            what: "salt",
            found: text.into(),
            problem: e.to_string(),
        })?;
        if bytes.is_empty() {
            return Err(VerityError::BadHex {
                what: "salt",
                found: text.into(),
                problem: "empty; write - for no salt".into(),
            });
        }
        Self::new(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&hex::encode(&self.0))
        }
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Salt({self})")
    }
}

/// How the hash tree is computed: everything that changes its bytes or its root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeParams {
    pub hash: HashAlgorithm,
    pub format: HashFormat,
    pub data_block_size: BlockSize,
    pub hash_block_size: BlockSize,
    pub salt: Salt,
}

impl TreeParams {
    /// Digests per hash block: 2^⌊log2(hash block / digest)⌋ in both formats.
    pub(crate) fn per_block(&self) -> usize {
        let fit = self.hash_block_size.bytes() / self.hash.digest_len();
        1 << fit.ilog2()
    }

    /// Bytes from one digest to the next inside a hash block: format 1 pads each digest to a
    /// power of two (sha1: 20 → 32), format 0 packs them.
    pub(crate) fn slot(&self) -> usize {
        match self.format {
            HashFormat::V1 => self.hash.digest_len().next_power_of_two(),
            HashFormat::ChromeOs => self.hash.digest_len(),
        }
    }
}

/// Bytes of the v1 superblock (`superblock.rs` encodes it); the tree starts at the next hash block.
pub const SUPERBLOCK_LEN: usize = 512;

/// Where the tree goes on the hash device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Superblock {
    /// veritysetup's default: a 512-byte v1 superblock at the hash offset, the tree from the next
    /// hash block on.
    V1 { uuid: Uuid },
    /// `--no-superblock`: the tree starts at the hash offset.
    None,
}

/// Everything `veritysetup format` takes (but the FEC options, which we do not support).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityOptions {
    pub tree: TreeParams,
    pub superblock: Superblock,
    /// Byte offset of the superblock (or of the tree, without one) on the hash device: a multiple of
    /// 512, and of the hash block size when there is no superblock. Non-zero when data and hash
    /// tree share one file.
    pub hash_offset: u64,
}

impl VerityOptions {
    /// veritysetup's defaults (sha256, format 1, 4096-byte blocks, superblock) with the given salt
    /// and UUID.
    pub fn new(salt: Salt, uuid: Uuid) -> Self {
        Self {
            tree: TreeParams {
                hash: HashAlgorithm::Sha256,
                format: HashFormat::V1,
                data_block_size: BlockSize::B4096,
                hash_block_size: BlockSize::B4096,
                salt,
            },
            superblock: Superblock::V1 { uuid },
            hash_offset: 0,
        }
    }

    /// The first block of the tree on the hash device, in hash blocks (cryptsetup's
    /// `VERITY_hash_offset_block`): after the superblock, rounded up to a hash block.
    pub fn hash_start_block(&self) -> Result<u64, VerityError> {
        self.check_offset()?;
        let hbs = self.tree.hash_block_size.u64();
        Ok(match self.superblock {
            Superblock::None => self.hash_offset / hbs,
            Superblock::V1 { .. } => (self.hash_offset + SUPERBLOCK_LEN as u64).div_ceil(hbs),
        })
    }

    fn check_offset(&self) -> Result<(), VerityError> {
        let hbs = self.tree.hash_block_size.u64();
        let aligned = match self.superblock {
            Superblock::V1 { .. } => self.hash_offset.is_multiple_of(512),
            // veritysetup would put the tree at the hash block below the offset, over whatever is there.
            Superblock::None => self.hash_offset.is_multiple_of(hbs),
        };
        let fits = self.hash_offset.checked_add(hbs * 2).is_some();
        if !aligned || !fits {
            return Err(VerityError::HashOffset {
                offset: self.hash_offset,
                align: match self.superblock {
                    Superblock::V1 { .. } => 512,
                    Superblock::None => hbs,
                },
            });
        }
        Ok(())
    }
}
