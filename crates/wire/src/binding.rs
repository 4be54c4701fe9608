//! REPORT_DATA = SHA-512(domain tag ‖ nonce ‖ public key).
//!
//! The domain tag keeps our reports from being confused with another protocol's that also hashes a
//! nonce and a key; the nonce has a fixed size, so the concatenation is unambiguous without lengths.

use sha2::{Digest, Sha512};

/// Size of the host's fresh nonce in bytes.
pub const NONCE_LEN: usize = 32;

/// Domain separation tag, versioned so a future binding cannot collide with this one.
pub const DOMAIN_TAG: &[u8] = b"snpkit/report-data/v1\0";

/// The 64 bytes the guest puts into REPORT_DATA and the verifier recomputes.
pub fn report_data(nonce: &[u8; NONCE_LEN], public_key: &[u8]) -> [u8; 64] {
    let mut hasher = Sha512::new();
    hasher.update(DOMAIN_TAG);
    hasher.update(nonce);
    hasher.update(public_key);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_depends_on_every_input() {
        let nonce = [7u8; NONCE_LEN];
        let base = report_data(&nonce, b"key");
        let mut other_nonce = nonce;
        other_nonce[31] ^= 1;
        assert_ne!(base, report_data(&other_nonce, b"key"));
        assert_ne!(base, report_data(&nonce, b"kez"));
        assert_ne!(base, report_data(&nonce, b"key\0"));
    }

    #[test]
    fn binding_is_sha512_of_tag_nonce_key() {
        let nonce = [0u8; NONCE_LEN];
        let mut input = DOMAIN_TAG.to_vec();
        input.extend_from_slice(&nonce);
        input.extend_from_slice(b"pk");
        let want: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(report_data(&nonce, b"pk"), want);
    }
}
