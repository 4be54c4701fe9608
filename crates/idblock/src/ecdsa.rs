//! ECDSA P-384 with SHA-384 in the ABI's formats: signatures (R, S) and public keys
//! (CURVE, QX, QY), each component little-endian in a 72-byte field.
//!
//! Signing is deterministic (RFC 6979, through RustCrypto's `p384`): the same key and message give
//! the same signature, so signing an image twice gives identical ID authentication bytes.

use crate::error::{DecodeError, check_size, check_zero};
use crate::layout::{self, CURVE_P384, le_to_be, put_be_as_le, u32_at};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use sha2::{Digest, Sha384};

/// An ECDSA P-384 signature whose R and S are in range (1 ≤ R, S < n).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(p384::ecdsa::Signature);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (r, s) = self.0.split_bytes();
        write!(
            f,
            "Signature {{ r: {}, s: {} }}",
            hex::encode(r),
            hex::encode(s)
        )
    }
}

impl Signature {
    /// The 0x200-byte ABI form.
    pub fn to_snp_bytes(&self) -> [u8; layout::signature::LEN] {
        let mut out = [0u8; layout::signature::LEN];
        let (r, s) = self.0.split_bytes();
        put_be_as_le(&mut out, layout::signature::R, &r);
        put_be_as_le(&mut out, layout::signature::S, &s);
        out
    }

    /// Decodes the ABI form strictly: exact size, high bytes and reserved bytes zero, R and S in
    /// range. `field` names the structure member in errors and `base` is its offset there.
    pub(crate) fn decode(b: &[u8], field: &'static str, base: usize) -> Result<Self, DecodeError> {
        check_size(field, layout::signature::LEN, b)?;
        check_zero(b, base, field, layout::signature::RESERVED)?;
        let r = le_to_be(b, layout::signature::R);
        let s = le_to_be(b, layout::signature::S);
        let range = |component| DecodeError::ScalarRange { field, component };
        // `from_scalars` refuses zero and values ≥ n; say which component it was.
        let r_ok = p384::NonZeroScalar::try_from(&r[..]).is_ok();
        if !r_ok {
            return Err(range("R"));
        }
        p384::ecdsa::Signature::from_scalars(r, s)
            .map(Signature)
            .map_err(|_| range("S"))
    }
}

/// A P-384 public key: a point on the curve (never the identity).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(p384::PublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey {{ digest: {} }}", hex::encode(self.digest()))
    }
}

impl PublicKey {
    /// The 0x404-byte ABI form: CURVE = 2, QX, QY, zeros.
    pub fn to_snp_bytes(&self) -> [u8; layout::public_key::LEN] {
        let mut out = [0u8; layout::public_key::LEN];
        out[layout::public_key::CURVE..layout::public_key::CURVE + 4]
            .copy_from_slice(&CURVE_P384.to_le_bytes());
        let point = self.0.to_encoded_point(false);
        // An uncompressed point of a valid key always has both coordinates.
        if let (Some(x), Some(y)) = (point.x(), point.y()) {
            put_be_as_le(&mut out, layout::public_key::QX, x);
            put_be_as_le(&mut out, layout::public_key::QY, y);
        }
        out
    }

    /// SHA-384 of the ABI form: what the PSP reports as ID_KEY_DIGEST or AUTHOR_KEY_DIGEST.
    pub fn digest(&self) -> [u8; 48] {
        Sha384::digest(self.to_snp_bytes()).into()
    }

    /// Decodes the ABI form of a public key on its own (for example a key a verifier was given
    /// in that form).
    pub fn from_snp_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(b, "public key", 0)
    }

    /// Decodes the ABI form strictly: exact size, CURVE = P-384, high and reserved bytes zero,
    /// coordinates below p and on the curve.
    pub(crate) fn decode(b: &[u8], field: &'static str, base: usize) -> Result<Self, DecodeError> {
        check_size(field, layout::public_key::LEN, b)?;
        let curve = u32_at(b, layout::public_key::CURVE);
        if curve != CURVE_P384 {
            return Err(DecodeError::Curve {
                field,
                found: curve,
            });
        }
        check_zero(b, base, field, layout::public_key::RESERVED)?;
        let x = le_to_be(b, layout::public_key::QX);
        let y = le_to_be(b, layout::public_key::QY);
        let point = p384::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
        Option::from(p384::PublicKey::from_encoded_point(&point))
            .map(PublicKey)
            .ok_or(DecodeError::NotOnCurve { field })
    }

    pub(crate) fn from_p384(key: p384::PublicKey) -> Self {
        PublicKey(key)
    }

    pub(crate) fn as_p384(&self) -> &p384::PublicKey {
        &self.0
    }

    /// Whether `signature` is this key's ECDSA P-384/SHA-384 signature over `message`.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        p384::ecdsa::VerifyingKey::from(&self.0)
            .verify(message, &signature.0)
            .is_ok()
    }
}

/// Deterministic ECDSA P-384/SHA-384 signature (RFC 6979).
pub(crate) fn sign(key: &p384::ecdsa::SigningKey, message: &[u8]) -> Signature {
    let sig: p384::ecdsa::Signature = key.sign(message);
    Signature(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> p384::ecdsa::SigningKey {
        // A fixed scalar: deterministic tests without a key file.
        p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap()
    }

    #[test]
    fn signature_round_trips_and_is_deterministic() {
        let k = key();
        let a = sign(&k, b"message");
        let b = sign(&k, b"message");
        assert_eq!(a.to_snp_bytes(), b.to_snp_bytes());
        let bytes = a.to_snp_bytes();
        assert!(bytes[0x30..].iter().take(0x18).all(|&x| x == 0));
        assert_eq!(Signature::decode(&bytes, "sig", 0).unwrap(), a);
        let public = PublicKey(p384::PublicKey::from(k.verifying_key()));
        assert!(public.verifies(b"message", &a));
        assert!(!public.verifies(b"messagf", &a));
    }

    #[test]
    fn public_key_round_trips() {
        let public = PublicKey(p384::PublicKey::from(key().verifying_key()));
        let bytes = public.to_snp_bytes();
        assert_eq!(u32_at(&bytes, 0), 2);
        assert_eq!(PublicKey::from_snp_bytes(&bytes).unwrap(), public);
        assert_eq!(public.digest(), <[u8; 48]>::from(Sha384::digest(bytes)));
    }

    #[test]
    fn signature_components_out_of_range_are_named() {
        let mut bytes = sign(&key(), b"m").to_snp_bytes();
        bytes[layout::signature::R].fill(0);
        assert_eq!(
            Signature::decode(&bytes, "sig", 0),
            Err(DecodeError::ScalarRange {
                field: "sig",
                component: "R"
            })
        );
        let mut bytes = sign(&key(), b"m").to_snp_bytes();
        bytes[layout::signature::S].fill(0xff);
        assert_eq!(
            Signature::decode(&bytes, "sig", 0),
            Err(DecodeError::ScalarRange {
                field: "sig",
                component: "S"
            })
        );
    }

    #[test]
    fn off_curve_and_oversized_coordinates_are_refused() {
        let good = PublicKey(p384::PublicKey::from(key().verifying_key())).to_snp_bytes();
        let mut b = good;
        b[layout::public_key::QX.start] ^= 1;
        assert_eq!(
            PublicKey::from_snp_bytes(&b),
            Err(DecodeError::NotOnCurve {
                field: "public key"
            })
        );
        // QX = p + x is the same residue, but not the canonical encoding: refused.
        let mut b = [0u8; layout::public_key::LEN];
        b[..4].copy_from_slice(&2u32.to_le_bytes());
        b[layout::public_key::QX].fill(0xff);
        b[layout::public_key::QY].fill(0xff);
        assert_eq!(
            PublicKey::from_snp_bytes(&b),
            Err(DecodeError::NotOnCurve {
                field: "public key"
            })
        );
    }
}
