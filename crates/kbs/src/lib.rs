//! The KBS attestation protocol of Confidential Containers' Trustee (protocol version 0.4.0), as
//! both ends need it: the guest that proves itself and opens the secret, and the broker that
//! judges the proof and seals the secret.
//!
//! Owns the message types and their strict, bounded parsing ([`message`]), RFC 8785 canonical JSON
//! ([`canonical`]), the runtime-data → REPORT_DATA binding ([`binding`]), the guest's ephemeral
//! P-256 key as a JWK ([`jwk`]), JWE seal and open ([`jwe`]), the SNP evidence in the form
//! Trustee's SNP verifier reads ([`evidence`]), resource paths ([`resource`]) and the guest's
//! side of the handshake as plain functions over bytes ([`attester`]). Must not know about HTTP
//! servers, async runtimes, report verification (snpkit-attest) or files: the static guest `/init`
//! links this crate, and the broker carries its bytes over HTTP.
//!
//! ```text
//!  guest (attester)                          host relays bytes              broker (KBS)
//!  auth_body ────────────── POST /kbs/v0/auth ─────────────────────────▶ Request
//!  parse_challenge ◀──────── Set-Cookie kbs-session-id, Challenge{nonce} ─
//!  Session::start: P-256 key, REPORT_DATA = binding(nonce, key)
//!  report from the PSP
//!  attestation_body ─────── POST /kbs/v0/attest (cookie) ───────────────▶ Attestation
//!                                             verify report, REPORT_DATA = binding(its nonce, key)
//!  GET /kbs/v0/resource/<repo>/<type>/<tag> (cookie) ──────────────────▶ jwe::seal(key, secret)
//!  Session::open ◀─────────── flattened JWE ─────────────────────────────
//! ```
//!
//! ## Checked against the sources (trustee and guest-components, 2026-08), and where they differ
//! from the protocol document
//! - Version: the KBS accepts only `"0.4.0"` exactly (`kbs/src/attestation/backend.rs`); the
//!   document's example still says `0.1.1`.
//! - `tee-evidence` is a composite, `{"primary_evidence": <SNP evidence>, "additional_evidence":
//!   "<JSON string>"}` (kbs-types `CompositeEvidence`), and the runtime data hashed into REPORT_DATA
//!   is `{"nonce", "tee-pubkey", "additional-evidence"}` — the third member is present even when
//!   empty (`""`), both in the KBS (`primary_runtime_data`) and in the guest-components client
//!   (`get_composite_evidence`). Hashing `runtime-data` alone, as the protocol document suggests,
//!   gives a REPORT_DATA that a real Trustee refuses.
//! - REPORT_DATA = SHA-384 of the JCS bytes (`serde_json_canonicalizer`, in both trustee and
//!   guest-components), zero-padded to 64 bytes (verifier `regularize_data`).
//! - The challenge's `extra-params` is the empty *string* in Trustee's KBS for SNP, not `{}`; a
//!   client reads `selected-hash-algorithm` from it when it is an object. We accept both and
//!   refuse any algorithm but SHA-384 (what Trustee's attestation service uses for SNP).
//! - The JWE: flattened JSON without the `aad` member (the document lists one); AAD = the ASCII
//!   of the `protected` member as sent; `epk` (crv, kty, x, y) in the protected header; Concat KDF
//!   with SHA-256, AlgorithmID `ECDH-ES+A256KW`, empty PartyU/PartyV, 256 bits
//!   (`kbs/src/jwe/mod.rs`). Trustee seals to EC P-256 or P-521 and RSA keys, never P-384 or X25519;
//!   guest-components' default key is P-256, and so is ours.
//! - SNP evidence: `{"attestation_report": <sev's serde form of the report>, "cert_chain":
//!   [{"cert_type": "VCEK", "data": [bytes…]}] | null}` (`deps/verifier/src/snp/mod.rs`,
//!   `SnpEvidence`), numbers and byte arrays as serde_json writes them for the `sev` crate's
//!   `AttestationReport` (identical in sev 7.1 at Trustee's pinned revision and in sev 8.0).
//!
//! ## What we take from crates, and what we wrote
//! - Canonical JSON: `serde_json_canonicalizer` (the one Trustee and guest-components use), tested
//!   byte for byte against Python's `rfc8785` on tricky inputs.
//! - Crypto: RustCrypto `p256` (ECDH), `concat-kdf`, `aes-kw`, `aes-gcm`; tested against Python's
//!   `jwcrypto` in both directions.
//! - Message types: our own serde types rather than the `kbs-types` crate (0.18, the version
//!   Trustee and guest-components use; kept as a test oracle). kbs-types ignores unknown members,
//!   holds every key as free strings (RSA, AKP, any curve), carries no size bounds, reads a JWE's
//!   `aad` member as raw bytes rather than base64url, and its default `std` feature pulls in the
//!   `ear` crate with OpenSSL, which the static guest cannot link. Ours refuse unknown members,
//!   hold a checked P-256 point, and say what was wrong.
//! - The evidence codec ([`evidence`]) is written here: no crate turns raw report bytes into the
//!   serde form of `sev`'s struct without taking `sev` (and its ioctl and certificate code) into
//!   the guest.
#![forbid(unsafe_code)]

pub mod attester;
pub mod binding;
pub mod canonical;
pub mod evidence;
pub mod jwe;
pub mod jwk;
pub mod message;
pub mod resource;

pub use binding::report_data;
pub use jwk::{EcPublicJwk, TeeKey};
pub use message::{PROTOCOL_VERSION, SESSION_COOKIE, TEE_SNP};
pub use resource::ResourcePath;

/// A released secret: its bytes are wiped when dropped and never printed.
pub struct Secret(zeroize::Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(zeroize::Zeroizing::new(bytes))
    }

    /// The secret's bytes, for writing to its tmpfs file. Not for logs.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.0.len())
    }
}
