//! The guest's `/init` (PID 1): mounts, modules, attestation, hand-off to the appliance.
//!
//! Owns everything that runs inside the guest before the appliance: the pseudo-filesystems, the
//! kernel modules listed in `/etc/snpkit/init.json`, the probe for a report provider (configfs-tsm,
//! then `/dev/sev-guest`, then the emulated PSP's port — see `provider.rs`), the conversation with
//! the host on `org.snpkit.attest`, the dm-verity root (`root.rs`, through device-mapper ioctls in
//! `dm.rs`, with the parameters from the measured kernel command line), and running the entry point
//! as PID 1's child until it ends. Unsafe code lives in `ioctl.rs` and `dm.rs` only. Must not know about QEMU, verification, images or the network: it links only `snpkit-wire`.
//!
//! Every way out goes through [`power::off`]: a fatal error prints one `snpkit-init: …` line on the
//! console and powers off, because PID 1 exiting would panic the kernel and hide that line.
//!
//! Built static: `RUSTFLAGS="-C target-feature=+crt-static" cargo build -p snpkit-guest --profile
//! guest --target x86_64-unknown-linux-gnu`.
#![deny(unsafe_code)]

mod channel;
mod config;
mod console;
#[allow(unsafe_code)]
mod dm;
mod entry;
#[allow(unsafe_code)]
mod ioctl;
mod modules;
mod mounts;
mod ports;
mod power;
mod provider;
mod psp;
mod report;
mod root;
mod timed;
mod tsm;

use anyhow::{Context, Result, bail};
use console::say;
use snpkit_wire::frame::ATTEST_PORT;
use snpkit_wire::init::INIT_CONFIG_PATH;
use std::path::Path;
use std::time::Duration;

/// How long the host may take to announce the attest port after boot.
const PORT_WAIT: Duration = Duration::from_secs(30);

fn main() {
    if std::process::id() != 1 {
        // Outside a guest this binary would mount over /dev and power the machine off.
        eprintln!(
            "snpkit-init: refusing to run as PID {}: this is a guest's /init",
            std::process::id()
        );
        std::process::exit(2);
    }
    std::panic::set_hook(Box::new(|info| {
        say!("internal error: {info}");
        power::off();
    }));
    if let Err(err) = run() {
        say!("fatal: {err:#}");
    }
    power::off();
}

fn run() -> Result<()> {
    say!("starting (snpkit-init {})", env!("CARGO_PKG_VERSION"));
    mounts::early()?;
    let config = config::load(Path::new(INIT_CONFIG_PATH))?;
    say!("appliance {}", config.appliance);
    modules::load_all(&config.modules)?;
    mounts::configfs()?;

    let root = Path::new("/");
    let Some(attest_port) =
        ports::wait_for(root, ATTEST_PORT, PORT_WAIT).context("looking for virtio ports")?
    else {
        bail!(
            "the host offers no '{ATTEST_PORT}' virtio port within {PORT_WAIT:?}; nothing to attest to"
        );
    };
    let _key = channel::attest(&attest_port, root)?;
    say!("evidence sent to the host");

    root::prepare(&config.root)?;
    let program = config
        .entry
        .argv
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    say!("starting the entry point {program}");
    let ended = entry::run(&config.entry)?;
    say!("entry point {program} {ended}");
    entry::stop_the_rest();
    say!("powering off");
    Ok(())
}
