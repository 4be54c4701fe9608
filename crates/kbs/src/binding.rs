//! REPORT_DATA = SHA-384(JCS(runtime data)) ‖ 16 zero bytes: how the broker's nonce and the
//! guest's key get into the signed report.
//!
//! The runtime data hashed is `{"additional-evidence", "nonce", "tee-pubkey"}`, not the
//! `runtime-data` member alone: Trustee's KBS adds the (string) `additional_evidence` of the
//! composite evidence to the primary attester's runtime data, and the guest-components client hashes
//! the same three members (see the crate docs). Both sides build it here from parsed values, so
//! what is hashed is what the broker will seal to.

use crate::canonical::{CanonicalError, to_canonical};
use crate::jwk::EcPublicJwk;
use sha2::{Digest, Sha384};

/// The runtime data of the primary (SNP) evidence, as a JSON value.
pub fn runtime_data(
    nonce: &str,
    key: &EcPublicJwk,
    additional_evidence: &str,
) -> serde_json::Value {
    serde_json::json!({
        "tee-pubkey": key.to_value(),
        "nonce": nonce,
        "additional-evidence": additional_evidence,
    })
}

/// The canonical bytes that are hashed (for logs of a mismatch and for tests).
pub fn canonical_runtime_data(
    nonce: &str,
    key: &EcPublicJwk,
    additional_evidence: &str,
) -> Result<Vec<u8>, CanonicalError> {
    to_canonical(&runtime_data(nonce, key, additional_evidence))
}

/// The 64 bytes of REPORT_DATA for this nonce, key and additional evidence.
pub fn report_data(nonce: &str, key: &EcPublicJwk, additional_evidence: &str) -> [u8; 64] {
    // Strings and objects of strings always have a canonical form.
    let bytes = canonical_runtime_data(nonce, key, additional_evidence).unwrap_or_default();
    let digest = Sha384::digest(&bytes);
    let mut out = [0u8; 64];
    out[..48].copy_from_slice(&digest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::TeeKey;

    #[test]
    fn the_hashed_bytes_are_the_three_members_sorted() {
        let key = TeeKey::from_scalar(&[1u8; 32]).expect("key");
        let jwk = key.public_jwk();
        let bytes = canonical_runtime_data("bm9uY2U=", jwk, "").expect("canonical");
        let want = format!(
            r#"{{"additional-evidence":"","nonce":"bm9uY2U=","tee-pubkey":{{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"{}","y":"{}"}}}}"#,
            jwk.x(),
            jwk.y()
        );
        assert_eq!(String::from_utf8(bytes.clone()).expect("utf-8"), want);
        let rd = report_data("bm9uY2U=", jwk, "");
        assert_eq!(&rd[..48], Sha384::digest(&bytes).as_slice());
        assert_eq!(rd[48..], [0u8; 16]);
    }

    #[test]
    fn every_input_changes_the_binding() {
        let a = TeeKey::from_scalar(&[1u8; 32]).expect("key");
        let b = TeeKey::from_scalar(&[2u8; 32]).expect("key");
        let base = report_data("n", a.public_jwk(), "");
        assert_ne!(base, report_data("m", a.public_jwk(), ""));
        assert_ne!(base, report_data("n", b.public_jwk(), ""));
        assert_ne!(base, report_data("n", a.public_jwk(), "{}"));
    }

    /// Trustee's attestation service's own test case for `parse_runtime_data` (SHA-384 of the
    /// JCS form of `{"b": 1, "a": "test", "c": {"d": "e"}}`), recomputed with our pieces.
    #[test]
    fn trustee_parse_runtime_data_vector() {
        let value = serde_json::json!({"b": 1, "a": "test", "c": {"d": "e"}});
        let digest = Sha384::digest(to_canonical(&value).expect("canonical"));
        assert_eq!(
            hex(&digest),
            "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
