//! `cargo xtask fuzz [--seconds N] [TARGET]`: coverage-guided fuzzing of every parser of outside
//! bytes, on the stable toolchain.
//!
//! cargo-fuzz needs nightly for `-Zsanitizer`; the coverage instrumentation libFuzzer steers by does
//! not, so `fuzz/` is built with rustc's sanitizer-coverage pass (the flags of fuzz/README.md) for
//! the host target (which keeps the flags off build scripts). Each target's corpus
//! (`fuzz/corpus/<target>/`, kept between runs) is seeded from the vendored vectors, each target
//! runs for N seconds, and any crash, assertion or timeout fails the command with the input saved
//! under `fuzz/artifacts/<target>/`.

use crate::fuzz_seeds::{
    MILAN_CRL, OAK, TRUSTEE_SNP, bundle_seeds, file_seeds, idblock_seeds, msg_key_seeds, read,
    volume_header_seeds, wire_seeds,
};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds to run each target.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Run only this target (default: every target in fuzz/Cargo.toml).
    pub target: Option<String>,
}

/// rustc flags for coverage-guided fuzzing without nightly (fuzz/README.md explains each).
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// One input longer than this many seconds counts as a hang.
const INPUT_TIMEOUT_S: u64 = 10;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let targets = match &args.target {
        Some(t) => vec![t.clone()],
        None => targets(&fuzz_dir()?)?,
    };
    let outcome = run_targets(&targets, Duration::from_secs(args.seconds))?;
    if !outcome.failures.is_empty() {
        bail!(
            "fuzzing found a failure:\n{}",
            outcome.failures.join("\n\n")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How the targets fared: a target passes when it ran its time without a crash.
pub struct Outcome {
    pub passed: u64,
    /// One entry per failed target: where its input is, and the end of libFuzzer's log.
    pub failures: Vec<String>,
}

/// Every target for `per_target` (what `cargo xtask test` calls, counting each target as a result).
pub fn run_all(per_target: Duration) -> anyhow::Result<Outcome> {
    run_targets(&targets(&fuzz_dir()?)?, per_target)
}

/// The fuzz targets are snpkit's own: in its source tree, whatever the project.
fn fuzz_dir() -> anyhow::Result<PathBuf> {
    Ok(crate::cli::source_tree()?.root().join("fuzz"))
}

/// The `[[bin]]` names of fuzz/Cargo.toml.
fn targets(fuzz: &Path) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        bin: Vec<Bin>,
    }
    #[derive(serde::Deserialize)]
    struct Bin {
        name: String,
    }
    let manifest = fuzz.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let parsed: Manifest =
        toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let names: Vec<String> = parsed.bin.into_iter().map(|b| b.name).collect();
    if names.is_empty() {
        bail!("{} declares no [[bin]] fuzz targets", manifest.display());
    }
    Ok(names)
}

struct Target {
    max_len: usize,
    seeds: Vec<(String, Vec<u8>)>,
}

/// Seeds and input size per target. A target missing here is an error, so none is skipped.
fn target(name: &str) -> anyhow::Result<Target> {
    let t = match name {
        // Seeds in the target's own format (fuzz_targets/report.rs): [case, mode, …]. One
        // untouched report per genuine case, and three raw reports.
        "report" => {
            let mut seeds: Vec<(String, Vec<u8>)> = (0u8..6)
                .map(|i| (format!("case-{i}"), vec![i, 0]))
                .collect();
            for (case, rel) in [
                (0u8, format!("{OAK}cb.report.bin")),
                (1, format!("{OAK}turin_oc.report.bin")),
                (3, format!("{TRUSTEE_SNP}test-vlek-report.bin")),
            ] {
                let mut raw = vec![case, 0x80];
                raw.extend(read(&rel)?);
                seeds.push((format!("raw-{case}"), raw));
            }
            Target {
                max_len: 4096,
                seeds,
            }
        }
        "cert" => {
            let files = [
                format!("{OAK}turin_oc.vcek.der"),
                format!("{OAK}cb.vcek.der"),
                format!("{TRUSTEE_SNP}test-vcek.der"),
                format!("{TRUSTEE_SNP}test-vlek.der"),
                "virtee-sev/tests/certs_data/cert_chain_milan".into(),
                "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-vcek.pem".into(),
                "google-go-sev-guest/verify/trust/ask_ark_milan_vlek.pem".into(),
                MILAN_CRL.into(),
            ];
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            Target {
                max_len: 8192,
                seeds: file_seeds(&files)?,
            }
        }
        "ovmf_metadata" => {
            let fixtures = "virtee-sev-snp-measure/tests/fixtures/";
            let mut seeds = file_seeds(&[
                &format!("{fixtures}ovmf_AmdSev_suffix.bin"),
                &format!("{fixtures}ovmf_OvmfX64_suffix.bin"),
            ])?;
            // The footer table is found from the end of the image: the last 16 KiB carry it.
            let svsm = read(&format!("{fixtures}svsm_ovmf.fd"))?;
            seeds.push((
                "svsm_ovmf-tail".into(),
                svsm[svsm.len().saturating_sub(16384)..].to_vec(),
            ));
            Target {
                max_len: 16384,
                seeds,
            }
        }
        "verity_superblock" => {
            let mut seeds = Vec::new();
            for f in [
                "pat1m_4k_sha256_v1",
                "pat1m_4k_sha1_v0",
                "pat1m_4k_sha512_v1",
                "pat300x512_sha256_v1",
            ] {
                let bytes = read(&format!("dm-verity/generated/hashdev.{f}.bin"))?;
                seeds.push((f.to_string(), bytes[..bytes.len().min(4096)].to_vec()));
            }
            Target {
                max_len: 8192,
                seeds,
            }
        }
        "wire_frame" => Target {
            // A whole AppLog chunk (16 KiB) and its header fit, so the chunk bound itself is
            // fuzzed; relay bodies at their 61 KiB limit are the wire crate's unit tests'.
            max_len: 20 * 1024,
            seeds: wire_seeds()?,
        },
        "msg_key" => Target {
            max_len: 128,
            seeds: msg_key_seeds(),
        },
        "volume_header" => Target {
            max_len: 8192,
            seeds: volume_header_seeds(),
        },
        // The bundled recipes' command lines and the forms that slipped past a whitespace split.
        "cmdline" => Target {
            max_len: 2048,
            seeds: [
                "console=ttyS0 panic=-1 snpkit.appliance=hello",
                "panic=-1 snpkit.verity=format=1,hash=sha256,data_block=4096,hash_block=4096,data_blocks=8,hash_start=0,root=00,salt=00,on_corruption=panic,check=full",
                "quiet \"init=/bin/sh\"",
                "quiet\x0binit=/bin/sh",
                "x\u{e0}init=/bin/sh -- rd.shell",
                "a=\"b c\" \"d=e f\" g=\"h",
            ]
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("seed-{i}"), s.as_bytes().to_vec()))
            .collect(),
        },
        "idblock" => Target {
            max_len: 8192,
            seeds: idblock_seeds()?,
        },
        "bundle_json" => Target {
            max_len: 16384,
            seeds: bundle_seeds(),
        },
        other => {
            let report = read(&format!("{OAK}cb.report.bin"))?;
            let vcek = read(&format!("{OAK}cb.vcek.der"))?;
            match crate::fuzz_kbs::target(other, &report, &vcek)? {
                Some((max_len, seeds)) => Target { max_len, seeds },
                None => bail!(
                    "fuzz target {other:?} has no seeds in xtask/src/fuzz.rs: add them there (every target is fuzzed)"
                ),
            }
        }
    };
    Ok(t)
}

fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV names no host")
}

/// Build every target with coverage instrumentation; returns the folder of the binaries.
fn build(fuzz: &Path) -> anyhow::Result<PathBuf> {
    // Without a lock of its own, start from the workspace's: the same versions as the tested
    // code, and only the fuzzing crates to add.
    let lock = fuzz.join("Cargo.lock");
    if !lock.exists() {
        let workspace_lock = fuzz.parent().unwrap_or(fuzz).join("Cargo.lock");
        std::fs::copy(workspace_lock, &lock)
            .with_context(|| format!("seeding {}", lock.display()))?;
    }
    let triple = host_triple()?;
    let target_dir = fuzz.join("target/cov");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("fuzz: building the targets with coverage instrumentation (release, {triple})");
    let status = Command::new(cargo)
        .current_dir(fuzz)
        .args(["build", "--release", "--target", &triple, "--target-dir"])
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env("RUSTFLAGS", RUSTFLAGS)
        .status()
        .context("running cargo build in fuzz/")?;
    if !status.success() {
        bail!("building the fuzz targets failed (see above)");
    }
    Ok(target_dir.join(triple).join("release"))
}

/// What libFuzzer said at the end of a run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stats {
    executions: u64,
    edges: u64,
    features: u64,
    corpus: u64,
}

/// Parse libFuzzer's stderr: the last `#N … cov: E ft: F corp: C/…` line and
/// `stat::number_of_executed_units`.
fn parse_stats(log: &str) -> Stats {
    let mut s = Stats::default();
    let field = |words: &[&str], key: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == key)?;
        words.get(i + 1)?.split('/').next()?.parse().ok()
    };
    for line in log.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with('#') {
            s.edges = field(&words, "cov:").unwrap_or(s.edges);
            s.features = field(&words, "ft:").unwrap_or(s.features);
            s.corpus = field(&words, "corp:").unwrap_or(s.corpus);
        }
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            s.executions = n.trim().parse().unwrap_or(s.executions);
        }
    }
    s
}

fn run_targets(names: &[String], per_target: Duration) -> anyhow::Result<Outcome> {
    let fuzz = fuzz_dir()?;
    let known = targets(&fuzz)?;
    let mut plans = Vec::new();
    for name in names {
        if !known.contains(name) {
            bail!(
                "no fuzz target {name:?} in fuzz/Cargo.toml (known: {})",
                known.join(", ")
            );
        }
        plans.push((name.clone(), target(name)?));
    }
    let bin_dir = build(&fuzz)?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (name, plan) in &plans {
        let corpus = fuzz.join("corpus").join(name);
        let artifacts = fuzz.join("artifacts").join(name);
        for dir in [&corpus, &artifacts] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        for (seed, bytes) in &plan.seeds {
            let p = corpus.join(format!("seed-{seed}"));
            std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        }
        eprintln!(
            "fuzz: {name} for {} s ({} seeds)",
            per_target.as_secs(),
            plan.seeds.len()
        );
        let started = Instant::now();
        let (ok, log) = run_one(&bin_dir.join(name), &corpus, &artifacts, plan, per_target)?;
        let stats = parse_stats(&log);
        let result = if ok { "no crash" } else { "FAILED" };
        rows.push((name.clone(), started.elapsed(), stats, result));
        if !ok {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!(
                "{name}: the input is in {}\n{}",
                artifacts.display(),
                tail.join("\n")
            ));
        }
    }
    println!(
        "{:<18} {:>7} {:>12} {:>7} {:>9} {:>7}  result",
        "target", "time", "executions", "edges", "features", "corpus"
    );
    for (name, took, s, result) in &rows {
        println!(
            "{name:<18} {:>6.0}s {:>12} {:>7} {:>9} {:>7}  {result}",
            took.as_secs_f64(),
            s.executions,
            s.edges,
            s.features,
            s.corpus
        );
    }
    Ok(Outcome {
        passed: (rows.len() - failures.len()) as u64,
        failures,
    })
}

/// Run one target; (passed, libFuzzer's log). A run that outlives its time by far is killed.
fn run_one(
    bin: &Path,
    corpus: &Path,
    artifacts: &Path,
    plan: &Target,
    time: Duration,
) -> anyhow::Result<(bool, String)> {
    let log_path = artifacts.join("last-run.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut prefix = artifacts.as_os_str().to_owned();
    prefix.push("/");
    let mut child = Command::new(bin)
        .arg(corpus)
        .arg({
            let mut a = std::ffi::OsString::from("-artifact_prefix=");
            a.push(&prefix);
            a
        })
        .arg(format!("-max_total_time={}", time.as_secs().max(1)))
        .arg(format!("-max_len={}", plan.max_len))
        .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "running {} (build it with `cargo xtask fuzz`)",
                bin.display()
            )
        })?;
    // libFuzzer stops itself at max_total_time; a wedged process is ended well after that.
    let deadline = Instant::now() + time * 2 + Duration::from_secs(INPUT_TIMEOUT_S + 60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Ok((
                false,
                format!("{log}\nkilled: still running long after -max_total_time"),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    Ok((status.success(), log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_of_the_fuzz_crate_has_seeds_and_they_exist() {
        let names = targets(&fuzz_dir().expect("fuzz dir")).expect("targets");
        for want in [
            "report",
            "cert",
            "ovmf_metadata",
            "verity_superblock",
            "wire_frame",
            "msg_key",
            "volume_header",
            "idblock",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        for name in &names {
            let t = target(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!t.seeds.is_empty(), "{name}");
            for (seed, bytes) in &t.seeds {
                assert!(
                    bytes.len() <= t.max_len,
                    "{name}/{seed} is longer than -max_len"
                );
            }
        }
        assert!(target("nope").is_err());
    }

    #[test]
    fn libfuzzer_final_stats_are_read() {
        let log = "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 11 corp: 2/2b exec/s: 0 rss: 30Mb\n\
                   #6106\tDONE   cov: 2259 ft: 4456 corp: 35/9Kb lim: 4096 exec/s: 381 rss: 30Mb\n\
                   stat::number_of_executed_units: 6106\nstat::average_exec_per_sec:     381\n";
        assert_eq!(
            parse_stats(log),
            Stats {
                executions: 6106,
                edges: 2259,
                features: 4456,
                corpus: 35
            }
        );
    }
}
