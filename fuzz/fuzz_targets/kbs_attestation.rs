//! The broker's `attest` body comes from anyone on the network: parsing, the key's point check and
//! the evidence's trip back to report bytes must never panic, and a report that comes back from
//! the fields goes to the fields and back again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_kbs::{binding, evidence, message};

fuzz_target!(|data: &[u8]| {
    let Ok(a) = message::parse_attestation(data) else {
        return;
    };
    let _ = binding::report_data(
        &a.runtime_data.nonce,
        &a.runtime_data.tee_pubkey,
        &a.tee_evidence.additional_evidence,
    );
    if let Ok(ev) = evidence::decode(&a.tee_evidence.primary_evidence) {
        let certs: Vec<(evidence::CertKind, &[u8])> =
            ev.certs.iter().map(|(k, b)| (*k, &b[..])).collect();
        let again = evidence::encode(&ev.report, &certs).expect("decoded reports encode");
        let back = evidence::decode(&again).expect("and decode again");
        assert_eq!(back.report, ev.report, "the report survives the trip");
    }
});
