//! Arbitrary bytes as an attestation report: parse, then the whole verification against a fixed
//! genuine VCEK. Must hold: no panic, no hang, and never a passing verdict (no reference values are
//! given, so `measurement` and `report_data` always fail).
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_attest::{Endorsements, Policy, Reference, Trust};

const VCEK: &[u8] = include_bytes!("../../tests/vectors/project-oak-oak/derived/cb.vcek.der");

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = snpkit_attest::report::parse(data) {
        let _ = r.signature_rs();
        let _ = r.cpuid_product();
    }
    let e = Endorsements { vcek: Some(VCEK.to_vec()), ..Endorsements::default() };
    let now = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let v = snpkit_attest::verify(data, &e, &Reference::default(), &Policy::default(), &Trust::default(), now);
    assert!(!v.passed, "a verdict passed without reference values");
    let _ = v.to_json();
    let _ = v.to_table(false);
});
