//! The protocol's JSON messages (Trustee `kbs/docs/kbs_attestation_protocol.md`, types as in the
//! `kbs-types` crate 0.18), parsed strictly: a size bound before parsing, unknown members refused,
//! every string bounded.
//!
//! | step | direction | body |
//! |---|---|---|
//! | `POST /kbs/v0/auth` | guest → broker | [`Request`] `{"version":"0.4.0","tee":"snp","extra-params":{}}` |
//! | reply | broker → guest | `Set-Cookie: kbs-session-id=…`, [`Challenge`] `{"nonce","extra-params"}` |
//! | `POST /kbs/v0/attest` | guest → broker | [`Attestation`] `{"runtime-data","tee-evidence","init-data"?}` |
//! | reply | broker → guest | [`AttestationToken`] `{"token": "<JWT>"}` |
//! | `GET /kbs/v0/resource/<repo>/<type>/<tag>` | guest → broker | (none; the cookie) |
//! | reply | broker → guest | a flattened JWE ([`crate::jwe`]) |
//! | any refusal | broker → guest | [`ErrorInformation`] `{"type","detail"}`, 401/403/404 |

use crate::evidence::SnpEvidence;
use crate::jwk::EcPublicJwk;
use serde::{Deserialize, Serialize};

/// The only protocol version Trustee's KBS accepts today (an exact match).
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// The `tee` of an AMD SEV-SNP guest.
pub const TEE_SNP: &str = "snp";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kbs-session-id";
pub const PATH_AUTH: &str = "/kbs/v0/auth";
pub const PATH_ATTEST: &str = "/kbs/v0/attest";
/// Followed by `<repo>/<type>/<tag>`.
pub const PATH_RESOURCE_PREFIX: &str = "/kbs/v0/resource/";
/// Trustee's prefix for an [`ErrorInformation`] `type` (an identifier, not a link to fetch).
pub const ERROR_TYPE_PREFIX: &str = "https://github.com/confidential-containers/kbs/errors/";

/// Largest `Request` body.
pub const MAX_REQUEST_LEN: usize = 16 * 1024;
/// Largest `Challenge` body.
pub const MAX_CHALLENGE_LEN: usize = 16 * 1024;
/// Largest `Attestation` body: a report and a certificate chain whose DER bytes serde writes as
/// decimal numbers (about 3.6 characters a byte).
pub const MAX_ATTESTATION_LEN: usize = 512 * 1024;
/// Largest `{"token"}` reply.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Largest error body a client reads.
pub const MAX_ERROR_LEN: usize = 16 * 1024;
/// Longest nonce (Trustee's are 44 characters: 32 bytes in standard base64).
pub const MAX_NONCE_LEN: usize = 1024;
/// Longest `additional_evidence` string we carry (we send and accept only the empty one).
pub const MAX_ADDITIONAL_EVIDENCE_LEN: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the {what} is {len} bytes, more than the {max} the protocol allows here")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the {what} is not the JSON that KBS protocol {PROTOCOL_VERSION} defines")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the {what} is not usable: {reason}")]
    Invalid { what: &'static str, reason: String },
}

/// `POST /kbs/v0/auth`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub version: String,
    pub tee: String,
    /// guest-components sends `{"supported-hash-algorithms": [...]}`; Trustee ignores it for SNP.
    #[serde(rename = "extra-params")]
    pub extra_params: serde_json::Value,
}

impl Request {
    /// What the snpkit guest sends.
    pub fn snp() -> Request {
        Request {
            version: PROTOCOL_VERSION.into(),
            tee: TEE_SNP.into(),
            extra_params: serde_json::json!({}),
        }
    }
}

/// The broker's answer to `auth`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    pub nonce: String,
    /// `""` from Trustee for SNP; an object that may name `selected-hash-algorithm`.
    #[serde(rename = "extra-params")]
    pub extra_params: serde_json::Value,
}

/// `POST /kbs/v0/attest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Attestation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_data: Option<InitData>,
    pub runtime_data: RuntimeData,
    pub tee_evidence: CompositeEvidence,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeData {
    pub nonce: String,
    #[serde(rename = "tee-pubkey")]
    pub tee_pubkey: EcPublicJwk,
}

/// kbs-types `CompositeEvidence`; the primary evidence is read as SNP evidence directly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeEvidence {
    pub primary_evidence: SnpEvidence,
    /// A JSON *string* mapping other TEEs to their evidence; `""` when there is none.
    pub additional_evidence: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitData {
    pub format: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationToken {
    pub token: String,
}

/// A refusal (RFC 7807 problem details, as Trustee writes them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorInformation {
    #[serde(rename = "type")]
    pub error_type: String,
    pub detail: String,
}

impl ErrorInformation {
    pub fn new(kind: &str, detail: impl Into<String>) -> ErrorInformation {
        ErrorInformation {
            error_type: format!("{ERROR_TYPE_PREFIX}{kind}"),
            detail: detail.into(),
        }
    }

    /// The problem type without Trustee's prefix (`AttestationError`, `PolicyDeny`, …).
    pub fn kind(&self) -> &str {
        self.error_type
            .strip_prefix(ERROR_TYPE_PREFIX)
            .unwrap_or(&self.error_type)
    }
}

fn bounded<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
    max: usize,
) -> Result<T, MessageError> {
    if bytes.len() > max {
        return Err(MessageError::TooLarge {
            what,
            len: bytes.len(),
            max,
        });
    }
    serde_json::from_slice(bytes).map_err(|source| MessageError::Json { what, source })
}

fn invalid(what: &'static str, reason: impl Into<String>) -> MessageError {
    MessageError::Invalid {
        what,
        reason: reason.into(),
    }
}

/// Parse an `auth` request (the broker's side). Version and TEE are judged by the broker.
pub fn parse_request(bytes: &[u8]) -> Result<Request, MessageError> {
    bounded("auth request", bytes, MAX_REQUEST_LEN)
}

/// Parse a challenge (the guest's side): a bounded nonce, and no hash algorithm but SHA-384.
pub fn parse_challenge(bytes: &[u8]) -> Result<Challenge, MessageError> {
    const WHAT: &str = "challenge";
    let c: Challenge = bounded(WHAT, bytes, MAX_CHALLENGE_LEN)?;
    check_nonce(WHAT, &c.nonce)?;
    match &c.extra_params {
        serde_json::Value::String(s) if s.is_empty() => {}
        serde_json::Value::Object(map) => {
            if let Some(alg) = map.get("selected-hash-algorithm")
                && !alg
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case("sha384"))
            {
                return Err(invalid(
                    WHAT,
                    format!(
                        "the broker selects hash algorithm {alg}; SNP evidence binds runtime data with SHA-384"
                    ),
                ));
            }
        }
        other => {
            return Err(invalid(
                WHAT,
                format!("extra-params is {other}, neither \"\" nor an object"),
            ));
        }
    }
    Ok(c)
}

fn check_nonce(what: &'static str, nonce: &str) -> Result<(), MessageError> {
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
        return Err(invalid(
            what,
            format!(
                "the nonce is {} bytes; it must be 1 to {MAX_NONCE_LEN}",
                nonce.len()
            ),
        ));
    }
    Ok(())
}

/// Parse an `attest` request (the broker's side): sizes, the key's point, the evidence's shape.
pub fn parse_attestation(bytes: &[u8]) -> Result<Attestation, MessageError> {
    const WHAT: &str = "attestation";
    let a: Attestation = bounded(WHAT, bytes, MAX_ATTESTATION_LEN)?;
    check_nonce(WHAT, &a.runtime_data.nonce)?;
    if a.tee_evidence.additional_evidence.len() > MAX_ADDITIONAL_EVIDENCE_LEN {
        return Err(invalid(WHAT, "additional_evidence is too long"));
    }
    Ok(a)
}

/// Parse the `{"token"}` reply (the guest's side; the token itself is the broker's business).
pub fn parse_token(bytes: &[u8]) -> Result<AttestationToken, MessageError> {
    bounded("attestation token", bytes, MAX_TOKEN_LEN)
}

/// Parse a refusal's body, if it is one.
pub fn parse_error(bytes: &[u8]) -> Option<ErrorInformation> {
    bounded("error", bytes, MAX_ERROR_LEN).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_request_is_what_trustee_expects() {
        let text = serde_json::to_string(&Request::snp()).expect("serializes");
        assert_eq!(text, r#"{"version":"0.4.0","tee":"snp","extra-params":{}}"#);
        let back = parse_request(text.as_bytes()).expect("parses");
        assert_eq!(back.version, PROTOCOL_VERSION);
    }

    #[test]
    fn requests_with_unknown_members_or_too_many_bytes_are_refused() {
        assert!(
            parse_request(br#"{"version":"0.4.0","tee":"snp","extra-params":{},"x":1}"#).is_err()
        );
        assert!(parse_request(br#"{"version":"0.4.0","tee":"snp"}"#).is_err());
        let big = vec![b' '; MAX_REQUEST_LEN + 1];
        assert!(matches!(
            parse_request(&big),
            Err(MessageError::TooLarge { len, .. }) if len == MAX_REQUEST_LEN + 1
        ));
    }

    #[test]
    fn challenges_from_trustee_and_from_the_document_both_parse() {
        // Trustee's KBS sends an empty string; the protocol document shows an object.
        let nonce = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        for extra in [r#""""#, "{}", r#"{"selected-hash-algorithm":"sha384"}"#] {
            let text = format!(r#"{{"nonce":"{nonce}","extra-params":{extra}}}"#);
            assert_eq!(parse_challenge(text.as_bytes()).expect(extra).nonce, nonce);
        }
    }

    #[test]
    fn challenges_that_cannot_be_answered_are_refused() {
        for (text, needle) in [
            (r#"{"nonce":"","extra-params":""}"#, "nonce is 0 bytes"),
            (
                r#"{"nonce":"n","extra-params":{"selected-hash-algorithm":"sha512"}}"#,
                "sha512",
            ),
            (r#"{"nonce":"n","extra-params":7}"#, "neither"),
            (r#"{"nonce":"n","extra-params":"x"}"#, "neither"),
            (r#"{"nonce":"n"}"#, "JSON"),
            (r#"{"nonce":1,"extra-params":""}"#, "JSON"),
        ] {
            let err = parse_challenge(text.as_bytes())
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let long = format!(
            r#"{{"nonce":"{}","extra-params":""}}"#,
            "n".repeat(MAX_NONCE_LEN + 1)
        );
        assert!(parse_challenge(long.as_bytes()).is_err());
    }

    #[test]
    fn error_information_keeps_trustees_type_prefix() {
        let e = ErrorInformation::new("PolicyDeny", "no");
        let text = serde_json::to_string(&e).expect("serializes");
        assert_eq!(
            text,
            r#"{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"no"}"#
        );
        assert_eq!(
            parse_error(text.as_bytes()).expect("parses").kind(),
            "PolicyDeny"
        );
    }
}
