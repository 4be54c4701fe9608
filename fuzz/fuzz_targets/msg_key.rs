//! MSG_KEY_REQ reaches the emulated PSP from a guest, MSG_KEY_RSP reaches the guest from the host
//! (emulated launches) or the PSP: decoding must never panic, whatever decodes must re-encode to
//! the same bytes, and the emulated PSP must answer any 32 bytes with a key or an ABI status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_attest::emulated::key::{GuestContext, answer};
use snpkit_attest::emulated::ChipSecret;
use snpkit_wire::keyreq::{KeyRequest, KeyResponse, KeyStatus};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = KeyRequest::decode(data) {
        assert_eq!(request.encode()[..], data[..], "accepted requests are canonical");
    }
    if let Ok(response) = KeyResponse::decode(data) {
        assert_eq!(response.encode()[..], data[..], "accepted responses are canonical");
    }
    if data.len() >= 32 {
        let secret = ChipSecret::from_bytes([7; 32]);
        let guest = GuestContext::new([1; 48], 0x30000, 0xdb18_0000_0000_0004);
        match answer(&secret, &guest, &data[..32]) {
            KeyResponse::Key(_) => assert!(KeyRequest::decode(&data[..32]).is_ok()),
            KeyResponse::Refused(status) => assert!(
                status == KeyStatus::INVALID_PARAM || status == KeyStatus::INVALID_KEY
            ),
        }
    }
});
