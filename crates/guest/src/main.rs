//! The guest's `/init` (PID 1): mounts, modules, the appliance's root, attestation, hand-off to
//! the appliance.
//!
//! Owns everything that runs inside the guest before the appliance: the pseudo-filesystems, the
//! kernel modules listed in `/etc/snpkit/init.json`, the check of the kernel command line
//! (`cmdline.rs`), the dm-verity root (`root.rs`, through device-mapper ioctls in `dm.rs`, with the
//! parameters from the measured kernel command line), the probe for a report provider
//! (configfs-tsm, then `/dev/sev-guest`, then the emulated PSP's port — see `provider.rs`), the
//! conversation with the host on `org.snpkit.attest`, the recipe's secrets from a key broker
//! through the host's relay (`secrets.rs`: the KBS handshake, a tmpfs on `/run/secrets`), sealed volumes (`volumes.rs`: keys from the
//! PSP through `derived_key.rs`, dm-integrity + dm-crypt, the filesystem from `mkfs.rs`), and
//! the network interfaces (`net.rs`: `lo` always, the NIC with its static address when the image
//! has a network), and running the entry point as PID 1's child until it ends or the host asks it
//! to stop, its output forwarded to the host (`entry.rs`). Unsafe code lives in `ioctl.rs`,
//! `dm.rs` and the interface ioctls of `net.rs` only. Must not know about QEMU,
//! verification, images or the network: it links only `snpkit-wire`.
//!
//! The order is the point: a verity root is checked and mounted read-only *before* the guest
//! attests (only Hello, a sign of life, goes first), so evidence exists only for a guest whose
//! root matched; the entry point runs from it after; and only the `Finished` message at the end
//! tells the host the entry point ran to its end. Once the attest port is open, every failure is also sent to the host as an `Error`
//! message, because a hardened image has no console to read it on.
//!
//! Every way out goes through [`power::off`]: a fatal error prints one `snpkit-init: …` line on the
//! console and powers off, because PID 1 exiting would panic the kernel and hide that line.
//!
//! Built static: `RUSTFLAGS="-C target-feature=+crt-static" cargo build -p snpkit-guest --profile
//! guest --target x86_64-unknown-linux-gnu`.
#![deny(unsafe_code)]

mod channel;
mod cmdline;
mod config;
mod console;
mod derived_key;
#[allow(unsafe_code)]
mod dm;
mod entry;
#[allow(unsafe_code)]
mod ioctl;
mod mkfs;
mod modules;
mod mounts;
mod net;
mod ports;
mod power;
mod provider;
mod psp;
mod report;
mod root;
mod secrets;
mod timed;
mod tsm;
mod volumes;

use anyhow::{Context, Result, bail};
use console::say;
use snpkit_wire::frame::ATTEST_PORT;
use snpkit_wire::init::{INIT_CONFIG_PATH, InitConfig};
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
    net::up(config.network.as_ref()).context("bringing up the network")?;

    let Some(attest_port) = ports::wait_for(Path::new("/"), ATTEST_PORT, PORT_WAIT)
        .context("looking for virtio ports")?
    else {
        bail!(
            "the host offers no '{ATTEST_PORT}' virtio port within {PORT_WAIT:?}; nothing to attest to"
        );
    };
    let mut port = channel::open(&attest_port)?;
    let result = session(&mut port, &config);
    if let Err(err) = &result {
        // Said on the console first: the host may be gone.
        say!("fatal: {err:#}");
        channel::report_error(&mut port, err);
        power::off();
    }
    result
}

/// Everything after the attest port is open: its failures are sent to the host too.
fn session(port: &mut timed::TimedPort, config: &InitConfig) -> Result<()> {
    cmdline::refuse_bypass()?;
    let greeted = channel::greet(port, Path::new("/"))?;
    let mounted = root::prepare(&config.root)?;
    let provider = greeted.provider();
    let _key = channel::attest(port, greeted)?;
    say!("evidence sent to the host");
    let needs_broker = !config.secrets.is_empty()
        || config
            .volumes
            .iter()
            .any(|v| matches!(v.key, snpkit_wire::init::VolumeKey::Kbs(_)));
    let mut reporter = match needs_broker {
        true => Some(secrets::Again::probe(provider)?),
        false => None,
    };
    if let Some(reporter) = reporter.as_mut() {
        let mut transport = secrets::PortTransport::new(port);
        secrets::provide(&config.secrets, mounted.dir(), &mut transport, reporter)?;
    }
    let volumes = {
        let mut broker_key = |resource: &str| -> Result<zeroize::Zeroizing<Vec<u8>>> {
            let reporter = reporter
                .as_mut()
                .context("no report provider for the broker")?;
            let resource = snpkit_kbs::ResourcePath::parse(resource)?;
            let mut transport = secrets::PortTransport::new(port);
            let secret = secrets::fetch(&mut transport, reporter, &resource)?;
            Ok(zeroize::Zeroizing::new(secret.expose().to_vec()))
        };
        volumes::open(&config.volumes, mounted.dir(), &mut broker_key)?
    };
    root::switch(mounted)?;
    let program = config
        .entry
        .argv
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    say!("starting the entry point {program}");
    let ended = entry::run(&config.entry, Some(port))?;
    say!("entry point {program} {ended}");
    entry::stop_the_rest();
    volumes::close(volumes);
    channel::finished(port, ended)?;
    say!("powering off");
    Ok(())
}
