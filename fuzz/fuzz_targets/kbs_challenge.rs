//! What the guest reads from the broker before it attests: the challenge body, the Set-Cookie
//! header values and the token reply. Never a panic; an accepted challenge always binds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_kbs::{TeeKey, attester, message};

fuzz_target!(|data: &[u8]| {
    if let Ok(challenge) = message::parse_challenge(data)
        && let Some(key) = TeeKey::from_scalar(&[7; 32])
    {
        let session = attester::Session::with_key(&challenge, key);
        let rd = session.report_data();
        assert_eq!(rd[48..], [0u8; 16]);
    }
    let text = String::from_utf8_lossy(data);
    let _ = attester::session_cookie(text.lines());
    let _ = message::parse_token(data);
    let _ = message::parse_error(data);
});
