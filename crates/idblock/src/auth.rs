//! The 4096-byte ID authentication information: the ID key's signature over the ID block, the ID
//! public key, and optionally an author key's signature over the ID public key.

use crate::block::IdBlock;
use crate::ecdsa::{PublicKey, Signature, sign};
use crate::error::{DecodeError, check_size, check_zero};
use crate::keys::SigningKey;
use crate::layout::{ALGO_ECDSA_P384_SHA384, auth::*, u32_at};

/// The author key's certification of the ID key: its signature over the 0x404-byte ID_KEY
/// structure, and its public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorSignature {
    pub id_key_sig: Signature,
    pub author_key: PublicKey,
}

/// ID authentication information.
///
/// | offset | size  | field |
/// |-------:|------:|-------|
/// | 0x000 | 4     | ID_KEY_ALGO = 1 (ECDSA P-384 with SHA-384) |
/// | 0x004 | 4     | AUTHOR_KEY_ALGO = 1; 0 here when there is no author key |
/// | 0x008 | 0x38  | reserved |
/// | 0x040 | 0x200 | ID_BLOCK_SIG: R ‖ S, each 72 bytes little-endian, then reserved |
/// | 0x240 | 0x404 | ID_KEY: CURVE = 2 ‖ QX ‖ QY, each 72 bytes little-endian, then reserved |
/// | 0x644 | 0x3C  | reserved |
/// | 0x680 | 0x200 | ID_KEY_SIG: the author key's signature over ID_KEY (zero without one) |
/// | 0x880 | 0x404 | AUTHOR_KEY (zero without one) |
/// | 0xC84 | 0x37C | reserved |
///
/// Without an author key the ABI says the PSP ignores AUTHOR_KEY_ALGO, ID_KEY_SIG and AUTHOR_KEY
/// (AUTHOR_KEY_EN = 0). We write them all as zero. Other tools write AUTHOR_KEY_ALGO = 1 there
/// (virtee/sev, COCONUT's igvmmeasure) or 0 (Contrast); decoding accepts both and re-encodes 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdAuth {
    pub id_block_sig: Signature,
    pub id_key: PublicKey,
    pub author: Option<AuthorSignature>,
}

impl IdAuth {
    /// Signs `block` with the ID key (no author key: launch with AUTHOR_KEY_EN = 0).
    pub fn sign(block: &IdBlock, id_key: &SigningKey) -> IdAuth {
        IdAuth {
            id_block_sig: sign(id_key.inner(), &block.encode()),
            id_key: id_key.public_key(),
            author: None,
        }
    }

    /// Adds (or replaces) the author key's signature over this structure's ID key (launch with
    /// AUTHOR_KEY_EN = 1).
    pub fn certify(self, author_key: &SigningKey) -> IdAuth {
        IdAuth {
            author: Some(AuthorSignature {
                id_key_sig: sign(author_key.inner(), &self.id_key.to_snp_bytes()),
                author_key: author_key.public_key(),
            }),
            ..self
        }
    }

    pub fn encode(&self) -> Box<[u8; LEN]> {
        let mut b = Box::new([0u8; LEN]);
        b[ID_KEY_ALGO..ID_KEY_ALGO + 4].copy_from_slice(&ALGO_ECDSA_P384_SHA384.to_le_bytes());
        b[ID_BLOCK_SIG].copy_from_slice(&self.id_block_sig.to_snp_bytes());
        b[ID_KEY].copy_from_slice(&self.id_key.to_snp_bytes());
        if let Some(author) = &self.author {
            b[AUTHOR_KEY_ALGO..AUTHOR_KEY_ALGO + 4]
                .copy_from_slice(&ALGO_ECDSA_P384_SHA384.to_le_bytes());
            b[ID_KEY_SIG].copy_from_slice(&author.id_key_sig.to_snp_bytes());
            b[AUTHOR_KEY].copy_from_slice(&author.author_key.to_snp_bytes());
        }
        b
    }

    /// Decodes exactly 4096 bytes, strictly: algorithms, curves, every reserved and unused byte,
    /// signature components in range, keys on the curve. The author part is either entirely zero
    /// (no author key) or a complete, valid signature and key. Signatures are not verified here:
    /// that is [`crate::launch_finish`]'s job.
    pub fn decode(bytes: &[u8]) -> Result<IdAuth, DecodeError> {
        check_size("ID auth", LEN, bytes)?;
        check_zero(bytes, 0, "ID auth", RESERVED)?;
        let id_algo = u32_at(bytes, ID_KEY_ALGO);
        if id_algo != ALGO_ECDSA_P384_SHA384 {
            return Err(DecodeError::Algorithm {
                field: "ID_KEY_ALGO",
                found: id_algo,
                author_absent: false,
            });
        }
        let id_block_sig =
            Signature::decode(&bytes[ID_BLOCK_SIG], "ID_BLOCK_SIG", ID_BLOCK_SIG.start)?;
        let id_key = PublicKey::decode(&bytes[ID_KEY], "ID_KEY", ID_KEY.start)?;
        let author = decode_author(bytes)?;
        Ok(IdAuth {
            id_block_sig,
            id_key,
            author,
        })
    }
}

fn decode_author(bytes: &[u8]) -> Result<Option<AuthorSignature>, DecodeError> {
    let algo = u32_at(bytes, AUTHOR_KEY_ALGO);
    let sig_zero = bytes[ID_KEY_SIG].iter().all(|&b| b == 0);
    let key_zero = bytes[AUTHOR_KEY].iter().all(|&b| b == 0);
    if sig_zero && key_zero {
        // No author key. The PSP ignores AUTHOR_KEY_ALGO then; tools write 0 or 1.
        if algo > ALGO_ECDSA_P384_SHA384 {
            return Err(DecodeError::Algorithm {
                field: "AUTHOR_KEY_ALGO",
                found: algo,
                author_absent: true,
            });
        }
        return Ok(None);
    }
    if algo != ALGO_ECDSA_P384_SHA384 {
        return Err(DecodeError::Algorithm {
            field: "AUTHOR_KEY_ALGO",
            found: algo,
            author_absent: false,
        });
    }
    if sig_zero || key_zero {
        return Err(DecodeError::AuthorPartial {
            zero: if sig_zero { "ID_KEY_SIG" } else { "AUTHOR_KEY" },
        });
    }
    Ok(Some(AuthorSignature {
        id_key_sig: Signature::decode(&bytes[ID_KEY_SIG], "ID_KEY_SIG", ID_KEY_SIG.start)?,
        author_key: PublicKey::decode(&bytes[AUTHOR_KEY], "AUTHOR_KEY", AUTHOR_KEY.start)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> IdBlock {
        IdBlock {
            launch_digest: [1; 48],
            family_id: [2; 16],
            image_id: [3; 16],
            guest_svn: 4,
            policy: 0x30000,
        }
    }

    #[test]
    fn signing_twice_gives_identical_bytes() {
        let id = SigningKey::from_scalar_for_tests(5);
        let author = SigningKey::from_scalar_for_tests(6);
        let a = IdAuth::sign(&block(), &id).certify(&author).encode();
        let b = IdAuth::sign(&block(), &id).certify(&author).encode();
        assert_eq!(a, b);
    }

    #[test]
    fn without_author_key_the_author_fields_are_zero() {
        let id = SigningKey::from_scalar_for_tests(5);
        let auth = IdAuth::sign(&block(), &id);
        let b = auth.encode();
        assert_eq!(u32_at(&b[..], ID_KEY_ALGO), 1);
        assert_eq!(u32_at(&b[..], AUTHOR_KEY_ALGO), 0);
        assert!(b[AUTHOR_PART].iter().all(|&x| x == 0));
        assert_eq!(IdAuth::decode(&b[..]), Ok(auth));
    }

    #[test]
    fn round_trips_with_author_key() {
        let auth = IdAuth::sign(&block(), &SigningKey::from_scalar_for_tests(5))
            .certify(&SigningKey::from_scalar_for_tests(6));
        let b = auth.encode();
        assert_eq!(u32_at(&b[..], AUTHOR_KEY_ALGO), 1);
        assert_eq!(IdAuth::decode(&b[..]), Ok(auth));
    }

    #[test]
    fn author_algo_one_without_author_key_is_accepted_and_normalised() {
        let auth = IdAuth::sign(&block(), &SigningKey::from_scalar_for_tests(5));
        let mut b = auth.encode();
        b[AUTHOR_KEY_ALGO] = 1;
        assert_eq!(IdAuth::decode(&b[..]), Ok(auth));
        b[AUTHOR_KEY_ALGO] = 2;
        assert!(matches!(
            IdAuth::decode(&b[..]),
            Err(DecodeError::Algorithm {
                field: "AUTHOR_KEY_ALGO",
                found: 2,
                ..
            })
        ));
    }
}
