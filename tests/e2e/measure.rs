//! `cargo xtask measure` and `cargo xtask explain`, driven as a user does.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use snpkit_bundle::{Expected, files};

use snpkit_testkit::vectors::dir as vectors;

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

/// Runs xtask with `args`, which must fail saying `want`; returns all it said on stderr.
fn refused(args: &[&str], want: &str) -> String {
    let o = xtask(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    let e = stderr(&o);
    assert!(e.contains(want), "{args:?}: {e}");
    e
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
    std::fs::copy(fixture("ovmf_AmdSev_suffix.bin"), dir.join(files::FIRMWARE)).unwrap();
    std::fs::write(dir.join(files::KERNEL), b"kernel bytes").unwrap();
    std::fs::write(dir.join(files::INITRD), initrd).unwrap();
    std::fs::write(dir.join(files::CMDLINE), b"console=hvc0 ro ").unwrap();
    let manifest = serde_json::json!({
        "recipe": "demo",
        "launch": [
            {"name": "milan-2", "vcpus": 2, "vcpu_type": "EPYC-Milan", "vmm": "qemu", "guest_features": 1,
             "policy": 196608, "memory_mib": 1024},
            {"name": "aws", "vcpus": 4, "vcpu_type": "EPYC-Milan", "vmm": "ec2", "guest_features": 1,
             "policy": 196608, "memory_mib": 1024},
            {"name": "aws-0x600", "vcpus": 4, "vcpu_type": "EPYC-Milan", "vmm": "ec2-rdx-0x600",
             "guest_features": 1, "policy": 196608, "memory_mib": 1024}
        ],
        "other": "fields the lead's manifest has are ignored"
    });
    std::fs::write(dir.join(files::MANIFEST), manifest.to_string()).unwrap();
    dir
}

#[test]
fn measure_recipe_writes_expected_json() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let o = xtask(&["measure", "demo", "--images", path(root.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: Expected =
        serde_json::from_slice(&std::fs::read(dir.join(files::EXPECTED)).unwrap()).unwrap();
    assert_eq!(expected.recipe, "demo");
    assert_eq!(expected.configs.len(), 3);
    let names: Vec<&str> = expected.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["ovmf", "kernel", "initrd", "cmdline"]);
    assert_eq!(expected.inputs[3].size, 16);
    // Each digest is what `measure` with flags gives for the same inputs, with the VMM named
    // exactly as expected.json names it.
    for c in &expected.configs {
        let vmm = c.launch.vmm.as_str();
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
            path(&dir.join(files::FIRMWARE)),
            "--kernel",
            path(&dir.join(files::KERNEL)),
            "--initrd",
            path(&dir.join(files::INITRD)),
            "--append",
            "console=hvc0 ro ",
        ]);
        assert_eq!(c.measurement, last_line(&flags), "{}", c.launch.name);
    }
    let digests: std::collections::BTreeSet<&str> = expected
        .configs
        .iter()
        .map(|c| c.measurement.as_str())
        .collect();
    assert_eq!(digests.len(), 3, "{digests:?}");
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
    refused(
        &["measure", "nothere", "--images", path(root.path())],
        "cargo xtask build nothere",
    );

    let dir = image_dir(root.path(), b"x");
    let manifest = std::fs::read_to_string(dir.join(files::MANIFEST))
        .unwrap()
        .replace("EPYC-Milan", "EPYC-Nope");
    std::fs::write(dir.join(files::MANIFEST), manifest).unwrap();
    let e = refused(
        &["measure", "demo", "--images", path(root.path())],
        "vcpu_type",
    );
    assert!(e.contains("milan-2") && e.contains("EPYC-Nope"), "{e}");
}

#[test]
fn explain_finds_the_launch_and_refuses_a_changed_initrd() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let ovmf = dir.join(files::FIRMWARE);
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
        path(&dir.join(files::KERNEL)),
        "--initrd",
        path(&dir.join(files::INITRD)),
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
    std::fs::write(dir.join(files::INITRD), b"initrd bytez").unwrap();
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
        let e = refused(&[&["measure"], &args[..]].concat(), want);
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    refused(
        &["explain", "--ovmf", path(&amdsev), "--digest", "abcd"],
        "96 hex digits",
    );
    let short = dir.path().join("short.bin");
    std::fs::write(&short, [0u8; 100]).unwrap();
    let e = refused(
        &["explain", "--ovmf", path(&amdsev), "--report", path(&short)],
        "100 bytes",
    );
    assert!(e.contains("1184-byte") && e.contains("4000-byte"), "{e}");
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

/// Runs `xtask measure` on an image dir's files with extra launch flags; returns the digest.
fn measure_image(dir: &Path, launch: &[&str]) -> String {
    let mut args = vec!["measure"];
    args.extend_from_slice(launch);
    let (ovmf, kernel) = (dir.join(files::FIRMWARE), dir.join(files::KERNEL));
    args.extend(["--ovmf", path(&ovmf), "--kernel", path(&kernel)]);
    let o = xtask(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    last_line(&o)
}

fn explain_json(args: &[&str]) -> (Output, serde_json::Value) {
    let o = xtask(&[&["explain", "--json"], args].concat());
    let json = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    (o, json)
}

#[test]
fn explain_hits_reproduce_through_measure() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let initrd = dir.join(files::INITRD);
    // Three launches the recipe does not describe: a Genoa host CPU (`-cpu host`), the
    // sev-snp-measure 0.0.13 EC2 form with the cmdline trimmed and no initrd, and GCE.
    let planted = [
        measure_image(
            &dir,
            &[
                "--vcpus",
                "3",
                "--vcpu-family",
                "25",
                "--vcpu-model",
                "17",
                "--vcpu-stepping",
                "1",
                "--guest-features",
                "0x21",
                "--initrd",
                path(&initrd),
                "--append",
                "console=hvc0 ro ",
            ],
        ),
        measure_image(
            &dir,
            &[
                "--vcpus",
                "2",
                "--vmm-type",
                "ec2-rdx-0x600",
                "--append",
                "console=hvc0 ro",
            ],
        ),
        measure_image(
            &dir,
            &[
                "--vcpus",
                "5",
                "--vmm-type",
                "gce",
                "--initrd",
                path(&initrd),
                "--append=console=hvc0 ro \n",
            ],
        ),
    ];
    for digest in &planted {
        let (o, json) = explain_json(&[
            "demo",
            "--images",
            path(root.path()),
            "--digest",
            digest,
            "--max-vcpus",
            "8",
        ]);
        assert!(o.status.success(), "{json}\n{}", stderr(&o));
        let matches = json["matches"].as_array().unwrap();
        assert_eq!(matches.len(), 1, "{json}");
        assert_eq!(json["measurement"], digest.as_str());
        // The JSON arguments, fed back to measure, give the same digest.
        let args: Vec<String> = matches[0]["measure_args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        let o = cmd.arg("measure").args(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(&last_line(&o), digest, "{args:?}");

        // So does the text output's `reproduce:` line, pasted into a shell.
        let o = xtask(&[
            "explain",
            "demo",
            "--images",
            path(root.path()),
            "--digest",
            digest,
            "--max-vcpus",
            "8",
        ]);
        let text = stdout(&o);
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("reproduce: cargo xtask "))
            .unwrap_or_else(|| panic!("no reproduce line in {text}"));
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!("{} {line}", env!("CARGO_BIN_EXE_xtask")))
            .output()
            .unwrap();
        assert!(o.status.success(), "{line}: {}", stderr(&o));
        assert_eq!(&last_line(&o), digest, "{line}");
    }
    // The names explain printed are the ones it was given.
    let (_, json) = explain_json(&[
        "demo",
        "--images",
        path(root.path()),
        "--digest",
        &planted[1],
        "--max-vcpus",
        "8",
    ]);
    let hit = &json["matches"][0];
    assert_eq!(hit["vmm"], "ec2-rdx-0x600");
    assert_eq!(hit["vcpu_type"], serde_json::Value::Null);
    assert!(hit["boot"].as_str().unwrap().contains("no initrd"), "{hit}");
    let (_, json) = explain_json(&[
        "demo",
        "--images",
        path(root.path()),
        "--digest",
        &planted[0],
        "--max-vcpus",
        "8",
    ]);
    assert_eq!(json["matches"][0]["cpuid_signature"], "0xa10f11");
}

#[test]
fn explain_searches_the_recipes_configs_and_given_features() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    // A launch config with guest features outside the usual sets and more vCPUs than asked for.
    let manifest = serde_json::json!({
        "launch": [
            {"name": "odd", "vcpus": 40, "vcpu_type": "EPYC-Milan", "vmm": "qemu", "guest_features": 0x40001,
             "policy": 196608, "memory_mib": 1024}
        ]
    });
    std::fs::write(dir.join(files::MANIFEST), manifest.to_string()).unwrap();
    let initrd = dir.join(files::INITRD);
    let digest = measure_image(
        &dir,
        &[
            "--vcpus",
            "40",
            "--vcpu-type",
            "EPYC-Milan",
            "--guest-features",
            "0x40001",
            "--initrd",
            path(&initrd),
            "--append",
            "console=hvc0 ro ",
        ],
    );
    let (o, json) = explain_json(&[
        "demo",
        "--images",
        path(root.path()),
        "--digest",
        &digest,
        "--max-vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Milan",
    ]);
    assert!(o.status.success(), "{json}\n{}", stderr(&o));
    assert_eq!(json["matches"][0]["vcpus"], 40, "{json}");
    assert_eq!(json["matches"][0]["guest_features"], "0x40001", "{json}");

    // The same files without the recipe: the usual feature sets miss it...
    let (ovmf, kernel) = (dir.join(files::FIRMWARE), dir.join(files::KERNEL));
    let files = [
        "--ovmf",
        path(&ovmf),
        "--kernel",
        path(&kernel),
        "--initrd",
        path(&initrd),
        "--append",
        "console=hvc0 ro ",
        "--digest",
        &digest,
        "--max-vcpus",
        "40",
        "--vcpu-type",
        "EPYC-Milan",
    ];
    let (o, json) = explain_json(&files);
    assert_eq!(o.status.code(), Some(1), "{json}");
    assert!(json["matches"].as_array().unwrap().is_empty());
    // ...and `--guest-features` adds the value.
    let (o, json) = explain_json(&[&files[..], &["--guest-features", "0x40001"]].concat());
    assert!(o.status.success(), "{json}\n{}", stderr(&o));
    assert_eq!(json["matches"][0]["guest_features"], "0x40001");
}

#[test]
fn explain_vcpu_flags_narrow_the_search_or_add_signatures() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let initrd = dir.join(files::INITRD);
    // A signature no QEMU model or listed host has (Milan stepping 2).
    let digest = measure_image(
        &dir,
        &[
            "--vcpus",
            "2",
            "--vcpu-sig",
            "0xa00f12",
            "--initrd",
            path(&initrd),
            "--append",
            "console=hvc0 ro ",
        ],
    );
    let (ovmf, kernel) = (dir.join(files::FIRMWARE), dir.join(files::KERNEL));
    let base = [
        "explain",
        "--ovmf",
        path(&ovmf),
        "--kernel",
        path(&kernel),
        "--initrd",
        path(&initrd),
        "--append",
        "console=hvc0 ro ",
        "--digest",
        &digest,
        "--max-vcpus",
        "4",
    ];
    let wide = xtask(&base);
    assert_eq!(wide.status.code(), Some(1), "{}", stdout(&wide));
    assert!(
        stdout(&wide).contains("vCPU types tried: EPYC,"),
        "{}",
        stdout(&wide)
    );

    let by_sig = xtask(&[&base[..], &["--vcpu-sig", "0xa00f12"]].concat());
    assert!(by_sig.status.success(), "{}", stdout(&by_sig));
    assert!(
        stdout(&by_sig).contains("--vcpu-sig 0xa00f12"),
        "{}",
        stdout(&by_sig)
    );
    assert!(
        stderr(&by_sig).contains("1 vCPU types (only signature 0xa00f12)"),
        "{}",
        stderr(&by_sig)
    );

    // Family × models × steppings: 1 × 1 × 2 types, one of them right.
    let by_fms = xtask(
        &[
            &base[..],
            &[
                "--vcpu-family",
                "0x19",
                "--vcpu-model",
                "1",
                "--vcpu-stepping",
                "1",
                "--vcpu-stepping",
                "2",
            ],
        ]
        .concat(),
    );
    assert!(by_fms.status.success(), "{}", stdout(&by_fms));
    let out = stdout(&by_fms);
    assert!(
        out.contains("--vcpu-family 0x19 --vcpu-model 0x1 --vcpu-stepping 2"),
        "{out}"
    );
    assert!(
        stderr(&by_fms).contains("2 vCPU types"),
        "{}",
        stderr(&by_fms)
    );

    // Narrowed to the wrong type: nothing, and the output says the search was narrowed.
    let wrong = xtask(&[&base[..], &["--vcpu-type", "EPYC-Milan"]].concat());
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stdout(&wrong).contains("vCPU types tried: EPYC-Milan\n"),
        "{}",
        stdout(&wrong)
    );
    assert!(stdout(&wrong).contains("drop them"), "{}", stdout(&wrong));

    // A model or stepping without a family is a usage error, not ignored.
    for flag in ["--vcpu-model", "--vcpu-stepping"] {
        refused(&[&base[..], &[flag, "1"]].concat(), "--vcpu-family");
    }
}

#[test]
fn explain_reads_a_report_inside_an_ioctl_response() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let initrd = dir.join(files::INITRD);
    let digest = measure_image(
        &dir,
        &[
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC-Milan",
            "--initrd",
            path(&initrd),
            "--append",
            "console=hvc0 ro ",
        ],
    );
    // Linux's snp_report_resp: status 0, report size 1184, the report at 0x20, 4000 bytes.
    let mut rsp = vec![0u8; 4000];
    rsp[4..8].copy_from_slice(&1184u32.to_le_bytes());
    rsp[0x20 + 0x90..0x20 + 0xc0].copy_from_slice(&hex::decode(&digest).unwrap());
    let file = root.path().join("rsp.bin");
    std::fs::write(&file, &rsp).unwrap();
    let args = [
        "explain",
        "demo",
        "--images",
        path(root.path()),
        "--report",
        path(&file),
        "--max-vcpus",
        "4",
    ];
    let o = xtask(&args);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("offset 0x20 of a SNP_GET_REPORT response"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("vcpus 2"), "{}", stdout(&o));
    // A failed response (status set) is named as such.
    rsp[0] = 0x16;
    std::fs::write(&file, &rsp).unwrap();
    refused(&args, "status 0x16");
}

#[test]
fn measure_refuses_flags_it_would_ignore() {
    let root = tempfile::tempdir().unwrap();
    let dir = image_dir(root.path(), b"initrd bytes");
    let ovmf = fixture("ovmf_AmdSev_suffix.bin");
    let base = ["measure", "--vcpus", "1", "--ovmf", path(&ovmf)];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--vcpu-model", "1"], "--vcpu-family"),
        (vec!["--vcpu-stepping", "1"], "--vcpu-family"),
        (
            vec!["--vcpu-type", "EPYC-v4", "--vcpu-sig", "0xa00f11"],
            "cannot be used with",
        ),
        (
            vec![
                "--vcpu-sig",
                "1",
                "--vcpu-family",
                "25",
                "--vcpu-model",
                "1",
                "--vcpu-stepping",
                "1",
            ],
            "cannot be used with",
        ),
        (
            vec!["--vcpu-type", "EPYC-v4", "--ec2-vmsa-rdx", "0x600"],
            "applies to EC2 launches only",
        ),
        (
            vec!["--vmm-type", "gce", "--ec2-vmsa-rdx", "0"],
            "applies to EC2 launches only",
        ),
        (
            vec!["--vmm-type", "ec2-rdx-0x600", "--ec2-vmsa-rdx", "0"],
            "already names",
        ),
        (vec!["--vmm-type", "hyperv"], "unknown --vmm-type"),
        (
            vec!["--vcpu-type", "EPYC-v4", "--svsm", "/dev/null"],
            "--svsm cannot be used with --mode snp",
        ),
        (
            vec!["--mode", "snp:ovmf-hash"],
            "--vcpus cannot be used with --mode snp:ovmf-hash",
        ),
    ];
    for (extra, want) in cases {
        refused(&[&base[..], &extra[..]].concat(), want);
    }
    let recipe = ["measure", "demo", "--images", path(root.path())];
    refused(
        &[&recipe[..], &["--vcpus", "2"]].concat(),
        "--vcpus cannot be used with measuring a recipe",
    );
    refused(
        &[&recipe[..], &["--output-format", "base64"]].concat(),
        "--output-format cannot be used",
    );
    assert!(!dir.join(files::EXPECTED).exists());

    // Every EC2 spelling lands on the form it names.
    let ec2 = |extra: &[&str]| {
        let o = xtask(&[&base[..], &["--kernel", "/dev/null"], extra].concat());
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        last_line(&o)
    };
    let rdx600 = ec2(&["--vmm-type", "ec2-rdx-0x600"]);
    assert_eq!(
        rdx600,
        ec2(&["--vmm-type", "EC2", "--ec2-vmsa-rdx", "0x600"])
    );
    assert_eq!(
        rdx600,
        ec2(&["--vmm-type", "ec2-rdx-0x600", "--ec2-vmsa-rdx", "0x600"])
    );
    let rdx0 = ec2(&["--vmm-type", "ec2"]);
    assert_eq!(rdx0, ec2(&["--vmm-type", "ec2", "--ec2-vmsa-rdx", "0"]));
    assert_ne!(rdx0, rdx600);

    // --help says how to match sev-snp-measure 0.0.13 on EC2.
    let help = stdout(&xtask(&["measure", "--help"]));
    assert!(help.contains("--ec2-vmsa-rdx 0x600"), "{help}");
    assert!(help.contains("ec2-rdx-0x600"), "{help}");
}

use snpkit_testkit::rng::SplitMix64 as Rng;

fn diff_seed() -> u64 {
    snpkit_testkit::rng::seed("SNPKIT_DIFF_SEED", 0x5eed_2026_00e2)
}

fn oracle() -> PathBuf {
    let p = PathBuf::from(std::env::var_os("SNPKIT_SEV_SNP_MEASURE").unwrap_or_default());
    assert!(
        p.is_file(),
        "sev-snp-measure 0.0.13 not found (SNPKIT_SEV_SNP_MEASURE={p:?}): run `cargo xtask oracles` and set it to \
         the path it prints (`cargo xtask test` does both)"
    );
    p
}

fn amdsev_ovmf() -> PathBuf {
    let p = PathBuf::from(std::env::var_os("SNPKIT_OVMF").unwrap_or_default());
    assert!(
        p.is_file(),
        "the AmdSev OVMF is missing (SNPKIT_OVMF={p:?}): run `cargo xtask ovmf` (`cargo xtask test` sets it)"
    );
    p
}

/// `cargo xtask measure` itself (not the library) against sev-snp-measure 0.0.13, EC2 above all:
/// our `--ec2-vmsa-rdx 0x600` must give its digests, and our default (RDX 0) must not.
#[test]
fn measure_cli_agrees_with_sev_snp_measure() {
    let oracle = oracle();
    let seed = diff_seed();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let ovmfs = [fixture("ovmf_AmdSev_suffix.bin"), amdsev_ovmf()];
    let mut failures = Vec::new();
    for i in 0..8 {
        let ovmf = &ovmfs[i % 2];
        // EC2 first (both OVMFs, twice each), then any VMM.
        let vmm = if i < 4 {
            "ec2"
        } else {
            ["ec2", "QEMU", "gce"][rng.below(3) as usize]
        };
        let kernel = dir.path().join(format!("kernel{i}"));
        let initrd = dir.path().join(format!("initrd{i}"));
        // measure streams the larger of kernel and initrd on its own: one case each way for sure.
        let (klen, ilen) = match i {
            0 => (400_000, 1_000),
            1 => (1_000, 400_000),
            _ => (rng.below(200_000) as usize, rng.below(500_000) as usize),
        };
        std::fs::write(&kernel, rng.bytes(klen)).unwrap();
        std::fs::write(&initrd, rng.bytes(ilen)).unwrap();
        let vcpus = [1u32, 2, 4, 9, 32][rng.below(5) as usize].to_string();
        let features = ["0x1", "0x21", "0x201"][rng.below(3) as usize];
        let append = format!(
            "--append={}",
            ["", "console=ttyS0", "ro quiet ", " x"][rng.below(4) as usize]
        );
        let mut args: Vec<String> = [
            "--mode",
            "snp",
            "--vcpus",
            &vcpus,
            "--vmm-type",
            vmm,
            "--guest-features",
            features,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if vmm == "QEMU" {
            args.extend(["--vcpu-type".into(), "EPYC-Milan".into()]);
        }
        args.extend(["--ovmf".into(), path(ovmf).into()]);
        args.extend(["--kernel".into(), path(&kernel).into()]);
        if i < 2 || rng.below(3) != 0 {
            args.extend(["--initrd".into(), path(&initrd).into()]);
        }
        args.push(append);
        let theirs = Command::new(&oracle).args(&args).output().unwrap();
        assert!(theirs.status.success(), "{args:?}: {}", stderr(&theirs));
        let theirs = last_line(&theirs);
        let mut ours_args = vec!["measure".to_string()];
        ours_args.extend(args.iter().cloned());
        if vmm == "ec2" {
            ours_args.extend(["--ec2-vmsa-rdx".into(), "0x600".into()]);
        }
        let ours = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(&ours_args)
            .output()
            .unwrap();
        if !ours.status.success() || last_line(&ours) != theirs {
            failures.push(format!(
                "{ours_args:?}\n  ours:   {}{}\n  theirs: {theirs}",
                last_line(&ours),
                stderr(&ours)
            ));
        }
        if vmm == "ec2" {
            // Our default is the RDX = 0 form real AWS reports match: it must differ.
            let default = Command::new(env!("CARGO_BIN_EXE_xtask"))
                .arg("measure")
                .args(&args)
                .output()
                .unwrap();
            assert!(default.status.success(), "{}", stderr(&default));
            if last_line(&default) == theirs {
                failures.push(format!(
                    "{args:?}: the RDX = 0 default gave sev-snp-measure's 0x600 digest"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed:#x} (replay with SNPKIT_DIFF_SEED): {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
