//! RFC 8785 JSON Canonicalization Scheme (JCS): the bytes both ends hash into REPORT_DATA.
//!
//! A thin seam over `serde_json_canonicalizer`, the crate Trustee's attestation service and the
//! guest-components client use, so our bytes are theirs by construction; `tests/canonical.rs`
//! holds it against Python's `rfc8785` (object keys sorted by UTF-16 code units, ECMAScript
//! number forms such as `1e+21`, `-0` written `0`, minimal string escapes).

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    /// A value JCS cannot represent (a non-finite number, a map with non-string keys).
    #[error("the value has no RFC 8785 canonical form")]
    Unrepresentable(#[source] serde_json::Error),
    #[error("the text is not JSON")]
    NotJson(#[source] serde_json::Error),
}

/// The canonical bytes of a serializable value.
pub fn to_canonical<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    serde_json_canonicalizer::to_vec(value).map_err(CanonicalError::Unrepresentable)
}

/// The canonical bytes of a JSON text (for tests against other implementations).
pub fn canonicalize_text(text: &str) -> Result<Vec<u8>, CanonicalError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(CanonicalError::NotJson)?;
    to_canonical(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonicalize_text(text).expect("canonical")).expect("utf-8")
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": [true, null, "x"], "c": {"z": 0, "y": 1} }"#),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":1,"z":0}}"#
        );
    }

    #[test]
    fn the_kbs_runtime_data_shape() {
        // Members in the order a client writes them come out sorted; strings are untouched.
        assert_eq!(
            canon(
                r#"{"tee-pubkey":{"y":"Y","x":"X","kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW"},"nonce":"n+/=","additional-evidence":""}"#
            ),
            r#"{"additional-evidence":"","nonce":"n+/=","tee-pubkey":{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"X","y":"Y"}}"#
        );
    }

    #[test]
    fn numbers_take_their_ecmascript_form() {
        assert_eq!(canon("[1e21, -0, 1.0, 1e-7, 100]"), "[1e+21,0,1,1e-7,100]");
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        assert!(matches!(
            canonicalize_text("{\"a\":"),
            Err(CanonicalError::NotJson(_))
        ));
    }
}
