//! `cargo xtask ovmf`: the AmdSev OVMF from the pinned Debian edk2 source, built once and cached.

use crate::{cli, ui};
use anyhow::Context;
use snpkit_inputs::{Cache, ovmf};
use snpkit_recipe::{LOCK_FILE, Lock};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Build again even if the cache has this firmware (to check that it builds reproducibly).
    #[arg(long)]
    pub rebuild: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Build the edk2 source this recipe's recipe.lock pins and fail unless the firmware's SHA-256
    /// is the one the lock pins (with --rebuild and a fresh SNPKIT_CACHE: proof that the firmware
    /// builds reproducibly here).
    #[arg(long, value_name = "RECIPE")]
    pub check_lock: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pinned = match &args.check_lock {
        Some(recipe) => Some(locked(recipe)?),
        None => None,
    };
    let src = match &pinned {
        Some((_, lock)) => ovmf::Edk2Source::from_lock(&lock.firmware).with_context(|| {
            format!(
                "the lock pins no edk2 source (firmware source {:?}): nothing to rebuild",
                lock.firmware.source
            )
        })?,
        None => ovmf::Edk2Source::pinned(),
    };
    let built = build(&src, args.rebuild, args.json)?;
    let check = snpkit_measure::check_direct_boot_firmware(&std::fs::read(&built.path)?);
    let lock_check = pinned.as_ref().map(|(path, lock)| {
        (
            path,
            lock.firmware.ovmf.sha256,
            lock.firmware.ovmf.sha256 == built.sha256,
        )
    });
    if args.json {
        let v = serde_json::json!({
            "path": built.path,
            "sha256": built.sha256.to_string(),
            "size": built.size,
            "cache_key": built.key,
            "built": built.built,
            "edk2_version": src.version,
            "measured_direct_boot": check.is_ok(),
            "tools": tools(),
            "lock": lock_check.map(|(path, sha, matches)| serde_json::json!({
                "path": path,
                "sha256": sha.to_string(),
                "matches": matches,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} {}",
            if built.built { "built" } else { "cached" },
            built.path.display()
        );
        println!(
            "  sha256 {}  ({} bytes, Debian edk2 {})",
            built.sha256, built.size, src.version
        );
        if let Some((path, _, true)) = &lock_check {
            println!("  matches the SHA-256 pinned in {}", path.display());
        }
    }
    if let Err(why) = check {
        return Err(anyhow::Error::new(why).context(format!(
            "{} cannot be used for measured direct boot",
            built.path.display()
        )));
    }
    if let Some((path, sha, false)) = &lock_check {
        anyhow::bail!(
            "the firmware built here ({}) is not the one {} pins ({sha}): the build is not reproducible \
             on this machine; compare the compiler versions (`cargo xtask ovmf --json`, \"tools\") with the \
             machine that wrote the lock",
            built.sha256,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The lock of a recipe of the project, with its path.
fn locked(recipe: &str) -> anyhow::Result<(std::path::PathBuf, Lock)> {
    let path = cli::project()?.recipe_dir(recipe)?.join(LOCK_FILE);
    let lock = Lock::read(&path, recipe)?;
    Ok((path, lock))
}

/// The cached (or freshly built) AmdSev OVMF for the pinned source.
pub fn ensure(rebuild: bool, quiet: bool) -> anyhow::Result<ovmf::BuiltOvmf> {
    build(&ovmf::Edk2Source::pinned(), rebuild, quiet)
}

fn build(src: &ovmf::Edk2Source, rebuild: bool, quiet: bool) -> anyhow::Result<ovmf::BuiltOvmf> {
    let cache = Cache::from_env()?;
    let step = ui::Step::new("AmdSev OVMF", quiet);
    let built = ovmf::build(src, &cache, rebuild, &step)?;
    step.finish(&format!("AmdSev OVMF: {}", built.path.display()));
    Ok(built)
}

fn tools() -> serde_json::Value {
    let v = |p: &str, a: &str| snpkit_inputs::process_version(p, a);
    serde_json::json!({ "gcc": v("gcc", "--version"), "nasm": v("nasm", "-v"), "iasl": v("iasl", "-v") })
}
