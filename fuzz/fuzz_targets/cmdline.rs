//! Kernel command lines come from recipes (a contributor's change), from `/proc/cmdline` (what the
//! kernel was handed) and from whoever edits a lock: tokenising and judging one must never
//! panic, the tokenizer must agree with the literal model of the kernel's C on every input, and
//! whatever the check accepts holds no listed option in any reader's view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_wire::cmdline::{self, BYPASS, HARDENED, reference};

fuzz_target!(|data: &[u8]| {
    let ours: reference::Parsed = cmdline::params(data)
        .iter()
        .map(|p| (p.name.to_vec(), p.value.map(<[u8]>::to_vec), p.section))
        .collect();
    assert_eq!(ours, reference::parse(data), "tokenizer and C model disagree");
    match cmdline::check(data, true) {
        Ok(()) => {
            assert!(cmdline::find(data, BYPASS).is_none());
            assert!(cmdline::find(data, HARDENED).is_none());
            // Accepted lines are plain ASCII with plain spaces: every reader splits them alike
            // outside the quotes.
            assert!(data.iter().all(|&b| (0x20..0x7f).contains(&b)));
        }
        Err(problem) => {
            assert!(!problem.fix().is_empty());
        }
    }
    let _ = snpkit_wire::verity::VerityParams::parse(&String::from_utf8_lossy(data));
});
