//! Arbitrary bytes as the JSON files of an image folder: `manifest.json`, `expected.json` and a
//! run's `run.json`. Must hold: no panic, no hang; whatever parses writes back as text that parses
//! to the same value (so nothing read is silently changed by a rewrite).
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_bundle::{Expected, Manifest, RunRecord};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = Manifest::from_json(text)
    {
        assert_eq!(Manifest::from_json(&m.to_json()).ok(), Some(m));
    }
    if let Ok(e) = Expected::from_json(path, data) {
        let _ = e.config(None);
        assert_eq!(Expected::from_json(path, e.to_json().as_bytes()).ok(), Some(e));
    }
    if let Ok(r) = RunRecord::from_json(path, data) {
        assert_eq!(RunRecord::from_json(path, r.to_json().as_bytes()).ok(), Some(r));
    }
});
