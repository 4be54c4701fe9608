//! `cargo xtask demo`: the bundled `hello` appliance end to end — build, measure, boot, verify —
//! installing what it needs first and saying so.

use crate::{boot, build, cli, measure, ovmf, setup, verify};
use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe to run [default: hello].
    #[arg(default_value = "hello")]
    pub recipe: String,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

/// Parses a subcommand's arguments as a user would type them.
fn parse<T: clap::Args>(argv: &[&str]) -> anyhow::Result<T> {
    #[derive(clap::Parser)]
    struct Wrap<T: clap::Args> {
        #[command(flatten)]
        args: T,
    }
    Ok(Wrap::<T>::try_parse_from(std::iter::once("xtask").chain(argv.iter().copied()))?.args)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.recipe.as_str();
    let images = args.dirs.images(&cli::workspace_root());
    let images = images
        .to_str()
        .with_context(|| format!("the images folder {} is not UTF-8", images.display()))?;
    // Every step is the command a user would type, on the same images folder.
    let on_images = |extra: &[&'static str]| -> Vec<&str> {
        let mut argv = vec![r];
        argv.extend_from_slice(extra);
        argv.extend(["--images", images]);
        argv
    };
    println!("snpkit demo: {r} (build → measure → boot → verify)");
    println!("\n[1/6] system packages (installed with apt when run as root)");
    setup::ensure(false)?;
    println!(
        "\n[2/6] AmdSev OVMF from the pinned Debian edk2 source (about 4 minutes the first time, then cached)"
    );
    ovmf::ensure(false, false)?;
    println!("\n[3/6] build images/{r}/ (reproducible; SOURCE_DATE_EPOCH from the recipe)");
    let built = build::build(r, &args.dirs, false)?;
    for a in &built.manifest.artifacts {
        println!(
            "      {:<16} {:>10} bytes  sha256 {}",
            a.name, a.size, a.sha256
        );
    }
    println!(
        "\n[4/6] measure: the launch digest the AMD PSP will compute, per launch configuration"
    );
    measure::run(parse(&on_images(&[]))?)?;
    let snp = snpkit_qemu::detect_snp_host();
    match &snp {
        Ok(_) => println!(
            "\n[5/6] boot on this SEV-SNP host; the guest asks the real PSP for a report bound to a fresh nonce"
        ),
        Err(why) => println!(
            "\n[5/6] boot: this host has no SEV-SNP ({why}), so the launch is EMULATED: TCG, the same firmware \
             enforcing the kernel/initrd/cmdline hashes, and a test-key PSP. NOT HARDWARE-BACKED."
        ),
    }
    boot::run(parse(&on_images(&[]))?)?;
    println!("\n[6/6] verify the report: signature chain, policy, TCB, nonce binding, measurement");
    let verdict = if snp.is_ok() {
        verify::run(parse(&on_images(&[]))?)?
    } else {
        verify::run(parse(&on_images(&["--allow-emulated"]))?)?
    };
    Ok(verdict)
}
