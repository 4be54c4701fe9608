//! The guest's dm-verity root in a real kernel: the Debian cloud kernel under TCG, two virtio
//! disks (a squashfs from `snpkit_image::rootfs` and its tree from `snpkit_image::verity`), the
//! `snpkit.verity=` token from `Formatted::kernel_params`, and the guest's own `dm.rs`/`root.rs`
//! (through the `verityinit` example, which is `snpkit-init` without the attestation step).
//!
//! This machine's kernel has no device-mapper, so a host test on loop devices is not possible;
//! this is where the ioctls meet a kernel. QEMU is run directly: `snpkit_qemu::Launch` has no
//! disks yet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use snpkit_image::Tree;
use snpkit_image::verity::{self, Superblock, VerityOptions};
use snpkit_testkit::rng::SplitMix64;
use snpkit_wire::init::{Entry, INIT_SCHEMA, InitConfig, Root};
use snpkit_wire::verity::{BootCheck, Corruption};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const DEADLINE: Duration = Duration::from_secs(120);

/// dm-verity and what it needs, dependencies first (modules.dep of the Debian kernel).
const VERITY_MODULES: &[&str] = &[
    "drivers/md/dm-mod.ko.xz",
    "drivers/md/dm-bufio.ko.xz",
    "lib/reed_solomon/reed_solomon.ko.xz",
    "drivers/md/dm-verity.ko.xz",
    "drivers/block/virtio_blk.ko.xz",
    "fs/squashfs/squashfs.ko.xz",
];

struct Fixture {
    dir: tempfile::TempDir,
    rootfs: Vec<u8>,
    hash: Vec<u8>,
    formatted: verity::Formatted,
    /// Where a byte of the incompressible `/etc/big` sits in the image.
    big_offset: usize,
}

fn fixture() -> Fixture {
    let bins = guest_binaries();
    let big = SplitMix64::new(0x2545_f491_4f6c_dd1d).bytes(1 << 20);
    let mut tree = Tree::new();
    for dir in ["/dev", "/proc", "/sys", "/run", "/tmp"] {
        tree.add_dir(dir, 0o755).unwrap();
    }
    tree.add_file(
        "/bin/testguest",
        std::fs::read(&bins.testguest).unwrap(),
        0o755,
    )
    .unwrap();
    tree.add_file("/etc/big", big.clone(), 0o644).unwrap();
    let rootfs = snpkit_image::rootfs::squashfs(&tree, 1_700_000_000, 4096).unwrap();
    // Random bytes do not compress: squashfs stores them as they are.
    let probe = &big[600_000..600_064];
    let big_offset = rootfs
        .windows(probe.len())
        .position(|w| w == probe)
        .expect("/etc/big stored uncompressed");

    let options = VerityOptions::new(
        verity::salt_from_seed("verity-root-test", "root"),
        verity::uuid_from_seed("verity-root-test", "root"),
    );
    assert!(matches!(options.superblock, Superblock::V1 { .. }));
    let formatted = verity::format(&rootfs, &options).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let initramfs = Initramfs::new();
    initramfs.copy(&bins.verityinit, "/init", 0o755);
    let kernel = debian_kernel();
    let modules = VERITY_MODULES
        .iter()
        .map(|rel| {
            let dest = format!("/lib/modules/{KERNEL_RELEASE}/kernel/{rel}");
            initramfs.copy(&kernel.module(rel), &dest, 0o644);
            dest
        })
        .collect();
    initramfs.init_config(&InitConfig {
        schema: INIT_SCHEMA,
        appliance: "verity-root-test".into(),
        entry: Entry {
            argv: vec![
                "/bin/testguest".into(),
                "entry-ok".into(),
                "verified".into(),
            ],
            env: BTreeMap::from([("SNPKIT_TEST".to_owned(), "root".to_owned())]),
            log: Default::default(),
            user: None,
            workdir: None,
        },
        modules,
        root: Root::Verity {
            fstype: "squashfs".into(),
            data_device: "/dev/vda".into(),
            hash_device: "/dev/vdb".into(),
        },
        volumes: Vec::new(),
        secrets: vec![],
        network: None,
    });
    initramfs.pack(&dir.path().join("initrd.cpio.gz"));
    Fixture {
        hash: formatted.hash_area.clone(),
        dir,
        rootfs,
        formatted,
        big_offset,
    }
}

fn token(f: &Fixture, check: BootCheck) -> String {
    f.formatted
        .kernel_params(Corruption::Panic, check)
        .unwrap()
        .to_cmdline_arg()
}

/// Boots with the two disks and returns the console.
fn boot(f: &Fixture, rootfs: &[u8], hash: &[u8], token: &str) -> String {
    let data_path = f.dir.path().join("rootfs.img");
    let hash_path = f.dir.path().join("rootfs.verity");
    let log = f.dir.path().join("console.log");
    std::fs::write(&data_path, rootfs).unwrap();
    std::fs::write(&hash_path, hash).unwrap();
    let _ = std::fs::remove_file(&log);
    let drive = |p: &Path| format!("file={},if=virtio,format=raw,readonly=on", p.display());
    let _lock = boot_lock();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1"])
        .args(["-display", "none", "-no-reboot", "-nodefaults"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(&debian_kernel().vmlinuz)
        .arg("-initrd")
        .arg(f.dir.path().join("initrd.cpio.gz"))
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 {token}"))
        .arg("-drive")
        .arg(drive(&data_path))
        .arg("-drive")
        .arg(drive(&hash_path))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 is installed (apt-get install qemu-system-x86)");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let console =
                String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).replace('\r', "");
            assert!(
                status.success(),
                "QEMU failed ({status}); console:\n{console}"
            );
            return console;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let console =
                String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
            panic!("the guest did not stop within {DEADLINE:?}; console:\n{console}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_verified_root_boots_and_any_corruption_stops_it() {
    let f = fixture();
    let full = token(&f, BootCheck::Full);
    let blocks = f.formatted.data_blocks;

    // Intact: checked in full, mounted, switched to, entry point run from the verified tree.
    let text = boot(&f, &f.rootfs, &f.hash, &full);
    assert!(
        text.contains(&format!(
            "snpkit-init: dm-verity: all {blocks} blocks of /dev/vda verified"
        )),
        "{text}"
    );
    assert!(
        text.contains("snpkit-init: dm-verity: /dev/dm-0 is /dev/vda over /dev/vdb"),
        "{text}"
    );
    assert!(
        text.contains("snpkit-testguest: entry ran with [\"verified\"], SNPKIT_TEST=root"),
        "{text}"
    );
    assert!(
        text.contains("snpkit-init: entry point exited with status 0"),
        "{text}"
    );

    // One byte of file data: the full check names its block and the guest powers off.
    let mut bad = f.rootfs.clone();
    bad[f.big_offset] ^= 0x01;
    let block = f.big_offset / 4096;
    let text = boot(&f, &bad, &f.hash, &full);
    assert!(
        text.contains(&format!("verity: 253:0: data block {block} is corrupted")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "snpkit-init: fatal: dm-verity: the root filesystem does not match the measured root hash: reading data block {block} (byte {})",
            block * 4096
        )),
        "{text}"
    );
    assert!(!text.contains("snpkit-testguest: entry ran"), "{text}");

    // One byte of the tree (the last level-0 hash block).
    let mut bad_hash = f.hash.clone();
    let last = bad_hash.len() - 4096;
    bad_hash[last] ^= 0x80;
    let text = boot(&f, &f.rootfs, &bad_hash, &full);
    let metadata = last / 4096;
    assert!(
        text.contains(&format!(
            "verity: 253:0: metadata block {metadata} is corrupted"
        )),
        "{text}"
    );
    assert!(
        text.contains("snpkit-init: fatal: dm-verity: the root filesystem does not match"),
        "{text}"
    );
    assert!(!text.contains("snpkit-testguest: entry ran"), "{text}");

    // A root hash other than the tree's.
    let mut params = f.formatted.clone();
    params.root_hash[0] ^= 0x01;
    let wrong = params
        .kernel_params(Corruption::Panic, BootCheck::Full)
        .unwrap()
        .to_cmdline_arg();
    let text = boot(&f, &f.rootfs, &f.hash, &wrong);
    assert!(
        text.contains("snpkit-init: fatal: dm-verity: the root filesystem does not match"),
        "{text}"
    );
    assert!(!text.contains("snpkit-testguest: entry ran"), "{text}");

    // Lazy checking: the first read of a corrupted block (the squashfs superblock, read by mount)
    // panics the kernel, as panic_on_corruption says.
    let mut bad = f.rootfs.clone();
    bad[100] ^= 0x01;
    let text = boot(&f, &bad, &f.hash, &token(&f, BootCheck::Lazy));
    assert!(
        text.contains("verity: 253:0: data block 0 is corrupted"),
        "{text}"
    );
    assert!(
        text.contains("Kernel panic - not syncing: dm-verity device corrupted"),
        "{text}"
    );
    assert!(!text.contains("snpkit-testguest: entry ran"), "{text}");

    // A weakened token never reaches device-mapper.
    let text = boot(&f, &f.rootfs, &f.hash, &format!("{full},ignore_corruption"));
    assert!(
        text.contains("snpkit-init: fatal: dm-verity: the kernel command line has no valid parameters: snpkit.verity: \"ignore_corruption\" is refused"),
        "{text}"
    );
}
