//! Every real report of tests/vectors that verifies there verifies here, with its own VCEK/VLEK and
//! the builtin roots, at a time inside its certificates' validity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use snpkit_attest::{CrlInput, Policy, Reference, ReferenceConfig};

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
        // Every check ran; revocation was checked against a real CRL, or skipped visibly.
        assert!(v.checks.iter().all(|c| c.evaluated), "{}", g.name);
        let crl = v.check("chain.crl").expect("crl line");
        let want = if g.crl.is_some() {
            "not revoked"
        } else {
            "skipped by policy"
        };
        assert_eq!(crl.found, want, "{}: {crl:?}", g.name);
    }
    assert!(
        GENUINE.iter().filter(|g| g.crl.is_some()).count() >= 15,
        "every Milan VCEK report checks the vendored CRL"
    );
}

#[test]
fn without_a_crl_the_default_policy_fails_closed() {
    let g = genuine("oak cb");
    let mut e = g.endorsements();
    e.crl = CrlInput::NotAtHand("offline, and the Milan vcek CRL is not in the cache".into());
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.crl", "no CRL at hand");
    assert_eq!(v.failed().count(), 1, "{}", v.to_table(false));
    let detail = &v.check("chain.crl").expect("crl").detail;
    for remedy in [
        "--offline",
        "crl.pem",
        "--crl FILE",
        "--no-crl",
        "require_crl = false",
    ] {
        assert!(detail.contains(remedy), "{remedy} missing from: {detail}");
    }
    // A failed fetch fails the same way.
    e.crl = CrlInput::Failed("KDS answered HTTP 500".into());
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.crl", "fetch failed");
    // Opting out passes, and says so.
    let opt_out = Policy {
        require_crl: false,
        ..g.policy()
    };
    let v = g.verify_changed(|i| {
        i.endorsements = e.clone();
        i.policy = opt_out.clone();
    });
    assert!(v.passed, "{}", v.to_table(false));
    let crl = v.check("chain.crl").expect("crl");
    assert_eq!(crl.found, "skipped by policy");
    assert!(crl.detail.contains("NOT checked"), "{crl:?}");
    // But a CRL at hand is checked even then: a stale one still fails.
    e.crl = CrlInput::Given(read(MILAN_CRL));
    let v = g.verify_changed(|i| {
        i.endorsements = e.clone();
        i.policy = opt_out.clone();
        i.now = time::macros::datetime!(2026-09-01 00:00 UTC);
    });
    assert_fails_on(&v, "chain.crl", "stale CRL with the opt-out");
}

#[test]
fn azure_hcl_report_holds_the_snp_report_at_offset_32() {
    let hcl =
        read("confidential-containers-trustee/deps/verifier/test_data/az-snp-vtpm/hcl-report.bin");
    let g = genuine("azure hcl milan v2");
    assert_eq!(&hcl[32..32 + 1184], &g.report_bytes()[..]);
    let v = g.verify_changed(|i| i.report = hcl[32..32 + 1184].to_vec());
    assert!(v.passed, "{}", v.to_table(false));
}

/// tests/vectors/README.md row 12 is a VLEK report whose signature fails with its shipped VLEK
/// while that VLEK's chain verifies; it comes from Constellation (BUSL-1.1) and is not vendored.
/// The same situation is derived here from genuine parts: a genuine report carrying a genuine
/// signature, by a genuine key, over other bytes. Everything else about it is right, so
/// `report.signature` must be the one check that fails.
#[test]
fn a_genuine_signature_over_other_bytes_fails_only_the_signature() {
    let sig = 0x2A0..0x330;
    // Two reports of one GCP VM, signed by the one VCEK: swap their signatures.
    let a = genuine("gcp v5");
    let b = genuine("gcp v5 reportdata");
    assert_eq!(read(a.vek), read(b.vek), "one VCEK signs both");
    let mut report = a.report_bytes();
    report[sig.clone()].copy_from_slice(&b.report_bytes()[sig.clone()]);
    let v = a.verify_changed(|i| i.report = report.clone());
    let failed: Vec<&str> = v.failed().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["report.signature"], "{}", v.to_table(false));
    assert!(v.check("chain.vek").expect("vek").passed);

    // The VLEK case of row 12: the one vendored VLEK report, its chain through the ASVK intact,
    // with a genuine AMD-key signature that is not over its bytes.
    let vlek = genuine("trustee AWS VLEK v3");
    let mut report = vlek.report_bytes();
    report[sig.clone()].copy_from_slice(&genuine("oak cb").report_bytes()[sig]);
    let v = vlek.verify_changed(|i| i.report = report.clone());
    let failed: Vec<&str> = v.failed().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["report.signature"], "{}", v.to_table(false));
    assert!(
        v.check("chain.vek")
            .expect("vek")
            .detail
            .contains("SEV-VLEK-Milan"),
        "{}",
        v.to_table(false)
    );
}

#[test]
fn gcp_report_binds_sha512_of_nonce_and_key() {
    // sev-gcp-x25519-bound.txt gives NONCE and X25519_KEY; its REPORT_DATA is SHA-512(NONCE ‖ KEY)
    // (no domain tag, unlike snpkit's binding). Recompute it and let the verifier judge with it.
    use sha2::{Digest, Sha512};
    let g = genuine("gcp v5 x25519");
    let txt = String::from_utf8(read(
        "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-x25519-bound.txt",
    ))
    .expect("utf8");
    let field = |name: &str| {
        let line = txt
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{name} in the .txt"));
        hex::decode(line.trim()).expect("hex")
    };
    let (nonce, key) = (field("NONCE"), field("X25519_KEY"));
    assert_eq!((nonce.len(), key.len()), (32, 32));
    let bind = |key: &[u8]| -> [u8; 64] {
        Sha512::new()
            .chain_update(&nonce)
            .chain_update(key)
            .finalize()
            .into()
    };
    let reference = Reference {
        report_data: Some(bind(&key)),
        report_data_source: "SHA-512(NONCE ‖ X25519_KEY)".into(),
        ..g.reference()
    };
    let v = g.verify_changed(|i| i.reference = reference.clone());
    assert!(v.passed, "{}", v.to_table(false));
    // Another key, or snpkit's domain-separated binding of the same values, does not match.
    let mut other = key.clone();
    other[0] ^= 1;
    let nonce32: [u8; 32] = nonce.clone().try_into().expect("32");
    for (what, rd) in [
        ("another key", bind(&other)),
        (
            "snpkit's tagged binding",
            snpkit_wire::binding::report_data(&nonce32, &key),
        ),
    ] {
        let reference = Reference {
            report_data: Some(rd),
            ..g.reference()
        };
        let v = g.verify_changed(|i| i.reference = reference.clone());
        assert_fails_on(&v, "report_data", what);
    }
}

#[test]
fn milan_crl_verifies_and_is_checked_when_at_hand() {
    use time::macros::datetime;
    let g = genuine("virtee milan v2");
    let crl = read(MILAN_CRL);
    let mut e = g.endorsements();
    e.crl = CrlInput::Given(crl.clone());
    let inside = datetime!(2026-07-01 00:00 UTC);
    let v = g.verify_changed(|i| {
        i.endorsements = e.clone();
        i.now = inside;
    });
    assert!(v.passed, "{}", v.to_table(false));
    assert!(
        v.check("chain.crl")
            .expect("crl check")
            .detail
            .contains("0 entries")
    );
    // Past nextUpdate the CRL is stale: fail closed.
    let after = datetime!(2026-09-01 00:00 UTC);
    let v = g.verify_changed(|i| {
        i.endorsements = e.clone();
        i.now = after;
    });
    assert_fails_on(&v, "chain.crl", "stale CRL");
    // The Milan CRL is not the Genoa ARK's.
    let genoa = genuine("oak genoa v5");
    let mut e = genoa.endorsements();
    e.crl = CrlInput::Given(crl.clone());
    let v = genoa.verify_changed(|i| {
        i.endorsements = e.clone();
        i.now = inside;
    });
    assert_fails_on(&v, "chain.crl", "other product's CRL");
    // A flipped byte in the signed part breaks the ARK's signature.
    let mut bad = crl.clone();
    let n = bad.len();
    bad[n / 3] ^= 1;
    let mut e = g.endorsements();
    e.crl = CrlInput::Given(bad);
    let v = g.verify_changed(|i| {
        i.endorsements = e.clone();
        i.now = inside;
    });
    assert_fails_on(&v, "chain.crl", "tampered CRL");
}

/// An image's prediction lists one digest per launch config: every genuine report passes against
/// a list where its own config is one of several, the verdict names that config, and a list
/// without it fails naming every config.
#[test]
fn any_launch_config_passes_and_the_verdict_names_it() {
    for g in GENUINE {
        let r = snpkit_attest::report::parse(&g.report_bytes()).expect("parse");
        let config = |name: &str, measurement: [u8; 48], launch_policy: u64| ReferenceConfig {
            name: name.into(),
            measurement,
            launch_policy,
        };
        let mut other = r.measurement;
        other[0] ^= 1;
        let with = |configs: Vec<ReferenceConfig>| {
            let reference = Reference {
                measurement: None,
                measurement_source: "expected.json".into(),
                configs,
                ..g.reference()
            };
            g.verify_changed(|i| i.reference = reference)
        };
        let v = with(vec![
            config("a", other, r.policy),
            config("b", r.measurement, r.policy),
        ]);
        assert!(v.passed, "{}:\n{}", g.name, v.to_table(false));
        assert_eq!(v.config.as_deref(), Some("b"), "{}", g.name);
        assert!(
            v.to_table(false).contains("(launch config \"b\")"),
            "{}",
            v.to_table(false)
        );
        let m = v.check("measurement").expect("measurement");
        assert!(
            m.detail.contains("launch config \"b\" of expected.json"),
            "{m:?}"
        );

        // Its digest under another guest policy: policy.launch fails, no config is named.
        let v = with(vec![config("b", r.measurement, r.policy ^ 0x1000)]);
        assert_fails_on(&v, "policy.launch", g.name);
        assert!(v.check("measurement").expect("m").passed, "{}", g.name);
        assert_eq!(v.config, None, "{}", g.name);

        // None of its digest: fails naming every config.
        let mut third = other;
        third[1] ^= 1;
        let v = with(vec![
            config("a", other, r.policy),
            config("c", third, r.policy),
        ]);
        assert_fails_on(&v, "measurement", g.name);
        assert_eq!(v.config, None, "{}", g.name);
        let m = v.check("measurement").expect("measurement");
        assert!(
            m.detail
                .contains("matches none of the 2 launch configs of expected.json: \"a\", \"c\""),
            "{m:?}"
        );
        assert!(m.expected.contains(&hex::encode(third)), "{m:?}");
    }
}
