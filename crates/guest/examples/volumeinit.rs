//! A test `/init` for sealed volumes (never part of an image): `snpkit-init`'s own modules for
//! mounts, modules, the derived-key provider and `volumes.rs`, in the same order, without the
//! attestation conversation, so `crates/qemu/tests/sealed_volume.rs` can check them in a real
//! kernel with a read-write virtio disk and the emulated PSP's port.
//!
//! For the throughput comparison it also formats a plain disk (serial `snpkit-bench-plain`, if
//! attached) with the same formatter, unencrypted, and mounts it at `/plain`.
#![deny(unsafe_code)]
#![allow(
    dead_code,
    reason = "shares snpkit-init's modules, whose attestation parts are unused here"
)]

#[path = "../src/config.rs"]
mod config;
#[path = "../src/console.rs"]
mod console;
#[path = "../src/derived_key.rs"]
mod derived_key;
#[allow(unsafe_code)]
#[path = "../src/dm.rs"]
mod dm;
#[path = "../src/entry.rs"]
mod entry;
#[allow(unsafe_code)]
#[path = "../src/ioctl.rs"]
mod ioctl;
#[path = "../src/mkfs.rs"]
mod mkfs;
#[path = "../src/modules.rs"]
mod modules;
#[path = "../src/mounts.rs"]
mod mounts;
#[path = "../src/ports.rs"]
mod ports;
#[path = "../src/power.rs"]
mod power;
#[path = "../src/provider.rs"]
mod provider;
#[path = "../src/psp.rs"]
mod psp;
#[path = "../src/report.rs"]
mod report;
#[path = "../src/timed.rs"]
mod timed;
#[path = "../src/tsm.rs"]
mod tsm;
#[path = "../src/volumes.rs"]
mod volumes;

use anyhow::Context;
use console::say;
use std::path::Path;

const PLAIN_SERIAL: &str = "snpkit-bench-plain";

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
    let opened = volumes::open(&config.volumes, Path::new("/"), &mut |resource: &str| {
        anyhow::bail!("this test /init has no key broker client (volume key {resource})")
    })?;
    let plain = plain_disk()?;
    let ended = entry::run(&config.entry, None)?;
    say!("entry point {ended}");
    entry::stop_the_rest();
    volumes::close(opened);
    if plain {
        nix::mount::umount2("/plain", nix::mount::MntFlags::empty())
            .context("unmounting /plain")?;
    }
    Ok(())
}

/// The unencrypted comparison disk, formatted by the same `mkfs.rs` and mounted at `/plain`.
fn plain_disk() -> anyhow::Result<bool> {
    for entry in std::fs::read_dir("/sys/block")?.flatten() {
        let serial = std::fs::read_to_string(entry.path().join("serial")).unwrap_or_default();
        if serial.trim_end_matches(['\n', '\0']) != PLAIN_SERIAL {
            continue;
        }
        let sectors: u64 = std::fs::read_to_string(entry.path().join("size"))?
            .trim()
            .parse()?;
        let node = Path::new("/dev").join(entry.file_name());
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&node)?;
        mkfs::format(
            &dev,
            &mkfs::Spec {
                bytes: sectors * 512,
                uuid: [1; 16],
                hash_seed: [2; 16],
                label: "plain",
            },
        )?;
        std::fs::create_dir_all("/plain")?;
        nix::mount::mount(
            Some(&node),
            "/plain",
            Some("ext4"),
            nix::mount::MsFlags::MS_NODEV,
            None::<&str>,
        )
        .context("mounting the plain disk")?;
        say!(
            "volumeinit: {} (plain, unencrypted) mounted at /plain",
            node.display()
        );
        return Ok(true);
    }
    Ok(false)
}
