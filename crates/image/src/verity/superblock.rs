//! The 512-byte v1 superblock veritysetup writes at the hash offset (cryptsetup's
//! `struct verity_sb`, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | signature `verity\0\0` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | hash type (0 Chrome OS, 1) |
//! | 16 | 16 | UUID |
//! | 32 | 32 | algorithm name, NUL-padded |
//! | 64 | 4 | data block size |
//! | 68 | 4 | hash block size |
//! | 72 | 8 | data blocks |
//! | 80 | 2 | salt size |
//! | 82 | 6 | padding |
//! | 88 | 256 | salt, zero-padded |
//! | 344 | 168 | padding |
//!
//! The kernel never reads it: it is how `veritysetup open` and our `verity verify` find the
//! parameters. Parsing is stricter than cryptsetup's (padding must be zero, the name must be one of
//! ours), so that whatever parses re-encodes to the same bytes.

use super::VerityError;
use super::params::{BlockSize, HashAlgorithm, HashFormat, SUPERBLOCK_LEN, Salt, TreeParams};
use uuid::Uuid;

const SIGNATURE: &[u8; 8] = b"verity\0\0";

/// A decoded superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeritySuperblock {
    pub uuid: Uuid,
    pub tree: TreeParams,
    pub data_blocks: u64,
}

impl VeritySuperblock {
    pub fn encode(&self) -> [u8; SUPERBLOCK_LEN] {
        let mut sb = [0u8; SUPERBLOCK_LEN];
        sb[0..8].copy_from_slice(SIGNATURE);
        sb[8..12].copy_from_slice(&1u32.to_le_bytes());
        sb[12..16].copy_from_slice(&self.tree.format.number().to_le_bytes());
        sb[16..32].copy_from_slice(self.uuid.as_bytes());
        let name = self.tree.hash.name().as_bytes();
        sb[32..32 + name.len()].copy_from_slice(name);
        sb[64..68].copy_from_slice(&self.tree.data_block_size.get().to_le_bytes());
        sb[68..72].copy_from_slice(&self.tree.hash_block_size.get().to_le_bytes());
        sb[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        let salt = self.tree.salt.as_bytes();
        // A Salt holds at most 256 bytes.
        sb[80..82].copy_from_slice(&(salt.len() as u16).to_le_bytes());
        sb[88..88 + salt.len()].copy_from_slice(salt);
        sb
    }

    /// Decodes the first 512 bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, VerityError> {
        let corrupt = |problem: String| VerityError::Superblock { problem };
        let sb: &[u8; SUPERBLOCK_LEN] = bytes
            .get(..SUPERBLOCK_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                corrupt(format!(
                    "the hash device holds {} bytes at the offset, a superblock needs {SUPERBLOCK_LEN}",
                    bytes.len()
                ))
            })?;
        let u32_at = |at: usize| u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]);
        if &sb[0..8] != SIGNATURE {
            return Err(corrupt(format!(
                "no verity signature (found {:02x?}); is this a hash device made without --no-superblock, at the right --hash-offset?",
                &sb[0..8]
            )));
        }
        let version = u32_at(8);
        if version != 1 {
            return Err(corrupt(format!("version {version}, only 1 exists")));
        }
        let hash_type = u32_at(12);
        let format = HashFormat::from_number(hash_type)
            .ok_or_else(|| corrupt(format!("hash type {hash_type}, expected 0 or 1")))?;
        let uuid = Uuid::from_slice(&sb[16..32]).map_err(|e| corrupt(e.to_string()))?;
        let name_field = &sb[32..64];
        let name_len = name_field.iter().position(|&b| b == 0).unwrap_or(32);
        if name_field[name_len..].iter().any(|&b| b != 0) {
            return Err(corrupt("bytes after the algorithm name's NUL".into()));
        }
        let name = std::str::from_utf8(&name_field[..name_len]).map_err(|_| {
            corrupt(format!(
                "algorithm name {:02x?} is not text",
                &name_field[..name_len]
            ))
        })?;
        let hash: HashAlgorithm = name.parse().map_err(|_| {
            corrupt(format!(
                "algorithm {name:?}; we support sha1, sha256, sha512"
            ))
        })?;
        let block = |at: usize, what: &str| {
            BlockSize::new(u32_at(at))
                .map_err(|_| corrupt(format!("{what} block size {}", u32_at(at))))
        };
        let data_block_size = block(64, "data")?;
        let hash_block_size = block(68, "hash")?;
        let mut data_blocks = [0u8; 8];
        data_blocks.copy_from_slice(&sb[72..80]);
        let data_blocks = u64::from_le_bytes(data_blocks);
        if data_blocks == 0 {
            return Err(corrupt("0 data blocks".into()));
        }
        let salt_len = usize::from(u16::from_le_bytes([sb[80], sb[81]]));
        if salt_len > 256 {
            return Err(corrupt(format!("salt size {salt_len}, at most 256")));
        }
        if sb[82..88].iter().any(|&b| b != 0) || sb[88 + salt_len..].iter().any(|&b| b != 0) {
            return Err(corrupt("non-zero padding".into()));
        }
        let salt = Salt::new(sb[88..88 + salt_len].to_vec())?;
        let tree = TreeParams {
            hash,
            format,
            data_block_size,
            hash_block_size,
            salt,
        };
        Ok(Self {
            uuid,
            tree,
            data_blocks,
        })
    }
}
