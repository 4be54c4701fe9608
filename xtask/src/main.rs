//! `cargo xtask`: the one entry point for everything a developer or CI does with snpkit.
//!
//! Thin by design: argument parsing, progress and output formats live here; every decision about
//! recipes, images, digests, launches and verdicts lives in the `snpkit-*` crates.

mod bench;
mod bench_build;
mod bench_edit_loop;
mod bench_kbs;
mod bench_timing;
mod bench_verify;
mod bench_verity;
mod boot;
mod boot_id;
mod boot_service;
mod build;
mod cli;
mod demo;
mod explain;
mod export;
mod fuzz;
mod fuzz_kbs;
mod fuzz_seeds;
mod guest;
mod guest_key;
mod kbs;
mod keygen;
mod locate;
mod measure;
mod oracles;
mod ovmf;
mod setup;
mod sign;
mod source_print;
mod stop;
mod test;
mod ui;
mod verify;
mod verity;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    version,
    about = "snpkit: build, measure, boot and verify SEV-SNP appliances"
)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// The project to act on: a folder holding recipes/ (or snpkit.toml) [default:
    /// $SNPKIT_PROJECT, else the first such folder upwards from the current one].
    #[arg(long, value_name = "DIR", global = true)]
    project: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a recipe into images/<recipe>/ with its expected.json (reproducible, atomic).
    Build(build::Args),
    /// Resolve a recipe's inputs and (re)write its recipe.lock.
    Lock(build::LockArgs),
    /// Build the AmdSev OVMF from the pinned Debian edk2 source (cached).
    Ovmf(ovmf::Args),
    /// Install the system packages snpkit needs (apt, as root).
    Setup(setup::Args),
    /// Run the bundled example end to end.
    Demo(demo::Args),
    /// Run the whole test suite, installing and building what it needs first.
    Test(test::Args),
    /// Predict the SNP launch digest (sev-snp-measure's flags), or rewrite images/<recipe>/expected.json.
    Measure(measure::Args),
    /// Find the launch configurations that reproduce a measured digest.
    Explain(explain::Args),
    /// Run a benchmark side by side with the peer tool: measure, explain.
    Bench(bench::Args),
    /// Install the reference tools the tests compare with (sev-snp-measure) and print their paths.
    Oracles(oracles::Args),
    /// Boot a built image under QEMU (SNP, or the emulated launch) and bring back a nonce-bound report.
    Boot(boot::Args),
    /// Verify an attestation report (a boot run's, or files) and print the verdict.
    Verify(Box<verify::Args>),
    /// dm-verity hash trees, as veritysetup makes them: format, verify.
    Verity(verity::Args),
    /// Fuzz every parser of outside bytes (coverage-guided, stable toolchain), seeded from vectors.
    Fuzz(fuzz::Args),
    /// Make a P-384 key to sign ID blocks with (PKCS#8 PEM, mode 0600, never overwrites).
    Keygen(keygen::Args),
    /// Sign a built image: an ID block and ID auth per launch config, into images/<recipe>/id/.
    Sign(sign::Args),
    /// The key broker: release secrets only to attested guests (Trustee's KBS protocol).
    Kbs(kbs::Args),
    /// Reference values for other verifiers: `export trustee <recipe>`.
    Export(export::Args),
    /// Print which project commands act on (and why), and where snpkit's own sources are.
    Where(locate::Args),
}

fn main() -> std::process::ExitCode {
    cli::quiet_on_broken_pipe();
    let cli = Cli::parse();
    cli::init_logging(cli.verbose);
    cli::set_project_flag(cli.project);
    let result = match cli.command {
        Command::Build(args) => build::run(args),
        Command::Lock(args) => build::lock(args),
        Command::Ovmf(args) => ovmf::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Test(args) => test::run(args),
        Command::Measure(args) => measure::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Oracles(args) => oracles::run(args),
        Command::Boot(args) => boot::run(args),
        Command::Verify(args) => verify::run(*args),
        Command::Verity(args) => verity::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Kbs(args) => kbs::run(args),
        Command::Export(args) => export::run(args),
        Command::Where(args) => locate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The sev-snp-measure oracle for tests, installed into the cache on first use.
fn oracles_env() -> anyhow::Result<Option<(String, String)>> {
    let path = oracles::sev_snp_measure()?;
    Ok(Some((
        "SNPKIT_SEV_SNP_MEASURE".to_owned(),
        path.display().to_string(),
    )))
}
