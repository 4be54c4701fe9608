//! For every genuine report, each mutation of issue 5 fails with the right named check; and every
//! policy check is shown able to fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use snpkit_attest::policy::KeyRequirement;
use snpkit_attest::{Policy, Product, Reference};
use time::macros::datetime;

fn each(f: impl Fn(&Genuine)) {
    for g in GENUINE {
        f(g);
    }
}

fn with_report(g: &Genuine, mutate: impl Fn(&mut Vec<u8>)) -> snpkit_attest::Verdict {
    let mut r = g.report_bytes();
    mutate(&mut r);
    g.verify_changed(|i| i.report = r.clone())
}

#[test]
fn flipped_signature_byte() {
    each(|g| {
        assert_fails_on(
            &with_report(g, |r| r[0x2A0] ^= 1),
            "report.signature",
            g.name,
        )
    });
}

#[test]
fn flipped_measurement_byte() {
    each(|g| {
        let v = with_report(g, |r| r[0x90] ^= 1);
        assert_fails_on(&v, "measurement", g.name);
        assert_fails_on(&v, "report.signature", g.name);
    });
}

#[test]
fn debug_bit_set() {
    each(|g| {
        if g.debug {
            return; // already set in this report (go-sev-guest's)
        }
        assert_fails_on(&with_report(g, |r| r[0x0A] |= 0x08), "policy.debug", g.name);
    });
    // And refused on a report that really has it, when the policy does not allow debug.
    let g = genuine("go-sev-guest milan v2");
    let v = g.verify_changed(|i| i.policy = Policy::default());
    assert_fails_on(&v, "policy.debug", g.name);
}

#[test]
fn wrong_products_roots() {
    each(|g| {
        let other = if g.product == Product::Milan {
            Product::Genoa
        } else {
            Product::Milan
        };
        // The relying party trusts only `other`'s roots: the chain is judged under those and
        // fails, whatever the CPUID says (a version 2 report says nothing).
        let reference = Reference {
            product: Some(other),
            ..g.reference()
        };
        let v = g.verify_changed(|i| i.reference = reference.clone());
        assert_eq!(v.product.as_deref(), Some(other.kds_name()), "{}", g.name);
        assert_fails_on(&v, "chain.vek", g.name);
        assert!(
            v.check("chain.vek")
                .unwrap()
                .expected
                .contains(&format!("SEV-{}", other.kds_name()))
                || v.check("chain.vek")
                    .unwrap()
                    .expected
                    .contains(&format!("SEV-VLEK-{}", other.kds_name())),
            "{}: judged under {other}'s intermediate:\n{}",
            g.name,
            v.to_table(false)
        );
        if g.version >= 3 {
            assert_fails_on(&v, "product", g.name);
        }
        // The other product's ARK and ASK handed over as the chain are refused too.
        let theirs = snpkit_attest::roots::builtin(other).unwrap();
        let mut e = g.endorsements();
        e.ark = Some(theirs.ark.der().to_vec());
        e.ask = Some(theirs.ask.der().to_vec());
        let v = g.verify_changed(|i| i.endorsements = e.clone());
        assert_fails_on(&v, "chain.ark", g.name);
        assert_fails_on(&v, "chain.ask", g.name);
    });
}

#[test]
fn self_made_chain() {
    // A forger's chain under AMD's own names (ARK-Milan, SEV-Milan, SEV-VCEK), not marked as the
    // emulated PSP's, with a VCEK that certifies each report's own chip and TCB, and the report
    // re-signed with its key: everything matches except the anchors, and that must be enough.
    let forged = snpkit_attest::emulated::TestChain::forge(
        &snpkit_attest::emulated::ChainNames::amd_lookalike(Product::Milan),
    )
    .expect("forge");
    assert_eq!(forged.roots.ark.subject_cn().as_deref(), Some("ARK-Milan"));
    each(|g| {
        let r = snpkit_attest::report::parse(&g.report_bytes()).unwrap();
        let tcb = r.tcb(r.reported_tcb, g.product);
        let spec = snpkit_attest::emulated::VekSpec {
            common_name: if g.vlek { "SEV-VLEK" } else { "SEV-VCEK" }.into(),
            product_name: g.product.kds_name().into(),
            tcb: (tcb.fmc, tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode),
            hw_id: (!g.vlek).then(|| r.chip_id_for(g.product).to_vec()),
            ca: false,
            extra_critical: false,
            issuer_cn: None,
        };
        let (vek, key) = forged.issue_vek(&spec).unwrap();
        let mut report: [u8; 1184] = g.report_bytes().try_into().unwrap();
        snpkit_attest::emulated::sign_with(&key, &mut report);
        let mut e = g.endorsements();
        e.ark = Some(forged.roots.ark.der().to_vec());
        e.ask = Some(forged.roots.ask.der().to_vec());
        e.crl = snpkit_attest::CrlInput::Given(forged.crl.clone());
        if g.vlek {
            e.vlek = Some(vek);
        } else {
            e.vcek = Some(vek);
        }
        let reference = Reference {
            product: Some(g.product),
            ..g.reference()
        };
        let v = g.verify_changed(|i| {
            i.report = report.to_vec();
            i.endorsements = e.clone();
            i.reference = reference.clone();
        });
        assert!(
            !v.emulated,
            "{}: a forged chain is not the emulated one",
            g.name
        );
        assert!(v.check("emulated").unwrap().passed, "{}", g.name);
        assert_fails_on(&v, "chain.ark", g.name);
        assert_fails_on(&v, "chain.ask", g.name);
        assert_fails_on(&v, "chain.vek", g.name);
        assert_fails_on(&v, "chain.crl", g.name);
        assert!(
            !v.check("report.signature").unwrap().passed,
            "{}: never checked against the forged key",
            g.name
        );
        // Just the forged ARK, with the genuine VEK: refused by fingerprint.
        let mut e = g.endorsements();
        e.ark = Some(forged.roots.ark.der().to_vec());
        let v = g.verify_changed(|i| i.endorsements = e.clone());
        assert_fails_on(&v, "chain.ark", g.name);
    });
}

/// The `report.format` line fails, naming the broken rule.
fn assert_format_rule(v: &snpkit_attest::Verdict, rule: &str, context: &str) {
    assert_fails_on(v, "report.format", context);
    assert_eq!(v.check("report.format").unwrap().found, rule, "{context}");
    // Nothing after the format could be judged, and nothing unjudged passes.
    let measurement = v.check("measurement").unwrap();
    assert!(!measurement.evaluated && !measurement.passed, "{context}");
}

#[test]
fn truncated_oversized_and_empty_reports() {
    each(|g| {
        assert_format_rule(&with_report(g, |r| r.truncate(1183)), "size", g.name);
        assert_format_rule(&with_report(g, |r| r.push(0)), "size", g.name);
        assert_format_rule(&with_report(g, |r| r.clear()), "size", g.name);
    });
}

#[test]
fn unknown_versions() {
    each(|g| {
        for version in [0u32, 1, 4, 6, 0xFFFF_FFFF] {
            let v = with_report(g, |r| r[0..4].copy_from_slice(&version.to_le_bytes()));
            assert_format_rule(&v, "version", g.name);
        }
    });
}

#[test]
fn check_names_are_the_same_in_pass_and_fail() {
    let names =
        |v: &snpkit_attest::Verdict| v.checks.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let want: Vec<String> = snpkit_attest::verdict::CHECKS
        .iter()
        .map(|s| s.to_string())
        .collect();
    each(|g| {
        assert_eq!(names(&g.verify()), want, "{} passing", g.name);
        assert_eq!(
            names(&with_report(g, |r| r.truncate(10))),
            want,
            "{} truncated",
            g.name
        );
        assert_eq!(
            names(&with_report(g, |r| r[0x2A0] ^= 1)),
            want,
            "{} bad signature",
            g.name
        );
    });
}

#[test]
fn vlek_report_checked_as_vcek_and_back() {
    each(|g| {
        let demand = if g.vlek {
            KeyRequirement::Vcek
        } else {
            KeyRequirement::Vlek
        };
        let policy = Policy {
            signing_key: demand,
            ..g.policy()
        };
        let v = g.verify_changed(|i| i.policy = policy.clone());
        assert_fails_on(&v, "report.signing_key", g.name);
    });
    // A VLEK report given only a VCEK (of another report): the certificate kind is wrong.
    let g = genuine("trustee AWS VLEK v3");
    let mut e = g.endorsements();
    e.vlek = None;
    e.vcek = Some(read(genuine("oak cb").vek));
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek_kind", g.name);
    // And a VCEK report given only the VLEK.
    let c = genuine("oak cb");
    let mut e = c.endorsements();
    e.vcek = None;
    e.vlek = Some(read(g.vek));
    let v = c.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek_kind", c.name);
}

#[test]
fn wrong_report_data() {
    each(|g| {
        let mut reference = g.reference();
        if let Some(rd) = reference.report_data.as_mut() {
            rd[63] ^= 1;
        }
        let v = g.verify_changed(|i| i.reference = reference.clone());
        assert_fails_on(&v, "report_data", g.name);
        let reference = Reference {
            report_data: None,
            ..g.reference()
        };
        let v = g.verify_changed(|i| i.reference = reference.clone());
        assert_fails_on(&v, "report_data", "no nonce given");
    });
}

#[test]
fn now_after_expiry_and_before_issue() {
    each(|g| {
        let v = g.verify_changed(|i| i.now = datetime!(2040-01-01 00:00 UTC));
        assert_fails_on(&v, "chain.validity", g.name);
        let v = g.verify_changed(|i| i.now = datetime!(2019-01-01 00:00 UTC));
        assert_fails_on(&v, "chain.validity", g.name);
    });
}

#[test]
fn missing_measurement_and_wrong_measurement() {
    each(|g| {
        let reference = Reference {
            measurement: None,
            ..g.reference()
        };
        let v = g.verify_changed(|i| i.reference = reference.clone());
        assert_fails_on(&v, "measurement", g.name);
        let reference = Reference {
            measurement: Some([0; 48]),
            ..g.reference()
        };
        let v = g.verify_changed(|i| i.reference = reference.clone());
        assert_fails_on(&v, "measurement", g.name);
    });
}

#[test]
fn another_chips_vcek() {
    // Same product, another chip: the hwID and the signature both disagree.
    let g = genuine("oak milan_oc_release");
    let mut e = g.endorsements();
    e.vcek = Some(read(genuine("oak milan_rk_release").vek));
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "vek.hwid", g.name);
    assert_fails_on(&v, "report.signature", g.name);
    // Another product's VCEK: not signed by this product's ASK.
    let mut e = g.endorsements();
    e.vcek = Some(read(genuine("oak genoa v5").vek));
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek", g.name);
    // None at all, with the reason the KDS gave.
    let mut e = g.endorsements();
    e.vcek = None;
    e.vek_problem = Some("KDS unreachable: connection refused".into());
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek", g.name);
    assert!(
        v.check("chain.vek")
            .unwrap()
            .detail
            .contains("connection refused")
    );
}

#[test]
fn turin_chip_id_tail_must_be_zero() {
    let g = genuine("oak turin v5");
    let v = with_report(g, |r| r[0x1A0 + 8] = 1);
    assert_fails_on(&v, "vek.hwid", g.name);
}

#[test]
fn reported_tcb_changed() {
    // trustee's upstream test: reported_tcb byte +1 ⇒ TCB mismatch (and a broken signature).
    let g = genuine("trustee milan v2");
    let v = with_report(g, |r| r[0x180 + 7] = r[0x180 + 7].wrapping_add(1));
    assert_fails_on(&v, "vek.tcb", g.name);
    assert_fails_on(&v, "report.signature", g.name);
}

#[test]
fn structural_rules() {
    let g = genuine("oak turin v5");
    type Mutation = fn(&mut Vec<u8>);
    let cases: &[(&str, Mutation)] = &[
        ("reserved_zero", |r| r[0x4C] = 1),
        ("reserved_zero", |r| r[0x18B] = 1),
        ("reserved_zero", |r| r[0x1EB] = 1),
        ("reserved_zero", |r| r[0x1EF] = 1),
        ("reserved_zero", |r| r[0x208] = 1),
        ("reserved_zero", |r| r[0x2D0] = 1),
        ("reserved_zero", |r| r[0x318] = 1),
        ("reserved_zero", |r| r[0x330] = 1),
        ("reserved_zero", |r| r[0x49F] = 1),
        ("signature_algo", |r| r[0x34] = 2),
        ("policy_reserved", |r| r[0x0A] &= !0x02),
        ("policy_reserved", |r| r[0x0F] = 0x80),
        ("key_info", |r| r[0x48] = 0x20),
        ("key_info", |r| r[0x48] = 2 << 2),
        ("vmpl_range", |r| r[0x30] = 4),
    ];
    for (rule, mutate) in cases {
        assert_format_rule(&with_report(g, mutate), rule, rule);
    }
    // Version 2 has no CPUID fields and version 3 no mitigation vectors: those bytes must be zero.
    let v2 = genuine("virtee milan v2");
    assert_format_rule(
        &with_report(v2, |r| r[0x188] = 0x19),
        "reserved_zero",
        "v2 cpuid",
    );
    let v3 = genuine("oak cb");
    assert_format_rule(
        &with_report(v3, |r| r[0x1F8] = 1),
        "reserved_zero",
        "v3 mit vector",
    );
}

#[test]
fn signed_by_no_key() {
    each(|g| {
        let v = with_report(g, |r| r[0x48] = 7 << 2);
        assert_fails_on(&v, "report.signing_key", g.name);
        assert!(
            v.check("report.signing_key")
                .unwrap()
                .detail
                .contains("no key")
        );
    });
}

#[test]
fn unknown_chip_product() {
    let g = genuine("oak cb");
    assert_fails_on(
        &with_report(g, |r| r[0x188] = 0x17),
        "product",
        "Rome CPUID",
    );
    let v2 = genuine("virtee milan v2");
    let mut e = v2.endorsements();
    e.vcek = None;
    e.vek_problem = Some("offline".into());
    let v = v2.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "product", "v2 without certificates or --product");
}

fn with_policy(g: &Genuine, p: Policy) -> snpkit_attest::Verdict {
    g.verify_changed(|i| i.policy = p.clone())
}

#[test]
fn every_policy_check_can_fail() {
    let g = genuine("trustee milan v2"); // policy 0x3001f, svn 4, family 01.., image 02.., id key set
    let base = g.policy();
    let cases: Vec<(&str, Policy)> = vec![
        (
            "policy.smt",
            Policy {
                allow_smt: false,
                ..base.clone()
            },
        ),
        (
            "policy.single_socket",
            Policy {
                require_single_socket: true,
                ..base.clone()
            },
        ),
        (
            "policy.abi",
            Policy {
                min_abi: "1.0".into(),
                ..base.clone()
            },
        ),
        (
            "guest_svn",
            Policy {
                min_guest_svn: 5,
                ..base.clone()
            },
        ),
        (
            "vmpl",
            Policy {
                vmpl: 2,
                ..base.clone()
            },
        ),
        (
            "tcb.minimum",
            Policy {
                min_tcb: snpkit_attest::policy::MinTcb {
                    microcode: 116,
                    ..Default::default()
                },
                ..base.clone()
            },
        ),
        (
            "host_data",
            Policy {
                host_data: Some("01".repeat(32)),
                ..base.clone()
            },
        ),
        (
            "id_key_digest",
            Policy {
                id_key_digest: Some("00".repeat(48)),
                ..base.clone()
            },
        ),
        (
            "author_key_digest",
            Policy {
                author_key_digest: Some("01".repeat(48)),
                ..base.clone()
            },
        ),
        (
            "family_id",
            Policy {
                family_id: Some("00".repeat(16)),
                ..base.clone()
            },
        ),
        (
            "image_id",
            Policy {
                image_id: Some("00".repeat(16)),
                ..base.clone()
            },
        ),
    ];
    for (check, p) in cases {
        assert_fails_on(&with_policy(g, p), check, check);
    }
    // The same optional values pass when right.
    let right = Policy {
        host_data: Some("00".repeat(32)),
        family_id: Some(format!("01{}", "00".repeat(15))),
        image_id: Some(format!("02{}", "00".repeat(15))),
        min_guest_svn: 4,
        min_abi: "0.31".into(),
        min_tcb: snpkit_attest::policy::MinTcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: None,
        },
        ..base.clone()
    };
    let v = with_policy(g, right);
    assert!(v.passed, "{}", v.to_table(false));
    // Migration agent: set bit 18 (the signature breaks too, but the policy line must say why).
    assert_fails_on(
        &with_report(g, |r| r[0x0A] |= 0x04),
        "policy.migration_agent",
        "MA",
    );
    // The launch config's policy must equal the report's.
    let reference = Reference {
        launch_policy: Some(0x30000),
        ..g.reference()
    };
    let v = g.verify_changed(|i| i.reference = reference.clone());
    assert_fails_on(&v, "policy.launch", "launch policy");
    // Turin's FMC minimum is checked on Turin (its FMC is 0: a minimum of 0 passes, 1 fails).
    let t = genuine("oak turin v5");
    let fmc = |n| Policy {
        min_tcb: snpkit_attest::policy::MinTcb {
            fmc: Some(n),
            ..Default::default()
        },
        ..t.policy()
    };
    assert!(with_policy(t, fmc(0)).passed);
    assert_fails_on(&with_policy(t, fmc(1)), "tcb.minimum", "turin fmc");
    // On a product without an FMC, a policy naming one is refused, not silently ignored.
    let m = genuine("oak cb");
    let p = Policy {
        min_tcb: snpkit_attest::policy::MinTcb {
            fmc: Some(0),
            ..Default::default()
        },
        ..m.policy()
    };
    let v = with_policy(m, p);
    assert_fails_on(&v, "tcb.minimum", "fmc on Milan");
    assert!(
        v.check("tcb.minimum")
            .unwrap()
            .detail
            .contains("Turin only")
    );
}

#[test]
fn garbage_certificates() {
    let g = genuine("oak cb");
    for (what, bytes) in [
        ("empty", vec![]),
        ("garbage", b"not a certificate at all".to_vec()),
        ("truncated DER", read(g.vek)[..100].to_vec()),
        (
            "PEM without END",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n".to_vec(),
        ),
        (
            "a CRL where a cert belongs",
            read(
                "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der",
            ),
        ),
    ] {
        let mut e = g.endorsements();
        e.vcek = Some(bytes.clone());
        let v = g.verify_changed(|i| i.endorsements = e.clone());
        assert_fails_on(&v, "chain.vek", what);
        let mut e = g.endorsements();
        e.ark = Some(bytes);
        let v = g.verify_changed(|i| i.endorsements = e.clone());
        assert_fails_on(&v, "chain.ark", what);
    }
    // The ARK given as the VCEK: a certificate of the wrong kind.
    let mut e = g.endorsements();
    e.vcek = Some(
        snpkit_attest::roots::builtin(Product::Milan)
            .unwrap()
            .ark
            .der()
            .to_vec(),
    );
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek_kind", "ARK as VCEK");
    // PEM where DER is usual, and DER where PEM is usual: both accepted.
    let pem =
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &read(g.vek)).unwrap();
    let mut e = g.endorsements();
    e.vcek = Some(pem.into_bytes());
    assert!(g.verify_changed(|i| i.endorsements = e.clone()).passed);
    let pem_vector = genuine("azure evidence v0");
    let der = snpkit_attest::certs::to_der("vcek", &read(pem_vector.vek)).unwrap();
    let mut e = pem_vector.endorsements();
    e.vcek = Some(der);
    assert!(pem_vector.verify_changed(|i| i.endorsements = e).passed);
}
