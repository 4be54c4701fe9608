//! `cargo xtask demo`: the bundled `hello` appliance, end to end, installing what it needs first.

use crate::{build, cli, ovmf, setup};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe to run [default: hello].
    #[arg(default_value = "hello")]
    pub recipe: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    println!(
        "snpkit demo: {} (build → measure → boot → verify)",
        args.recipe
    );
    println!("[1/5] system packages (installed with apt when run as root)");
    setup::ensure(false)?;
    println!(
        "[2/5] AmdSev OVMF from the pinned Debian edk2 source (about 4 minutes the first time, then cached)"
    );
    ovmf::ensure(false, false)?;
    println!("[3/5] build images/{}/", args.recipe);
    let built = build::build(&args.recipe, &cli::Dirs::default(), false)?;
    for a in &built.manifest.artifacts {
        println!(
            "      {:<16} {:>10} bytes  sha256 {}",
            a.name, a.size, a.sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}
