//! The 96-byte ID block: what the image's owner vouches for with the ID key.

use crate::error::{DecodeError, check_size, check_zero};
use crate::layout::{array, block::*, u32_at, u64_at};

/// The only ID block format version the ABI defines.
pub const ID_BLOCK_VERSION: u32 = 1;

/// An ID block (VERSION is always [`ID_BLOCK_VERSION`], so it is not a field here).
///
/// | offset | size | field |
/// |-------:|-----:|-------|
/// | 0x00 | 48 | LD: the launch digest the PSP must compute |
/// | 0x30 | 16 | FAMILY_ID (the owner's choice; reported as-is) |
/// | 0x40 | 16 | IMAGE_ID (the owner's choice; reported as-is) |
/// | 0x50 | 4  | VERSION = 1 |
/// | 0x54 | 4  | GUEST_SVN (reported; bounds the SVN a derived key may ask for) |
/// | 0x58 | 8  | POLICY: must equal the launch policy |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdBlock {
    pub launch_digest: [u8; 48],
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub guest_svn: u32,
    pub policy: u64,
}

impl IdBlock {
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[LD].copy_from_slice(&self.launch_digest);
        b[FAMILY_ID].copy_from_slice(&self.family_id);
        b[IMAGE_ID].copy_from_slice(&self.image_id);
        b[VERSION..VERSION + 4].copy_from_slice(&ID_BLOCK_VERSION.to_le_bytes());
        b[GUEST_SVN..GUEST_SVN + 4].copy_from_slice(&self.guest_svn.to_le_bytes());
        b[POLICY..POLICY + 8].copy_from_slice(&self.policy.to_le_bytes());
        b
    }

    /// Decodes exactly 96 bytes of VERSION 1. The policy bits are not judged here: LAUNCH_FINISH
    /// compares POLICY with the launch policy, which LAUNCH_START has already checked.
    pub fn decode(bytes: &[u8]) -> Result<IdBlock, DecodeError> {
        check_size("ID block", LEN, bytes)?;
        check_zero(bytes, 0, "ID block", RESERVED)?;
        let version = u32_at(bytes, VERSION);
        if version != ID_BLOCK_VERSION {
            return Err(DecodeError::Version { found: version });
        }
        Ok(IdBlock {
            launch_digest: array(bytes, LD),
            family_id: array(bytes, FAMILY_ID),
            image_id: array(bytes, IMAGE_ID),
            guest_svn: u32_at(bytes, GUEST_SVN),
            policy: u64_at(bytes, POLICY),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_puts_each_field_at_its_offset() {
        let block = IdBlock {
            launch_digest: [0xaa; 48],
            family_id: [0xbb; 16],
            image_id: [0xcc; 16],
            guest_svn: 0x0403_0201,
            policy: 0x0000_0000_0003_0000,
        };
        let b = block.encode();
        assert_eq!(&b[0x00..0x30], &[0xaa; 48]);
        assert_eq!(&b[0x30..0x40], &[0xbb; 16]);
        assert_eq!(&b[0x40..0x50], &[0xcc; 16]);
        assert_eq!(&b[0x50..0x54], &[1, 0, 0, 0]);
        assert_eq!(&b[0x54..0x58], &[1, 2, 3, 4]);
        assert_eq!(&b[0x58..0x60], &[0, 0, 3, 0, 0, 0, 0, 0]);
        assert_eq!(IdBlock::decode(&b), Ok(block));
    }

    #[test]
    fn other_versions_and_sizes_are_refused() {
        let mut b = IdBlock {
            launch_digest: [0; 48],
            family_id: [0; 16],
            image_id: [0; 16],
            guest_svn: 0,
            policy: 0x30000,
        }
        .encode();
        assert!(matches!(
            IdBlock::decode(&b[..95]),
            Err(DecodeError::Size { found: 95, .. })
        ));
        b[VERSION] = 2;
        assert_eq!(IdBlock::decode(&b), Err(DecodeError::Version { found: 2 }));
    }
}
