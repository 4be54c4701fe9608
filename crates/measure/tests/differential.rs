//! Differential test against sev-snp-measure 0.0.13 (the reference tool): randomized kernel,
//! initrd and cmdline bytes, vCPU counts and types, VMMs and guest features, on the vendored
//! fixtures and on the real AmdSev OVMF. The seed is fixed unless `SNPKIT_DIFF_SEED` (decimal or
//! 0x-hex) overrides it, and is printed with every failure.
//!
//! Needs `SNPKIT_SEV_SNP_MEASURE` (set by `cargo xtask test`; install with `cargo xtask oracles`)
//! and `SNPKIT_OVMF` (built by `cargo xtask ovmf`). Without them the tests fail, saying so.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Invocation, vectors};
use snpkit_measure::CPU_MODELS;

const SEED: u64 = 0x5eed_2026_0001;

/// The run's seed: `SNPKIT_DIFF_SEED` if set, else [`SEED`]. Printed (shown with a failing test's
/// output) so any failure can be replayed.
fn seed() -> u64 {
    snpkit_testkit::rng::seed("SNPKIT_DIFF_SEED", SEED)
}

fn oracle() -> PathBuf {
    let path = std::env::var_os("SNPKIT_SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_default();
    assert!(
        path.is_file(),
        "sev-snp-measure 0.0.13 not found (SNPKIT_SEV_SNP_MEASURE={path:?}): run `cargo xtask oracles` and set \
         SNPKIT_SEV_SNP_MEASURE to the path it prints (`cargo xtask test` does both)"
    );
    path
}

fn amdsev_ovmf() -> PathBuf {
    let path = std::env::var_os("SNPKIT_OVMF")
        .map(PathBuf::from)
        .unwrap_or_default();
    assert!(
        path.is_file(),
        "the AmdSev OVMF is missing (SNPKIT_OVMF={path:?}): run `cargo xtask ovmf` and set SNPKIT_OVMF to the \
         OVMF.fd it builds (`cargo xtask test` does both)"
    );
    path
}

use snpkit_testkit::rng::SplitMix64 as Rng;

fn random_cmdline(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "console=ttyS0",
        "quiet",
        "root=/dev/vda1",
        "ro",
        "init=/init",
        "loglevel=7",
        "a=\"b c\"",
        "é=ü",
        "-x",
        "=",
        "\t",
    ];
    let mut s: String = (0..rng.below(6))
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ");
    // Leading and trailing spaces are hashed as they are (the sev crate trims them; QEMU does not).
    match rng.below(4) {
        0 => s.push(' '),
        1 => s.push_str("  "),
        2 => s.insert(0, ' '),
        _ => {}
    }
    s
}

/// A random invocation of snp mode on `ovmf` (kernel files written into `dir`).
fn random_snp(rng: &mut Rng, ovmf: &Path, dir: &Path, i: usize, with_kernel: bool) -> Invocation {
    let mut inv = Invocation {
        mode: "snp".into(),
        ovmf: ovmf.to_path_buf(),
        ..Default::default()
    };
    inv.vcpus = Some(*rng.pick(&[1u32, 2, 3, 4, 7, 16, 64]));
    inv.vmm = Some(
        rng.pick(&["QEMU", "QEMU", "QEMU", "ec2", "gce"])
            .to_string(),
    );
    match rng.below(4) {
        0 => inv.vcpu_sig = Some(rng.pick(CPU_MODELS).signature()),
        1 => {
            let m = rng.pick(CPU_MODELS);
            inv.vcpu_fms = Some((m.family, m.model, m.stepping));
        }
        _ => {
            // Only the names sev-snp-measure knows (it lacks the extra QEMU 10 / sev crate versions).
            let known: Vec<&str> = CPU_MODELS
                .iter()
                .map(|m| m.name)
                .filter(|n| !["EPYC-Rome-v4", "EPYC-Turin-v1", "EPYC-Turin-v2"].contains(n))
                .collect();
            inv.vcpu_type = Some(rng.pick(&known).to_string());
        }
    }
    inv.guest_features = Some(*rng.pick(&[0x1u64, 0x21, 0x1, 0x201, 0x8021, 0x4061]));
    if with_kernel {
        let kernel = dir.join(format!("kernel{i}"));
        let len = rng.below(300_000) as usize;
        std::fs::write(&kernel, rng.bytes(len)).unwrap();
        inv.kernel = Some(kernel);
        match rng.below(3) {
            0 => {} // no --initrd: hashed as empty
            1 => {
                let initrd = dir.join(format!("initrd{i}"));
                std::fs::write(&initrd, []).unwrap();
                inv.initrd = Some(initrd);
            }
            _ => {
                let initrd = dir.join(format!("initrd{i}"));
                let len = rng.below(1_000_000) as usize;
                std::fs::write(&initrd, rng.bytes(len)).unwrap();
                inv.initrd = Some(initrd);
            }
        }
        if rng.below(5) != 0 {
            inv.append = Some(random_cmdline(rng));
        }
    }
    inv
}

fn theirs(oracle: &Path, inv: &Invocation) -> Result<String, String> {
    let out = Command::new(oracle).args(inv.args()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        Ok(stdout.lines().last().unwrap_or("").trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn compare(oracle: &Path, invocations: &[Invocation], seed: u64) {
    let mut failures = Vec::new();
    for inv in invocations {
        let (ours, theirs) = (inv.ours(), theirs(oracle, inv));
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) if a == b => {}
            _ => failures.push(format!(
                "{:?}\n  ours:   {ours:?}\n  theirs: {theirs:?}",
                inv.args()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed:#x} (replay with SNPKIT_DIFF_SEED): {} of {} differ:\n{}",
        failures.len(),
        invocations.len(),
        failures.join("\n")
    );
}

#[test]
fn fixtures_agree_with_sev_snp_measure() {
    let oracle = oracle();
    let fixtures = vectors().join("virtee-sev-snp-measure/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut rng = Rng::new(seed);
    let mut invs = Vec::new();
    for i in 0..14 {
        let with_kernel = i % 4 != 3;
        invs.push(random_snp(
            &mut rng,
            &fixtures.join("ovmf_AmdSev_suffix.bin"),
            dir.path(),
            i,
            with_kernel,
        ));
    }
    // The plain OvmfX64 firmware, without kernel (with one, both refuse; see the vector tests).
    for i in 0..3 {
        invs.push(random_snp(
            &mut rng,
            &fixtures.join("ovmf_OvmfX64_suffix.bin"),
            dir.path(),
            100 + i,
            false,
        ));
    }
    // COCONUT-SVSM with random vCPU counts and types.
    for _ in 0..3 {
        invs.push(Invocation {
            mode: "snp:svsm".into(),
            vcpus: Some(*rng.pick(&[1u32, 3, 8])),
            vcpu_type: Some(
                rng.pick(&["EPYC-v4", "EPYC-Milan", "EPYC-Genoa"])
                    .to_string(),
            ),
            ovmf: fixtures.join("svsm_ovmf.fd"),
            svsm: Some(fixtures.join("svsm.bin")),
            vars_size: Some(*rng.pick(&[540672u64, 0x100000])),
            ..Default::default()
        });
    }
    invs.push(Invocation {
        mode: "snp:ovmf-hash".into(),
        ovmf: fixtures.join("ovmf_AmdSev_suffix.bin"),
        ..Default::default()
    });
    compare(&oracle, &invs, seed);
}

#[test]
fn amdsev_ovmf_agrees_with_sev_snp_measure() {
    let oracle = oracle();
    let ovmf = amdsev_ovmf();
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    // Its own stream, so the two tests do not draw the same inputs.
    let mut rng = Rng::new(seed.wrapping_add(1));
    let mut invs: Vec<Invocation> = (0..10)
        .map(|i| random_snp(&mut rng, &ovmf, dir.path(), i, i != 9))
        .collect();
    let hash = Invocation {
        mode: "snp:ovmf-hash".into(),
        ovmf: ovmf.clone(),
        ..Default::default()
    };
    // Feeding the OVMF hash back in gives the same digest as measuring the whole file.
    let mut with_hash = invs[0].clone();
    with_hash.snp_ovmf_hash = Some(hash.ours().unwrap());
    with_hash.base64 = true;
    invs.push(hash);
    invs.push(with_hash);
    compare(&oracle, &invs, seed);
}
