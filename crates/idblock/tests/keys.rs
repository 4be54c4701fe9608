//! Key files in every form people have, and the keys that must be refused by name. The fixtures
//! in tests/keys/ were made with OpenSSL (see its README.md).
#![allow(clippy::unwrap_used)]

use snpkit_idblock::{KeyError, PublicKey, SigningKey};
use std::path::Path;

fn file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/keys")
            .join(name),
    )
    .unwrap()
}

/// tests/keys/README.md: the digest of the fixture key's SNP public key, computed with Python.
const P384_DIGEST: &str = "7d97ad7b28ca560945aaff5f12e9f69afe338bb67b3c83bdd4039aa8495750da4790eb9e8dfd4d91719c773ed1e93a1e";

#[test]
fn every_form_of_one_p384_key_gives_the_same_public_key() {
    for name in [
        "p384-sec1-params.pem",
        "p384-sec1.der",
        "p384-pkcs8.pem",
        "p384-pkcs8.der",
    ] {
        let key = SigningKey::from_key_bytes(&file(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            hex::encode(key.public_key().digest()),
            P384_DIGEST,
            "{name}"
        );
    }
    for name in ["p384-spki.pem", "p384-spki.der"] {
        let key = PublicKey::from_key_bytes(&file(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex::encode(key.digest()), P384_DIGEST, "{name}");
    }
    // Leading blank lines, CRLF line ends: still the key.
    let crlf = String::from_utf8(file("p384-pkcs8.pem"))
        .unwrap()
        .replace('\n', "\r\n");
    let key = SigningKey::from_key_bytes(format!("\n\n{crlf}").as_bytes()).unwrap();
    assert_eq!(hex::encode(key.public_key().digest()), P384_DIGEST);
}

fn private_err(name: &str) -> KeyError {
    SigningKey::from_key_bytes(&file(name)).unwrap_err()
}

#[test]
fn other_curves_and_algorithms_are_named() {
    for name in ["p256-pkcs8.pem", "p256-sec1.pem"] {
        let err = private_err(name);
        assert!(
            matches!(&err, KeyError::WrongCurve { found } if found.contains("secp256r1")),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("P-384"), "{err}");
    }
    let err = PublicKey::from_key_bytes(&file("p256-spki.pem")).unwrap_err();
    assert!(
        matches!(&err, KeyError::WrongCurve { found } if found.contains("secp256r1")),
        "{err}"
    );
    let err = private_err("ed25519.pem");
    assert!(
        matches!(&err, KeyError::WrongCurve { found } if found.contains("not an EC key")),
        "{err}"
    );
    let err = private_err("rsa1024.pem");
    assert!(
        matches!(&err, KeyError::WrongCurve { found } if found.contains("rsaEncryption")),
        "{err}"
    );
}

#[test]
fn encrypted_and_swapped_keys_say_what_to_do() {
    assert_eq!(private_err("p384-encrypted.pem"), KeyError::Encrypted);
    for name in ["p384-spki.pem", "p384-spki.der"] {
        assert!(
            matches!(
                private_err(name),
                KeyError::WrongKind {
                    found: "public key",
                    ..
                }
            ),
            "{name}"
        );
    }
    for name in [
        "p384-pkcs8.pem",
        "p384-sec1-params.pem",
        "p384-pkcs8.der",
        "p384-sec1.der",
    ] {
        let err = PublicKey::from_key_bytes(&file(name)).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::WrongKind {
                    found: "private key",
                    private_given: true,
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("-pubout"), "{err}");
    }
}

#[test]
fn garbage_is_not_a_key() {
    for bytes in [
        &b""[..],
        b"hello",
        b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n",
        b"-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        &[0x30, 0x03, 0x02, 0x01, 0x00],
    ] {
        assert!(
            matches!(
                SigningKey::from_key_bytes(bytes),
                Err(KeyError::NotAKey { .. } | KeyError::Malformed { .. })
            ),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(PublicKey::from_key_bytes(bytes).is_err());
    }
}
