//! `cargo xtask bench verity`: `cargo xtask verity format` against `veritysetup format` on the same
//! 1 GiB file, in one run, with the same salt and UUID; the hash devices must be identical.
//! `openssl dgst -sha256` of the file (one core) is printed as the floor of one-core hashing.
//!
//! Measured here (2026-11-23, 2 cores with SHA-NI, machine otherwise quiet): veritysetup 2.6.1
//! 1.175 s, snpkit 0.419 s, 2.80×; openssl 0.830 s. With other builds keeping both cores busy
//! (load 4) the same run gave 1.530 s, 1.211 s, 1.26×: the gain is the second core.

use crate::bench_timing::{median, timed};
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

const SIZE: usize = 1 << 30;
const SALT: &str = "e48da609055204e89ae53b655ca2216dd983cf3cb829f34f63a297d106d53e2d";
const UUID: &str = "a60c98d2-ae9b-4865-bfcb-b4e3ace11033";

/// Incompressible, deterministic bytes, written in pieces so memory stays small.
fn write_data(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut rng = snpkit_testkit::rng::SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let mut piece = vec![0u8; 1 << 20];
    for _ in 0..SIZE / piece.len() {
        rng.fill(&mut piece);
        file.write_all(&piece)?;
    }
    file.flush()?;
    Ok(())
}

fn root_hash(summary: &str) -> String {
    summary
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

pub fn run(runs: usize) -> anyhow::Result<ExitCode> {
    let runs = runs.max(1);
    let veritysetup = Path::new("veritysetup");
    timed(veritysetup, &["--version"])
        .context("veritysetup is the peer tool: apt-get install cryptsetup-bin")?;
    let dir = tempfile::Builder::new()
        .prefix("snpkit-bench-verity")
        .tempdir()?;
    let data = dir.path().join("data.img");
    write_data(&data)?;
    let data_arg = data.display().to_string();
    let ours_hash = dir.path().join("ours.hash").display().to_string();
    let theirs_hash = dir.path().join("theirs.hash").display().to_string();
    let exe = std::env::current_exe()?;
    let ours_args = [
        "verity", "format", "--salt", SALT, "--uuid", UUID, &data_arg, &ours_hash,
    ];
    let theirs_args = [
        "format",
        "--salt",
        SALT,
        "--uuid",
        UUID,
        &data_arg,
        &theirs_hash,
    ];
    let openssl = Path::new("openssl");
    let floor_args = ["dgst", "-sha256", &data_arg];

    // One untimed round warms the page cache for everyone.
    let (_, ours_out) = timed(&exe, &ours_args)?;
    let (_, theirs_out) = timed(veritysetup, &theirs_args)?;
    timed(openssl, &floor_args)
        .context("openssl gives the one-core floor: apt-get install openssl")?;
    let (mut ours, mut theirs, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        theirs.push(timed(veritysetup, &theirs_args)?.0);
        ours.push(timed(&exe, &ours_args)?.0);
        floor.push(timed(openssl, &floor_args)?.0);
    }
    let (ours, theirs, floor) = (median(ours), median(theirs), median(floor));
    let same_bytes = std::fs::read(&ours_hash)? == std::fs::read(&theirs_hash)?;
    let same_root =
        root_hash(&ours_out) == root_hash(&theirs_out) && !root_hash(&ours_out).is_empty();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sha_ni = std::fs::read_to_string("/proc/cpuinfo")
        .is_ok_and(|c| c.split_whitespace().any(|w| w == "sha_ni"));
    println!(
        "bench verity: format 1 GiB (sha256, 4096/4096, superblock), {cores} cores, SHA-NI {}; median of {runs} runs, wall time per process",
        if sha_ni { "yes" } else { "no" }
    );
    let version = timed(veritysetup, &["--version"])?.1;
    println!(
        "  {:<28} {:>7.3} s",
        version
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        theirs.as_secs_f64()
    );
    println!(
        "  {:<28} {:>7.3} s",
        "snpkit verity format",
        ours.as_secs_f64()
    );
    println!(
        "  {:<28} {:>7.3} s   (one core, no tree)",
        "openssl dgst -sha256",
        floor.as_secs_f64()
    );
    println!(
        "  veritysetup / snpkit = {:.2}×  (goal ≥ 2×)",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    println!(
        "  identical hash devices: {}, root hashes: {} ({})",
        if same_bytes { "yes" } else { "NO" },
        if same_root { "equal" } else { "DIFFERENT" },
        root_hash(&ours_out)
    );
    Ok(if same_bytes && same_root {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
