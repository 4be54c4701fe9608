//! The guest's ephemeral key: a P-256 key pair whose public half travels as a JSON Web Key
//! (RFC 7517/7518 §6.2) in `runtime-data.tee-pubkey`, and to which the broker seals secrets.
//!
//! Why P-256: Trustee's KBS seals to EC keys on P-256 and P-521 only (`kbs/src/jwe/mod.rs`), and
//! P-256 is guest-components' default; P-384 would be refused by a real Trustee.
//!
//! A parsed [`EcPublicJwk`] always holds a point on the curve: the check happens once, at parse
//! time, so a broker cannot forget it (an off-curve point would leak the ECDH result).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const KTY_EC: &str = "EC";
pub const CRV_P256: &str = "P-256";
/// The JWE key management algorithm the key is meant for (RFC 7518 §4.6).
pub const ALG_ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";
/// Size of a P-256 coordinate.
const COORD_LEN: usize = 32;
/// The members of an EC public JWK, in the order we write them (kbs-types' order).
const MEMBERS: [&str; 5] = ["kty", "crv", "alg", "x", "y"];
/// Longest member value we look at; coordinates are 43 characters.
const MAX_MEMBER_LEN: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "the key is kty {kty:?}, crv {crv:?}, alg {alg:?}: snpkit seals only to EC P-256 keys for ECDH-ES+A256KW (Trustee's default)"
    )]
    Unsupported {
        kty: String,
        crv: String,
        alg: String,
    },
    #[error("the key's members are {found:?}; an EC public JWK has exactly kty, crv, alg, x and y")]
    Members { found: Vec<String> },
    #[error("the key's member {member:?} appears twice")]
    Duplicate { member: String },
    #[error("the key's member {member:?} is not a string of at most {MAX_MEMBER_LEN} characters")]
    NotString { member: String },
    #[error("the key's {member} is not {COORD_LEN} bytes of unpadded base64url")]
    Coordinate { member: &'static str },
    #[error("the key's x and y are not a point of P-256 (or are the point at infinity)")]
    NotOnCurve,
}

/// A P-256 public key as a JWK with `alg` ECDH-ES+A256KW; the point is checked.
#[derive(Clone, PartialEq, Eq)]
pub struct EcPublicJwk {
    x: String,
    y: String,
    key: p256::PublicKey,
}

impl std::fmt::Debug for EcPublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcPublicJwk(P-256 x={} y={})", self.x, self.y)
    }
}

impl EcPublicJwk {
    pub fn from_public_key(key: &p256::PublicKey) -> EcPublicJwk {
        let point = key.to_encoded_point(false);
        // An uncompressed encoding of a valid public key always has both coordinates.
        let coord = |c: Option<&p256::FieldBytes>| c.map(|c| B64URL.encode(c)).unwrap_or_default();
        EcPublicJwk {
            x: coord(point.x()),
            y: coord(point.y()),
            key: *key,
        }
    }

    /// Check the members of a JWK and the point they name.
    pub fn from_members(members: &[(String, serde_json::Value)]) -> Result<EcPublicJwk, KeyError> {
        let get = |name: &str| -> Result<Option<&str>, KeyError> {
            match members.iter().find(|(k, _)| k == name) {
                None => Ok(None),
                Some((_, serde_json::Value::String(s))) if s.len() <= MAX_MEMBER_LEN => {
                    Ok(Some(s.as_str()))
                }
                Some(_) => Err(KeyError::NotString {
                    member: name.to_owned(),
                }),
            }
        };
        let (kty, crv, alg) = (get("kty")?, get("crv")?, get("alg")?);
        if (kty, crv, alg) != (Some(KTY_EC), Some(CRV_P256), Some(ALG_ECDH_ES_A256KW)) {
            let show = |v: Option<&str>| v.unwrap_or("(none)").to_owned();
            return Err(KeyError::Unsupported {
                kty: show(kty),
                crv: show(crv),
                alg: show(alg),
            });
        }
        let mut names: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let mut want = MEMBERS;
        want.sort_unstable();
        if names != want {
            return Err(KeyError::Members {
                found: members.iter().map(|(k, _)| k.clone()).collect(),
            });
        }
        let x = get("x")?.unwrap_or_default();
        let y = get("y")?.unwrap_or_default();
        let coord = |member: &'static str, text: &str| -> Result<[u8; COORD_LEN], KeyError> {
            B64URL
                .decode(text)
                .ok()
                .and_then(|b| <[u8; COORD_LEN]>::try_from(b).ok())
                .ok_or(KeyError::Coordinate { member })
        };
        let (xb, yb) = (coord("x", x)?, coord("y", y)?);
        let point = p256::EncodedPoint::from_affine_coordinates(&xb.into(), &yb.into(), false);
        let key = Option::<p256::PublicKey>::from(p256::PublicKey::from_encoded_point(&point))
            .ok_or(KeyError::NotOnCurve)?;
        Ok(EcPublicJwk {
            x: x.to_owned(),
            y: y.to_owned(),
            key,
        })
    }

    pub fn public_key(&self) -> &p256::PublicKey {
        &self.key
    }

    pub fn x(&self) -> &str {
        &self.x
    }

    pub fn y(&self) -> &str {
        &self.y
    }

    /// The JWK as a JSON value (what the binding canonicalizes).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": KTY_EC, "crv": CRV_P256, "alg": ALG_ECDH_ES_A256KW, "x": self.x, "y": self.y,
        })
    }
}

impl Serialize for EcPublicJwk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(MEMBERS.len()))?;
        m.serialize_entry("kty", KTY_EC)?;
        m.serialize_entry("crv", CRV_P256)?;
        m.serialize_entry("alg", ALG_ECDH_ES_A256KW)?;
        m.serialize_entry("x", &self.x)?;
        m.serialize_entry("y", &self.y)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for EcPublicJwk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EcPublicJwk, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = EcPublicJwk;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an EC public JWK object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EcPublicJwk, A::Error> {
                let mut members: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if members.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(KeyError::Duplicate { member: key }));
                    }
                    if members.len() > MEMBERS.len() {
                        // Stop reading early: the members check below refuses it anyway.
                        let found = members.into_iter().map(|(k, _)| k).chain([key]).collect();
                        return Err(de::Error::custom(KeyError::Members { found }));
                    }
                    members.push((key, map.next_value()?));
                }
                EcPublicJwk::from_members(&members).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(Members)
    }
}

/// The guest's ephemeral private key. Wiped on drop (the p256 secret zeroizes itself); never
/// printed.
pub struct TeeKey {
    secret: p256::SecretKey,
    public: EcPublicJwk,
}

impl std::fmt::Debug for TeeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TeeKey(private half redacted, public {:?})", self.public)
    }
}

impl TeeKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> TeeKey {
        TeeKey::from_secret(p256::SecretKey::random(&mut rand_core::OsRng))
    }

    /// A key from its 32-byte scalar (fuzzing and tests use fixed keys); `None` for a scalar that
    /// is zero or not below the group order.
    pub fn from_scalar(bytes: &[u8; 32]) -> Option<TeeKey> {
        p256::SecretKey::from_bytes(bytes.into())
            .ok()
            .map(TeeKey::from_secret)
    }

    fn from_secret(secret: p256::SecretKey) -> TeeKey {
        let public = EcPublicJwk::from_public_key(&secret.public_key());
        TeeKey { secret, public }
    }

    pub fn public_jwk(&self) -> &EcPublicJwk {
        &self.public
    }

    /// ECDH with a peer's public key: the 32-byte shared x-coordinate, wiped on drop.
    pub(crate) fn agree(&self, peer: &p256::PublicKey) -> p256::ecdh::SharedSecret {
        p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EcPublicJwk, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_generated_key_round_trips_through_json() {
        let key = TeeKey::generate();
        let text = serde_json::to_string(key.public_jwk()).expect("serializes");
        assert!(text.starts_with(r#"{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":""#));
        let back = parse(&text).expect("parses");
        assert_eq!(&back, key.public_jwk());
        assert_eq!(back.x().len(), 43);
    }

    #[test]
    fn other_key_types_are_named_in_the_refusal() {
        let err = parse(r#"{"kty":"RSA","alg":"RSA-OAEP-256","n":"AQAB","e":"AQAB"}"#)
            .expect_err("RSA refused");
        assert!(err.contains(r#"kty "RSA""#), "{err}");
        let key = TeeKey::generate();
        let p384 = serde_json::to_string(key.public_jwk())
            .expect("serializes")
            .replace("P-256", "P-384");
        assert!(parse(&p384).expect_err("P-384 refused").contains("P-384"));
        let es256 = serde_json::to_string(key.public_jwk())
            .expect("serializes")
            .replace("ECDH-ES+A256KW", "ES256");
        assert!(parse(&es256).expect_err("ES256 refused").contains("ES256"));
    }

    #[test]
    fn extra_missing_and_duplicate_members_are_refused() {
        let key = TeeKey::generate();
        let (x, y) = (key.public_jwk().x(), key.public_jwk().y());
        let base =
            format!(r#""kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"{x}","y":"{y}""#);
        assert!(parse(&format!("{{{base}}}")).is_ok());
        assert!(
            parse(&format!(r#"{{{base},"use":"enc"}}"#))
                .expect_err("extra")
                .contains("exactly")
        );
        assert!(
            parse(&format!(r#"{{{base},"x":"{x}"}}"#))
                .expect_err("duplicate")
                .contains("twice")
        );
        let no_y = format!(r#"{{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"{x}"}}"#);
        assert!(parse(&no_y).expect_err("missing").contains("exactly"));
        assert!(
            parse(&format!(r#"{{{base},"d":1}}"#))
                .expect_err("extra")
                .contains("exactly")
        );
    }

    #[test]
    fn coordinates_must_be_a_point_in_canonical_base64url() {
        let key = TeeKey::generate();
        let (x, y) = (key.public_jwk().x(), key.public_jwk().y());
        let with = |x: &str, y: &str| {
            parse(&format!(
                r#"{{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"{x}","y":"{y}"}}"#
            ))
        };
        // Padding, the standard alphabet and a short coordinate are refused.
        assert!(with(&format!("{x}="), y).is_err());
        assert!(with(&format!("+{}", &x[1..]), y).is_err());
        assert!(with(&x[..42], y).expect_err("short").contains("32 bytes"));
        // Flip one bit of y: no longer on the curve.
        let mut yb = B64URL.decode(y).expect("b64");
        yb[31] ^= 1;
        assert!(
            with(x, &B64URL.encode(&yb))
                .expect_err("off curve")
                .contains("not a point")
        );
        // The identity has no affine coordinates; all-zero is not on the curve.
        let zero = B64URL.encode([0u8; 32]);
        assert!(with(&zero, &zero).is_err());
        // A non-string member.
        assert!(
            parse(r#"{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":1,"y":"a"}"#)
                .expect_err("number")
                .contains("not a string")
        );
    }

    #[test]
    fn a_fixed_scalar_gives_a_fixed_key_and_zero_is_refused() {
        let a = TeeKey::from_scalar(&[7u8; 32]).expect("valid scalar");
        let b = TeeKey::from_scalar(&[7u8; 32]).expect("valid scalar");
        assert_eq!(a.public_jwk(), b.public_jwk());
        assert!(TeeKey::from_scalar(&[0u8; 32]).is_none());
        assert!(TeeKey::from_scalar(&[0xFFu8; 32]).is_none());
        assert!(format!("{a:?}").contains("redacted"));
    }
}
