//! P-384 keys from the formats people have: private keys as PKCS#8 (`PRIVATE KEY`) or SEC1
//! (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes), public keys as SubjectPublicKeyInfo
//! (`PUBLIC KEY`), each in PEM or DER. The input is bounded, and a key of another algorithm or
//! curve is named in the error instead of failing as "malformed".

use crate::ecdsa::PublicKey;
use const_oid::ObjectIdentifier;
use der::Decode;
use p384::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use zeroize::Zeroizing;

/// Largest key input we parse. A P-384 key in any of these forms is well under 1 KiB; a
/// PEM file with extra blocks (`EC PARAMETERS`) or comments still fits.
pub const MAX_KEY_LEN: usize = 16 * 1024;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
const SECP384R1: ObjectIdentifier = const_oid::db::rfc5912::SECP_384_R_1;

/// Why bytes are not a usable P-384 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key input is {found} bytes; a P-384 key file is at most {MAX_KEY_LEN}")]
    TooLarge { found: usize },
    #[error(
        "the key is encrypted (ENCRYPTED PRIVATE KEY); decrypt it first, e.g. `openssl pkcs8 -in FILE -out PLAIN`"
    )]
    Encrypted,
    #[error(
        "this is a {found}; {wanted} is needed here{}",
        if *.private_given { " (give the public key: `openssl pkey -in FILE -pubout`)" } else { "" }
    )]
    WrongKind {
        found: &'static str,
        wanted: &'static str,
        private_given: bool,
    },
    #[error("no {wanted} found: {detail}")]
    NotAKey {
        wanted: &'static str,
        detail: String,
    },
    #[error(
        "the key is {found}; SNP ID and author keys are ECDSA P-384 (make one with `cargo xtask keygen`)"
    )]
    WrongCurve { found: String },
    #[error("malformed P-384 {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

/// A P-384 private key that signs ID blocks or certifies ID keys. Its `Debug` shows only the
/// digest of its public key.
#[derive(Clone)]
pub struct SigningKey(p384::ecdsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey {{ public digest: {} }}",
            hex::encode(self.public_key().digest())
        )
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> SigningKey {
        SigningKey(p384::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    /// Parses a private key: PKCS#8 or SEC1, PEM or DER. A PEM file may carry an
    /// `EC PARAMETERS` block before the key (as `openssl ecparam -genkey` writes it).
    pub fn from_key_bytes(bytes: &[u8]) -> Result<SigningKey, KeyError> {
        let secret = match Form::of(bytes)? {
            Form::Pem(label, der) => match label.as_str() {
                "PRIVATE KEY" => pkcs8_private(&der)?,
                "EC PRIVATE KEY" => sec1_private(&der)?,
                "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
                "PUBLIC KEY" => {
                    return Err(KeyError::WrongKind {
                        found: "public key",
                        wanted: "the private key",
                        private_given: false,
                    });
                }
                other => return Err(wrong_label(other, "P-384 private key")),
            },
            Form::Der(der) => {
                if p384::pkcs8::PrivateKeyInfo::from_der(&der).is_ok() {
                    pkcs8_private(&der)?
                } else if sec1::EcPrivateKey::from_der(&der).is_ok() {
                    sec1_private(&der)?
                } else if spki::SubjectPublicKeyInfoRef::from_der(&der).is_ok() {
                    return Err(KeyError::WrongKind {
                        found: "public key",
                        wanted: "the private key",
                        private_given: false,
                    });
                } else {
                    return Err(KeyError::NotAKey {
                        wanted: "private key",
                        detail: "neither PEM nor DER of PKCS#8 or SEC1".into(),
                    });
                }
            }
        };
        Ok(SigningKey(p384::ecdsa::SigningKey::from(secret)))
    }

    /// PKCS#8 PEM (`PRIVATE KEY`), as `cargo xtask keygen` writes it.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        p384::SecretKey::from(&self.0)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Malformed {
                what: "private key",
                detail: e.to_string(),
            })
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_p384(p384::PublicKey::from(self.0.verifying_key()))
    }

    pub(crate) fn inner(&self) -> &p384::ecdsa::SigningKey {
        &self.0
    }

    /// A key from a small scalar, for tests that must not depend on files or randomness.
    #[cfg(test)]
    pub(crate) fn from_scalar_for_tests(n: u8) -> SigningKey {
        let mut be = [0u8; 48];
        be[47] = n;
        SigningKey(p384::ecdsa::SigningKey::from_slice(&be).expect("a small non-zero scalar"))
    }
}

impl PublicKey {
    /// Parses a public key: SubjectPublicKeyInfo, PEM (`PUBLIC KEY`) or DER. A private key is
    /// refused: a verifier should never hold the signer's secret.
    pub fn from_key_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let der = match Form::of(bytes)? {
            Form::Pem(label, der) => match label.as_str() {
                "PUBLIC KEY" => der,
                "PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                    return Err(KeyError::WrongKind {
                        found: "private key",
                        wanted: "a public key",
                        private_given: true,
                    });
                }
                other => return Err(wrong_label(other, "P-384 public key")),
            },
            Form::Der(der) => der,
        };
        let info = match spki::SubjectPublicKeyInfoRef::from_der(&der) {
            Ok(info) => info,
            Err(e) => {
                let private = p384::pkcs8::PrivateKeyInfo::from_der(&der).is_ok()
                    || sec1::EcPrivateKey::from_der(&der).is_ok();
                return Err(if private {
                    KeyError::WrongKind {
                        found: "private key",
                        wanted: "a public key",
                        private_given: true,
                    }
                } else {
                    KeyError::NotAKey {
                        wanted: "public key",
                        detail: format!("not a SubjectPublicKeyInfo ({e})"),
                    }
                });
            }
        };
        check_curve(info.algorithm.oid, info.algorithm.parameters_oid().ok())?;
        p384::PublicKey::from_public_key_der(&der)
            .map(PublicKey::from_p384)
            .map_err(|e| KeyError::Malformed {
                what: "public key",
                detail: e.to_string(),
            })
    }

    /// SubjectPublicKeyInfo PEM (`PUBLIC KEY`), what a verifier is given.
    pub fn to_spki_pem(&self) -> Result<String, KeyError> {
        use p384::pkcs8::EncodePublicKey;
        self.as_p384()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Malformed {
                what: "public key",
                detail: e.to_string(),
            })
    }
}

/// PEM (label and decoded DER) or raw DER.
enum Form {
    Pem(String, Zeroizing<Vec<u8>>),
    Der(Zeroizing<Vec<u8>>),
}

impl Form {
    fn of(bytes: &[u8]) -> Result<Form, KeyError> {
        if bytes.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLarge { found: bytes.len() });
        }
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        if !bytes[start..].starts_with(b"-----BEGIN ") {
            return Ok(Form::Der(Zeroizing::new(bytes.to_vec())));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::NotAKey {
            wanted: "key",
            detail: "PEM text that is not UTF-8".into(),
        })?;
        // The first block that is not `EC PARAMETERS` (openssl ecparam writes those first).
        let mut rest = text;
        while let Some(begin) = rest.find("-----BEGIN ") {
            let block = &rest[begin..];
            let label_end = block["-----BEGIN ".len()..]
                .find("-----")
                .ok_or_else(|| bad_pem("a BEGIN line without its closing dashes"))?;
            let label = &block["-----BEGIN ".len().."-----BEGIN ".len() + label_end];
            let end_line = format!("-----END {label}-----");
            let end = block
                .find(&end_line)
                .ok_or_else(|| bad_pem(&format!("no `{end_line}`")))?
                + end_line.len();
            if label != "EC PARAMETERS" {
                let (decoded_label, der) = der::pem::decode_vec(&block.as_bytes()[..end])
                    .map_err(|e| bad_pem(&e.to_string()))?;
                return Ok(Form::Pem(decoded_label.to_owned(), Zeroizing::new(der)));
            }
            rest = &block[end..];
        }
        Err(bad_pem("only EC PARAMETERS, no key"))
    }
}

fn bad_pem(detail: &str) -> KeyError {
    KeyError::NotAKey {
        wanted: "key",
        detail: format!("malformed PEM: {detail}"),
    }
}

fn wrong_label(label: &str, wanted: &'static str) -> KeyError {
    KeyError::NotAKey {
        wanted,
        detail: format!("the PEM block is `{label}`"),
    }
}

fn oid_name(oid: ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(&oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

/// Names the algorithm or curve of a key that is not ECDSA P-384.
fn check_curve(
    algorithm: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
) -> Result<(), KeyError> {
    if algorithm != ID_EC_PUBLIC_KEY {
        return Err(KeyError::WrongCurve {
            found: format!("not an EC key but {}", oid_name(algorithm)),
        });
    }
    match curve {
        Some(c) if c == SECP384R1 => Ok(()),
        Some(c) => Err(KeyError::WrongCurve {
            found: format!("on curve {}", oid_name(c)),
        }),
        None => Err(KeyError::WrongCurve {
            found: "an EC key that names no curve".into(),
        }),
    }
}

fn pkcs8_private(der: &[u8]) -> Result<p384::SecretKey, KeyError> {
    let info = p384::pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| KeyError::Malformed {
        what: "PKCS#8 private key",
        detail: e.to_string(),
    })?;
    check_curve(info.algorithm.oid, info.algorithm.parameters_oid().ok())?;
    p384::SecretKey::from_pkcs8_der(der).map_err(|e| KeyError::Malformed {
        what: "PKCS#8 private key",
        detail: e.to_string(),
    })
}

fn sec1_private(der: &[u8]) -> Result<p384::SecretKey, KeyError> {
    let key = sec1::EcPrivateKey::from_der(der).map_err(|e| KeyError::Malformed {
        what: "SEC1 private key",
        detail: e.to_string(),
    })?;
    // A SEC1 key without parameters is taken as P-384 if its scalar has P-384's length
    // (`from_sec1_der` checks that).
    if let Some(curve) = key.parameters.and_then(|p| p.named_curve()) {
        check_curve(ID_EC_PUBLIC_KEY, Some(curve))?;
    }
    p384::SecretKey::from_sec1_der(der).map_err(|e| KeyError::Malformed {
        what: "SEC1 private key",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pkcs8_pem() {
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKey::from_key_bytes(pem.as_bytes()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = key.public_key().to_spki_pem().unwrap();
        assert_eq!(
            PublicKey::from_key_bytes(public.as_bytes()).unwrap(),
            key.public_key()
        );
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(
            SigningKey::generate().public_key(),
            SigningKey::generate().public_key()
        );
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![b'A'; MAX_KEY_LEN + 1];
        assert!(matches!(
            SigningKey::from_key_bytes(&big),
            Err(KeyError::TooLarge { .. })
        ));
        assert!(matches!(
            PublicKey::from_key_bytes(&big),
            Err(KeyError::TooLarge { .. })
        ));
    }
}
