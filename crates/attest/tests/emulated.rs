//! The emulated PSP: its reports verify through the same code as AMD's, and only with
//! --allow-emulated; then every output says EMULATED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use snpkit_attest::certs::Cert;
use snpkit_attest::emulated::{ReportFields, TestChain, VekSpec, emulated_report, sign_with};
use snpkit_attest::report::layout::REPORT_LEN;
use snpkit_attest::{
    CrlInput, EMULATED_BANNER, Endorsements, Policy, Reference, Trust, Verdict, verify,
};
use time::OffsetDateTime;

fn chain() -> &'static TestChain {
    TestChain::cached().expect("test chain (generated once into the XDG cache)")
}

fn launch() -> ReportFields {
    let nonce = [7u8; 32];
    let rd = snpkit_wire::binding::report_data(&nonce, b"guest public key");
    ReportFields::new([0xAB; 48], rd, 0x30000)
}

/// The test chain, a launch, and the emulated PSP's report of it.
fn emulated() -> (&'static TestChain, ReportFields, [u8; REPORT_LEN]) {
    let c = chain();
    let l = launch();
    let report = emulated_report(c, &l);
    (c, l, report)
}

/// `--allow-emulated`, with `c` as the emulated roots.
fn allowed(c: &TestChain) -> Trust<'_> {
    Trust {
        allow_emulated: true,
        emulated_roots: Some(&c.roots),
        memo: None,
    }
}

/// What a boot run brings back, plus the chain's own CRL (which `cargo xtask verify
/// --allow-emulated` adds from the cache).
fn endorsements(c: &TestChain) -> Endorsements {
    Endorsements {
        ark: Some(c.roots.ark.der().to_vec()),
        ask: Some(c.roots.ask.der().to_vec()),
        vcek: Some(c.vcek.der().to_vec()),
        crl: CrlInput::Given(c.crl.clone()),
        ..Endorsements::default()
    }
}

fn reference(l: &ReportFields) -> Reference {
    Reference {
        measurement: Some(l.measurement),
        report_data: Some(l.report_data),
        launch_policy: Some(l.policy),
        report_data_source: "emulated launch".into(),
        measurement_source: "emulated launch".into(),
        ..Reference::default()
    }
}

/// The verdict on `report` with the default policy, now, against `l`'s reference values.
fn judge(report: &[u8], e: &Endorsements, l: &ReportFields, trust: &Trust) -> Verdict {
    verify(report, e, &reference(l), &Policy::default(), trust, now())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn emulated_report_verifies_only_with_allow_emulated() {
    let (c, l, report) = emulated();
    let v = judge(&report, &endorsements(c), &l, &allowed(c));
    assert!(v.passed, "{}", v.to_table(false));
    assert!(v.emulated);
    assert!(v.to_table(false).contains(EMULATED_BANNER));
    assert!(v.to_json().contains("\"emulated\": true"));
    // Revocation was checked against the test ARK's real CRL, not skipped.
    let crl = v.check("chain.crl").expect("crl");
    assert_eq!(crl.found, "not revoked", "{crl:?}");
    assert!(
        crl.detail
            .contains(&format!("ARK-{}", snpkit_attest::verifier::EMULATED_MARK))
    );

    let strict = Trust {
        allow_emulated: false,
        emulated_roots: Some(&c.roots),
        memo: None,
    };
    let v = judge(&report, &endorsements(c), &l, &strict);
    assert_fails_on(&v, "emulated", "without --allow-emulated");
    assert_fails_on(&v, "chain.ark", "test ARK is not AMD's");
    assert!(v.emulated, "the verdict still says what it saw");

    let v = judge(&report, &endorsements(c), &l, &Trust::default());
    assert_fails_on(&v, "emulated", "no test chain known");
}

#[test]
fn emulated_report_has_the_real_layout() {
    let (c, l, report) = emulated();
    let r = snpkit_attest::report::parse(&report).expect("parses");
    assert_eq!(r.version, 3);
    assert_eq!(r.signature_algo, 1);
    assert_eq!(r.measurement, l.measurement);
    assert_eq!(r.report_data, l.report_data);
    assert_eq!(r.chip_id, c.chip_id);
    assert_eq!(r.reported_tcb, c.tcb.raw);
    assert_eq!(r.cpuid, Some((0x19, 0x01, 0x01)));
    assert_eq!(r.report_id_ma, [0xFF; 32]);
    assert_ne!(r.report_id, [0; 32]);
    assert_ne!(
        emulated_report(c, &l)[0x140..0x160],
        report[0x140..0x160],
        "report id is random"
    );
    // The sev crate's parser (an independent reading of the layout) agrees.
    use sev::parser::ByteParser;
    let theirs =
        sev::firmware::guest::AttestationReport::from_bytes(&report).expect("sev parses it");
    assert_eq!(theirs.measurement, l.measurement);
    assert_eq!(theirs.chip_id, c.chip_id);
    assert_eq!(theirs.cpuid_fam_id, Some(0x19));
}

#[test]
fn the_test_chain_is_cached_and_stable() {
    let a = chain();
    let b = TestChain::load_or_create(&snpkit_attest::emulated::default_dir().expect("dir"))
        .expect("load");
    assert_eq!(a.roots.ark.fingerprint(), b.roots.ark.fingerprint());
    assert_eq!(a.chip_id, b.chip_id);
    assert!(
        a.roots
            .ark
            .subject_cn()
            .expect("cn")
            .contains("snpkit-EMULATED")
    );
}

/// The verdict, with --allow-emulated, on a report signed by a test-ASK VEK that is honest but
/// for `lie`.
fn lying_vek(lie: impl FnOnce(&mut VekSpec)) -> snpkit_attest::Verdict {
    let mut spec = honest_spec();
    lie(&mut spec);
    let (c, l, mut report) = emulated();
    let (vek, key) = c.issue_vek(&spec).expect("issue");
    sign_with(&key, &mut report);
    let mut e = endorsements(c);
    e.vcek = Some(vek);
    judge(&report, &e, &l, &allowed(c))
}

fn honest_spec() -> VekSpec {
    let c = chain();
    VekSpec {
        common_name: "SEV-VCEK".into(),
        product_name: "Milan-B0".into(),
        tcb: (
            None,
            c.tcb.bootloader,
            c.tcb.tee,
            c.tcb.snp,
            c.tcb.microcode,
        ),
        hw_id: Some(c.chip_id.to_vec()),
        ca: false,
        extra_critical: false,
        issuer_cn: None,
    }
}

#[test]
fn an_honest_reissued_vek_passes() {
    let v = lying_vek(|_| {});
    assert!(v.passed, "{}", v.to_table(false));
}

#[test]
fn vek_tcb_must_equal_reported_tcb() {
    assert_fails_on(
        &lying_vek(|s| s.tcb.4 = s.tcb.4.wrapping_add(1)),
        "vek.tcb",
        "ucodeSPL off by one",
    );
}

#[test]
fn vek_hwid_must_equal_chip_id() {
    assert_fails_on(
        &lying_vek(|s| {
            if let Some(h) = s.hw_id.as_mut() {
                h[0] ^= 1;
            }
        }),
        "vek.hwid",
        "other chip",
    );
    assert_fails_on(&lying_vek(|s| s.hw_id = None), "vek.hwid", "no hwID");
}

#[test]
fn vek_product_name_must_match() {
    assert_fails_on(
        &lying_vek(|s| s.product_name = "Genoa".into()),
        "vek.product",
        "Genoa VCEK for a Milan chip",
    );
}

#[test]
fn vek_kind_ca_and_critical_extensions() {
    assert_fails_on(
        &lying_vek(|s| s.common_name = "SEV-VLEK".into()),
        "chain.vek_kind",
        "VLEK cert for a VCEK report",
    );
    assert_fails_on(&lying_vek(|s| s.ca = true), "chain.vek", "VEK marked CA");
    assert_fails_on(
        &lying_vek(|s| s.extra_critical = true),
        "chain.vek",
        "unknown critical extension",
    );
}

#[test]
fn the_chain_keeps_an_ark_signed_crl_in_its_cache() {
    let c = chain();
    let on_disk = std::fs::read(c.dir.join("crl.der")).expect("crl.der beside the keys");
    assert_eq!(on_disk, c.crl);
    let crl = snpkit_attest::certs::crl::Crl::decode(&c.crl).expect("decodes");
    crl.verify_signed_by(&c.roots.ark)
        .expect("signed by the test ARK");
    assert_eq!(crl.revoked_count(), 0);
    assert!(crl.next_update().expect("next update") >= c.roots.ark.not_after());
    // A chain cached before CRLs were kept gets one on its next load.
    let copy = tempfile::tempdir().expect("tmp");
    let v1 = copy.path().join(snpkit_attest::emulated::CACHE_VERSION);
    std::fs::create_dir_all(&v1).expect("mkdir");
    std::fs::set_permissions(&v1, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    for f in [
        "ark.pem", "ask.pem", "vcek.pem", "ark.key", "ask.key", "vcek.key",
    ] {
        std::fs::copy(c.dir.join(f), v1.join(f)).expect("copy");
    }
    let again = TestChain::existing(copy.path())
        .expect("loads")
        .expect("is there");
    snpkit_attest::certs::crl::Crl::decode(&again.crl)
        .expect("issued")
        .verify_signed_by(&c.roots.ark)
        .expect("by the same ARK");
    assert_eq!(
        std::fs::read(v1.join("crl.der")).expect("written"),
        again.crl
    );
    // A damaged one is named, not trusted.
    std::fs::write(v1.join("crl.der"), b"junk").expect("write");
    let err = TestChain::load_or_create(copy.path()).expect_err("damaged");
    assert!(err.to_string().contains("delete the folder"), "{err}");
}

#[test]
fn crl_revoking_the_ask_or_the_vcek_fails() {
    use std::time::{Duration, SystemTime};
    let (c, l, report) = emulated();
    let allowed = allowed(c);
    let day = Duration::from_secs(86_400);
    let t = SystemTime::now();
    // The verdict with the test chain's certificates and `crl`.
    let with_crl = |crl: CrlInput| {
        let e = Endorsements {
            crl,
            ..endorsements(c)
        };
        judge(&report, &e, &l, &allowed)
    };
    let issued = |revoked: &[&Cert], from: SystemTime, to: SystemTime| {
        CrlInput::Given(c.crl(revoked, from, to).expect("crl"))
    };
    let v = with_crl(issued(&[], t - day, t + day));
    assert!(v.passed, "{}", v.to_table(false));
    let v = with_crl(issued(&[&c.roots.ask], t - day, t + day));
    assert_fails_on(&v, "chain.crl", "revoked ASK");
    // The VCEK's own serial is looked up too.
    let v = with_crl(issued(&[&c.vcek], t - day, t + day));
    assert_fails_on(&v, "chain.crl", "revoked VCEK");
    assert!(
        v.check("chain.crl")
            .unwrap()
            .detail
            .contains("SEV-VCEK (serial 00) is revoked"),
        "{}",
        v.to_table(false)
    );
    // A CRL signed by another ARK (a forger's, under the test ARK's very name) is refused.
    let forged = TestChain::forge(&snpkit_attest::emulated::ChainNames::emulated()).expect("forge");
    let v = with_crl(CrlInput::Given(forged.crl.clone()));
    assert_fails_on(&v, "chain.crl", "CRL by another key");
    // Not yet current, and expired.
    for (from, to) in [(t + day, t + day * 2), (t - day * 2, t - day)] {
        let v = with_crl(issued(&[], from, to));
        assert_fails_on(&v, "chain.crl", "CRL outside its dates");
    }
    let e = Endorsements {
        crl: CrlInput::NotAtHand("offline".into()),
        ..endorsements(c)
    };
    let strict = Policy {
        require_crl: true,
        ..Policy::default()
    };
    let v = verify(&report, &e, &reference(&l), &strict, &allowed, now());
    assert_fails_on(&v, "chain.crl", "require_crl without a CRL");
    let v = with_crl(CrlInput::Failed("KDS answered 500".into()));
    assert_fails_on(&v, "chain.crl", "CRL fetch failed");
}

#[test]
fn a_vek_naming_another_issuer_is_refused_even_if_the_ask_signed_it() {
    // Signed with the test ASK's own key, but its issuer field names someone else: RFC 5280
    // chains names as well as keys, so the signature alone must not make it the ASK's VEK.
    let v = lying_vek(|s| s.issuer_cn = Some("SEV-Milan".into()));
    assert_fails_on(&v, "chain.vek", "VEK naming another issuer");
    assert!(
        v.check("chain.vek")
            .unwrap()
            .detail
            .contains("another issuer"),
        "{}",
        v.to_table(false)
    );
}

/// A signed launch's report verifies by key without an expected measurement, and says so; a key
/// digest of zero (what an unsigned launch reports) never stands in for a measurement; the guest
/// SVN is held to `min_guest_svn`.
#[test]
fn a_signed_launch_verifies_by_key_without_a_measurement() {
    let c = chain();
    let mut l = launch();
    l.id_key_digest = [0x1d; 48];
    l.author_key_digest = [0xa7; 48];
    l.author_key_en = true;
    l.guest_svn = 3;
    let report = emulated_report(c, &l);
    let trust = Trust {
        allow_emulated: true,
        emulated_roots: Some(&c.roots),
        memo: None,
    };
    let by_key = Reference {
        measurement: None,
        launch_policy: None,
        ..reference(&l)
    };
    let judge_with =
        |policy: &Policy| verify(&report, &endorsements(c), &by_key, policy, &trust, now());

    let author = Policy {
        author_key_digest: Some(hex::encode([0xa7; 48])),
        min_guest_svn: 3,
        ..Policy::default()
    };
    let v = judge_with(&author);
    assert!(v.passed, "{}", v.to_table(false));
    let m = v.check("measurement").unwrap();
    assert!(m.detail.contains("passes by signature"), "{m:?}");
    assert_eq!(m.found, hex::encode([0xAB; 48]));
    let id = Policy {
        id_key_digest: Some(hex::encode([0x1d; 48])),
        ..Policy::default()
    };
    assert!(judge_with(&id).passed);

    // Another author key: its own line fails (the measurement line passes only as "by signature").
    let other = Policy {
        author_key_digest: Some(hex::encode([0xa8; 48])),
        ..author.clone()
    };
    assert_fails_on(&judge_with(&other), "author_key_digest", "another author");
    // A zero digest is no key: the measurement must then be given.
    let zero = Policy {
        id_key_digest: Some("00".repeat(48)),
        ..Policy::default()
    };
    assert_fails_on(&judge_with(&zero), "measurement", "zero key digest");
    assert_fails_on(&judge_with(&Policy::default()), "measurement", "no key");
    // An SVN below the minimum.
    let newer = Policy {
        min_guest_svn: 4,
        ..author.clone()
    };
    assert_fails_on(&judge_with(&newer), "guest_svn", "svn 3 < 4");
}

/// A broker's memo of passed certificate and CRL signatures changes no verdict: a warm memo
/// still refuses a VCEK or CRL whose signature is one byte off, and remembers only passes.
#[test]
fn a_memo_of_passed_signatures_changes_no_verdict() {
    let c = chain();
    let l = launch();
    let report = emulated_report(c, &l);
    let memo = snpkit_attest::SignatureMemo::default();
    let with_memo = Trust {
        allow_emulated: true,
        emulated_roots: Some(&c.roots),
        memo: Some(&memo),
    };
    let without = Trust {
        memo: None,
        ..with_memo
    };
    let outcome = |v: &Verdict| -> Vec<(String, bool)> {
        v.checks
            .iter()
            .map(|k| (k.name.clone(), k.passed))
            .collect()
    };
    let plain = judge(&report, &endorsements(c), &l, &without);
    assert!(plain.passed, "{}", plain.to_table(false));
    for round in 0..2 {
        let v = judge(&report, &endorsements(c), &l, &with_memo);
        assert!(v.passed, "round {round}: {}", v.to_table(false));
        assert_eq!(outcome(&v), outcome(&plain), "round {round}");
    }
    assert_eq!(memo.len(), 2, "the VCEK's and the CRL's signatures");

    let mut e = endorsements(c);
    let mut vcek = c.vcek.der().to_vec();
    *vcek.last_mut().unwrap() ^= 1;
    e.vcek = Some(vcek);
    assert_fails_on(
        &judge(&report, &e, &l, &with_memo),
        "chain.vek",
        "a VCEK one signature bit off, memo warm",
    );

    let mut e = endorsements(c);
    let mut crl = snpkit_attest::certs::crl::Crl::decode(&c.crl)
        .unwrap()
        .der()
        .to_vec();
    *crl.last_mut().unwrap() ^= 1;
    e.crl = CrlInput::Given(crl);
    assert_fails_on(
        &judge(&report, &e, &l, &with_memo),
        "chain.crl",
        "a CRL one signature bit off, memo warm",
    );
    assert_eq!(memo.len(), 2, "failures are not remembered");
}
