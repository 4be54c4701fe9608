//! `cargo xtask kbs serve` as an operator runs it, with a guest's handshake (emulated PSP evidence)
//! against it over loopback.

use crate::support::{fails, free_port, xtask};
use snpkit_attest::emulated::{ReportFields, TestChain, emulated_report};
use snpkit_kbs::ResourcePath;
use snpkit_kbs::evidence::CertKind;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const MEASUREMENT: [u8; 48] = [0x33; 48];
const POLICY: u64 = 0x30000;

fn write_reference(path: &Path, name: &str) {
    let text = serde_json::json!({
        "schema": 1, "recipe": "secret-hello", "inputs": [],
        "configs": [{"launch": {"name": name, "vcpus": 1, "vcpu_type": "EPYC-v4", "vmm": "qemu",
            "guest_features": 1, "policy": POLICY, "memory_mib": 512}, "measurement": hex::encode(MEASUREMENT)}],
    });
    std::fs::write(path, serde_json::to_vec(&text).unwrap()).unwrap();
}

/// The broker process; killed (by its own id) when dropped.
pub(crate) struct Broker(pub(crate) Child);

impl Broker {
    /// Starts `cmd` (a `cargo xtask kbs serve --allow-emulated …`) and waits for its banner,
    /// which ends with the `--allow-emulated` line; returns the broker and the banner.
    pub(crate) fn spawn(cmd: &mut Command) -> (Broker, String) {
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let broker = Broker(child);
        let mut banner = String::new();
        while !banner.contains("--allow-emulated") {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the broker stopped: {banner}"
            );
            banner.push_str(&line);
        }
        (broker, banner)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kbs_serve_releases_a_secret_only_to_the_attested_guest() {
    let chain = TestChain::cached().expect("the emulated PSP's test chain");
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("expected.json");
    write_reference(&reference, "hello-1");
    let secret: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    std::fs::create_dir_all(dir.path().join("res/default/secret-hello")).unwrap();
    std::fs::write(dir.path().join("res/default/secret-hello/token"), &secret).unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[resource]]\npath = \"default/secret-hello/token\"\nconfigs = [\"hello-1\"]\n",
    )
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (broker, banner) = Broker::spawn(
        xtask()
            .args([
                "kbs",
                "serve",
                "--listen",
                &listen,
                "--allow-emulated",
                "--offline",
            ])
            .arg("--resources")
            .arg(dir.path().join("res"))
            .arg("--reference")
            .arg(&reference)
            .arg("--rules")
            .arg(dir.path().join("rules.toml"))
            .arg("--audit")
            .arg(&audit),
    );
    assert!(
        banner.contains(&format!("snpkit broker on http://{listen}")),
        "{banner}"
    );
    assert!(
        banner.contains("EMULATED — NOT HARDWARE-BACKED"),
        "{banner}"
    );
    assert!(banner.contains("1 rules"), "{banner}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = snpkit_broker::client::KbsClient::new(&format!("http://{listen}")).unwrap();
    let name = ResourcePath::parse("default/secret-hello/token").unwrap();
    let evidence = |measurement: [u8; 48]| {
        move |s: &snpkit_kbs::attester::Session| {
            let report = emulated_report(
                chain,
                &ReportFields::new(measurement, s.report_data(), POLICY),
            );
            let certs: [(CertKind, &[u8]); 3] = [
                (CertKind::Ark, chain.roots.ark.der()),
                (CertKind::Ask, chain.roots.ask.der()),
                (CertKind::Vcek, chain.vcek.der()),
            ];
            Ok(s.attestation_body(&report, &certs)?)
        }
    };
    let got = runtime
        .block_on(client.fetch(&name, 4096, evidence(MEASUREMENT)))
        .expect("the attested guest gets the secret");
    assert_eq!(got.expose(), &secret[..]);
    let refused = runtime
        .block_on(client.fetch(&name, 4096, evidence([0x44; 48])))
        .expect_err("another measurement gets nothing");
    assert_eq!(refused.status(), Some(401));
    drop(broker);

    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["event"].as_str().unwrap(),
                l["decision"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            "auth allow",
            "attest allow",
            "resource allow",
            "auth allow",
            "attest deny"
        ]
    );
    assert_eq!(lines[2]["rule"], "default/secret-hello/token (by config)");
    // Every line about evidence says it was emulated.
    assert!(
        lines
            .iter()
            .filter(|l| l["event"] != "auth")
            .all(|l| l["evidence"] == "EMULATED — NOT HARDWARE-BACKED")
    );
    assert!(!log.contains(&hex::encode(&secret)));
}

#[test]
fn kbs_serve_refuses_to_start_on_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("expected.json");
    write_reference(&reference, "hello-1");
    std::fs::create_dir_all(dir.path().join("res")).unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[resource]]\npath = \"a/b/c\"\nconfigs = [\"typo\"]\n",
    )
    .unwrap();
    let serve = |extra: &[&str]| {
        let mut cmd = xtask();
        cmd.args(["kbs", "serve", "--listen", "127.0.0.1:1"])
            .arg("--resources")
            .arg(dir.path().join("res"))
            .args(extra);
        cmd
    };
    let ref_arg = reference.to_str().unwrap();
    let rules = dir.path().join("rules.toml");
    let err = fails(&mut serve(&[
        "--reference",
        ref_arg,
        "--rules",
        rules.to_str().unwrap(),
    ]));
    assert!(
        err.contains("config \"typo\" is not in the reference"),
        "{err}"
    );
    let err = fails(&mut serve(&["--reference", "/nonexistent/expected.json"]));
    assert!(
        err.contains("cannot use the reference values")
            && err.contains("/nonexistent/expected.json")
            && err.contains("No such file"),
        "{err}"
    );
    let err = fails(&mut serve(&[
        "--reference",
        ref_arg,
        "--tls-cert",
        "cert.pem",
    ]));
    assert!(err.contains("--tls-key"), "{err}");
}
