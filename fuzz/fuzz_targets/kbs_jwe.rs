//! A resource reply comes from the broker through the host, an adversary: opening it must never
//! panic or allocate past the bounds, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_kbs::{TeeKey, jwe};

/// The key the seeds (xtask/src/fuzz_kbs.rs) are sealed to.
const SCALAR: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let Some(key) = TeeKey::from_scalar(&SCALAR) else {
        return;
    };
    if let Ok(secret) = jwe::open(&key, data, 64 * 1024) {
        assert!(secret.len() <= 64 * 1024);
    }
});
