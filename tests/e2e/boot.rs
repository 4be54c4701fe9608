//! `cargo xtask boot`: the hello image boots under the emulated launch (real QEMU, real AmdSev
//! firmware, real kernel) and returns a report that binds the nonce and carries the predicted
//! measurement; tampered images are refused by the firmware itself; a hanging guest is stopped.

use crate::support::{self, Sandbox, fails, ok};
use snpkit_bundle::{CertName, Expected, ImageDir, RunDir, RunLaunch, files};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One TCG guest at a time: two cores cannot run several within their deadlines.
pub static BOOTS: Mutex<()> = Mutex::new(());

fn built_hello() -> Sandbox {
    let sb = Sandbox::with_recipe("hello");
    ok(&mut sb.xtask(&["build", "hello"]));
    ok(&mut sb.xtask(&["measure", "hello"]));
    sb
}

fn boot_json(sb: &Sandbox, config: &str) -> (PathBuf, serde_json::Value) {
    let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let out = ok(&mut sb.xtask(&[
        "boot", "hello", "--launch", "emulated", "--config", config, "--json",
    ]));
    let record: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("boot --json prints run.json");
    let runs = ImageDir::new(&sb.images(), "hello").runs();
    let newest = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        // Finished runs are named by their id; failed and partial ones carry a suffix.
        .filter(|p| !p.file_name().unwrap().to_string_lossy().contains('.'))
        .max()
        .expect("a run folder");
    (newest, record)
}

fn expected_measurement(sb: &Sandbox, config: &str) -> String {
    let text = std::fs::read_to_string(ImageDir::new(&sb.images(), "hello").expected()).unwrap();
    let expected: Expected = serde_json::from_str(&text).unwrap();
    expected
        .configs
        .iter()
        .find(|c| c.launch.name == config)
        .unwrap()
        .measurement
        .clone()
}

fn check_run(sb: &Sandbox, path: &Path, record: &serde_json::Value, config: &str, vcpus: u64) {
    let run = RunDir::at(path);
    for f in [
        run.console_log(),
        run.report(),
        run.nonce(),
        run.pubkey(),
        run.pubkey_hex(),
        run.record(),
        run.cert_for(RunLaunch::Emulated, CertName::Ark),
        run.cert_for(RunLaunch::Emulated, CertName::Ask),
        run.cert_for(RunLaunch::Emulated, CertName::Vcek),
        run.emulated_mark(),
    ] {
        assert!(f.is_file(), "run folder lacks {}", f.display());
    }
    // No AMD tool finds the emulated chain under AMD's names.
    assert!(!run.certs().exists(), "an emulated run has certs/");
    assert_eq!(record["emulated"], true);
    assert_eq!(record["vcpus"], vcpus);
    assert_eq!(
        record["entry"], "exited with status 0",
        "the guest reported its entry point's end"
    );
    let report = std::fs::read(run.report()).unwrap();
    assert_eq!(report.len(), 1184);
    let nonce_hex = std::fs::read_to_string(run.nonce()).unwrap();
    let nonce: [u8; 32] = hex::decode(nonce_hex.trim()).unwrap().try_into().unwrap();
    let pubkey = std::fs::read(run.pubkey()).unwrap();
    assert_eq!(
        std::fs::read_to_string(run.pubkey_hex()).unwrap(),
        format!("{}\n", hex::encode(&pubkey))
    );
    let binding = snpkit_wire::binding::report_data(&nonce, &pubkey);
    assert_eq!(
        &report[0x50..0x90],
        &binding[..],
        "REPORT_DATA binds the nonce and the guest's key"
    );
    assert_eq!(
        hex::encode(&report[0x90..0xC0]),
        expected_measurement(sb, config),
        "MEASUREMENT = cargo xtask measure"
    );
    let console = std::fs::read_to_string(run.console_log()).unwrap();
    assert!(
        console.contains("hello from Linux 6.12"),
        "the entry point ran:\n{console}"
    );
}

#[test]
fn hello_boots_attests_and_verifies_with_one_and_four_vcpus() {
    let sb = built_hello();
    let mut measured = Vec::new();
    for (config, vcpus) in [("qemu-1vcpu", 1), ("qemu-4vcpu", 4)] {
        let (run, record) = boot_json(&sb, config);
        check_run(&sb, &run, &record, config, vcpus);
        let report = std::fs::read(run.join(snpkit_bundle::run_files::REPORT)).unwrap();
        // MEASUREMENT, at 0x90 of the report.
        measured.push(hex::encode(&report[0x90..0xC0]));
        let id = run.file_name().unwrap().to_string_lossy().into_owned();
        let out = ok(&mut sb.xtask(&["verify", "hello", &id, "--allow-emulated", "--json"]));
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(verdict["emulated"], true, "{verdict}");
        // The test chain is never trusted unless asked for; the verdict (on stdout) says why.
        let refused = support::run(&mut sb.xtask(&["verify", "hello", &id]));
        assert!(
            !refused.status.success(),
            "an emulated report passed without --allow-emulated"
        );
        let table = String::from_utf8_lossy(&refused.stdout);
        assert!(
            table.contains("EMULATED — NOT HARDWARE-BACKED") && table.contains("FAIL"),
            "{table}"
        );
    }
    // What a Trustee fleet would be given as reference values holds what these launches measured
    // (snpkit-trustee's tests evaluate Trustee's own policy on them).
    let out = ok(&mut sb.xtask(&["export", "trustee", "hello"]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 measurements"), "{said}");
    let dir = ImageDir::new(&sb.images(), "hello").trustee();
    let values: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference-values.json")).unwrap()).unwrap();
    for m in &measured {
        let listed = values["snp_launch_measurement"].as_array().unwrap();
        assert!(listed.iter().any(|v| v == m), "{m} not in {listed:?}");
    }
    assert!(dir.join("rvps-message.json").is_file() && dir.join("resource-policy.rego").is_file());
}

/// Each way of changing the image after the build, as (file, how).
const TAMPERING: &[(&str, &str)] = &[
    (files::INITRD, "one byte flipped in the middle"),
    (files::CMDLINE, "an option appended"),
    (
        files::KERNEL,
        "a different kernel image (last byte changed)",
    ),
];

fn tamper(path: &Path, file: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    match file {
        files::CMDLINE => bytes.extend_from_slice(b" quiet"),
        files::INITRD => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
        }
        _ => {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
        }
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn images_changed_after_the_build_are_refused_by_the_firmware() {
    let sb = built_hello();
    let dir = sb.images().join("hello");
    for (file, how) in TAMPERING {
        let path = dir.join(file);
        let saved = std::fs::read(&path).unwrap();
        tamper(&path, file);
        let one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
        let err = fails(&mut sb.xtask(&["boot", "hello", "--launch", "emulated"]));
        drop(one);
        assert!(
            err.contains("the firmware refused the image"),
            "{file}, {how}: {err}"
        );
        std::fs::write(&path, saved).unwrap();
    }
}

#[test]
fn a_hanging_guest_is_stopped_at_the_deadline_with_its_console() {
    let sb = Sandbox::with_recipe("hello");
    sb.edit_recipe(
        "hello",
        "argv = [\"/usr/bin/hello\"]",
        "argv = [\"/bin/sh\", \"-c\", \"echo about to hang; while :; do :; done\"]",
    );
    ok(&mut sb.xtask(&["lock", "hello"]));
    ok(&mut sb.xtask(&["build", "hello"]));
    let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let err = fails(&mut sb.xtask(&["boot", "hello", "--launch", "emulated", "--timeout", "45"]));
    assert!(err.contains("did not finish within 45 s"), "{err}");
    assert!(
        err.contains("about to hang"),
        "the console tail is shown: {err}"
    );
}

#[test]
fn an_appliance_that_exits_non_zero_fails_the_run() {
    let sb = Sandbox::with_recipe("hello");
    sb.edit_recipe(
        "hello",
        "argv = [\"/usr/bin/hello\"]",
        "argv = [\"/bin/sh\", \"-c\", \"echo giving up; exit 3\"]",
    );
    ok(&mut sb.xtask(&["lock", "hello"]));
    ok(&mut sb.xtask(&["build", "hello"]));
    let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let err = fails(&mut sb.xtask(&["boot", "hello", "--launch", "emulated"]));
    assert!(
        err.starts_with("error: the appliance failed: its entry point exited with status 3."),
        "{err}"
    );
    assert!(
        err.contains("giving up"),
        "the console tail is shown: {err}"
    );
}

#[test]
fn launches_this_host_cannot_do_are_refused_with_advice() {
    let sb = built_hello();
    // No SNP here (the machines this runs on have none): the advice is the emulated launch.
    let err = fails(&mut sb.xtask(&["boot", "hello", "--launch", "snp"]));
    assert!(err.contains("use the emulated launch"), "{err}");
    assert!(err.contains("SEV-SNP") || err.contains("SNP"), "{err}");

    let err = fails(&mut sb.xtask(&[
        "boot",
        "hello",
        "--qemu",
        "/nonexistent/qemu-system-x86_64",
        "--launch",
        "emulated",
    ]));
    assert!(
        err.contains("/nonexistent/qemu-system-x86_64 was not found; install QEMU ≥ 9.1 (Debian bookworm: `apt-get install -t bookworm-backports qemu-system-x86`"),
        "{err}"
    );

    // Bookworm's own QEMU has no sev-snp-guest; that is said before the host is looked at.
    let bin = sb.dir.path().join("old-qemu");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("qemu-system-x86_64");
    std::fs::write(&fake, "#!/bin/sh\necho 'QEMU emulator version 7.2.15'\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = fails(&mut sb.xtask(&[
        "boot",
        "hello",
        "--qemu",
        fake.to_str().unwrap(),
        "--launch",
        "snp",
    ]));
    assert!(
        err.contains("is QEMU 7.2; SEV-SNP launches need QEMU ≥ 9.1 (sev-snp-guest)"),
        "{err}"
    );
}

#[test]
fn a_launch_config_for_a_cloud_is_not_booted_under_qemu() {
    let sb = built_hello();
    let path = ImageDir::new(&sb.images(), "hello").manifest();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let configs = manifest["launch"].as_array_mut().unwrap();
    assert_eq!(configs[0]["vmm"], "qemu", "{configs:?}");
    configs[0]["vmm"] = "ec2".into();
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let err = fails(&mut sb.xtask(&["boot", "hello", "--launch", "emulated"]));
    assert!(
        err.contains("launch configuration \"qemu-1vcpu\" is a prediction for vmm = \"ec2\", and `cargo xtask boot` launches QEMU only"),
        "{err}"
    );
    assert!(err.contains("qemu-1vcpu, qemu-4vcpu"), "{err}");
    assert!(
        !ImageDir::new(&sb.images(), "hello").runs().exists(),
        "refused before any run was started"
    );
}

#[test]
fn the_entry_point_runs_as_its_user_without_privileges() {
    let sb = Sandbox::with_recipe("hello");
    sb.edit_recipe(
        "hello",
        "argv = [\"/usr/bin/hello\"]",
        "argv = [\"/bin/sh\", \"-c\", \"echo who: $(busybox id -u) $(busybox id -g) $(busybox id -G) \
         $(busybox id -un) $(busybox id -gn) $(pwd); busybox grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs):' \
         /proc/self/status\"]\nuser = \"app\"\nuid = 1001\nworkdir = \"/tmp\"",
    );
    ok(&mut sb.xtask(&["lock", "hello"]));
    ok(&mut sb.xtask(&["build", "hello"]));
    // The image carries the account: /etc/passwd and /etc/group of root and the entry's user.
    let initrd = std::fs::read(
        ImageDir::new(&sb.images(), "hello")
            .path()
            .join(files::INITRD),
    )
    .unwrap();
    let cpio = support::gunzip(&initrd);
    let text = String::from_utf8_lossy(&cpio);
    assert!(
        text.contains("app:x:1001:1001:app:/tmp:/sbin/nologin\n"),
        "no passwd line"
    );
    assert!(text.contains("root:x:0:\napp:x:1001:\n"), "no group line");

    let (run, _) = boot_json(&sb, "qemu-1vcpu");
    let console = std::fs::read_to_string(RunDir::at(&run).console_log()).unwrap();
    assert!(
        console.contains("who: 1001 1001 1001 app app /tmp"),
        "uid, gid, groups, names and workdir: {console}"
    );
    for line in [
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
    ] {
        assert!(console.contains(line), "{line}: {console}");
    }
}
