//! `cargo xtask measure` and `cargo xtask explain`, driven as a user does.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use snpkit_measure::expected::Expected;

fn vectors() -> PathBuf {
    std::env::var_os("SNPKIT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"))
}

fn fixture(name: &str) -> PathBuf {
    vectors()
        .join("virtee-sev-snp-measure/tests/fixtures")
        .join(name)
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("running xtask")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn last_line(o: &Output) -> String {
    stdout(o).lines().last().unwrap_or("").to_string()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn measure_prints_the_digest_as_the_last_line() {
    let ovmf = fixture("ovmf_AmdSev_suffix.bin");
    let base = [
        "measure",
        "--mode",
        "snp",
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--ovmf",
        path(&ovmf),
        "--kernel",
        "/dev/null",
        "--initrd",
        "/dev/null",
        "--append",
        "console=ttyS0 loglevel=7",
        "--guest-features",
        "0x21",
    ];
    let o = xtask(&base);
    assert!(o.status.success(), "{}", stderr(&o));
    // sev-snp-measure's test_snp_default.
    assert_eq!(
        last_line(&o),
        "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"
    );
    // A trailing space is part of the command line.
    let mut spaced = base.to_vec();
    spaced[14] = "console=ttyS0 loglevel=7 ";
    let o2 = xtask(&spaced);
    assert!(o2.status.success());
    assert_ne!(last_line(&o2), last_line(&o));
    let mut b64 = base.to_vec();
    b64.extend(["--output-format", "base64"]);
    let o3 = xtask(&b64);
    assert_eq!(
        last_line(&o3),
        "gD9pEJSUbkIGiqo6j54mpcifNve3Ps+yjGUzYP5LOrp+U0RC5+HheJXf53jQIol3"
    );
}

#[test]
fn measure_writes_the_hashes_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("hashes.page");
    let ovmf = fixture("ovmf_AmdSev_suffix.bin");
    let o = xtask(&[
        "measure",
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--ovmf",
        path(&ovmf),
        "--kernel",
        "/dev/null",
        "--append",
        "x",
        "--write-hashes-page",
        path(&page),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&page).unwrap();
    assert_eq!(bytes.len(), 4096);
    assert!(stderr(&o).contains("0x"), "{}", stderr(&o));
    // The table starts at the OVMF's hashes table offset with the header GUID 9438d606-…
    let at = bytes
        .windows(4)
        .position(|w| w == [0x06, 0xd6, 0x38, 0x94])
        .unwrap();
    assert_eq!(at % 16, 0);
    assert!(bytes[..at].iter().all(|&b| b == 0) && bytes[at + 176..].iter().all(|&b| b == 0));
}

/// A built image directory with two launch configs.
fn image_dir(root: &Path, initrd: &[u8]) -> PathBuf {
    let dir = root.join("demo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("ovmf_AmdSev_suffix.bin"), dir.join("OVMF.fd")).unwrap();
    std::fs::write(dir.join("vmlinuz"), b"kernel bytes").unwrap();
    std::fs::write(dir.join("initrd.cpio.gz"), initrd).unwrap();
    std::fs::write(dir.join("cmdline"), b"console=hvc0 ro ").unwrap();
    let manifest = serde_json::json!({
        "recipe": "demo",
        "launch": [
            {"name": "milan-2", "vcpus": 2, "vcpu_type": "EPYC-Milan", "vmm": "qemu", "guest_features": 1,
             "policy": 196608, "memory_mib": 1024},
            {"name": "aws", "vcpus": 4, "vcpu_type": "EPYC-Milan", "vmm": "ec2", "guest_features": 1,
             "policy": 196608, "memory_mib": 1024}
        ],
        "other": "fields the lead's manifest has are ignored"
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    dir
}

#[test]
fn measure_recipe_writes_expected_json() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let o = xtask(&["measure", "demo", "--images", path(root.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: Expected =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.recipe, "demo");
    assert_eq!(expected.configs.len(), 2);
    let names: Vec<&str> = expected.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["ovmf", "kernel", "initrd", "cmdline"]);
    assert_eq!(expected.inputs[3].size, 16);
    // Each digest is what `measure` with flags gives for the same inputs.
    for (c, vmm) in expected.configs.iter().zip(["QEMU", "ec2"]) {
        let vcpus = c.launch.vcpus.to_string();
        let flags = xtask(&[
            "measure",
            "--vcpus",
            &vcpus,
            "--vcpu-type",
            "EPYC-Milan",
            "--vmm-type",
            vmm,
            "--ovmf",
            path(&dir.join("OVMF.fd")),
            "--kernel",
            path(&dir.join("vmlinuz")),
            "--initrd",
            path(&dir.join("initrd.cpio.gz")),
            "--append",
            "console=hvc0 ro ",
        ]);
        assert_eq!(c.measurement, last_line(&flags), "{}", c.launch.name);
    }
    assert_ne!(
        expected.configs[0].measurement,
        expected.configs[1].measurement
    );
    // No temp file left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn measure_recipe_errors_name_the_problem() {
    let root = tempfile::tempdir().unwrap();
    let o = xtask(&["measure", "nothere", "--images", path(root.path())]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cargo xtask build nothere"),
        "{}",
        stderr(&o)
    );

    let dir = image_dir(root.path(), b"x");
    let manifest = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap()
        .replace("EPYC-Milan", "EPYC-Nope");
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    let o = xtask(&["measure", "demo", "--images", path(root.path())]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("vcpu_type") && e.contains("milan-2") && e.contains("EPYC-Nope"),
        "{e}"
    );
}

#[test]
fn explain_finds_the_launch_and_refuses_a_changed_initrd() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let ovmf = dir.join("OVMF.fd");
    let launched = xtask(&[
        "measure",
        "--vcpus",
        "3",
        "--vcpu-type",
        "EPYC-Genoa",
        "--guest-features",
        "0x21",
        "--ovmf",
        path(&ovmf),
        "--kernel",
        path(&dir.join("vmlinuz")),
        "--initrd",
        path(&dir.join("initrd.cpio.gz")),
        "--append",
        "console=hvc0 ro ",
    ]);
    let digest = last_line(&launched);

    let o = xtask(&[
        "explain",
        "demo",
        "--images",
        path(root.path()),
        "--digest",
        &digest,
        "--max-vcpus",
        "16",
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("vcpus 3") && out.contains("vmm qemu") && out.contains("guest-features 0x21"),
        "{out}"
    );
    assert!(out.contains("EPYC-Genoa"), "{out}");

    // The same digest from a report.bin (MEASUREMENT at 0x90).
    let mut report = vec![0u8; 1184];
    report[0x90..0xc0].copy_from_slice(&hex::decode(&digest).unwrap());
    let report_path = root.path().join("report.bin");
    std::fs::write(&report_path, &report).unwrap();
    let o = xtask(&[
        "explain",
        "demo",
        "--images",
        path(root.path()),
        "--report",
        path(&report_path),
        "--max-vcpus",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // One byte of the initrd changed: nothing reproduces it, and the hashes tried are listed.
    std::fs::write(dir.join("initrd.cpio.gz"), b"initrd bytez").unwrap();
    let o = xtask(&[
        "explain",
        "demo",
        "--images",
        path(root.path()),
        "--digest",
        &digest,
        "--max-vcpus",
        "16",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("no configuration of these inputs reproduces"),
        "{out}"
    );
    assert!(out.contains("initrd") && out.contains("sha256"), "{out}");
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.fd");
    std::fs::write(&garbage, vec![0x5au8; 8192]).unwrap();
    let truncated = dir.path().join("truncated.fd");
    std::fs::write(
        &truncated,
        &std::fs::read(fixture("ovmf_AmdSev_suffix.bin")).unwrap()[..1000],
    )
    .unwrap();
    let amdsev = fixture("ovmf_AmdSev_suffix.bin");
    let x64 = fixture("ovmf_OvmfX64_suffix.bin");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                path(&garbage),
            ],
            "no OVMF footer table",
        ),
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                path(&truncated),
            ],
            "not a whole number of 4 KiB pages",
        ),
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-Bogus",
                "--ovmf",
                path(&amdsev),
            ],
            "unknown vCPU type \"EPYC-Bogus\"",
        ),
        (
            vec![
                "--vcpus",
                "0",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                path(&amdsev),
            ],
            "0 vCPUs",
        ),
        (
            vec!["--vcpus", "1", "--ovmf", path(&amdsev)],
            "missing --vcpu-type",
        ),
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                "/nonexistent/OVMF.fd",
            ],
            "/nonexistent/OVMF.fd",
        ),
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                path(&amdsev),
                "--kernel",
                "/nonexistent/vmlinuz",
            ],
            "/nonexistent/vmlinuz",
        ),
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                path(&x64),
                "--kernel",
                "/dev/null",
            ],
            "cargo xtask ovmf",
        ),
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                path(&amdsev),
                "--snp-ovmf-hash",
                "12zz",
            ],
            "hex",
        ),
        (
            vec![
                "--vcpus",
                "1",
                "--vcpu-type",
                "EPYC-v4",
                "--ovmf",
                path(&amdsev),
                "--guest-features",
                "0x20",
            ],
            "SNPActive",
        ),
    ];
    for (args, want) in cases {
        let o = xtask(&[&["measure"], &args[..]].concat());
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    let o = xtask(&["explain", "--ovmf", path(&amdsev), "--digest", "abcd"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("96 hex digits"), "{}", stderr(&o));
    let short = dir.path().join("short.bin");
    std::fs::write(&short, [0u8; 100]).unwrap();
    let o = xtask(&["explain", "--ovmf", path(&amdsev), "--report", path(&short)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("1184 bytes"), "{}", stderr(&o));
}

#[test]
fn measure_other_modes() {
    let ovmf = fixture("ovmf_AmdSev_suffix.bin");
    let o = xtask(&["measure", "--mode", "snp:ovmf-hash", "--ovmf", path(&ovmf)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let hash = last_line(&o);
    assert_eq!(
        hash,
        "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"
    );
    // test_snp_ovmf_hash_gen_default: the precomputed hash stands in for the OVMF's pages.
    let o = xtask(&[
        "measure",
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--ovmf",
        path(&ovmf),
        "--snp-ovmf-hash",
        &hash,
        "--kernel",
        "/dev/null",
        "--initrd",
        "/dev/null",
        "--append",
        "",
        "--guest-features",
        "0x21",
    ]);
    assert_eq!(
        last_line(&o),
        "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"
    );
    // The COCONUT-SVSM real-hardware pair (4 vCPUs), with the vars size given as a file.
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("OVMF_VARS.fd");
    std::fs::write(&vars, vec![0u8; 540672]).unwrap();
    let o = xtask(&[
        "measure",
        "--mode",
        "snp:svsm",
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-v4",
        "--ovmf",
        path(&fixture("svsm_ovmf.fd")),
        "--svsm",
        path(&fixture("svsm.bin")),
        "--vars-file",
        path(&vars),
        "--guest-features",
        "0x21",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        last_line(&o),
        "27d154c27b7b359c935e250ec6fee72aa0ae8c1225e3b0e1cf46a9567e938066d7d6f94bbdc4a857818bdb79277a44b2"
    );
    // EC2 with both VMSA forms: sev-snp-measure 0.0.12/sev crate (RDX 0) and 0.0.13 (RDX 0x600).
    for (rdx, want) in [
        (
            "0",
            "7d3756157c805bf6adf617064c8552e8c1688fa1c8756f11cbf56ba5d25c9270fb69c0505c1cbe1c5c66c0e34c6ed3be",
        ),
        (
            "0x600",
            "0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd8811050dec7e24964e5056",
        ),
    ] {
        let o = xtask(&[
            "measure",
            "--vcpus",
            "1",
            "--vmm-type",
            "ec2",
            "--ec2-vmsa-rdx",
            rdx,
            "--ovmf",
            path(&ovmf),
            "--kernel",
            "/dev/null",
            "--initrd",
            "/dev/null",
        ]);
        assert_eq!(last_line(&o), want, "rdx {rdx}: {}", stderr(&o));
    }
}
