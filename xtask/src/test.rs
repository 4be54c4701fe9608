//! `cargo xtask test`: the whole test suite, from a fresh machine.
//!
//! Installs the system packages (as root), builds or fetches from the cache what the tests need
//! (the AmdSev OVMF, the sev-snp-measure oracle), checks formatting and lints, then runs every
//! test of the workspace, the end-to-end ones included, and ends with a short coverage-guided run
//! of every fuzz target (`cargo xtask fuzz`, 20 s each). Tests find the artifacts through
//! environment variables set here, and fail (never skip) when one is missing.

use crate::{cli, ovmf, setup};
use anyhow::{Context, bail};
use std::process::{Command, ExitCode};

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
    let root = cli::workspace_root();
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
    let mut test = vec!["test", "--workspace", "--no-fail-fast"];
    if !args.cargo_args.is_empty() {
        test.push("--");
        test.extend(args.cargo_args.iter().map(String::as_str));
    }
    cargo(&root, &test, &envs)?;
    eprintln!("== cargo xtask fuzz: every target, 20 s each");
    crate::fuzz::run_all(std::time::Duration::from_secs(20))?;
    eprintln!("== all tests passed");
    Ok(ExitCode::SUCCESS)
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
