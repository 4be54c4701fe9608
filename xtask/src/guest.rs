//! Building the guest's `/init` as a static, stripped, reproducible binary.
//!
//! It is compiled for the gnu target with `crt-static` (the only toolchain here has no musl) in
//! its own target folder, with every path that could leak into the binary remapped to a fixed
//! name: the checkout, the cargo home and the toolchain's sysroot. So two checkouts in different
//! folders, or two users, produce the same bytes. The target folder lives in the cache and is
//! remapped too, so every checkout shares one warm build of the guest's dependencies.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `snpkit-init` and returns its bytes.
pub fn build(root: &Path, cache: &Path, quiet: bool) -> anyhow::Result<Vec<u8>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let sysroot = rustc()
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    let target_dir = cache.join("guest-target");
    let flags = [
        "-C".to_owned(),
        "target-feature=+crt-static".to_owned(),
        format!("--remap-path-prefix={}=/snpkit", root.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
        format!("--remap-path-prefix={sysroot}=/rustc"),
        format!("--remap-path-prefix={}=/target", target_dir.display()),
    ];
    let mut cmd = toolchain(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--package",
            "snpkit-guest",
            "--bin",
            "snpkit-init",
            "--profile",
            "guest",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The unit separator keeps paths with spaces intact.
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .env_remove("RUSTFLAGS");
    if quiet {
        cmd.arg("--quiet");
    }
    let status = cmd
        .status()
        .context("running cargo to build the guest /init")?;
    if !status.success() {
        bail!("building the guest /init (crates/guest) failed; see cargo's output above");
    }
    let bin = target_dir.join(TARGET).join("guest").join("snpkit-init");
    std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))
}

/// A toolchain command. The reproducibility test runs the build under libfaketime to move the
/// wall clock; cargo, rustc and the rustup proxies panic or hang under it (their monotonic clock
/// calls fail), and no clock they read reaches the binary, so they run on the real clock.
fn toolchain(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("LD_PRELOAD").env_remove("FAKETIME");
    cmd
}

fn rustc() -> Command {
    toolchain(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
}

/// `rustc -V` of the compiler that builds `/init`, for the manifest.
pub fn rustc_version() -> String {
    rustc()
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
