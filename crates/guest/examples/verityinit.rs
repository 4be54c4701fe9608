//! A test `/init` for the dm-verity root (never part of an image): `snpkit-init`'s own modules for
//! mounts, modules, device-mapper and the verity root, in the same order, without the attestation
//! step in between, so `crates/qemu/tests/verity_root.rs` can check `dm.rs` and `root.rs` in a real
//! kernel with two virtio disks and no host channel.
#![deny(unsafe_code)]

// Only its bounded read of /proc/cmdline is used here (by root.rs).
#[allow(dead_code)]
#[path = "../src/cmdline.rs"]
mod cmdline;
#[path = "../src/config.rs"]
mod config;
#[path = "../src/console.rs"]
mod console;
#[allow(unsafe_code)]
#[path = "../src/dm.rs"]
mod dm;
#[path = "../src/entry.rs"]
mod entry;
#[path = "../src/modules.rs"]
mod modules;
#[path = "../src/mounts.rs"]
mod mounts;
#[path = "../src/power.rs"]
mod power;
#[path = "../src/root.rs"]
mod root;
// Only its type is used here (entry.rs runs without a host port).
#[allow(dead_code)]
#[path = "../src/timed.rs"]
mod timed;

use console::say;
use std::path::Path;

fn main() {
    if let Err(err) = run() {
        say!("fatal: {err:#}");
    }
    power::off();
}

fn run() -> anyhow::Result<()> {
    mounts::early()?;
    let config = config::load(Path::new(snpkit_wire::init::INIT_CONFIG_PATH))?;
    modules::load_all(&config.modules)?;
    mounts::configfs()?;
    let mounted = root::prepare(&config.root)?;
    root::switch(mounted)?;
    say!("verityinit: root switched");
    let ended = entry::run(&config.entry, None)?;
    say!("entry point {ended}");
    entry::stop_the_rest();
    Ok(())
}
