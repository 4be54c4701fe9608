//! The AmdSev OVMF under TCG refusing a kernel it has no matching hash for: the supervisor must
//! call that `KernelNeverStarted`, and early, not a generic timeout at the deadline.
//! Needs the firmware from `cargo xtask ovmf`, named by `SNPKIT_OVMF`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use snpkit_qemu::{EmulatedLaunch, LaunchKind, Outcome, spawn};
use snpkit_testkit::env::amdsev_ovmf;
use std::time::Duration;
use support::*;

#[test]
fn firmware_refusing_the_kernel_is_kernel_never_started() {
    let firmware = amdsev_ovmf();
    let dir = tempfile::tempdir().unwrap();
    let initramfs = Initramfs::new();
    initramfs.copy(&guest_binaries().init, "/init", 0o755);
    let initrd = dir.path().join("initrd.cpio.gz");
    initramfs.pack(&initrd);
    // An all-zero page: no hashes table at all, so no hash can match. (Guest RAM starts zeroed,
    // so where it is loaded does not matter; the real page and its GPA come from snpkit-measure.)
    let page = dir.path().join("hashes.page");
    std::fs::write(&page, [0u8; 4096]).unwrap();
    let log = dir.path().join("console.log");
    let mut launch = tcg_launch(&initrd, "console=ttyS0", &log, 1);
    launch.kind = LaunchKind::Emulated(EmulatedLaunch {
        firmware,
        hashes_page: page,
        hashes_page_gpa: 0x80_0000,
    });
    let deadline = Duration::from_secs(120);
    let _lock = boot_lock();
    let start = std::time::Instant::now();
    let vm = spawn(&launch, deadline).unwrap();
    let outcome = vm.wait();
    let took = start.elapsed();
    let Outcome::KernelNeverStarted { console_tail } = outcome else {
        panic!("expected the firmware to refuse the kernel, got {outcome:?}")
    };
    assert!(console_tail.contains("BdsDxe"), "{console_tail}");
    assert!(!console_tail.contains("Linux version"));
    // Seen as soon as OVMF says so, not at the deadline.
    assert!(took < deadline / 2, "took {took:?}");
}
