//! The resource reply: a JWE (RFC 7516) in flattened JSON serialization, ECDH-ES+A256KW key
//! agreement on P-256 (RFC 7518 §4.6) and A256GCM content encryption, as Trustee's KBS writes it.
//!
//! ```text
//! protected     = BASE64URL({"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":…,"y":…}})
//! Z             = ECDH(ephemeral key, recipient key).x                        32 bytes
//! KEK           = ConcatKDF-SHA256(Z, len‖"ECDH-ES+A256KW" ‖ 0u32 ‖ 0u32 ‖ 256u32)   32 bytes
//! encrypted_key = AES-KW(KEK, CEK)                                            40 bytes
//! iv, tag       = 12 and 16 bytes;  ciphertext = AES-256-GCM(CEK, iv, AAD = ASCII(protected))
//! ```
//! JSON members: `protected`, `encrypted_key`, `iv`, `ciphertext`, `tag` (base64url, unpadded).
//!
//! [`open`] is the guest's side and trusts nothing: a size bound first, exactly those members
//! (an `aad`, `header` or `recipients` member is refused by name: the protocol never sends one,
//! and honouring one would change what is authenticated), a protected header with exactly
//! `alg`, `enc` and `epk`, an `epk` on the curve, exact lengths, then the key unwrap's integrity
//! check and GCM's tag.

use crate::Secret;
use crate::jwk::{ALG_ECDH_ES_A256KW, CRV_P256, EcPublicJwk, KTY_EC, TeeKey};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::elliptic_curve::sec1::FromEncodedPoint;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const ENC_A256GCM: &str = "A256GCM";
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const CEK_LEN: usize = 32;
/// AES key wrap adds one 8-byte block.
const WRAPPED_LEN: usize = CEK_LEN + 8;
/// Longest protected header we decode (Trustee's is 170 characters).
const MAX_PROTECTED_LEN: usize = 1024;

/// Largest JWE text for a plaintext of at most `max_plaintext` bytes.
pub fn max_jwe_len(max_plaintext: usize) -> usize {
    max_plaintext.div_ceil(3) * 4 + 2048
}

#[derive(Debug, thiserror::Error)]
pub enum JweError {
    #[error("the JWE is {len} bytes, more than the {max} a secret of the allowed size needs")]
    TooLarge { len: usize, max: usize },
    #[error(
        "the JWE is not a flattened JSON serialization with exactly protected, encrypted_key, iv, ciphertext and tag"
    )]
    Json(#[source] serde_json::Error),
    #[error("the JWE carries a {member:?} member, which the KBS protocol never sends; refusing it")]
    UnexpectedMember { member: &'static str },
    #[error("the JWE's {member} is not unpadded base64url")]
    Base64 { member: &'static str },
    #[error("the JWE's protected header is not JSON with exactly alg, enc and epk")]
    Header(#[source] serde_json::Error),
    #[error(
        "the JWE uses alg {alg:?} and enc {enc:?}; only ECDH-ES+A256KW with A256GCM is accepted"
    )]
    Algorithm { alg: String, enc: String },
    #[error("the JWE's ephemeral key is not an EC P-256 point")]
    EphemeralKey,
    #[error("the JWE's {member} is {len} bytes, not {want}")]
    Length {
        member: &'static str,
        len: usize,
        want: usize,
    },
    #[error(
        "the JWE's content key does not unwrap under our key: it was sealed to another key or altered"
    )]
    Unwrap,
    #[error("the JWE's ciphertext, IV, tag or header was altered (AES-GCM authentication failed)")]
    Decrypt,
    #[error("the secret is {len} bytes, more than the {max} allowed")]
    PlaintextTooLarge { len: usize, max: usize },
    #[error("sealing failed: {0}")]
    Seal(&'static str),
}

/// The flattened JSON serialization, member order as Trustee writes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    encrypted_key: String,
    iv: String,
    ciphertext: String,
    tag: String,
    // Present only to be refused by name.
    #[serde(default, skip_serializing)]
    aad: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    header: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    unprotected: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    recipients: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    enc: String,
    epk: Epk,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Epk {
    crv: String,
    kty: String,
    x: String,
    y: String,
}

fn b64(member: &'static str, text: &str) -> Result<Vec<u8>, JweError> {
    B64URL.decode(text).map_err(|_| JweError::Base64 { member })
}

fn exact<const N: usize>(member: &'static str, bytes: &[u8]) -> Result<[u8; N], JweError> {
    bytes.try_into().map_err(|_| JweError::Length {
        member,
        len: bytes.len(),
        want: N,
    })
}

/// ConcatKDF (NIST SP 800-56A §5.8.1) as RFC 7518 §4.6.2 fixes it for ECDH-ES+A256KW with no
/// PartyUInfo or PartyVInfo.
fn key_encryption_key(z: &[u8]) -> Result<Zeroizing<[u8; 32]>, JweError> {
    let alg = ALG_ECDH_ES_A256KW.as_bytes();
    let mut other_info = Vec::with_capacity(4 + alg.len() + 12);
    other_info.extend_from_slice(&(alg.len() as u32).to_be_bytes());
    other_info.extend_from_slice(alg);
    other_info.extend_from_slice(&0u32.to_be_bytes()); // PartyUInfo: empty
    other_info.extend_from_slice(&0u32.to_be_bytes()); // PartyVInfo: empty
    other_info.extend_from_slice(&256u32.to_be_bytes()); // SuppPubInfo: key length in bits
    let mut kek = Zeroizing::new([0u8; 32]);
    concat_kdf::derive_key_into::<sha2::Sha256>(z, &other_info, kek.as_mut())
        .map_err(|_| JweError::Seal("Concat KDF"))?;
    Ok(kek)
}

/// Seal `plaintext` to the guest's key (the broker's side).
pub fn seal(recipient: &EcPublicJwk, plaintext: &[u8]) -> Result<Vec<u8>, JweError> {
    let ephemeral = TeeKey::generate();
    let z = ephemeral.agree(recipient.public_key());
    let kek = key_encryption_key(z.raw_secret_bytes())?;
    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    OsRng.fill_bytes(cek.as_mut());
    let mut wrapped = [0u8; WRAPPED_LEN];
    aes_kw::KekAes256::from(*kek)
        .wrap(cek.as_ref(), &mut wrapped)
        .map_err(|_| JweError::Seal("AES key wrap"))?;

    let epk = ephemeral.public_jwk();
    let header = Header {
        alg: ALG_ECDH_ES_A256KW.into(),
        enc: ENC_A256GCM.into(),
        epk: Epk {
            crv: CRV_P256.into(),
            kty: KTY_EC.into(),
            x: epk.x().into(),
            y: epk.y().into(),
        },
    };
    let protected =
        B64URL.encode(serde_json::to_vec(&header).map_err(|_| JweError::Seal("header"))?);

    let mut iv = [0u8; IV_LEN];
    OsRng.fill_bytes(&mut iv);
    let mut buffer = plaintext.to_vec();
    let tag = aes_gcm::Aes256Gcm::new(cek.as_ref().into())
        .encrypt_in_place_detached(&iv.into(), protected.as_bytes(), &mut buffer)
        .map_err(|_| JweError::Seal("AES-GCM"))?;
    let jwe = Flattened {
        protected,
        encrypted_key: B64URL.encode(wrapped),
        iv: B64URL.encode(iv),
        ciphertext: B64URL.encode(&buffer),
        tag: B64URL.encode(tag),
        aad: None,
        header: None,
        unprotected: None,
        recipients: None,
    };
    serde_json::to_vec(&jwe).map_err(|_| JweError::Seal("JSON"))
}

/// Open a JWE sealed to `key` (the guest's side); the secret may be at most `max_plaintext` bytes.
pub fn open(key: &TeeKey, jwe: &[u8], max_plaintext: usize) -> Result<Secret, JweError> {
    let max = max_jwe_len(max_plaintext);
    if jwe.len() > max {
        return Err(JweError::TooLarge {
            len: jwe.len(),
            max,
        });
    }
    let f: Flattened = serde_json::from_slice(jwe).map_err(JweError::Json)?;
    for (member, present) in [
        ("aad", f.aad.is_some()),
        ("header", f.header.is_some()),
        ("unprotected", f.unprotected.is_some()),
        ("recipients", f.recipients.is_some()),
    ] {
        if present {
            return Err(JweError::UnexpectedMember { member });
        }
    }
    if f.protected.len() > MAX_PROTECTED_LEN {
        return Err(JweError::Length {
            member: "protected header",
            len: f.protected.len(),
            want: MAX_PROTECTED_LEN,
        });
    }
    let header: Header = serde_json::from_slice(&b64("protected header", &f.protected)?)
        .map_err(JweError::Header)?;
    if header.alg != ALG_ECDH_ES_A256KW || header.enc != ENC_A256GCM {
        return Err(JweError::Algorithm {
            alg: header.alg,
            enc: header.enc,
        });
    }
    if header.epk.kty != KTY_EC || header.epk.crv != CRV_P256 {
        return Err(JweError::EphemeralKey);
    }
    let coord = |t: &str| -> Result<[u8; 32], JweError> {
        B64URL
            .decode(t)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(JweError::EphemeralKey)
    };
    let (x, y) = (coord(&header.epk.x)?, coord(&header.epk.y)?);
    let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    let epk = Option::<p256::PublicKey>::from(p256::PublicKey::from_encoded_point(&point))
        .ok_or(JweError::EphemeralKey)?;

    let wrapped: [u8; WRAPPED_LEN] =
        exact("encrypted_key", &b64("encrypted_key", &f.encrypted_key)?)?;
    let iv: [u8; IV_LEN] = exact("iv", &b64("iv", &f.iv)?)?;
    let tag: [u8; TAG_LEN] = exact("tag", &b64("tag", &f.tag)?)?;
    let mut buffer = Zeroizing::new(b64("ciphertext", &f.ciphertext)?);
    if buffer.len() > max_plaintext {
        return Err(JweError::PlaintextTooLarge {
            len: buffer.len(),
            max: max_plaintext,
        });
    }

    let z = key.agree(&epk);
    let kek = key_encryption_key(z.raw_secret_bytes())?;
    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    aes_kw::KekAes256::from(*kek)
        .unwrap(&wrapped, cek.as_mut())
        .map_err(|_| JweError::Unwrap)?;
    aes_gcm::Aes256Gcm::new(cek.as_ref().into())
        .decrypt_in_place_detached(&iv.into(), f.protected.as_bytes(), &mut buffer, &tag.into())
        .map_err(|_| JweError::Decrypt)?;
    Ok(Secret::new(std::mem::take(&mut *buffer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn sealed(key: &TeeKey, secret: &[u8]) -> serde_json::Map<String, serde_json::Value> {
        let text = seal(key.public_jwk(), secret).expect("seals");
        match serde_json::from_slice(&text).expect("JSON") {
            serde_json::Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn reopen(
        key: &TeeKey,
        m: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Secret, JweError> {
        open(key, &serde_json::to_vec(m).expect("JSON"), MAX)
    }

    #[test]
    fn seal_then_open_gives_the_secret_back() {
        let key = TeeKey::generate();
        for secret in [&b""[..], b"token", &[0xA5u8; 5000][..]] {
            let jwe = seal(key.public_jwk(), secret).expect("seals");
            assert_eq!(open(&key, &jwe, MAX).expect("opens").expose(), secret);
        }
    }

    #[test]
    fn the_layout_is_trustees() {
        let key = TeeKey::generate();
        let text = String::from_utf8(seal(key.public_jwk(), b"s").expect("seals")).expect("utf-8");
        assert!(text.starts_with(r#"{"protected":""#), "{text}");
        let m = sealed(&key, b"s");
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5);
        let header = B64URL
            .decode(m["protected"].as_str().expect("string"))
            .expect("b64");
        let header = String::from_utf8(header).expect("utf-8");
        assert!(
            header.starts_with(
                r#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":""#
            ),
            "{header}"
        );
        let len = |k: &str| B64URL.decode(m[k].as_str().expect("s")).expect("b64").len();
        assert_eq!(
            (
                len("encrypted_key"),
                len("iv"),
                len("tag"),
                len("ciphertext")
            ),
            (40, 12, 16, 1)
        );
    }

    #[test]
    fn another_key_cannot_open_it() {
        let (a, b) = (TeeKey::generate(), TeeKey::generate());
        let jwe = seal(a.public_jwk(), b"secret").expect("seals");
        assert!(matches!(open(&b, &jwe, MAX), Err(JweError::Unwrap)));
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let key = TeeKey::generate();
        let m = sealed(&key, b"the secret");
        for member in ["protected", "encrypted_key", "iv", "ciphertext", "tag"] {
            let raw = B64URL.decode(m[member].as_str().expect("s")).expect("b64");
            for i in [0, raw.len() / 2, raw.len() - 1] {
                let mut bad = raw.clone();
                bad[i] ^= 0x01;
                let mut m2 = m.clone();
                m2.insert(member.into(), B64URL.encode(&bad).into());
                assert!(
                    reopen(&key, &m2).is_err(),
                    "{member} byte {i} flipped was accepted"
                );
            }
        }
    }

    #[test]
    fn members_the_protocol_never_sends_are_refused_by_name() {
        let key = TeeKey::generate();
        for member in ["aad", "header", "unprotected", "recipients"] {
            let mut m = sealed(&key, b"s");
            m.insert(member.into(), serde_json::json!("e30"));
            let err = reopen(&key, &m).expect_err(member).to_string();
            assert!(err.contains(member), "{err}");
        }
        let mut m = sealed(&key, b"s");
        m.insert("zip".into(), "DEF".into());
        assert!(matches!(reopen(&key, &m), Err(JweError::Json(_))));
        let mut m = sealed(&key, b"s");
        m.remove("tag");
        assert!(matches!(reopen(&key, &m), Err(JweError::Json(_))));
    }

    #[test]
    fn other_algorithms_and_header_members_are_refused() {
        let key = TeeKey::generate();
        let m = sealed(&key, b"s");
        let header: serde_json::Value = serde_json::from_slice(
            &B64URL
                .decode(m["protected"].as_str().expect("s"))
                .expect("b64"),
        )
        .expect("JSON");
        let with_header = |h: serde_json::Value| {
            let mut m2 = m.clone();
            m2.insert(
                "protected".into(),
                B64URL.encode(serde_json::to_vec(&h).expect("JSON")).into(),
            );
            reopen(&key, &m2)
        };
        let mut h = header.clone();
        h["enc"] = "A128GCM".into();
        assert!(matches!(with_header(h), Err(JweError::Algorithm { .. })));
        let mut h = header.clone();
        h["alg"] = "dir".into();
        assert!(matches!(with_header(h), Err(JweError::Algorithm { .. })));
        let mut h = header.clone();
        h["zip"] = "DEF".into();
        assert!(matches!(with_header(h), Err(JweError::Header(_))));
        let mut h = header.clone();
        h["apu"] = "QWxpY2U".into();
        assert!(matches!(with_header(h), Err(JweError::Header(_))));
        let mut h = header.clone();
        h["epk"]["crv"] = "P-384".into();
        assert!(matches!(with_header(h), Err(JweError::EphemeralKey)));
        let mut h = header;
        h["epk"]["y"] = B64URL.encode([1u8; 32]).into();
        assert!(matches!(with_header(h), Err(JweError::EphemeralKey)));
    }

    #[test]
    fn sizes_are_bounded_before_and_after_decoding() {
        let key = TeeKey::generate();
        let jwe = seal(key.public_jwk(), &[0u8; 100]).expect("seals");
        assert!(matches!(
            open(&key, &jwe, 99),
            Err(JweError::PlaintextTooLarge { len: 100, max: 99 })
        ));
        let huge = vec![b' '; max_jwe_len(10) + 1];
        assert!(matches!(
            open(&key, &huge, 10),
            Err(JweError::TooLarge { .. })
        ));
        let mut m = sealed(&key, b"s");
        m.insert("iv".into(), B64URL.encode([0u8; 16]).into());
        assert!(matches!(
            reopen(&key, &m),
            Err(JweError::Length { member: "iv", .. })
        ));
        let mut m = sealed(&key, b"s");
        m.insert("tag".into(), "AAAA=".into());
        assert!(matches!(
            reopen(&key, &m),
            Err(JweError::Base64 { member: "tag" })
        ));
    }

    /// RFC 7518 appendix C: Concat KDF for ECDH-ES with A128GCM, apu "Alice", apv "Bob". Our KDF
    /// is fixed to ECDH-ES+A256KW with empty parties, so check the primitive with the RFC's inputs.
    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        let z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let mut other = Vec::new();
        for part in [&b"A128GCM"[..], b"Alice", b"Bob"] {
            other.extend_from_slice(&(part.len() as u32).to_be_bytes());
            other.extend_from_slice(part);
        }
        other.extend_from_slice(&128u32.to_be_bytes());
        let mut out = [0u8; 16];
        concat_kdf::derive_key_into::<sha2::Sha256>(&z, &other, &mut out).expect("kdf");
        assert_eq!(B64URL.encode(out), "VqqN6vgjbSBcIijNcacQGg");
    }
}
