//! The broker's `auth` body and resource paths come from anyone: never a panic, and an accepted
//! path names no file outside its folder (no empty, `.`, `..`, `/` or NUL component).
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_kbs::{ResourcePath, message};

fuzz_target!(|data: &[u8]| {
    let _ = message::parse_request(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = ResourcePath::from_url_path(text)
    {
        for c in p.components() {
            assert!(
                !c.is_empty() && c != "." && c != ".." && !c.contains('/') && !c.contains('\0')
            );
        }
        let url = p.url_path();
        let tail = url.strip_prefix("/kbs/v0/resource/").expect("prefix");
        assert_eq!(ResourcePath::from_url_path(tail).expect("round trip"), p);
    }
});
