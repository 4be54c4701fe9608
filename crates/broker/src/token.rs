//! The attestation results token of the `attest` reply: a JWT (ES256) signed with a key the broker
//! makes when it starts.
//!
//! snpkit's broker grants resources by the session cookie, never by this token; it is here because
//! clients of the protocol read it (guest-components parses its claims for `exp`). Its claims
//! say what was verified, EMULATED included, and its header carries the signer's public key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::ecdsa::signature::Signer;

use crate::appraise::Guest;

pub struct TokenSigner {
    key: p256::ecdsa::SigningKey,
    header: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(ES256, key redacted)")
    }
}

impl TokenSigner {
    pub fn generate() -> TokenSigner {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let coord = |c: Option<&p256::FieldBytes>| c.map(|c| B64URL.encode(c)).unwrap_or_default();
        let header = serde_json::json!({
            "alg": "ES256",
            "typ": "JWT",
            "jwk": {"kty": "EC", "crv": "P-256", "x": coord(point.x()), "y": coord(point.y())},
        });
        TokenSigner {
            key,
            header: B64URL.encode(header.to_string()),
        }
    }

    /// A token for an attested guest, valid for `lifetime`.
    pub fn issue(&self, guest: &Guest, lifetime: std::time::Duration) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({
            "iss": "snpkit-broker",
            "iat": now,
            "exp": now + lifetime.as_secs() as i64,
            "tee-pubkey": guest.key,
            "snpkit": {
                "evidence": crate::audit::evidence_mark(guest.emulated),
                "emulated": guest.emulated,
                "measurement": hex::encode(guest.measurement),
                "configs": guest.configs,
                "measured_by": guest.measured_by.to_string(),
            },
        });
        let signing_input = format!("{}.{}", self.header, B64URL.encode(claims.to_string()));
        let sig: p256::ecdsa::Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64URL.encode(sig.to_bytes()))
    }

    pub fn verifying_key(&self) -> &p256::ecdsa::VerifyingKey {
        self.key.verifying_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn tokens_verify_and_say_emulated() {
        let signer = TokenSigner::generate();
        let guest = Guest {
            configs: vec!["one".into()],
            measurement: [1; 48],
            measured_by: crate::appraise::MeasuredBy::Reference,
            signers: Vec::new(),
            emulated: true,
            key: snpkit_kbs::TeeKey::generate().public_jwk().clone(),
        };
        let token = signer.issue(&guest, std::time::Duration::from_secs(60));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let sig = p256::ecdsa::Signature::from_slice(&B64URL.decode(parts[2]).expect("b64"))
            .expect("sig");
        signer
            .verifying_key()
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("verifies");
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).expect("b64")).expect("JSON");
        assert_eq!(
            claims["snpkit"]["evidence"],
            "EMULATED — NOT HARDWARE-BACKED"
        );
        assert!(claims["exp"].as_i64().expect("exp") > claims["iat"].as_i64().expect("iat"));
    }
}
