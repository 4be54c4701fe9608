//! Mutations of genuine reports, verified with their real VCEK/VLEK, reference values, policy and
//! (where a vendored one is current) AMD's CRL: the verdict a relying party would get.
//!
//! Input: byte 0 picks the genuine report, byte 1 the mode. Edit mode (byte 1 < 0x80): the rest is
//! a script of 3-byte edits `[lo, hi, value]` applied to the genuine report — offset
//! `((hi & 0x1f) << 8 | lo)`, and `hi >> 5` chooses xor (0–5), set (6) or resize (7, to the
//! offset modulo 2048). Raw mode: the rest is the report itself.
//!
//! Must hold: no panic, no hang; the untouched report passes; and any report that passes has the
//! genuine report's signed bytes (0x000–0x29F), signature R and reserved tail. Only S may differ,
//! because ECDSA accepts (r, n − s) wherever it accepts (r, s) and the ABI does not ask for low S.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_attest::{CrlInput, Endorsements, Policy, Reference, Trust};

struct Case {
    report: &'static [u8],
    vek: &'static [u8],
    vlek: bool,
    vmpl: u32,
    debug: bool,
    crl: Option<&'static [u8]>,
    /// Unix time inside every certificate's validity (and the CRL's).
    now: i64,
}

macro_rules! vector {
    ($rel:literal) => {
        include_bytes!(concat!("../../tests/vectors/", $rel))
    };
}
const MILAN_CRL: &[u8] = vector!(
    "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der"
);
/// 2026-07-01: inside the Milan CRL (2026-06-22..2026-08-08) and the certificates.
const JULY_2026: i64 = 1_782_864_000;
/// 2025-06-01: inside the AWS VLEK's year.
const JUNE_2025: i64 = 1_748_736_000;

const CASES: &[Case] = &[
    // Milan v3 VCEK, with the CRL.
    Case {
        report: vector!("project-oak-oak/derived/cb.report.bin"),
        vek: vector!("project-oak-oak/derived/cb.vcek.der"),
        vlek: false,
        vmpl: 0,
        debug: false,
        crl: Some(MILAN_CRL),
        now: JULY_2026,
    },
    // Turin v5: its TCB layout and 8-byte chip id.
    Case {
        report: vector!("project-oak-oak/derived/turin_oc.report.bin"),
        vek: vector!("project-oak-oak/derived/turin_oc.vcek.der"),
        vlek: false,
        vmpl: 0,
        debug: false,
        crl: None,
        now: JULY_2026,
    },
    // Genoa v5.
    Case {
        report: vector!("project-oak-oak/derived/genoa_oc.report.bin"),
        vek: vector!("project-oak-oak/derived/genoa_oc.vcek.der"),
        vlek: false,
        vmpl: 0,
        debug: false,
        crl: None,
        now: JULY_2026,
    },
    // Milan v3 VLEK (AWS), VMPL 1, masked chip id.
    Case {
        report: vector!(
            "confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek-report.bin"
        ),
        vek: vector!("confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek.der"),
        vlek: true,
        vmpl: 1,
        debug: false,
        crl: None,
        now: JUNE_2025,
    },
    // Milan v2 with DEBUG allowed (go-sev-guest's), with the CRL.
    Case {
        report: vector!("google-go-sev-guest/verify/testdata/attestation.bin"),
        vek: vector!("google-go-sev-guest/verify/testdata/vcek.testcer"),
        vlek: false,
        vmpl: 0,
        debug: true,
        crl: Some(MILAN_CRL),
        now: JULY_2026,
    },
    // GCP v5, PEM VCEK.
    Case {
        report: vector!("canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp.bin"),
        vek: vector!("canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-vcek.pem"),
        vlek: false,
        vmpl: 0,
        debug: false,
        crl: Some(MILAN_CRL),
        now: JULY_2026,
    },
];

const LEN: usize = 0x4A0;
const SIGNED_END: usize = 0x2A0;
const S: std::ops::Range<usize> = 0x2E8..0x318;

fn mutate(genuine: &[u8], script: &[u8]) -> Vec<u8> {
    let mut r = genuine.to_vec();
    for edit in script.chunks_exact(3) {
        let offset = usize::from(edit[1] & 0x1f) << 8 | usize::from(edit[0]);
        match edit[1] >> 5 {
            0..=5 if !r.is_empty() => {
                let at = offset % r.len();
                r[at] ^= edit[2];
            }
            6 if !r.is_empty() => {
                let at = offset % r.len();
                r[at] = edit[2];
            }
            7 => r.resize(offset % 2048, edit[2]),
            _ => {}
        }
    }
    r
}

fuzz_target!(|data: &[u8]| {
    let [pick, mode, rest @ ..] = data else {
        return;
    };
    let case = &CASES[usize::from(*pick) % CASES.len()];
    let candidate = if *mode >= 0x80 {
        rest.to_vec()
    } else {
        mutate(case.report, rest)
    };

    let genuine = snpkit_attest::report::parse(case.report).expect("a genuine report parses");
    let mut e = Endorsements::default();
    if case.vlek {
        e.vlek = Some(case.vek.to_vec());
    } else {
        e.vcek = Some(case.vek.to_vec());
    }
    if let Some(crl) = case.crl {
        e.crl = CrlInput::Given(crl.to_vec());
    }
    let reference = Reference {
        measurement: Some(genuine.measurement),
        report_data: Some(genuine.report_data),
        report_data_source: "the genuine report".into(),
        measurement_source: "the genuine report".into(),
        ..Reference::default()
    };
    let policy = Policy {
        vmpl: case.vmpl,
        allow_debug: case.debug,
        // No CRL current at `now` is vendored for these: opt out, as the tests do.
        require_crl: case.crl.is_some(),
        ..Policy::default()
    };
    let now = time::OffsetDateTime::from_unix_timestamp(case.now).expect("a valid time");
    let v = snpkit_attest::verify(&candidate, &e, &reference, &policy, &Trust::default(), now);
    let _ = v.to_json();
    let _ = v.to_table(false);

    if candidate == case.report {
        assert!(
            v.passed,
            "the genuine report must pass:\n{}",
            v.to_table(false)
        );
    }
    if v.passed {
        let g = case.report;
        assert_eq!(candidate.len(), LEN, "a passing report is {LEN} bytes");
        assert_eq!(
            candidate[..SIGNED_END],
            g[..SIGNED_END],
            "a passing report has the signed bytes that were signed"
        );
        assert_eq!(
            candidate[SIGNED_END..S.start],
            g[SIGNED_END..S.start],
            "signature R unchanged"
        );
        assert_eq!(
            candidate[S.end..],
            g[S.end..],
            "the reserved tail unchanged"
        );
    }
});
