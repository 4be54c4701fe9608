//! `cargo xtask bench-verify`: how long one verification takes with a warm KDS cache, side by side
//! with snpguest (`cargo install snpguest --root ~/.cache/snpkit/tools/snpguest`).
//!
//! Measured three ways: the library call (parse, chain, CRL, signature, policy; certificates from
//! the warm cache), our CLI as a process, and snpguest's `verify certs` + `verify attestation` as
//! processes (what a user of either tool runs). A benchmark, not a test: it prints numbers.

use anyhow::Context;
use snpkit_attest::gather::complete_from_kds;
use snpkit_attest::kds::{Kds, KdsConfig, cache, vcek_path};
use snpkit_attest::{CrlInput, Endorsements, Policy, Product, Reference, Trust};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use time::macros::datetime;

const REPORT: &str = "project-oak-oak/derived/cb.report.bin";
const VCEK: &str = "project-oak-oak/derived/cb.vcek.der";
const CRL: &str = "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der";

fn snpguest() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SNPGUEST") {
        return Some(PathBuf::from(p));
    }
    let cached = snpkit_attest::kds::default_cache_dir()?
        .parent()?
        .join("tools/snpguest/bin/snpguest");
    if cached.is_file() {
        return Some(cached);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("snpguest"))
            .find(|p| p.is_file())
    })
}

struct Stats {
    median: Duration,
    mean: Duration,
    n: usize,
}

fn time_n(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Stats> {
    f()?; // warm-up, and proof that it works
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    let total: Duration = samples.iter().sum();
    Ok(Stats {
        median: crate::bench_timing::median(samples),
        mean: total / n as u32,
        n,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn pem(der: &[u8]) -> anyhow::Result<String> {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn run() -> anyhow::Result<()> {
    let v = crate::cli::vectors_dir();
    let report = std::fs::read(v.join(REPORT))
        .with_context(|| format!("vector {REPORT} (set SNPKIT_VECTORS)"))?;
    let vcek = std::fs::read(v.join(VCEK))?;
    let crl = std::fs::read(v.join(CRL))?;
    let parsed = snpkit_attest::report::parse(&report)?;
    let now = datetime!(2026-07-01 00:00 UTC); // inside the CRL's and certificates' validity

    // A warm cache: the VCEK and the CRL where the KDS client keeps them.
    let work = tempfile::tempdir()?;
    let cache_dir = work.path().join("kds");
    let tcb = parsed.tcb(parsed.reported_tcb, Product::Milan);
    cache::write(
        &cache::file_for(
            &cache_dir,
            &vcek_path(Product::Milan, &parsed.chip_id, &tcb),
        ),
        &vcek,
    )?;
    cache::write(&cache::file_for(&cache_dir, "/vcek/v1/Milan/crl"), &crl)?;
    let kds = Kds::new(KdsConfig {
        base_url: "http://127.0.0.1:9".into(),
        cache_dir: cache_dir.clone(),
        offline: true,
        timeout: Duration::from_secs(1),
        retries: 0,
        backoff: Duration::ZERO,
        max_retry_after: Duration::ZERO,
    })?;
    let reference = Reference {
        measurement: Some(parsed.measurement),
        report_data: Some(parsed.report_data),
        report_data_source: "bench".into(),
        measurement_source: "bench".into(),
        ..Reference::default()
    };
    let policy = Policy::default();

    let lib = time_n(300, || {
        let mut e = Endorsements::default();
        complete_from_kds(&report, &mut e, None, &kds, now);
        anyhow::ensure!(
            matches!(e.crl, CrlInput::Given(_)),
            "CRL not from the warm cache"
        );
        let verdict =
            snpkit_attest::verify(&report, &e, &reference, &policy, &Trust::default(), now);
        anyhow::ensure!(
            verdict.passed,
            "verdict failed:\n{}",
            verdict.to_table(false)
        );
        Ok(())
    })?;

    // Files for the processes: a run folder's report and certs/, which both tools read.
    let run = snpkit_bundle::RunDir::at(work.path());
    let certs = run.certs();
    let roots = snpkit_attest::roots::builtin(Product::Milan)?;
    use snpkit_bundle::CertName;
    // AMD's names on purpose: this folder exists to be handed to snpguest, the peer measured.
    let amd_names = snpkit_bundle::RunLaunch::Snp;
    run.write_cert(amd_names, CertName::Ark, pem(roots.ark.der())?.as_bytes())?;
    run.write_cert(amd_names, CertName::Ask, pem(roots.ask.der())?.as_bytes())?;
    run.write_cert(amd_names, CertName::Vcek, pem(&vcek)?.as_bytes())?;
    std::fs::write(certs.join(format!("{}.der", CertName::Crl.stem())), &crl)?;
    let report_path = run.report();
    std::fs::write(&report_path, &report)?;
    let exe = std::env::current_exe()?;
    let ours = time_n(30, || {
        run_ok(
            Command::new(&exe)
                .args([
                    "verify",
                    "--offline",
                    "--now",
                    "2026-07-01T00:00:00Z",
                    "--report",
                ])
                .arg(&report_path)
                .arg("--certs")
                .arg(&certs)
                .args(["--measurement", &hex::encode(parsed.measurement)])
                .args(["--report-data", &hex::encode(parsed.report_data)])
                .env("XDG_CACHE_HOME", work.path()),
        )
    })?;

    println!("verify one report (oak cb, Milan v3), warm cache");
    println!(
        "  snpkit library call    median {}  mean {}  (n={})",
        ms(lib.median),
        ms(lib.mean),
        lib.n
    );
    println!(
        "  snpkit CLI process     median {}  mean {}  (n={})",
        ms(ours.median),
        ms(ours.mean),
        ours.n
    );
    let goal = Duration::from_millis(5);
    println!(
        "  goal < 5 ms per verification: {}",
        if lib.median < goal { "met" } else { "NOT met" }
    );

    let Some(sg) = snpguest() else {
        println!(
            "  snpguest: not installed (cargo install snpguest --root ~/.cache/snpkit/tools/snpguest); no ratio"
        );
        return Ok(());
    };
    std::fs::remove_file(certs.join("crl.der"))?;
    let peer = time_n(30, || {
        run_ok(Command::new(&sg).arg("verify").arg("certs").arg(&certs))?;
        run_ok(
            Command::new(&sg)
                .args(["verify", "attestation", "-p", "milan"])
                .arg(&certs)
                .arg(&report_path),
        )
    })?;
    println!(
        "  snpguest certs+attestation processes  median {}  mean {}  (n={}, {})",
        ms(peer.median),
        ms(peer.mean),
        peer.n,
        sg.display()
    );
    println!(
        "  ratio snpguest / snpkit CLI: {:.2}x (median)",
        peer.median.as_secs_f64() / ours.median.as_secs_f64()
    );
    Ok(())
}
