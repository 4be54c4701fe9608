//! `cargo xtask test`: the whole test suite, from a fresh machine.
//!
//! Installs the system packages (as root), builds or fetches from the cache what the tests need
//! (the AmdSev OVMF, the sev-snp-measure oracle), checks formatting and lints, then runs every
//! test of the workspace, the end-to-end ones included, and ends with a short coverage-guided run
//! of every fuzz target (`cargo xtask fuzz`, 20 s each). Tests find the artifacts through
//! environment variables set here, and fail (never skip) when one is missing.
//!
//! The last line is the total over every test binary, the doc-tests and the fuzz targets
//! (`N passed, N failed`, with `, N skipped` when tests were ignored), counted from libtest's
//! output as it passes through ([`tally`]); the exit status is non-zero when anything failed.

mod tally;

use crate::{cli, ovmf, setup};
use anyhow::{Context, bail};
use std::io::{IsTerminal, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use tally::{Reader, Tally};

#[derive(clap::Args)]
pub struct Args {
    /// Don't install system packages (check only).
    #[arg(long)]
    pub no_setup: bool,
    /// Extra arguments for `cargo test` (e.g. a test name filter), after `--`.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The suite is snpkit's own, run in its source tree whatever project is around.
    let source = cli::source_tree()?;
    let root = source.root().to_path_buf();
    eprintln!("== system packages");
    setup::ensure(args.no_setup)?;
    eprintln!("== AmdSev OVMF (built once, then cached)");
    let fw = ovmf::ensure(false, false)?;
    let envs = test_env(&fw.path)?;

    eprintln!("== cargo fmt --check");
    cargo(&root, &["fmt", "--all", "--", "--check"], &envs)?;
    eprintln!("== cargo clippy -D warnings");
    cargo(
        &root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
        &envs,
    )?;
    eprintln!("== cargo test");
    let mut test = vec!["test", "--workspace", "--no-fail-fast", "--"];
    // libtest's stdout is a pipe now (it is counted on its way through): keep its colours for a
    // terminal, unless the caller chose.
    let colour = std::io::stdout().is_terminal()
        && !args.cargo_args.iter().any(|a| a.starts_with("--color"));
    if colour {
        test.extend(["--color", "always"]);
    }
    test.extend(args.cargo_args.iter().map(String::as_str));
    let tests = cargo_test(&root, &test, &envs)?;
    eprintln!("== cargo xtask fuzz: every target, 20 s each");
    let fuzz = crate::fuzz::run_all(std::time::Duration::from_secs(20))?;
    for failure in &fuzz.failures {
        eprintln!("fuzzing found a failure:\n{failure}");
    }
    let mut total = tests.tally;
    total += Tally {
        passed: fuzz.passed,
        failed: fuzz.failures.len() as u64,
        skipped: 0,
    };
    if tests.crashed > 0 {
        eprintln!(
            "{} test binaries ended without their result line (crashed or killed): their unreported tests count as failed",
            tests.crashed
        );
    }
    // cargo failing with no failure counted: a test target did not build, or cargo stopped.
    let cargo_alone_failed = !tests.cargo_ok && tests.tally.failed == 0;
    if cargo_alone_failed {
        eprintln!("cargo test failed without a failing test to count: see its errors above");
    }
    println!("{total}");
    Ok(if total.failed > 0 || cargo_alone_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What `cargo test` reported.
struct TestRun {
    tally: Tally,
    crashed: u64,
    cargo_ok: bool,
}

/// Runs `cargo test`, passing its stdout (libtest's output) through as it comes while counting
/// the results; cargo's own progress goes to stderr untouched.
fn cargo_test(
    root: &std::path::Path,
    args: &[&str],
    envs: &[(String, String)],
) -> anyhow::Result<TestRun> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(root)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    let mut out = child.stdout.take().context("cargo test's stdout")?;
    let mut reader = Reader::default();
    let mut stdout = std::io::stdout();
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading cargo test's output"),
        };
        // Through at once, partial lines included: libtest prints `test name ... ` before it
        // runs a test, and a slow one should show which it is.
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            reader.line(&String::from_utf8_lossy(&line));
        }
    }
    if !pending.is_empty() {
        reader.line(&String::from_utf8_lossy(&pending));
    }
    let status = child.wait().context("waiting for cargo test")?;
    let (tally, crashed) = reader.finish();
    Ok(TestRun {
        tally,
        crashed,
        cargo_ok: status.success(),
    })
}

/// The environment the tests read their artifacts from.
pub fn test_env(ovmf: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut envs = vec![("SNPKIT_OVMF".to_owned(), ovmf.display().to_string())];
    if let Some(oracle) = crate::oracles_env()? {
        envs.push(oracle);
    }
    let jose = crate::oracles::jose_python()?;
    envs.push(("SNPKIT_JOSE_PYTHON".to_owned(), jose.display().to_string()));
    Ok(envs)
}

fn cargo(root: &std::path::Path, args: &[&str], envs: &[(String, String)]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}
