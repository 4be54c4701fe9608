//! The pseudo-filesystems `/init` and the appliance need. No udev runs in the guest: devtmpfs
//! creates the device nodes (`/dev/vportNpM`, `/dev/sev-guest`) by itself.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use std::path::Path;

struct Mount {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

const EARLY: &[Mount] = &[
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: None,
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: None,
    },
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
    },
    Mount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755"),
    },
    Mount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
    },
];

fn mount_one(m: &Mount) -> Result<()> {
    std::fs::create_dir_all(m.target)
        .with_context(|| format!("creating mount point {}", m.target))?;
    match mount(Some(m.source), m.target, Some(m.fstype), m.flags, m.data) {
        // Already mounted (the kernel may automount devtmpfs).
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(errno) => Err(errno).with_context(|| format!("mounting {} on {}", m.fstype, m.target)),
    }
}

/// proc, sys, devtmpfs, and tmpfs on /run and /tmp.
pub fn early() -> Result<()> {
    EARLY.iter().try_for_each(mount_one)
}

/// configfs, once the modules are in (configfs-tsm lives there). Returns whether it is mounted: a
/// kernel without configfs simply has no configfs-tsm provider.
pub fn configfs() -> Result<bool> {
    let target = "/sys/kernel/config";
    if !Path::new(target).is_dir() {
        return Ok(false);
    }
    match mount(
        Some("configfs"),
        target,
        Some("configfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    ) {
        Ok(()) | Err(Errno::EBUSY) => Ok(true),
        Err(errno) => Err(errno).context("mounting configfs on /sys/kernel/config"),
    }
}
