#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

use snpkit_testkit::vectors::read as vector;

const REPORTS: &[&str] = &[
    "virtee-sev/derived/report_milan.bin",
    "google-go-sev-guest/verify/testdata/attestation.bin",
    "confidential-containers-trustee/deps/verifier/test_data/snp/test-report.bin",
    "confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek-report.bin",
    "confidential-containers-trustee/derived/e2e-evidence.report.bin",
    "project-oak-oak/derived/genoa_oc.report.bin",
    "project-oak-oak/derived/turin_oc.report.bin",
    "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp.bin",
];

#[test]
fn fields_agree_with_the_sev_crate_where_it_parses() {
    use sev::parser::ByteParser;
    for rel in REPORTS {
        let bytes = vector(rel);
        let ours = parse(&bytes).expect(rel);
        match sev::firmware::guest::AttestationReport::from_bytes(&bytes) {
            Ok(theirs) => {
                assert_eq!(ours.version, theirs.version, "{rel}");
                assert_eq!(ours.measurement, theirs.measurement, "{rel}");
                assert_eq!(ours.report_data, theirs.report_data, "{rel}");
                assert_eq!(ours.chip_id, theirs.chip_id, "{rel}");
                assert_eq!(ours.vmpl, theirs.vmpl, "{rel}");
                assert_eq!(ours.cpuid.map(|c| c.0), theirs.cpuid_fam_id, "{rel}");
                assert_eq!(
                    ours.mit_vectors.map(|m| m.0),
                    theirs.launch_mit_vector,
                    "{rel}"
                );
                let product = ours.cpuid_product().unwrap_or(Product::Milan);
                let tcb = ours.tcb(ours.reported_tcb, product);
                assert_eq!(tcb.microcode, theirs.reported_tcb.microcode, "{rel}");
                assert_eq!(tcb.snp, theirs.reported_tcb.snp, "{rel}");
                assert_eq!(tcb.fmc, theirs.reported_tcb.fmc, "{rel}");
            }
            // The sev crate cannot parse a VLEK report's masked chip id; we can.
            Err(_) => assert_eq!(ours.signing_key, SigningKey::Vlek, "{rel}"),
        }
    }
}

#[test]
fn decoded_values_match_the_vector_dumps() {
    let turin = parse(&vector("project-oak-oak/derived/turin_oc.report.bin")).expect("turin");
    assert_eq!(turin.version, 5);
    assert_eq!(turin.cpuid, Some((0x1A, 0x02, 0x01)));
    assert_eq!(turin.cpuid_product(), Some(Product::Turin));
    assert_eq!(
        hex::encode(turin.chip_id_for(Product::Turin)),
        "3b42092f69c656d3"
    );
    assert_eq!(turin.platform_info, 0x67);
    assert_eq!(turin.mit_vectors, Some((0, 0)));
    let genoa = parse(&vector("project-oak-oak/derived/genoa_oc.report.bin")).expect("genoa");
    assert_eq!(genoa.mit_vectors, Some((1, 1)));
    let gcp = parse(&vector(
        "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp.bin",
    ))
    .expect("gcp");
    assert_eq!(gcp.mit_vectors, Some((0xb, 0xb)));
    assert_eq!(gcp.current_version.0, 1);
    assert_eq!(gcp.current_version.1, 55);
    let vlek = parse(&vector(
        "confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek-report.bin",
    ))
    .expect("vlek");
    assert_eq!(vlek.signing_key, SigningKey::Vlek);
    assert_eq!(vlek.chip_id, [0; 64]);
    let trustee = parse(&vector(
        "confidential-containers-trustee/deps/verifier/test_data/snp/test-report.bin",
    ))
    .expect("trustee");
    assert_eq!(
        trustee.tcb(trustee.current_tcb, Product::Milan).microcode,
        206
    );
    assert_eq!(
        trustee.tcb(trustee.reported_tcb, Product::Milan).microcode,
        115
    );
    assert_eq!(trustee.guest_svn, 4);
}

#[test]
fn never_panics_on_any_length_or_byte() {
    let base = vector("project-oak-oak/derived/turin_oc.report.bin");
    for len in [0, 1, 4, 1183, 1185, 4096] {
        assert_eq!(
            parse(&vec![0u8; len]).err(),
            Some(ReportError::Size { found: len })
        );
    }
    // Every single-byte change either parses or names a rule; none panics.
    for i in 0..REPORT_LEN {
        let mut b = base.clone();
        b[i] ^= 0xFF;
        if let Err(e) = parse(&b) {
            assert!(!e.rule().is_empty());
        }
    }
}

#[test]
fn a_version_2_report_with_a_masked_chip_id_parses() {
    let mut b = vector("virtee-sev/derived/report_milan.bin");
    b[layout::CHIP_ID].fill(0);
    b[layout::KEY_INFO] = 1 << 2; // VLEK
    let r = parse(&b).expect("masked chip id");
    assert_eq!(r.signing_key, SigningKey::Vlek);
}
