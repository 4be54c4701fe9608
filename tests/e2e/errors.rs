//! Errors say each thing once: a message says what was being done and to what, and its cause
//! follows in the chain, never inside the message as well. Real failures (a missing or unreadable
//! file, a damaged manifest, an image folder that cannot be written, a KDS that does not answer, a
//! cache in the wrong place), each through
//! the library call that meets it and through the command a user types, checked by the one
//! generic rule of `snpkit_testkit::errors`: no level of a chain repeats another.

use crate::support::{Sandbox, fails, xtask};
use snpkit_bundle::files;
use snpkit_testkit::errors::{assert_says_each_thing_once, assert_text_says_each_thing_once};
use std::path::Path;
use std::time::Duration;

/// The `error: …` line a failing command printed, checked, with the cause it must still carry.
fn check_stderr(stderr: &str, cause: &str) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line in:\n{stderr}"));
    assert_text_says_each_thing_once(line);
    assert!(line.contains(cause), "{line:?} lost its cause {cause:?}");
}

/// An error of a failed system call: it says each thing once and still carries the call's error.
fn says_once_with_its_cause(e: &(dyn std::error::Error + 'static)) {
    assert_says_each_thing_once(e);
    assert!(e.source().is_some(), "{e} lost its cause");
}

/// A file where a folder is expected: creating or reading anything below it fails (with ENOTDIR,
/// which root cannot override as it can permissions).
fn file_in_the_way(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("in-the-way");
    std::fs::write(&file, b"not a folder").unwrap();
    file
}

#[test]
fn library_errors_leave_their_cause_to_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let blocked = file_in_the_way(tmp.path());
    let missing = tmp.path().join("missing");

    // A recipe file that is not there (recipe), or not text.
    let e = snpkit_recipe::Recipe::load(&missing.join("recipe.toml")).unwrap_err();
    assert_says_each_thing_once(&e);
    let not_text = tmp.path().join("recipe.toml");
    std::fs::write(&not_text, b"\xff\xfe").unwrap();
    assert_says_each_thing_once(&snpkit_recipe::Recipe::load(&not_text).unwrap_err());

    // A host folder to copy into an image that is not there (image).
    let mut tree = snpkit_image::Tree::new();
    let e = snpkit_image::import::add_host_dir(&mut tree, &missing, "/").unwrap_err();
    assert_says_each_thing_once(&e);

    // A cache that cannot be created (inputs).
    let e = snpkit_inputs::Cache::at(&blocked).dir("blobs").unwrap_err();
    assert_says_each_thing_once(&e);

    // An unreadable report and a --certs folder that is not one (attest's file edge).
    let e = snpkit_attest::gather::read_limited(&missing.join("report.bin"), "report", 4096)
        .unwrap_err();
    assert_says_each_thing_once(&e);
    let e = snpkit_attest::gather::read_certs_dir(&missing).unwrap_err();
    assert_says_each_thing_once(&e);

    // The image folder (bundle): an image swapped in below a file, no image at all, a run folder
    // that cannot be made, a damaged manifest and a run record that is not there.
    let e = snpkit_bundle::write_image(&blocked, "app", &[("vmlinuz", b"k")]).unwrap_err();
    says_once_with_its_cause(&e);
    let e = snpkit_bundle::ImageDir::new(&blocked, "app")
        .start_run()
        .unwrap_err();
    says_once_with_its_cause(&e);
    let image = snpkit_bundle::ImageDir::new(tmp.path(), "app");
    std::fs::create_dir_all(image.path()).unwrap();
    std::fs::write(image.runs(), b"not a folder").unwrap();
    says_once_with_its_cause(&image.start_run().unwrap_err());
    std::fs::write(image.manifest(), b"{\"schema\": 1, ").unwrap();
    assert_says_each_thing_once(&image.read_manifest().unwrap_err());
    let e = snpkit_bundle::RunDir::at(&missing)
        .read_record()
        .unwrap_err();
    assert_says_each_thing_once(&e);

    // The emulated PSP's test chain cached where no folder can be made.
    let Err(e) = snpkit_attest::emulated::TestChain::load_or_create(&blocked.join("test-chain"))
    else {
        panic!("no test chain can be cached below a file");
    };
    assert_says_each_thing_once(&e);
}

fn kds(base_url: &str, cache_dir: &Path, offline: bool) -> snpkit_attest::kds::Kds {
    snpkit_attest::kds::Kds::new(snpkit_attest::kds::KdsConfig {
        base_url: base_url.into(),
        cache_dir: cache_dir.into(),
        offline,
        timeout: Duration::from_secs(5),
        retries: 0,
        backoff: Duration::from_millis(1),
        max_retry_after: Duration::from_secs(1),
    })
    .unwrap()
}

#[test]
fn kds_errors_name_the_url_once() {
    use snpkit_attest::Product;
    use snpkit_attest::kds::KeyKind;
    let tmp = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();

    // Nothing listens on the discard port of the loopback address: the connection is refused.
    let unreachable = kds("http://127.0.0.1:9", &tmp.path().join("kds"), false);
    let e = unreachable
        .crl(Product::Milan, KeyKind::Vcek, now)
        .unwrap_err();
    assert_says_each_thing_once(&e);
    assert!(e.to_string().contains("127.0.0.1:9"), "{e}");

    // A cache folder that cannot be read.
    let blocked = file_in_the_way(tmp.path());
    let offline = kds("http://127.0.0.1:9", &blocked.join("kds"), true);
    let e = offline.crl(Product::Milan, KeyKind::Vcek, now).unwrap_err();
    assert_says_each_thing_once(&e);
}

#[test]
fn commands_print_each_cause_once() {
    let sb = Sandbox::with_recipe("hello");
    let enoent = std::io::Error::from_raw_os_error(2).to_string();

    // An unreadable report: the verdict's input check and the stderr line.
    let mut cmd = xtask();
    cmd.args(["verify", "--report", "/nonexistent/report.bin"]);
    check_stderr(&fails(&mut cmd), &enoent);

    // A recipe that is not text: the line for people, and the JSON for machines, whose message
    // leaves the causes to "causes".
    std::fs::write(sb.recipe_file("hello"), b"\xff\xfe").unwrap();
    check_stderr(
        &fails(&mut sb.xtask(&["build", "hello"])),
        "did not contain valid UTF-8",
    );
    let out = sb.xtask(&["build", "hello", "--json"]).output().unwrap();
    assert!(!out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = json["error"]["message"].as_str().unwrap();
    let causes: Vec<&str> = json["error"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!causes.is_empty(), "{json}");
    for cause in &causes {
        assert!(!message.contains(cause), "{message:?} repeats {cause:?}");
    }
    assert_text_says_each_thing_once(
        &[message]
            .into_iter()
            .chain(causes)
            .collect::<Vec<_>>()
            .join(": "),
    );

    // A damaged manifest, and none at all.
    let image = sb.images().join("hello");
    std::fs::create_dir_all(&image).unwrap();
    let images = sb.images();
    let images = images.to_str().unwrap();
    check_stderr(
        &fails(xtask().args(["measure", "hello", "--images", images])),
        &enoent,
    );
    std::fs::write(image.join(files::MANIFEST), b"{\"schema\": 1, ").unwrap();
    check_stderr(
        &fails(xtask().args(["measure", "hello", "--images", images])),
        files::MANIFEST,
    );

    // Firmware that is not there.
    check_stderr(
        &fails(xtask().args([
            "measure",
            "--ovmf",
            "/nonexistent/OVMF.fd",
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC-v4",
        ])),
        &enoent,
    );
}

#[test]
fn a_kds_that_does_not_answer_is_reported_once_per_check() {
    let cache = tempfile::tempdir().unwrap();
    let report = snpkit_testkit::vectors::path("project-oak-oak/derived/cb.report.bin");
    let out = xtask()
        .args(["verify", "--report", report.to_str().unwrap()])
        .args(["--kds-url", "http://127.0.0.1:9", "--json"])
        .env("SNPKIT_CACHE", cache.path().join("snpkit"))
        .env("XDG_CACHE_HOME", cache.path())
        .env_remove("SNPKIT_KDS_URL")
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let details: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["detail"].as_str())
        .filter(|d| d.contains("127.0.0.1:9"))
        .collect();
    assert!(
        details.len() >= 2,
        "the VCEK and the CRL both come from the KDS: {json}"
    );
    for d in details {
        assert_text_says_each_thing_once(d);
    }
}
