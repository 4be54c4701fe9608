//! A volume's first block and its dm-integrity superblock are written by whoever holds the volume
//! file (the host): decoding must never panic, and a header that decodes must re-encode to the
//! same bytes under the key that made its key check value, and only that key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_wire::keyreq::DerivedKey;
use snpkit_wire::volume::{self, Found, IntegritySuperblock, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let mut block = vec![0u8; HEADER_LEN];
    let n = data.len().min(HEADER_LEN);
    block[..n].copy_from_slice(&data[..n]);
    if let Ok(Found::Header(header, kcv)) = volume::decode(&block) {
        let keys = volume::volume_keys(&DerivedKey([3; 32]), &header.name, &header.salt);
        if header.key_matches(&keys, &kcv) {
            assert_eq!(header.encode(&keys), block, "accepted headers are canonical");
        }
    }
    let _ = volume::decode(data);
    if data.len() >= 512 {
        let _ = IntegritySuperblock::parse(&data[..512]);
    }
});
