//! `cargo xtask ovmf`: the AmdSev OVMF from the pinned Debian edk2 source, built once and cached.

use crate::ui;
use snpkit_inputs::{Cache, ovmf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Build again even if the cache has this firmware (to check that it builds reproducibly).
    #[arg(long)]
    pub rebuild: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let built = ensure(args.rebuild, args.json)?;
    let check = crate::firmware::check(&std::fs::read(&built.path)?);
    if args.json {
        let v = serde_json::json!({
            "path": built.path,
            "sha256": built.sha256.to_string(),
            "size": built.size,
            "cache_key": built.key,
            "built": built.built,
            "edk2_version": ovmf::EDK2_VERSION,
            "measured_direct_boot": check.is_ok(),
            "tools": tools(),
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
            built.sha256,
            built.size,
            ovmf::EDK2_VERSION
        );
    }
    if let Err(why) = check {
        anyhow::bail!(
            "{} cannot be used for measured direct boot: {why}",
            built.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The cached (or freshly built) AmdSev OVMF for the pinned source.
pub fn ensure(rebuild: bool, quiet: bool) -> anyhow::Result<ovmf::BuiltOvmf> {
    let cache = Cache::from_env()?;
    let src = ovmf::Edk2Source::pinned();
    let step = ui::Step::new("AmdSev OVMF", quiet);
    let built = ovmf::build(&src, &cache, rebuild, &step)?;
    step.finish(&format!("AmdSev OVMF: {}", built.path.display()));
    Ok(built)
}

fn tools() -> serde_json::Value {
    let v = |p: &str, a: &str| snpkit_inputs::process_version(p, a);
    serde_json::json!({ "gcc": v("gcc", "--version"), "nasm": v("nasm", "-v"), "iasl": v("iasl", "-v") })
}
