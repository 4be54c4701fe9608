//! `cargo xtask`: the one entry point for everything a developer or CI does with snpkit.
//!
//! Thin by design: argument parsing, progress and output formats live here; every decision about
//! recipes, images, digests, launches and verdicts lives in the `snpkit-*` crates.

mod bench_verify;
mod build;
mod cli;
mod demo;
mod ovmf;
mod setup;
mod test;
mod verify;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a recipe into images/<recipe>/ (reproducible, atomic).
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
    /// Verify an attestation report (a boot run's, or files) and print the verdict.
    Verify(Box<verify::Args>),
    /// Benchmark report verification against snpguest (folded into `bench verify` at merge).
    BenchVerify,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.verbose);
    let result = match cli.command {
        Command::Build(args) => build::run(args),
        Command::Lock(args) => build::lock(args),
        Command::Ovmf(args) => ovmf::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Test(args) => test::run(args),
        Command::Verify(args) => verify::run(*args),
        Command::BenchVerify => bench_verify::run().map(|()| std::process::ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
