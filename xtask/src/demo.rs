//! `cargo xtask demo`: the bundled `hello` appliance end to end — build, measure, boot, verify —
//! installing what it needs first and saying so.

use crate::{boot, build, cli, measure, ovmf, setup, verify};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe to run [default: hello].
    #[arg(default_value = "hello")]
    pub recipe: String,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r = args.recipe.as_str();
    // Every step runs as its command with default flags would, on the same images folder.
    let images = args.dirs.images()?;
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
    measure::measure_recipe(&images, r)?;
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
    boot::run(boot::Args::new(r, args.dirs.clone()))?;
    println!("\n[6/6] verify the report: signature chain, policy, TCB, nonce binding, measurement");
    verify::run(verify::Args::newest_run(r, images, snp.is_err()))
}
