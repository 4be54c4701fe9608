//! Secrets end to end (issue 11): `recipes/secret-hello` built once and booted under the emulated
//! launch with `cargo xtask kbs serve` as the broker, on an ephemeral port, as an operator runs it.
//! The guest's handshake goes through the host's relay on the virtio channel; the broker judges
//! the emulated PSP's report against the image's own expected.json.
//!
//! Two boots: a broker holding the image's measurement releases a random token (the appliance
//! prints its digest, and its bytes are nowhere in the run folder, the console log or the capture
//! of every relayed byte), and a broker whose reference holds another measurement refuses (no
//! secret, the entry point never runs, the run fails with the broker's words). The refusals that
//! need no boot (replayed evidence, a reused challenge, a flipped JWE byte, a missing resource, a
//! broker that is down, slow or huge) are the guest's and the relay's unit tests
//! (crates/guest/src/secrets_tests.rs).

use crate::boot::BOOTS;
use crate::kbs::Broker;
use crate::support::{Sandbox, fails, free_port, ok, xtask};
use sha2::{Digest, Sha256};
use snpkit_bundle::ImageDir;
use std::path::{Path, PathBuf};

const RECIPE: &str = "secret-hello";

/// `cargo xtask kbs serve` on a free port with `reference`, serving `token`; returns its URL.
fn serve(dir: &Path, reference: &Path, token: &[u8]) -> (Broker, String) {
    serve_resource(dir, reference, "default/secret-hello/token", token)
}

/// `cargo xtask kbs serve` on a free port with `reference`, serving `bytes` as `resource`.
pub(crate) fn serve_resource(
    dir: &Path,
    reference: &Path,
    resource: &str,
    bytes: &[u8],
) -> (Broker, String) {
    let resources = dir.join("resources");
    let file = resources.join(resource);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, bytes).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let (broker, _banner) = Broker::spawn(
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
            .arg(&resources)
            .arg("--reference")
            .arg(reference)
            .arg("--audit")
            .arg(dir.join("audit.jsonl")),
    );
    (broker, format!("http://{listen}"))
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn secret_hello_gets_its_token_only_from_a_broker_that_knows_its_measurement() {
    let sb = Sandbox::with_recipe(RECIPE);
    ok(&mut sb.xtask(&["build", RECIPE]));
    let image = ImageDir::new(&sb.images(), RECIPE);

    // No broker: refused before QEMU starts, with the way to give one.
    let err = fails(&mut sb.xtask(&["boot", RECIPE, "--launch", "emulated"]));
    assert!(
        err.contains("asks a key broker for 1 secret(s) (token;")
            && err.contains("pass --kbs http://127.0.0.1:PORT"),
        "{err}"
    );
    assert!(image.newest_run().is_err(), "no run was started");

    // A broker whose reference is the image's own prediction releases a random token.
    let mut token = vec![0u8; 32];
    getrandom::fill(&mut token).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (broker, url) = serve(dir.path(), &image.expected(), &token);
    let capture = dir.path().join("relay.bin");
    let out = {
        let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
        ok(&mut sb.xtask(&[
            "boot",
            RECIPE,
            "--launch",
            "emulated",
            "--kbs",
            &url,
            "--relay-capture",
            capture.to_str().unwrap(),
        ]))
    };
    drop(broker);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("EMULATED LAUNCH"), "{stdout}");
    let run = image.newest_run().expect("the boot wrote a run");
    let console = std::fs::read_to_string(run.console_log()).unwrap();
    let digest = hex::encode(Sha256::digest(&token));
    let printed: Vec<&str> = console
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("token sha256: "))
        .collect();
    assert_eq!(printed, [digest.as_str()], "{console}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.record()).unwrap()).unwrap();
    assert_eq!(record["broker"], url.as_str());
    assert_eq!(record["entry"], "exited with status 0");

    // The token's bytes (raw, hex, base64) are nowhere the host keeps anything.
    use base64::Engine;
    let forms = [
        token.clone(),
        hex::encode(&token).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(&token)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&token)
            .into_bytes(),
    ];
    let relayed = std::fs::read(&capture).unwrap();
    assert!(relayed.len() > 4096, "the capture holds the exchange");
    let mut kept = files(run.path());
    kept.push((capture.clone(), relayed));
    kept.push((
        dir.path().join("audit.jsonl"),
        std::fs::read(dir.path().join("audit.jsonl")).unwrap(),
    ));
    for (path, bytes) in &kept {
        for form in &forms {
            assert!(!contains(bytes, form), "{} holds the token", path.display());
        }
    }

    // A broker whose reference holds another measurement: no secret, no entry point.
    let expected = std::fs::read_to_string(image.expected()).unwrap();
    let ours =
        serde_json::from_str::<serde_json::Value>(&expected).unwrap()["configs"][0]["measurement"]
            .as_str()
            .unwrap()
            .to_owned();
    let other: String = ours
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'a' { 'b' } else { 'a' }
            } else {
                c
            }
        })
        .collect();
    let reference = dir.path().join("other-expected.json");
    std::fs::write(&reference, expected.replace(&ours, &other)).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let (broker, url) = serve(other_dir.path(), &reference, &token);
    let err = {
        let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
        fails(&mut sb.xtask(&["boot", RECIPE, "--launch", "emulated", "--kbs", &url]))
    };
    drop(broker);
    assert!(
        err.contains(
            "secret 'token' (default/secret-hello/token): the broker refused the evidence (401"
        ),
        "{err}"
    );
    assert!(!err.contains("token sha256:"), "{err}");
    let failed = std::fs::read_dir(image.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p != run.path())
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let console = std::fs::read_to_string(failed[0].join("console.log")).unwrap();
    assert!(!console.contains("starting the entry point"), "{console}");
    assert!(!console.contains("token sha256:"), "{console}");
    let audit = std::fs::read_to_string(other_dir.path().join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"event\":\"attest\",\"decision\":\"deny\""),
        "{audit}"
    );
}
