//! Reference tools we test against, installed into snpkit's cache folder on demand.
//!
//! sev-snp-measure comes from PyPI into its own venv, keyed by version:
//! `<cache>/oracles/sev-snp-measure-<version>/` (`<cache>` as `snpkit_cache::root` finds it:
//! `$SNPKIT_CACHE`, else `$XDG_CACHE_HOME/snpkit`, else `~/.cache/snpkit`). Tests find it through
//! `SNPKIT_SEV_SNP_MEASURE` (which `cargo xtask test` sets by calling [`sev_snp_measure`]), and
//! the venv's other tools beside it: `snp-create-id-block` and `python3` with the pinned
//! `cryptography` (the ID block tests' second oracle).
//!
//! The JOSE oracles of the KBS tests (Python's `jwcrypto` and `rfc8785`, pinned) share one venv,
//! `oracles/jose-<versions>/`; tests find its interpreter through `SNPKIT_JOSE_PYTHON`.

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
    println!("{}", jose_python()?.display());
    Ok(ExitCode::SUCCESS)
}

/// The pinned Python packages the KBS tests compare our JWE and canonical JSON with.
pub const JOSE_PACKAGES: [&str; 2] = ["jwcrypto==1.6.1", "rfc8785==0.1.4"];

/// Ensures the JOSE oracles are installed (idempotent) and returns their venv's `python`.
pub fn jose_python() -> anyhow::Result<PathBuf> {
    let tag = JOSE_PACKAGES.join("-").replace("==", "-");
    let venv = snpkit_cache::root()
        .context("no cache folder: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")?
        .join("oracles")
        .join(format!("jose-{tag}"));
    let python = venv.join("bin").join("python");
    if venv.join(DONE_MARKER).is_file() && python.is_file() {
        return Ok(python);
    }
    make_venv(&venv, &JOSE_PACKAGES)?;
    let status = Command::new(&python)
        .args(["-c", "import jwcrypto, rfc8785"])
        .status()
        .with_context(|| format!("running {}", python.display()))?;
    if !status.success() {
        bail!(
            "{} cannot import jwcrypto and rfc8785 after installing them",
            python.display()
        );
    }
    std::fs::write(venv.join(DONE_MARKER), tag)?;
    Ok(python)
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
    let packages = requirements();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    make_venv(venv, &packages)
}

/// A fresh venv at `venv` with `packages` (pinned `name==version`) installed from PyPI.
fn make_venv(venv: &Path, packages: &[&str]) -> anyhow::Result<()> {
    eprintln!("installing {} into {}", packages.join(" "), venv.display());
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
        .args(packages)
        .status()
        .with_context(|| format!("running {}", pip.display()))?;
    if !status.success() {
        bail!(
            "`pip install {}` failed ({status}); is PyPI reachable?",
            packages.join(" ")
        );
    }
    Ok(())
}
