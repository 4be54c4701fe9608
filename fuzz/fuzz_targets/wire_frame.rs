//! Channel frames come from an adversary on either side: decoding must never panic, never
//! allocate past the frame limit, and whatever it accepts must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_wire::{certs, frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = frame::decode(data) {
        let again = frame::encode(&message).expect("an accepted frame re-encodes");
        assert_eq!(again, data, "accepted frames are canonical");
    }
    let mut stream = data;
    while let Ok(_message) = frame::read_message(&mut stream) {}
    let _ = certs::parse_cert_table(data);
});
