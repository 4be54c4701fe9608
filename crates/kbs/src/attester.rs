//! The guest's side of the handshake, as functions over bytes: what to send, how to read what
//! comes back. The transport (the host's relay of HTTP over the channel, or a direct connection)
//! is the caller's; nothing here does I/O, so the same steps run in `/init`, the tests and the
//! benchmark.

use crate::evidence::{self, CertKind, EvidenceError};
use crate::jwe::{self, JweError};
use crate::jwk::TeeKey;
use crate::message::{
    self, Attestation, Challenge, CompositeEvidence, MessageError, Request, RuntimeData,
    SESSION_COOKIE,
};
use crate::{Secret, binding};
use snpkit_wire::frame::REPORT_LEN;

/// The `auth` request body.
pub fn auth_body() -> Vec<u8> {
    // Serializing a struct of strings and an empty object cannot fail.
    serde_json::to_vec(&Request::snp()).unwrap_or_default()
}

/// Longest session id we carry back.
const MAX_SESSION_ID_LEN: usize = 256;

/// The session id from the `Set-Cookie` header values of the `auth` reply.
pub fn session_cookie<'a>(
    set_cookie: impl IntoIterator<Item = &'a str>,
) -> Result<String, MessageError> {
    for header in set_cookie {
        let first = header.split(';').next().unwrap_or_default().trim();
        if let Some((name, value)) = first.split_once('=')
            && name.trim() == SESSION_COOKIE
        {
            let value = value.trim().trim_matches('"');
            let ok = !value.is_empty()
                && value.len() <= MAX_SESSION_ID_LEN
                && value
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',');
            if !ok {
                return Err(MessageError::Invalid {
                    what: "session cookie",
                    reason: format!(
                        "{SESSION_COOKIE} is empty, too long or holds characters a cookie cannot"
                    ),
                });
            }
            return Ok(value.to_owned());
        }
    }
    Err(MessageError::Invalid {
        what: "auth reply",
        reason: format!("it sets no {SESSION_COOKIE} cookie"),
    })
}

/// The `Cookie` header value for later requests.
pub fn cookie_header(session_id: &str) -> String {
    format!("{SESSION_COOKIE}={session_id}")
}

/// One attestation: the broker's nonce and the ephemeral key made for it.
#[derive(Debug)]
pub struct Session {
    nonce: String,
    key: TeeKey,
}

impl Session {
    /// Answer a challenge with a fresh key.
    pub fn start(challenge: &Challenge) -> Session {
        Session::with_key(challenge, TeeKey::generate())
    }

    /// Answer a challenge with a given key (tests).
    pub fn with_key(challenge: &Challenge, key: TeeKey) -> Session {
        Session {
            nonce: challenge.nonce.clone(),
            key,
        }
    }

    /// What the report must carry in REPORT_DATA.
    pub fn report_data(&self) -> [u8; 64] {
        binding::report_data(&self.nonce, self.key.public_jwk(), "")
    }

    pub fn key(&self) -> &TeeKey {
        &self.key
    }

    /// The `attest` request body for a report (and the certificates the platform gave with it).
    pub fn attestation_body(
        &self,
        report: &[u8; REPORT_LEN],
        certs: &[(CertKind, &[u8])],
    ) -> Result<Vec<u8>, EvidenceError> {
        let body = Attestation {
            init_data: None,
            runtime_data: RuntimeData {
                nonce: self.nonce.clone(),
                tee_pubkey: self.key.public_jwk().clone(),
            },
            tee_evidence: CompositeEvidence {
                primary_evidence: evidence::encode(report, certs)?,
                additional_evidence: String::new(),
            },
        };
        // A struct of checked parts always serializes.
        Ok(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// Check the `attest` reply (a token we keep nothing of: the cookie carries the session).
    pub fn read_token(&self, body: &[u8]) -> Result<(), MessageError> {
        message::parse_token(body).map(|_| ())
    }

    /// Open a resource reply sealed to this session's key.
    pub fn open(&self, jwe_body: &[u8], max_secret: usize) -> Result<Secret, JweError> {
        jwe::open(&self.key, jwe_body, max_secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_checked() {
        let got = session_cookie([
            "a=b; Path=/",
            "kbs-session-id=abc123; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
        ]);
        assert_eq!(got.expect("found"), "abc123");
        assert!(session_cookie(["other=1"]).is_err());
        assert!(session_cookie(["kbs-session-id=; Path=/"]).is_err());
        assert!(session_cookie(["kbs-session-id=a b"]).is_err());
        assert_eq!(cookie_header("abc"), "kbs-session-id=abc");
    }

    #[test]
    fn the_attestation_body_binds_the_nonce_and_key() {
        let challenge =
            message::parse_challenge(br#"{"nonce":"bm9uY2U=","extra-params":""}"#).expect("parses");
        let s = Session::with_key(&challenge, TeeKey::from_scalar(&[3u8; 32]).expect("key"));
        let mut report = [0u8; REPORT_LEN];
        report[0] = 3;
        report[0x188] = 0x19;
        report[0x50..0x90].copy_from_slice(&s.report_data());
        let body = s.attestation_body(&report, &[]).expect("encodes");
        let a = message::parse_attestation(&body).expect("parses back");
        assert_eq!(a.runtime_data.nonce, "bm9uY2U=");
        assert_eq!(&a.runtime_data.tee_pubkey, s.key().public_jwk());
        assert_eq!(a.tee_evidence.additional_evidence, "");
        assert_eq!(
            a.tee_evidence
                .primary_evidence
                .attestation_report
                .report_data,
            s.report_data()
        );
        assert_eq!(
            binding::report_data(&a.runtime_data.nonce, &a.runtime_data.tee_pubkey, ""),
            s.report_data()
        );
    }
}
