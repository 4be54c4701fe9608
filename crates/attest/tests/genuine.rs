//! Every real report of tests/vectors that verifies there verifies here, with its own VCEK/VLEK and
//! the builtin roots, at a time inside its certificates' validity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[test]
fn every_genuine_report_verifies() {
    for g in GENUINE {
        let v = g.verify();
        assert!(v.passed, "{}:\n{}", g.name, v.to_table(false));
        assert!(!v.emulated, "{}", g.name);
        assert_eq!(
            v.product.as_deref(),
            Some(g.product.kds_name()),
            "{}",
            g.name
        );
        assert_eq!(
            v.signing_key.as_deref(),
            Some(if g.vlek { "VLEK" } else { "VCEK" }),
            "{}",
            g.name
        );
        let r = snpkit_attest::report::parse(&g.report_bytes()).expect("parse");
        assert_eq!(r.version, g.version, "{}", g.name);
    }
}

#[test]
fn azure_hcl_report_holds_the_snp_report_at_offset_32() {
    let hcl =
        read("confidential-containers-trustee/deps/verifier/test_data/az-snp-vtpm/hcl-report.bin");
    let g = genuine("azure hcl milan v2");
    assert_eq!(&hcl[32..32 + 1184], &g.report_bytes()[..]);
    let v = g.verify_with(
        &hcl[32..32 + 1184],
        &g.endorsements(),
        &g.reference(),
        &g.policy(),
        g.now,
    );
    assert!(v.passed, "{}", v.to_table(false));
}

#[test]
fn constellation_vlek_vector_is_not_vendored() {
    // tests/vectors/README.md row 12: the one report whose signature fails with its shipped VLEK
    // comes from Constellation (BUSL-1.1) and is not included, so it cannot be tested here. Its
    // failure mode (a VLEK that did not sign the report) is covered by `mutations.rs` with a
    // VCEK/VLEK of another report.
    let readme = String::from_utf8(read("README.md")).expect("utf8");
    assert!(readme.contains("**signature FAILS with shipped VLEK**"));
    assert!(readme.contains("Not included: edgelesssys/constellation"));
}

#[test]
fn gcp_report_binds_sha512_of_nonce_and_key() {
    // sev-gcp-x25519-bound.txt: REPORT_DATA = SHA-512(NONCE ‖ X25519_KEY); our binding adds a domain
    // tag, so check the plain hash here and the --report-data path of the verifier.
    let g = genuine("gcp v5 x25519");
    let r = snpkit_attest::report::parse(&g.report_bytes()).expect("parse");
    assert_eq!(
        hex::encode(r.report_data),
        "3a6753fd4b194de53824d7fd5b45e251cc19a32a71dd5ba3e131fe19f2adbe86d658c147479571226e0f294eb7e44abb6c1673f39a5378ac25cd5d6268b91f1a"
    );
}

#[test]
fn milan_crl_verifies_and_is_checked_when_at_hand() {
    use snpkit_attest::CrlInput;
    use time::macros::datetime;
    let g = genuine("virtee milan v2");
    let crl = read(
        "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der",
    );
    let mut e = g.endorsements();
    e.crl = CrlInput::Given(crl.clone());
    let inside = datetime!(2026-07-01 00:00 UTC);
    let v = g.verify_with(&g.report_bytes(), &e, &g.reference(), &g.policy(), inside);
    assert!(v.passed, "{}", v.to_table(false));
    assert!(
        v.check("chain.crl")
            .expect("crl check")
            .detail
            .contains("0 entries")
    );
    // Past nextUpdate the CRL is stale: fail closed.
    let after = datetime!(2026-09-01 00:00 UTC);
    let v = g.verify_with(&g.report_bytes(), &e, &g.reference(), &g.policy(), after);
    assert_fails_on(&v, "chain.crl", "stale CRL");
    // The Milan CRL is not the Genoa ARK's.
    let genoa = genuine("oak genoa v5");
    let mut e = genoa.endorsements();
    e.crl = CrlInput::Given(crl.clone());
    let v = genoa.verify_with(
        &genoa.report_bytes(),
        &e,
        &genoa.reference(),
        &genoa.policy(),
        inside,
    );
    assert_fails_on(&v, "chain.crl", "other product's CRL");
    // A flipped byte in the signed part breaks the ARK's signature.
    let mut bad = crl.clone();
    let n = bad.len();
    bad[n / 3] ^= 1;
    let mut e = g.endorsements();
    e.crl = CrlInput::Given(bad);
    let v = g.verify_with(&g.report_bytes(), &e, &g.reference(), &g.policy(), inside);
    assert_fails_on(&v, "chain.crl", "tampered CRL");
}
