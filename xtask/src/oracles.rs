//! Reference tools we test against, installed into snpkit's cache folder on demand.
//!
//! sev-snp-measure comes from PyPI into its own venv, keyed by version:
//! `<cache>/oracles/sev-snp-measure-<version>/` (`<cache>` as `snpkit_cache::root` finds it:
//! `$SNPKIT_CACHE`, else `$XDG_CACHE_HOME/snpkit`, else `~/.cache/snpkit`). Tests find it through
//! `SNPKIT_SEV_SNP_MEASURE` (which `cargo xtask test` sets by calling [`sev_snp_measure`]), and
//! the venv's other tools beside it: `snp-create-id-block` and `python3` with the pinned
//! `cryptography` (the ID block tests' second oracle).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// The sev-snp-measure release our differential tests and benchmarks compare with.
pub const SEV_SNP_MEASURE_VERSION: &str = "0.0.13";

/// sev-snp-measure's one dependency, pinned too: the ID block tests verify and re-sign with it
/// (its RFC 6979 deterministic signing needs OpenSSL 3.2 or later, which its wheels bundle).
pub const CRYPTOGRAPHY_VERSION: &str = "51.0.1";

/// What the venv holds. Recorded in the marker: a venv installed with other pins is redone.
fn requirements() -> [String; 2] {
    [
        format!("sev-snp-measure=={SEV_SNP_MEASURE_VERSION}"),
        format!("cryptography=={CRYPTOGRAPHY_VERSION}"),
    ]
}

/// Written last, so a venv without it is a half-finished install to redo.
const DONE_MARKER: &str = ".snpkit-installed";

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let path = sev_snp_measure()?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Ensures sev-snp-measure 0.0.13 is installed (idempotent) and returns its executable.
pub fn sev_snp_measure() -> anyhow::Result<PathBuf> {
    let venv = snpkit_cache::root()
        .context("no cache folder: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")?
        .join("oracles")
        .join(format!("sev-snp-measure-{SEV_SNP_MEASURE_VERSION}"));
    let exe = venv.join("bin").join("sev-snp-measure");
    let pins = requirements().join(" ");
    let marker = std::fs::read_to_string(venv.join(DONE_MARKER)).unwrap_or_default();
    if marker == pins && exe.is_file() {
        return Ok(exe);
    }
    install(&venv)?;
    let out = Command::new(&exe)
        .arg("--version")
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let version =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !version.contains(SEV_SNP_MEASURE_VERSION) {
        bail!(
            "{} reports version {:?}, expected {SEV_SNP_MEASURE_VERSION}",
            exe.display(),
            version.trim()
        );
    }
    std::fs::write(venv.join(DONE_MARKER), pins)?;
    Ok(exe)
}

fn install(venv: &Path) -> anyhow::Result<()> {
    eprintln!(
        "installing {} into {}",
        requirements().join(" "),
        venv.display()
    );
    // A venv's scripts name their interpreter by absolute path, so it cannot be built elsewhere and
    // renamed into place: start over in place instead, and mark success last.
    if venv.exists() {
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("removing the unfinished {}", venv.display()))?;
    }
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .context("running `python3 -m venv` (install python3 and python3-venv: `apt-get install python3-venv`)")?;
    if !status.success() {
        bail!(
            "`python3 -m venv {}` failed ({status}); is python3-venv installed?",
            venv.display()
        );
    }
    let pip = venv.join("bin").join("pip");
    let status = Command::new(&pip)
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(requirements())
        .status()
        .with_context(|| format!("running {}", pip.display()))?;
    if !status.success() {
        bail!(
            "`pip install {}` failed ({status}); is PyPI reachable?",
            requirements().join(" ")
        );
    }
    Ok(())
}
