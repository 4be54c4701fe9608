//! `cargo xtask verify` as a user runs it: files, boot runs, emulated reports, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::strs;
use snpkit_testkit::vectors::read as vector;

/// Run `xtask verify` with `cache` as its whole cache: SNPKIT_CACHE wins over XDG_CACHE_HOME, so
/// both point there, and a developer's warm cache can never answer for an offline or KDS-down case.
pub(crate) fn xtask_verify(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("verify")
        .args(args)
        .env("SNPKIT_CACHE", cache.join("snpkit"))
        .env("XDG_CACHE_HOME", cache)
        .env_remove("SNPKIT_KDS_URL")
        .output()
        .expect("run xtask")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    pub(crate) fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub(crate) fn put(&self, rel: &str, bytes: &[u8]) -> String {
        put_at(&self.path(rel), bytes)
    }
}

fn put_at(p: &Path, bytes: &[u8]) -> String {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

pub(crate) const OAK_CB: &str = "project-oak-oak/derived/cb.report.bin";
const OAK_CB_VCEK: &str = "project-oak-oak/derived/cb.vcek.der";
const MILAN_CRL: &str = "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der";
/// Inside the Milan CRL's validity (2026-06-22 to 2026-08-08) and oak cb's VCEK's.
const INSIDE_CRL: &str = "2026-07-01T00:00:00Z";

/// A genuine report with its VCEK and AMD's Milan CRL in a --certs folder, offline.
fn genuine_args(f: &Files, report: &[u8]) -> Vec<String> {
    let r = snpkit_attest::report::parse(&vector(OAK_CB)).unwrap();
    let report_path = f.put("report.bin", report);
    f.put("certs/vcek.der", &vector(OAK_CB_VCEK));
    f.put("certs/crl.der", &vector(MILAN_CRL));
    vec![
        "--report".into(),
        report_path,
        "--certs".into(),
        f.path("certs").to_string_lossy().into_owned(),
        "--measurement".into(),
        hex::encode(r.measurement),
        "--report-data".into(),
        hex::encode(r.report_data),
        "--now".into(),
        INSIDE_CRL.into(),
        "--offline".into(),
    ]
}

/// The table line of one check.
fn line<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{table}"))
}

fn check<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {json}"))
}

#[test]
fn a_genuine_report_passes_and_prints_stable_json() {
    let f = Files::new();
    let mut args = genuine_args(&f, &vector(OAK_CB));
    args.push("--json".into());
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON verdict");
    assert_eq!(json["passed"], true);
    assert_eq!(json["emulated"], false);
    assert_eq!(json["product"], "Milan");
    assert_eq!(json["schema"], 2);
    assert_eq!(check(&json, "report.signature")["passed"], true);
    assert_eq!(check(&json, "chain.crl")["found"], "not revoked");
    let names: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, snpkit_attest::verdict::CHECKS);
}

#[test]
fn revocation_fails_closed_without_a_crl_and_is_skipped_only_when_asked() {
    let f = Files::new();
    let args = genuine_args(&f, &vector(OAK_CB));
    std::fs::remove_file(f.path("certs/crl.der")).unwrap();
    // Offline, an empty cache, no CRL in --certs: a failing line that says how to get one.
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL  chain.crl"), "{out}");
    assert!(
        out.contains("--no-crl") && out.contains("--crl FILE") && out.contains("not in the cache"),
        "{out}"
    );
    assert!(
        out.contains("VERDICT: FAIL — 1 of"),
        "only the CRL is missing:\n{out}"
    );
    // --crl FILE brings it back.
    let crl = f.put("elsewhere/milan.crl", &vector(MILAN_CRL));
    let mut with_crl = args.clone();
    with_crl.extend(["--crl".into(), crl]);
    let o = xtask_verify(&strs(&with_crl), &f.path("cache"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // --no-crl: passes, and says so where nobody can miss it.
    let mut opt_out = args.clone();
    opt_out.push("--no-crl".into());
    let o = xtask_verify(&strs(&opt_out), &f.path("cache"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        line(&out, "chain.crl").starts_with("PASS")
            && line(&out, "chain.crl").contains("skipped by policy"),
        "{out}"
    );
    // So does the policy's require_crl = false.
    let policy = f.put("policy.toml", b"require_crl = false\n");
    let mut by_policy = args.clone();
    by_policy.extend(["--policy".into(), policy]);
    let o = xtask_verify(&strs(&by_policy), &f.path("cache"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("skipped by policy"), "{}", text(&o));
}

#[test]
fn deleting_a_stale_cached_crl_does_not_turn_a_fail_into_a_pass() {
    let f = Files::new();
    let mut args = genuine_args(&f, &vector(OAK_CB));
    std::fs::remove_file(f.path("certs/crl.der")).unwrap();
    let pos = args.iter().position(|a| a == "--now").unwrap();
    args[pos + 1] = "2026-09-01T00:00:00Z".into(); // after the CRL's nextUpdate
    let cached = f.put("cache/snpkit/kds/vcek/v1/Milan/crl", &vector(MILAN_CRL));
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  chain.crl"), "stale: {}", text(&o));
    std::fs::remove_file(cached).unwrap();
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("FAIL  chain.crl"),
        "missing: {}",
        text(&o)
    );
}

#[test]
fn a_tampered_report_fails_with_the_check_named() {
    let f = Files::new();
    let mut report = vector(OAK_CB);
    report[0x2A0] ^= 1;
    let o = xtask_verify(&strs(&genuine_args(&f, &report)), &f.path("cache"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL  report.signature"), "{out}");
    assert!(out.contains("VERDICT: FAIL"), "{out}");
    assert!(!out.contains('\x1b'), "no colour when not on a terminal");
}

#[test]
fn bad_input_files() {
    let f = Files::new();
    let o = xtask_verify(
        &strs(&genuine_args(&f, &vector(OAK_CB)[..1000])),
        &f.path("cache"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  report.format"), "{}", text(&o));
    assert!(text(&o).contains("found size"), "{}", text(&o));

    let o = xtask_verify(&strs(&genuine_args(&f, b"garbage")), &f.path("cache"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Oversized: exit 2, a failing verdict naming the file (table for people, JSON for CI).
    let mut args = genuine_args(&f, &vec![0u8; 200_000]);
    let report = f.path("report.bin").to_string_lossy().into_owned();
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("FAIL  input") && out.contains("at most"),
        "{out}"
    );
    assert!(out.contains("VERDICT: FAIL"), "{out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("at most"),
        "{}",
        text(&o)
    );
    args.push("--json".into());
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON verdict");
    assert_eq!(json["passed"], false);
    let input = check(&json, "input");
    assert_eq!(input["passed"], false);
    assert_eq!(input["found"], report.as_str());
    assert!(
        input["detail"].as_str().unwrap().contains("200000 bytes"),
        "{json}"
    );
    assert_eq!(check(&json, "report.signature")["evaluated"], false);

    // Unreadable.
    let o = xtask_verify(
        &["--report", "/nonexistent/report.bin", "--json"],
        &f.path("cache"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON verdict");
    assert_eq!(check(&json, "input")["found"], "/nonexistent/report.bin");
    assert!(
        check(&json, "input")["detail"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{json}"
    );

    // A malformed flag is an input error too, with the exact reason.
    // (genuine_args already has a --now: replace its value, or clap refuses the second flag and
    // the test would pass for the wrong reason.)
    let mut args = genuine_args(&f, &vector(OAK_CB));
    let pos = args.iter().position(|a| a == "--now").unwrap();
    args[pos + 1] = "yesterday".into();
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o)
            .contains("--now: \"yesterday\" is not an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)"),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("FAIL  input"),
        "{}",
        text(&o)
    );

    // A policy with a typo names the key.
    let policy = f.put("typo.toml", b"alow_debug = true\n");
    let mut args = genuine_args(&f, &vector(OAK_CB));
    args.extend(["--policy".into(), policy.clone(), "--json".into()]);
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON verdict");
    assert_eq!(check(&json, "input")["found"], policy.as_str());
    assert!(text(&o).contains("alow_debug"), "{}", text(&o));

    // Both vcek.pem and vcek.der: ambiguous.
    let args = genuine_args(&f, &vector(OAK_CB));
    f.put("certs/vcek.pem", b"x");
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("keep one"), "{}", text(&o));
}

#[test]
fn pem_with_leading_text_and_der_under_either_name() {
    let f = Files::new();
    let args = genuine_args(&f, &vector(OAK_CB));
    std::fs::remove_file(f.path("certs/vcek.der")).unwrap();
    let pem = der::pem::encode_string(
        "CERTIFICATE",
        der::pem::LineEnding::LF,
        &vector(OAK_CB_VCEK),
    )
    .unwrap();
    f.put(
        "certs/vcek.pem",
        format!("subject=CN=SEV-VCEK\nissuer=CN=SEV-Milan\n{pem}").as_bytes(),
    );
    let o = xtask_verify(&strs(&args), &f.path("cache"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn kds_down_is_a_failing_verdict() {
    let f = Files::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = snpkit_attest::report::parse(&vector(OAK_CB)).unwrap();
    let report_path = f.put("report.bin", &vector(OAK_CB));
    let url = format!("http://127.0.0.1:{port}");
    let m = hex::encode(r.measurement);
    let rd = hex::encode(r.report_data);
    let o = xtask_verify(
        &[
            "--report",
            &report_path,
            "--measurement",
            &m,
            "--report-data",
            &rd,
            "--kds-url",
            &url,
        ],
        &f.path("cache"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  chain.vek"), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("127.0.0.1:{port}")),
        "{}",
        text(&o)
    );
}

#[test]
fn a_vlek_report_with_its_vlek_and_a_policy_file() {
    let f = Files::new();
    let rel = "confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek-report.bin";
    let r = snpkit_attest::report::parse(&vector(rel)).unwrap();
    let report = f.put("report.bin", &vector(rel));
    f.put(
        "certs/vlek.der",
        &vector("confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek.der"),
    );
    let policy = f.put("policy.toml", b"vmpl = 1\nsigning_key = \"vlek\"\n");
    let certs = f.path("certs").to_string_lossy().into_owned();
    let m = hex::encode(r.measurement);
    let rd = hex::encode(r.report_data);
    let base = [
        "--report",
        &report,
        "--certs",
        &certs,
        "--measurement",
        &m,
        "--report-data",
        &rd,
        "--offline",
    ];
    // No CRL current in 2025 is vendored: opt out, visibly.
    let mut args = base.to_vec();
    args.extend([
        "--now",
        "2025-06-01T00:00:00Z",
        "--policy",
        &policy,
        "--no-crl",
    ]);
    let o = xtask_verify(&args, &f.path("cache"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("skipped by policy"), "{}", text(&o));
    // The VLEK expired on 2025-12-10.
    let mut args = base.to_vec();
    args.extend(["--now", "2026-01-01T00:00:00Z", "--policy", &policy]);
    let o = xtask_verify(&args, &f.path("cache"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  chain.validity"), "{}", text(&o));
    // Demanding a VCEK refuses it.
    let strict = f.put("strict.toml", b"vmpl = 1\nsigning_key = \"vcek\"\n");
    let mut args = base.to_vec();
    args.extend(["--now", "2025-06-01T00:00:00Z", "--policy", &strict]);
    let o = xtask_verify(&args, &f.path("cache"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("FAIL  report.signing_key"),
        "{}",
        text(&o)
    );
}

/// An images folder with one recipe, its expected.json, and boot runs made by the emulated PSP.
pub(crate) fn emulated_images(f: &Files) -> (String, snpkit_attest::emulated::ReportFields) {
    use snpkit_attest::emulated::{ReportFields, TestChain, emulated_report};
    let chain = TestChain::cached().expect("test chain");
    // The child process looks for the chain under its own XDG cache: share this machine's.
    let version = snpkit_attest::emulated::CACHE_VERSION;
    let src = snpkit_attest::emulated::default_dir()
        .unwrap()
        .join(version);
    let dst = f.path("cache/snpkit/test-chain").join(version);
    std::fs::create_dir_all(&dst).unwrap();
    // A private folder, as the chain's own (the keys keep their 0600 through the copy).
    std::fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let measurement = [0x5A; 48];
    let expected = serde_json::json!({
        "schema": 1, "recipe": "hello", "inputs": [],
        "configs": [
            {"launch": {"name": "qemu-1", "vcpus": 1, "vcpu_type": "EPYC-v4", "vmm": "qemu", "guest_features": 1, "policy": 0x30000, "memory_mib": 512},
             "measurement": hex::encode(measurement)},
            {"launch": {"name": "qemu-4", "vcpus": 4, "vcpu_type": "EPYC-v4", "vmm": "qemu", "guest_features": 1, "policy": 0x30000, "memory_mib": 512},
             "measurement": hex::encode([0x4B; 48])}
        ]
    });
    use snpkit_bundle::{CertName, IMAGES_DIR, ImageDir, RunId};
    let image = ImageDir::new(&f.path(IMAGES_DIR), "hello");
    put_at(&image.expected(), expected.to_string().as_bytes());
    let write_run = |id: &str, nonce: [u8; 32], pubkey: &[u8], report: &[u8]| {
        let run = image.run(&RunId::parse(id).unwrap());
        put_at(&run.report(), report);
        let emulated = snpkit_bundle::RunLaunch::Emulated;
        put_at(
            &run.cert_for(emulated, CertName::Ark),
            chain.roots.ark.der(),
        );
        put_at(
            &run.cert_for(emulated, CertName::Ask),
            chain.roots.ask.der(),
        );
        put_at(&run.cert_for(emulated, CertName::Vcek), chain.vcek.der());
        put_at(&run.nonce(), format!("{}\n", hex::encode(nonce)).as_bytes());
        put_at(&run.pubkey(), pubkey);
        let json = serde_json::json!({"schema": 1, "recipe": "hello", "config": "qemu-1", "launch": "emulated",
            "nonce": hex::encode(nonce), "pubkey": hex::encode(pubkey), "provider": "emulated-psp"});
        put_at(&run.record(), json.to_string().as_bytes());
    };
    // An older run whose report binds another nonce, then the newest, good one.
    let pubkey = b"ephemeral public key".to_vec();
    let stale = ReportFields::new(
        measurement,
        snpkit_wire::binding::report_data(&[1; 32], &pubkey),
        0x30000,
    );
    write_run("run-a", [2; 32], &pubkey, &emulated_report(chain, &stale));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let good = ReportFields::new(
        measurement,
        snpkit_wire::binding::report_data(&[3; 32], &pubkey),
        0x30000,
    );
    write_run("run-b", [3; 32], &pubkey, &emulated_report(chain, &good));
    (f.path(IMAGES_DIR).to_string_lossy().into_owned(), good)
}

#[test]
fn a_boot_run_verifies_only_with_allow_emulated_and_says_so() {
    let f = Files::new();
    let (images, _) = emulated_images(&f);
    let cache = f.path("cache");
    let o = xtask_verify(&["hello", "--images", &images], &cache);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  emulated"), "{}", text(&o));

    let o = xtask_verify(&["hello", "--images", &images, "--allow-emulated"], &cache);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("EMULATED — NOT HARDWARE-BACKED"), "{out}");
    // Revocation is checked against the test chain's own CRL, from the cache.
    let crl = line(&out, "chain.crl");
    assert!(
        crl.starts_with("PASS") && crl.contains("not revoked"),
        "{out}"
    );
    assert!(out.contains("PASS  policy.launch"), "{out}");
    assert!(out.contains("PASS  measurement"), "{out}");
    // Any config of the image's prediction would do; the verdict names the one matched.
    assert!(out.contains("(launch config \"qemu-1\")"), "{out}");

    let o = xtask_verify(
        &["hello", "--images", &images, "--allow-emulated", "--json"],
        &cache,
    );
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(json["emulated"], true);
    assert_eq!(json["passed"], true);
    assert_eq!(json["warning"], "EMULATED — NOT HARDWARE-BACKED");

    // The older run binds another nonce than its own nonce file says: REPORT_DATA fails.
    let o = xtask_verify(
        &["hello", "run-a", "--images", &images, "--allow-emulated"],
        &cache,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  report_data"), "{}", text(&o));

    // Another launch config's measurement fails.
    let o = xtask_verify(
        &[
            "hello",
            "--images",
            &images,
            "--allow-emulated",
            "--config",
            "qemu-4",
        ],
        &cache,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAIL  measurement"), "{}", text(&o));

    // No such run, no such recipe: clear errors.
    let o = xtask_verify(&["hello", "run-z", "--images", &images], &cache);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = xtask_verify(&["nope", "--images", &images], &cache);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cargo xtask boot"), "{}", text(&o));
}

/// An image without its prediction (deleted, or built by an older snpkit): the error says which
/// command writes it.
#[test]
fn a_missing_prediction_names_the_command_that_writes_it() {
    let f = Files::new();
    let (images, _) = emulated_images(&f);
    let image = snpkit_bundle::ImageDir::new(Path::new(&images), "hello");
    std::fs::remove_file(image.expected()).unwrap();
    let o = xtask_verify(
        &["hello", "--images", &images, "--allow-emulated"],
        &f.path("cache"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("is missing") && text(&o).contains("cargo xtask measure hello"),
        "{}",
        text(&o)
    );
}

/// `genuine_args` judged against an expected.json of these configs (name, MEASUREMENT, guest
/// policy) instead of `--measurement`.
pub(crate) fn against_expected(f: &Files, configs: &[(&str, [u8; 48], u64)]) -> Vec<String> {
    let configs: Vec<serde_json::Value> = configs
        .iter()
        .map(|(name, m, policy)| {
            serde_json::json!({"launch": {"name": name, "vcpus": 1, "vcpu_type": "EPYC-v4",
                "vmm": "qemu", "guest_features": 1, "policy": policy, "memory_mib": 512},
                "measurement": hex::encode(m)})
        })
        .collect();
    let json = serde_json::json!({"schema": 1, "recipe": "oak", "inputs": [], "configs": configs});
    let expected = f.put("expected.json", json.to_string().as_bytes());
    let mut args = genuine_args(f, &vector(OAK_CB));
    let pos = args.iter().position(|a| a == "--measurement").unwrap();
    args.splice(pos..pos + 2, ["--expected".into(), expected]);
    args
}

/// An image has one digest per launch config: a report of config B judged against an
/// expected.json of A and B passes and the verdict names B, in the table and the JSON; one that
/// matches none fails naming them all; `--config A` holds it to A.
#[test]
fn any_config_of_an_expected_json_passes_and_is_named() {
    let f = Files::new();
    let r = snpkit_attest::report::parse(&vector(OAK_CB)).unwrap();
    let (mut a, mut c) = (r.measurement, r.measurement);
    a[0] ^= 1;
    c[1] ^= 1;
    let cache = f.path("cache");

    let args = against_expected(&f, &[("A", a, r.policy), ("B", r.measurement, r.policy)]);
    let o = xtask_verify(&strs(&args), &cache);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("VERDICT: PASS — all 31 checks passed (launch config \"B\")"),
        "{out}"
    );
    assert!(
        line(&out, "measurement").contains("launch config \"B\" of"),
        "{out}"
    );
    let mut json_args = args.clone();
    json_args.push("--json".into());
    let o = xtask_verify(&strs(&json_args), &cache);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON verdict");
    assert_eq!(json["config"], "B");
    assert_eq!(check(&json, "policy.launch")["passed"], true);

    // Held to A by --config: fails, naming no config.
    let mut held = args.clone();
    held.extend(["--config".into(), "A".into(), "--json".into()]);
    let o = xtask_verify(&strs(&held), &cache);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON verdict");
    assert_eq!(json["config"], serde_json::Value::Null);
    assert_eq!(check(&json, "measurement")["expected"], hex::encode(a));
    // --config B passes, and a name it does not have is an input error listing the names.
    let mut held_b = args.clone();
    held_b.extend(["--config".into(), "B".into()]);
    assert_eq!(xtask_verify(&strs(&held_b), &cache).status.code(), Some(0));
    let mut unknown = args.clone();
    unknown.extend(["--config".into(), "Z".into()]);
    let o = xtask_verify(&strs(&unknown), &cache);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("(it has: A, B)"), "{}", text(&o));

    // Matching none: fails, naming every config and its digest.
    let args = against_expected(&f, &[("A", a, r.policy), ("C", c, r.policy)]);
    let o = xtask_verify(&strs(&args), &cache);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let m = line(&out, "measurement");
    assert!(
        m.starts_with("FAIL")
            && m.contains("matches none of the 2 launch configs of")
            && m.contains("\"A\", \"C\"")
            && m.contains(&hex::encode(c)),
        "{out}"
    );
    assert!(!out.contains("(launch config"), "{out}");

    // Its digest, but launched with another guest policy: policy.launch fails.
    let args = against_expected(&f, &[("B", r.measurement, r.policy ^ 0x1000)]);
    let o = xtask_verify(&strs(&args), &cache);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(line(&out, "policy.launch").starts_with("FAIL"), "{out}");
    assert!(line(&out, "measurement").starts_with("PASS"), "{out}");
}
