//! Where the appliance's files come from, per `InitConfig.root`.
//!
//! A verity root: the parameters come from `snpkit.verity=` on the kernel command line (measured,
//! through the SEV hashes table), never from the disks or the host. [`prepare`] waits for the two
//! block devices, checks they are large enough, optionally reads the whole verified device once
//! (`check=full`: any corruption stops the boot here, with the block named), creates the
//! enforcing device (panic or restart on corruption) and mounts it read-only; `/init` attests
//! only then, so a guest whose root does not match never produces evidence. [`switch`] then
//! moves the pseudo-filesystems into it and switches root the way busybox's `switch_root` does
//! (chdir, mount --move to /, chroot). The initramfs' contents are left in memory; they are small.

use crate::console::say;
use crate::dm;
use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{major, minor, stat};
use snpkit_wire::init::Root;
use snpkit_wire::verity::{BootCheck, TableMode, VerityParams, dm_target};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The appliance's root, checked and mounted, not yet `/`.
#[derive(Debug)]
pub enum Mounted {
    /// The initramfs is already our root.
    Initramfs,
    /// The verified device, mounted read-only on [`NEW_ROOT`].
    Verity,
}

/// How long the virtio disks may take to appear once their driver is loaded.
const DISK_WAIT: Duration = Duration::from_secs(10);
/// Where the verified root is mounted before it becomes `/`.
const NEW_ROOT: &str = "/sysroot";
/// The pseudo-filesystems `mounts::early` made, moved into the new root.
const MOVED: [&str; 5] = ["/dev", "/proc", "/sys", "/run", "/tmp"];

pub fn prepare(root: &Root) -> Result<Mounted> {
    match root {
        Root::Initramfs => Ok(Mounted::Initramfs),
        Root::Verity {
            fstype,
            data_device,
            hash_device,
        } => {
            let cmdline =
                std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
            let params = VerityParams::parse(&cmdline)
                .context("dm-verity: the kernel command line has no valid parameters")?;
            let data = wait_for_disk(Path::new(data_device))?;
            let hash = wait_for_disk(Path::new(hash_device))?;
            check_sizes(&params, &data, &hash)?;
            let control =
                dm::open_control(Path::new("/dev"), Path::new("/sys")).context("dm-verity")?;
            if params.fields().check == BootCheck::Full {
                read_all_once(&control, &params, &data, &hash)?;
            }
            let target = dm_target(&params, &data.numbers, &hash.numbers, TableMode::Enforcing);
            let device = dm::create(&control, Path::new("/dev"), "snpkit-root", &target)
                .context("dm-verity: creating the verified root device")?;
            say!(
                "dm-verity: {} is {} over {} (root hash {}, {} on corruption)",
                device.node.display(),
                data_device,
                hash_device,
                hex(&params.fields().root_hash),
                match params.fields().corruption {
                    snpkit_wire::verity::Corruption::Panic => "panic",
                    snpkit_wire::verity::Corruption::Restart => "restart",
                }
            );
            mount_read_only(&device.node, fstype)?;
            Ok(Mounted::Verity)
        }
    }
}

/// Makes the mounted root `/` for the entry point.
pub fn switch(mounted: Mounted) -> Result<()> {
    match mounted {
        Mounted::Initramfs => Ok(()),
        Mounted::Verity => move_pseudo_and_switch(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A block device found under `/dev`, with its `major:minor` for the dm table.
struct Disk {
    path: PathBuf,
    numbers: String,
    sysfs: PathBuf,
}

fn wait_for_disk(path: &Path) -> Result<Disk> {
    let start = Instant::now();
    loop {
        if let Ok(st) = stat(path)
            && st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFBLK
        {
            let (maj, min) = (major(st.st_rdev), minor(st.st_rdev));
            return Ok(Disk {
                path: path.into(),
                numbers: format!("{maj}:{min}"),
                sysfs: PathBuf::from(format!("/sys/dev/block/{maj}:{min}")),
            });
        }
        if start.elapsed() >= DISK_WAIT {
            bail!(
                "dm-verity: the block device {} did not appear within {DISK_WAIT:?}; is the disk attached and virtio_blk in the init config's modules?",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn disk_len(disk: &Disk) -> Result<u64> {
    let text = std::fs::read_to_string(disk.sysfs.join("size"))
        .with_context(|| format!("reading the size of {}", disk.path.display()))?;
    let sectors: u64 = text
        .trim()
        .parse()
        .with_context(|| format!("{}: size {text:?}", disk.sysfs.display()))?;
    Ok(sectors.saturating_mul(512))
}

fn check_sizes(params: &VerityParams, data: &Disk, hash: &Disk) -> Result<()> {
    let (have, need) = (disk_len(data)?, params.data_len());
    if have < need {
        bail!(
            "dm-verity: the data device {} holds {have} bytes; the command line's {} blocks need {need}",
            data.path.display(),
            params.fields().data_blocks
        );
    }
    let (have, need) = (disk_len(hash)?, params.hash_device_min_len());
    if have < need {
        bail!(
            "dm-verity: the hash device {} holds {have} bytes; the tree needs {need}",
            hash.path.display()
        );
    }
    Ok(())
}

/// Reads every block once through a verity device that returns EIO on corruption (nothing runs
/// from it), names the first bad block, and removes the device.
fn read_all_once(
    control: &std::fs::File,
    params: &VerityParams,
    data: &Disk,
    hash: &Disk,
) -> Result<()> {
    let target = dm_target(params, &data.numbers, &hash.numbers, TableMode::Probe);
    let name = "snpkit-verity-check";
    let device = dm::create(control, Path::new("/dev"), name, &target)
        .context("dm-verity: creating the device for the full check")?;
    let started = Instant::now();
    let result = read_through(&device.node, params);
    let removed = dm::remove(control, name);
    result?;
    removed.context("dm-verity: removing the check device")?;
    say!(
        "dm-verity: all {} blocks of {} verified in {:.1} s",
        params.fields().data_blocks,
        data.path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn read_through(node: &Path, params: &VerityParams) -> Result<()> {
    let mut file = std::fs::File::open(node)
        .with_context(|| format!("dm-verity: opening {}", node.display()))?;
    let block = u64::from(params.fields().data_block_size);
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < params.data_len() {
        match file.read(&mut buf) {
            Ok(0) => bail!(
                "dm-verity: {} ended at byte {offset}, before the {} bytes the command line covers",
                node.display(),
                params.data_len()
            ),
            Ok(n) => offset += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // A large read fails as a whole; find the block by reading one at a time.
                let bad = first_bad_block(&mut file, offset, block).unwrap_or(offset / block);
                bail!(
                    "dm-verity: the root filesystem does not match the measured root hash: reading data block {bad} (byte {}) failed ({e}); that block or a hash block above it is corrupted (the kernel's device-mapper message names which); refusing to run it",
                    bad * block
                );
            }
        }
    }
    Ok(())
}

fn first_bad_block(file: &mut std::fs::File, from: u64, block: u64) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut buf = vec![0u8; block as usize];
    let mut at = from;
    loop {
        file.seek(SeekFrom::Start(at)).ok()?;
        match file.read_exact(&mut buf) {
            Ok(()) => at += block,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(_) => return Some(at / block),
        }
    }
}

fn mount_read_only(device: &Path, fstype: &str) -> Result<()> {
    let new_root = Path::new(NEW_ROOT);
    std::fs::create_dir_all(new_root).with_context(|| format!("creating {NEW_ROOT}"))?;
    mount(
        Some(device),
        new_root,
        Some(fstype),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "dm-verity: mounting {} ({fstype}, read-only) on {NEW_ROOT}",
            device.display()
        )
    })?;
    Ok(())
}

fn move_pseudo_and_switch() -> Result<()> {
    let new_root = Path::new(NEW_ROOT);
    for pseudo in MOVED {
        let target = new_root.join(pseudo.trim_start_matches('/'));
        if target.is_dir() {
            mount(
                Some(pseudo),
                &target,
                None::<&str>,
                MsFlags::MS_MOVE,
                None::<&str>,
            )
            .with_context(|| format!("moving {pseudo} into the new root"))?;
        } else {
            say!(
                "the verified root has no {pseudo} directory; {pseudo} is not available to the appliance"
            );
            umount2(pseudo, MntFlags::MNT_DETACH)
                .with_context(|| format!("unmounting {pseudo}"))?;
        }
    }
    switch_root(new_root)
}

/// busybox `switch_root` without deleting the initramfs: make `new_root` the root of our mount
/// namespace and of this process.
fn switch_root(new_root: &Path) -> Result<()> {
    std::env::set_current_dir(new_root)
        .with_context(|| format!("changing directory to {}", new_root.display()))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .context("moving the new root onto /")?;
    nix::unistd::chroot(".").context("chroot into the new root")?;
    std::env::set_current_dir("/").context("changing directory to the new /")?;
    Ok(())
}
