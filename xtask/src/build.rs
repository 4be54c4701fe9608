use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}

#[derive(clap::Args)]
pub struct LockArgs {}

pub fn lock(_args: LockArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
