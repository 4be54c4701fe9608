//! Every SNP measurement vector in the vendored collection, read from the files themselves.
//!
//! SEV and SEV-ES rows (legacy modes snpkit does not measure) are counted and skipped; every
//! parser below asserts how many rows it found, so a changed file fails instead of testing less.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Invocation, vectors};
use snpkit_measure::{Ec2VmsaRdx, LaunchDigest, Ovmf, SectionKind};

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

fn first_token(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

fn is_digest(s: &str) -> bool {
    LaunchDigest::from_hex(s).is_ok()
}

fn quoted(s: &str) -> Option<String> {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::to_string)
}

enum Expect {
    Digest(String),
    Error(&'static str),
}

fn check(name: &str, inv: &Invocation, expect: &Expect) {
    match (expect, inv.ours()) {
        (Expect::Digest(want), Ok(got)) => assert_eq!(&got, want, "{name}: {:?}", inv.args()),
        (Expect::Error(want), Err(got)) => {
            assert!(got.contains(want), "{name}: error {got:?} lacks {want:?}")
        }
        (Expect::Digest(_), Err(e)) => panic!("{name}: {e}"),
        (Expect::Error(want), Ok(got)) => {
            panic!("{name}: expected an error containing {want:?}, got {got}")
        }
    }
}

const KERNEL_ERROR: &str = "no SNP_KERNEL_HASHES section";

#[test]
fn sev_snp_measure_table() {
    let base = vectors().join("virtee-sev-snp-measure");
    let text = std::fs::read_to_string(base.join("SOURCE.md")).unwrap();
    let fixtures = base.join("tests/fixtures");
    let mut ovmf_hash = None;
    let (mut checked, mut legacy) = (0, 0);
    for line in text
        .lines()
        .filter(|l| l.starts_with("| test_") || l.starts_with("| calc_snp"))
    {
        let c = cells(line);
        let [
            name,
            mode,
            ovmf,
            vcpus,
            vcpu,
            kernel,
            append,
            feat,
            vmm,
            expected,
        ] = &c[..]
        else {
            continue;
        };
        if mode == "seves" || mode == "sev" {
            legacy += 1;
            continue;
        }
        let expect = if is_digest(first_token(expected)) {
            Expect::Digest(first_token(expected).to_string())
        } else if expected.starts_with("RuntimeError") {
            Expect::Error(KERNEL_ERROR)
        } else {
            continue; // the --dump-vmsa rows
        };
        let mut inv = Invocation {
            mode: mode.clone(),
            ..Default::default()
        };
        if ovmf.starts_with("svsm_ovmf.fd") || ovmf == "same" {
            inv.ovmf = fixtures.join("svsm_ovmf.fd");
            inv.svsm = Some(fixtures.join("svsm.bin"));
            inv.vars_size = Some(540672);
        } else {
            inv.ovmf = fixtures.join(format!("ovmf_{ovmf}_suffix.bin"));
        }
        inv.vcpus = vcpus.parse().ok();
        inv.vcpu_type = Some(first_token(vcpu).to_string()).filter(|t| t.starts_with("EPYC"));
        match kernel.as_str() {
            "/dev/null,/dev/null" => {
                inv.kernel = Some("/dev/null".into());
                inv.initrd = Some("/dev/null".into());
            }
            "/dev/null" => inv.kernel = Some("/dev/null".into()),
            _ => {}
        }
        inv.append = quoted(append);
        inv.guest_features = feat
            .strip_prefix("0x")
            .map(|h| u64::from_str_radix(h, 16).unwrap());
        inv.vmm = Some(vmm.clone()).filter(|v| !v.is_empty());
        if name.contains("ovmf_hash_gen") {
            inv.snp_ovmf_hash = ovmf_hash.clone();
        }
        check(name, &inv, &expect);
        if mode == "snp:ovmf-hash"
            && let Expect::Digest(d) = &expect
        {
            ovmf_hash = Some(d.clone());
        }
        checked += 1;
    }
    assert_eq!(
        (checked, legacy),
        (18, 6),
        "rows of the sev-snp-measure table"
    );
}

/// Splits a shell-like line with single quotes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for ch in s.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[test]
fn sev_snp_measure_generated() {
    let base = vectors().join("virtee-sev-snp-measure");
    let text = std::fs::read_to_string(base.join("generated/sev-snp-measure-0.0.13-generated.txt"))
        .unwrap();
    let (mut checked, mut legacy) = (0, 0);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (args, want) = line.rsplit_once(" | ").unwrap();
        let inv = Invocation::parse(&words(args), &base);
        if inv.mode == "seves" || inv.mode == "sev" {
            legacy += 1;
            continue;
        }
        check(args, &inv, &Expect::Digest(want.trim().to_string()));
        checked += 1;
    }
    assert_eq!((checked, legacy), (17, 2), "lines of the generated file");
}

#[test]
fn sev_crate_table() {
    let base = vectors().join("virtee-sev");
    let text = std::fs::read_to_string(base.join("SOURCE.md")).unwrap();
    let fixtures = base.join("tests/measurement");
    let mut ovmf_hash = None;
    let mut checked = 0;
    for line in text.lines().filter(|l| {
        ["| test_snp", "| test_sev_snp", "| calc_snp"]
            .iter()
            .any(|p| l.starts_with(p))
    }) {
        let c = cells(line);
        let [name, ovmf, vcpus, feat, append, vmm, expected] = &c[..] else {
            continue;
        };
        let mut inv = Invocation {
            mode: if name == "calc_snp_ovmf_hash" {
                "snp:ovmf-hash".into()
            } else {
                "snp".into()
            },
            ovmf: fixtures.join(format!("ovmf_{ovmf}_suffix.bin")),
            vcpus: vcpus.parse().ok(),
            vcpu_type: Some("EPYC-v4".into()),
            guest_features: feat
                .strip_prefix("0x")
                .map(|h| u64::from_str_radix(h, 16).unwrap()),
            ..Default::default()
        };
        match append.as_str() {
            "(no kernel)" => {}
            other => {
                inv.kernel = Some("/dev/null".into());
                inv.initrd = Some("/dev/null".into());
                inv.append = quoted(other);
            }
        }
        if vmm == "EC2" {
            // The sev crate's EC2 VMSA: RDX = 0.
            inv.vmm = Some("ec2".into());
            inv.ec2_rdx = Some(Ec2VmsaRdx::Zero);
        }
        if name.contains("ovmf hash given") {
            inv.snp_ovmf_hash = ovmf_hash.clone();
        }
        let expect = if is_digest(first_token(expected)) {
            Expect::Digest(first_token(expected).to_string())
        } else {
            Expect::Error(KERNEL_ERROR)
        };
        check(name, &inv, &expect);
        if name == "calc_snp_ovmf_hash" {
            ovmf_hash = Some(first_token(expected).to_string());
        }
        checked += 1;
    }
    assert_eq!(checked, 14, "rows of the sev crate table");
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GoMetadata {
    metadata_items: Vec<GoSection>,
    #[serde(rename = "ResetEIP")]
    reset_eip: String,
    #[serde(rename = "OVMFHash")]
    ovmf_hash: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GoSection {
    #[serde(rename = "GPA")]
    gpa: String,
    section_type_int: u32,
    size: String,
}

fn hex32(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// The AWS real-hardware pair: img_2 with 2 vCPUs, EC2, features 0x1 and the RDX = 0 VMSA gives the
/// MEASUREMENT of a real AWS report; RDX = 0x600 gives sev-snp-measure 0.0.13's other value.
#[test]
fn aws_pairs() {
    let base = vectors().join("virtee-sev-snp-measure-go");
    let text = std::fs::read_to_string(base.join("SOURCE.md")).unwrap();
    let mut checked = 0;
    for n in [1, 2] {
        let json = std::fs::read(base.join(format!("guest/testdata/ovmf_img_{n}.json"))).unwrap();
        let meta: GoMetadata = serde_json::from_slice(&json).unwrap();
        let synth = base.join(format!("derived/synth_ovmf_img_{n}.bin"));
        // The synthetic footer carries exactly the JSON's metadata.
        let ovmf = Ovmf::parse(&std::fs::read(&synth).unwrap()).unwrap();
        assert_eq!(ovmf.sev_es_reset_eip(), Some(hex32(&meta.reset_eip)));
        let ours: Vec<(u32, u32)> = ovmf.sections().iter().map(|s| (s.gpa, s.size)).collect();
        let theirs: Vec<(u32, u32)> = meta
            .metadata_items
            .iter()
            .map(|s| (hex32(&s.gpa), hex32(&s.size)))
            .collect();
        assert_eq!(ours, theirs);
        let kinds: Vec<u32> = meta
            .metadata_items
            .iter()
            .map(|s| s.section_type_int)
            .collect();
        assert_eq!(kinds, vec![1, 1, 2, 3, 1]);
        assert!(
            ovmf.sections()
                .iter()
                .all(|s| s.kind != SectionKind::SnpKernelHashes)
        );

        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| ovmf_img_{n}.json")))
            .unwrap();
        let c = cells(row);
        assert_eq!(c[1], meta.ovmf_hash);
        let rdx0 = c[2].clone();
        let rdx600 = text
            .split(&format!("img_{n}: "))
            .nth(1)
            .map(|rest| rest.chars().take(96).collect::<String>())
            .unwrap();
        for (rdx, want) in [(Ec2VmsaRdx::Zero, rdx0), (Ec2VmsaRdx::Value0x600, rdx600)] {
            let inv = Invocation {
                mode: "snp".into(),
                vcpus: Some(2),
                vmm: Some("ec2".into()),
                ec2_rdx: Some(rdx),
                guest_features: Some(1),
                ovmf: synth.clone(),
                snp_ovmf_hash: Some(meta.ovmf_hash.clone()),
                ..Default::default()
            };
            check(&format!("img_{n} {rdx:?}"), &inv, &Expect::Digest(want));
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
    // Report #12's MEASUREMENT, as SOURCE.md states it.
    assert!(text.contains("c2c84b9364fc9f0f54b04534768c860c6e0e386ad98b96e8b98eca46ac8971d05c531ba48373f054c880cfd1f4a0a84e"));
}

#[test]
fn fixtures_are_where_the_sources_say() {
    for p in [
        "virtee-sev-snp-measure/tests/fixtures/ovmf_AmdSev_suffix.bin",
        "virtee-sev/tests/measurement/ovmf_AmdSev_suffix.bin",
    ] {
        let bytes = std::fs::read(vectors().join(p)).unwrap();
        let ovmf = Ovmf::parse(&bytes).unwrap();
        assert!(ovmf.kernel_hashes_section().is_some(), "{p}");
    }
    let x64 = Ovmf::parse(
        &std::fs::read(vectors().join(Path::new(
            "virtee-sev/tests/measurement/ovmf_OvmfX64_suffix.bin",
        )))
        .unwrap(),
    )
    .unwrap();
    assert!(x64.kernel_hashes_section().is_none());
}

/// The emulated PSP measures the page file QEMU was given: same digest as from the hashes.
#[test]
fn a_hashes_page_read_back_gives_the_same_digest() {
    use snpkit_measure::{
        Firmware, GuestFeatures, HashesPage, KernelHashes, LaunchConfig, VcpuType, Vmm,
    };
    let bytes = std::fs::read(
        vectors().join("virtee-sev-snp-measure/tests/fixtures/ovmf_AmdSev_suffix.bin"),
    )
    .unwrap();
    let ovmf = Ovmf::parse(&bytes).unwrap();
    let firmware = Firmware::measure(&ovmf);
    let hashes = KernelHashes::compute(b"k", b"i", b"console=ttyS0 ").unwrap();
    let page = snpkit_measure::hashes_page(&ovmf, &hashes).unwrap();
    assert_eq!(
        page.gpa(),
        u64::from(ovmf.kernel_hashes_section().unwrap().gpa)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hashes.page");
    page.write_to(&file).unwrap();
    let back = HashesPage::from_bytes(&ovmf, std::fs::read(&file).unwrap()).unwrap();
    let config = LaunchConfig {
        vcpus: snpkit_measure::vcpus(2).unwrap(),
        vcpu_type: VcpuType::from_name("EPYC-Milan").unwrap(),
        vmm: Vmm::Qemu,
        guest_features: GuestFeatures::new(1).unwrap(),
    };
    assert_eq!(
        snpkit_measure::launch_digest_with_page(&firmware, Some(&back), &config).unwrap(),
        snpkit_measure::launch_digest(&firmware, Some(&hashes), &config).unwrap()
    );
    let err = HashesPage::from_bytes(&ovmf, vec![0; 100])
        .unwrap_err()
        .to_string();
    assert!(err.contains("100 bytes"), "{err}");
}
