//! `cargo xtask bench <name>`: benchmarks run side by side with the peer tool, printing the ratio.
//!
//! Speed is claimed by these, never by timed tests.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use snpkit_measure::{BootCandidate, Firmware, FirmwareCandidate, LaunchDigest, Ovmf, SearchSpace};

use crate::bench_timing::{median, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark: build, measure, explain, verify, verity, kbs, edit-loop.
    name: String,
    /// Timed runs per tool (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// kbs: concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// kbs: rounds of auth → attest → resource per client.
    #[arg(long, default_value_t = 30)]
    rounds: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.name.as_str() {
        "build" => crate::bench_build::run(args.runs),
        "verify" => crate::bench_verify::run().map(|()| ExitCode::SUCCESS),
        "measure" => measure(args.runs),
        "explain" => explain(),
        "verity" => crate::bench_verity::run(args.runs),
        "kbs" => crate::bench_kbs::run(args.clients, args.rounds),
        "edit-loop" => crate::bench_edit_loop::run(args.runs),
        other => {
            bail!(
                "unknown benchmark {other:?}; known: build, measure, explain, verify, verity, kbs, edit-loop"
            )
        }
    }
}

/// The AmdSev OVMF: `SNPKIT_OVMF` if set, else the cached build (built now if need be).
fn bench_ovmf() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SNPKIT_OVMF").map(PathBuf::from) {
        if !path.is_file() {
            bail!(
                "SNPKIT_OVMF={} is not a file: unset it or run `cargo xtask ovmf`",
                path.display()
            );
        }
        return Ok(path);
    }
    Ok(crate::ovmf::ensure(false, true)?.path)
}

/// Deterministic incompressible bytes.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    snpkit_testkit::rng::SplitMix64::new(seed).bytes(len)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("snpkit-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last line of a command's output (where the measure tools print the digest).
fn last_line(stdout: &str) -> String {
    stdout.lines().last().unwrap_or("").trim().to_string()
}

fn measure(runs: usize) -> anyhow::Result<ExitCode> {
    let runs = runs.max(1);
    let ovmf = bench_ovmf()?;
    let oracle = crate::oracles::sev_snp_measure()?;
    let dir = TempDir::new("measure")?;
    let kernel = dir.0.join("vmlinuz");
    let initrd = dir.0.join("initrd");
    std::fs::write(&kernel, pseudo_random(10_000_000, 1))?;
    std::fs::write(&initrd, pseudo_random(50_000_000, 2))?;
    let args: Vec<String> = [
        "--mode",
        "snp",
        "--vcpus",
        "64",
        "--vcpu-type",
        "EPYC-v4",
        "--guest-features",
        "0x21",
        "--append=console=ttyS0 quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["--ovmf".into(), ovmf.display().to_string()])
    .chain(["--kernel".into(), kernel.display().to_string()])
    .chain(["--initrd".into(), initrd.display().to_string()])
    .collect();
    let ours_exe = std::env::current_exe()?;
    let ours_args: Vec<String> = std::iter::once("measure".to_string())
        .chain(args.iter().cloned())
        .collect();
    let openssl = PathBuf::from("openssl");
    let floor_256 = vec![
        "dgst".into(),
        "-sha256".into(),
        kernel.display().to_string(),
        initrd.display().to_string(),
    ];
    let floor_384 = vec!["dgst".into(), "-sha384".into(), ovmf.display().to_string()];

    // One untimed round warms the page cache for everyone.
    let ours_digest = last_line(&timed(&ours_exe, &ours_args)?.1);
    let their_digest = last_line(&timed(&oracle, &args)?.1);
    timed(&openssl, &floor_256)
        .context("openssl is needed for the hashing floor (apt-get install openssl)")?;
    let (mut ours, mut theirs, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        theirs.push(timed(&oracle, &args)?.0);
        ours.push(timed(&ours_exe, &ours_args)?.0);
        floor.push(timed(&openssl, &floor_256)?.0 + timed(&openssl, &floor_384)?.0);
    }
    let (ours, theirs, floor) = (median(ours), median(theirs), median(floor));
    println!(
        "bench measure: AmdSev OVMF ({} KiB), 10 MB kernel, 50 MB initrd, 64 vCPUs; median of {runs} runs, wall time per process",
        std::fs::metadata(&ovmf)?.len() / 1024
    );
    println!(
        "  sev-snp-measure {:<8} {:>8.3} s",
        crate::oracles::SEV_SNP_MEASURE_VERSION,
        theirs.as_secs_f64()
    );
    println!("  snpkit measure           {:>8.3} s", ours.as_secs_f64());
    println!(
        "  openssl dgst (floor)     {:>8.3} s   (-sha256 kernel initrd, then -sha384 OVMF)",
        floor.as_secs_f64()
    );
    println!(
        "  sev-snp-measure / snpkit = {:.2}×  (goal ≥ 3×)",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    println!(
        "  snpkit / floor           = {:.2}×  (goal ≤ 1.2×)",
        ours.as_secs_f64() / floor.as_secs_f64()
    );
    let agree = ours_digest == their_digest;
    println!(
        "  digests agree: {}  ({ours_digest})",
        if agree { "yes" } else { "NO" }
    );
    Ok(if agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn explain() -> anyhow::Result<ExitCode> {
    let ovmf_path = bench_ovmf()?;
    let ovmf = Ovmf::parse(&std::fs::read(&ovmf_path)?)
        .with_context(|| format!("{}", ovmf_path.display()))?;
    let firmware = [FirmwareCandidate {
        label: "OVMF".into(),
        firmware: Firmware::measure(&ovmf),
    }];
    let kernel = pseudo_random(1_000_000, 3);
    let initrd = pseudo_random(4_000_000, 4);
    let boots = BootCandidate::variants(&kernel, &initrd, b"console=ttyS0 quiet");
    let space = SearchSpace::wide(&[]);
    // A digest no configuration has: the search sweeps the whole space.
    let target = LaunchDigest::from_bytes([0x5a; 48]);
    let start = Instant::now();
    let found = snpkit_measure::explain(&target, &firmware, &boots, &space);
    let secs = start.elapsed().as_secs_f64();
    let rate = found.tried as f64 / secs;
    println!(
        "bench explain: {} boot variants × vCPUs {:?} × {} vCPU types × {} VMM forms × {} feature sets, one thread",
        boots.len(),
        space.vcpus,
        space.vcpu_types.len(),
        space.vmms.len(),
        space.guest_features.len()
    );
    println!(
        "  {} configurations in {secs:.2} s = {rate:.0} configurations/s  (goal ≥ 100000)",
        found.tried
    );
    Ok(if found.matches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
