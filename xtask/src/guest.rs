//! Building the guest's `/init` as a static, stripped, reproducible binary.
//!
//! It is compiled for the gnu target with `crt-static` (the only toolchain here has no musl) in
//! its own target folder, with every path that could leak into the binary remapped to a fixed
//! name: the cargo home and the toolchain's sysroot. So two checkouts in different folders, or
//! two users, produce the same bytes. The target folder lives in the cache and is remapped too,
//! so every checkout shares one warm build of the guest's dependencies. The checkout itself needs
//! no remap: cargo names a workspace's files relative to its root (the same bytes came out with
//! and without one, and tests/e2e/reproducible.rs builds in two folders), and remapping it would
//! put each checkout's path into the flags, which cargo fingerprints: every build from another
//! checkout would recompile all of the shared folder's dependencies (a minute or more here).
//!
//! The binary itself is kept in the cache's blob store, named by a hash of its inputs
//! ([`crate::guest_key`]): a build whose guest sources, lock, compiler and flags are those of an
//! earlier build takes that `/init` without running cargo (`guest-init/<key>` holds the blob's
//! SHA-256, and the blob is checked against it on every read). `SNPKIT_FRESH_INIT=1` compiles
//! anyway and fails if the result differs from the kept one: a reproducibility check.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The flags of the build, the remapped folders left out (they differ per machine and never
/// reach the binary: each is replaced by the fixed name here).
const FIXED_FLAGS: &[&str] = &[
    "-C",
    "target-feature=+crt-static",
    "--remap-path-prefix=<cargo home>=/cargo",
    "--remap-path-prefix=<sysroot>=/rustc",
    "--remap-path-prefix=<target>=/target",
    "--profile=guest",
];

/// The guest `/init` for this source tree.
pub struct Init {
    pub bytes: Vec<u8>,
    /// The hash of its inputs.
    pub key: String,
    /// Taken from the cache, without running cargo.
    pub cached: bool,
}

/// The `/init` of the sources in `root`: the cache's, when it holds one for the same inputs,
/// else compiled and kept.
pub fn init(root: &Path, cache: &snpkit_inputs::Cache, quiet: bool) -> anyhow::Result<Init> {
    let found = format!("{:016x}", crate::source_print::fingerprint(root));
    let own = env!("SNPKIT_GUEST_SOURCES");
    if found != own {
        bail!(
            "the guest sources at {} are not the ones this snpkit binary was built with (fingerprint \
             {found}, built with {own}): an /init from them might not speak this binary's protocol. \
             Rebuild snpkit from that checkout (`cargo xtask` does so by itself; run `cargo install \
             --path xtask` again for an installed binary), or set SNPKIT_SOURCE to the checkout it \
             was built from",
            root.display()
        );
    }
    let vv = rustc().arg("-vV").output().context("running rustc -vV")?;
    if !vv.status.success() {
        bail!(
            "rustc -vV failed: {}",
            String::from_utf8_lossy(&vv.stderr).trim()
        );
    }
    let key = crate::guest_key::key(
        root,
        &String::from_utf8_lossy(&vv.stdout),
        TARGET,
        FIXED_FLAGS,
    )?;
    tracing::info!(key = %key.hex, crates = ?key.crates, "guest /init inputs");
    let index = cache.dir("guest-init")?.join(&key.hex);
    let kept = kept(cache, &index)?;
    let fresh = std::env::var_os("SNPKIT_FRESH_INIT").is_some_and(|v| !v.is_empty() && v != "0");
    if let (Some(bytes), false) = (&kept, fresh) {
        return Ok(Init {
            bytes: bytes.clone(),
            key: key.hex,
            cached: true,
        });
    }
    let bytes = build(root, cache.root(), quiet)?;
    if let Some(old) = kept
        && old != bytes
    {
        bail!(
            "the guest /init built now ({}) differs from the one kept for the same inputs ({}, key {}): \
                 its build is not reproducible on this machine",
            snpkit_bundle::Sha256Sum::of(&bytes),
            snpkit_bundle::Sha256Sum::of(&old),
            key.hex
        );
    }
    let blob = cache.put_unchecked(&bytes)?;
    let sum = snpkit_bundle::Sha256Sum::of(&bytes);
    snpkit_fsguard::write_atomic(
        &index,
        "the guest /init index",
        format!("{sum}\n").as_bytes(),
        0o644,
    )?;
    tracing::info!(blob = %blob.display(), "kept the guest /init");
    Ok(Init {
        bytes,
        key: key.hex,
        cached: false,
    })
}

/// The blob `index` names, if the index and the blob are both there and intact. A damaged index
/// is no error: the build compiles again and rewrites it.
fn kept(cache: &snpkit_inputs::Cache, index: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let Ok(text) = snpkit_fsguard::read_string(index, "the guest /init index", 256) else {
        return Ok(None);
    };
    let Ok(sum) = text.trim().parse::<snpkit_bundle::Sha256Sum>() else {
        return Ok(None);
    };
    Ok(cache.get(&sum)?)
}

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
