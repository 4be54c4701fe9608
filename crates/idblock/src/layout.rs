//! Byte offsets of the structures SNP_LAUNCH_FINISH takes (SEV-SNP firmware ABI, AMD publication
//! 56860: the ID Block and ID Authentication Information Structure tables of SNP_LAUNCH_FINISH,
//! and the ECDSA P-384 signature and public key formats of its Digital Signatures chapter).
//! Every integer is little-endian. Reserved ranges are kept as data, so "every reserved byte is
//! zero" is one loop over a table, and a test checks that each table covers its structure exactly
//! once.

use std::ops::Range;

/// ID block: what the ID key signs.
pub mod block {
    use super::Range;

    pub const LEN: usize = 0x60;
    /// The launch digest the PSP must have computed (MEASUREMENT in the report).
    pub const LD: Range<usize> = 0x00..0x30;
    pub const FAMILY_ID: Range<usize> = 0x30..0x40;
    pub const IMAGE_ID: Range<usize> = 0x40..0x50;
    /// Version of the ID block format; the ABI defines 1.
    pub const VERSION: usize = 0x50;
    pub const GUEST_SVN: usize = 0x54;
    /// Must equal the policy the guest was launched with (SNP_LAUNCH_START).
    pub const POLICY: usize = 0x58;
    /// No reserved bytes: every byte of the block is a field.
    pub const RESERVED: &[(&str, Range<usize>)] = &[];
}

/// ID authentication information: signatures and public keys.
pub mod auth {
    use super::Range;

    pub const LEN: usize = 0x1000;
    /// 1 = ECDSA P-384 with SHA-384, the one algorithm the ABI defines.
    pub const ID_KEY_ALGO: usize = 0x000;
    /// Same encoding; ignored by the PSP when AUTHOR_KEY_EN is 0.
    pub const AUTHOR_KEY_ALGO: usize = 0x004;
    /// The ID key's signature over the 96 bytes of the ID block.
    pub const ID_BLOCK_SIG: Range<usize> = 0x040..0x240;
    /// The ID public key; ID_KEY_DIGEST is the SHA-384 of these 0x404 bytes.
    pub const ID_KEY: Range<usize> = 0x240..0x644;
    /// The author key's signature over the 0x404 bytes of ID_KEY (ignored when AUTHOR_KEY_EN is 0).
    pub const ID_KEY_SIG: Range<usize> = 0x680..0x880;
    /// The author public key; AUTHOR_KEY_DIGEST is the SHA-384 of these 0x404 bytes (ignored when
    /// AUTHOR_KEY_EN is 0).
    pub const AUTHOR_KEY: Range<usize> = 0x880..0xC84;
    /// Everything the author key contributes: zero in a structure signed without one.
    pub const AUTHOR_PART: Range<usize> = 0x680..0xC84;
    pub const RESERVED: &[(&str, Range<usize>)] = &[
        ("reserved after AUTHOR_KEY_ALGO", 0x008..0x040),
        ("reserved after ID_KEY", 0x644..0x680),
        ("reserved after AUTHOR_KEY", 0xC84..0x1000),
    ];
}

/// ECDSA P-384 signature: R and S as 72-byte little-endian integers, of which a P-384 scalar uses
/// the low 48 bytes.
pub mod signature {
    use super::Range;

    pub const LEN: usize = 0x200;
    pub const R: Range<usize> = 0x00..0x30;
    pub const S: Range<usize> = 0x48..0x78;
    pub const RESERVED: &[(&str, Range<usize>)] = &[
        ("unused high bytes of R", 0x30..0x48),
        ("unused high bytes of S", 0x78..0x90),
        ("reserved after S", 0x90..0x200),
    ];
}

/// ECDSA public key: CURVE, then QX and QY as 72-byte little-endian integers, of which a P-384
/// coordinate uses the low 48 bytes.
pub mod public_key {
    use super::Range;

    pub const LEN: usize = 0x404;
    /// 2 = P-384 (1 would be P-256, which the ID block's algorithm does not allow).
    pub const CURVE: usize = 0x000;
    pub const QX: Range<usize> = 0x004..0x034;
    pub const QY: Range<usize> = 0x04C..0x07C;
    pub const RESERVED: &[(&str, Range<usize>)] = &[
        ("unused high bytes of QX", 0x034..0x04C),
        ("unused high bytes of QY", 0x07C..0x094),
        ("reserved after QY", 0x094..0x404),
    ];
}

/// ID_KEY_ALGO / AUTHOR_KEY_ALGO value for ECDSA P-384 with SHA-384.
pub const ALGO_ECDSA_P384_SHA384: u32 = 1;
/// CURVE value for P-384.
pub const CURVE_P384: u32 = 2;
/// Length of a P-384 scalar or coordinate.
pub const P384_LEN: usize = 48;

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn array<const N: usize>(b: &[u8], r: Range<usize>) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[r]);
    a
}

/// A little-endian field of `P384_LEN` bytes, as the big-endian bytes RustCrypto takes.
pub(crate) fn le_to_be(b: &[u8], r: Range<usize>) -> [u8; P384_LEN] {
    let mut a: [u8; P384_LEN] = array(b, r);
    a.reverse();
    a
}

/// Writes a big-endian P-384 value little-endian into `r` (the 24 high bytes stay zero).
pub(crate) fn put_be_as_le(out: &mut [u8], r: Range<usize>, be: &[u8]) {
    let field = &mut out[r];
    field.copy_from_slice(be);
    field.reverse();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte of a structure is in exactly one field or reserved range.
    fn covers_once(len: usize, fields: &[Range<usize>], reserved: &[(&str, Range<usize>)]) {
        let mut seen = vec![0u8; len];
        for r in fields.iter().chain(reserved.iter().map(|(_, r)| r)) {
            for b in &mut seen[r.clone()] {
                *b += 1;
            }
        }
        let wrong: Vec<usize> = (0..len).filter(|&i| seen[i] != 1).collect();
        assert!(
            wrong.is_empty(),
            "bytes covered not exactly once: {wrong:x?}"
        );
    }

    #[test]
    fn id_block_fields_cover_96_bytes() {
        use block::*;
        covers_once(
            LEN,
            &[
                LD,
                FAMILY_ID,
                IMAGE_ID,
                VERSION..VERSION + 4,
                GUEST_SVN..GUEST_SVN + 4,
                POLICY..POLICY + 8,
            ],
            RESERVED,
        );
    }

    #[test]
    fn id_auth_fields_cover_4096_bytes() {
        use auth::*;
        covers_once(
            LEN,
            &[
                ID_KEY_ALGO..ID_KEY_ALGO + 4,
                AUTHOR_KEY_ALGO..AUTHOR_KEY_ALGO + 4,
                ID_BLOCK_SIG,
                ID_KEY,
                ID_KEY_SIG,
                AUTHOR_KEY,
            ],
            RESERVED,
        );
        assert_eq!(AUTHOR_PART, ID_KEY_SIG.start..AUTHOR_KEY.end);
        assert_eq!(ID_BLOCK_SIG.len(), signature::LEN);
        assert_eq!(ID_KEY_SIG.len(), signature::LEN);
        assert_eq!(ID_KEY.len(), public_key::LEN);
        assert_eq!(AUTHOR_KEY.len(), public_key::LEN);
    }

    #[test]
    fn signature_fields_cover_0x200_bytes() {
        use signature::*;
        covers_once(LEN, &[R, S], RESERVED);
        // Each component is a 72-byte field in the ABI: 48 used, 24 reserved.
        assert_eq!(S.start - R.start, 72);
    }

    #[test]
    fn public_key_fields_cover_0x404_bytes() {
        use public_key::*;
        covers_once(LEN, &[CURVE..CURVE + 4, QX, QY], RESERVED);
        assert_eq!(QY.start - QX.start, 72);
    }
}
