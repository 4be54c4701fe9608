//! Runtime data (the nonce and the guest's JWK) and canonical JSON: parsing never panics, a parsed
//! key always has a point, and canonical JSON is a fixed point of itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_kbs::message::RuntimeData;
use snpkit_kbs::{EcPublicJwk, binding, canonical};

fuzz_target!(|data: &[u8]| {
    if let Ok(rd) = serde_json::from_slice::<RuntimeData>(data) {
        let _ = binding::report_data(&rd.nonce, &rd.tee_pubkey, "");
    }
    if let Ok(jwk) = serde_json::from_slice::<EcPublicJwk>(data) {
        let text = serde_json::to_vec(&jwk).expect("a parsed key serializes");
        let back: EcPublicJwk = serde_json::from_slice(&text).expect("and parses again");
        assert_eq!(back, jwk);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(canon) = canonical::canonicalize_text(text)
    {
        let again =
            canonical::canonicalize_text(std::str::from_utf8(&canon).expect("JCS is UTF-8"))
                .expect("canonical JSON is JSON");
        assert_eq!(again, canon, "canonicalization is idempotent");
    }
});
