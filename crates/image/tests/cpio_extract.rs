//! Our newc archive unpacked by the system's GNU cpio (`cpio -idm`), the closest stand-in for the
//! kernel's initramfs unpacker we can run here: hard links must come back as one inode with the
//! right link count and the contents once, symlinks as links, times as the epoch.
#![allow(clippy::unwrap_used)]

use snpkit_image::{Tree, cpio};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

const EPOCH: u32 = 1_735_689_600;

fn extract(archive: &[u8], into: &Path) {
    let mut child = Command::new("cpio")
        .args(["-idm", "--quiet"])
        .current_dir(into)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("GNU cpio is installed (`cargo xtask setup`, package cpio)");
    child.stdin.take().unwrap().write_all(archive).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cpio -idm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hard_links_and_symlinks_survive_the_system_cpio() {
    let mut tree = Tree::new();
    tree.add_file("/bin/busybox", &b"busybox binary"[..], 0o755)
        .unwrap();
    // Names that sort before and after the file they name: the data travels with the last one.
    tree.add_hardlink("/bin/ash", "/bin/busybox").unwrap();
    tree.add_hardlink("/sbin/init-helper", "/bin/busybox")
        .unwrap();
    tree.add_file("/etc/a", &b"first"[..], 0o644).unwrap();
    tree.add_hardlink("/etc/b", "/etc/a").unwrap();
    tree.add_file("/etc/alone", &b"single"[..], 0o600).unwrap();
    tree.add_symlink("/bin/sh", "busybox").unwrap();
    tree.add_symlink("/usr/bin", "../bin").unwrap();
    let mut archive = Vec::new();
    cpio::write_newc(&tree, EPOCH, &mut archive).unwrap();

    let dir = tempfile::tempdir().unwrap();
    extract(&archive, dir.path());
    let meta = |p: &str| std::fs::symlink_metadata(dir.path().join(p)).unwrap();

    let busybox = ["bin/busybox", "bin/ash", "sbin/init-helper"];
    for name in busybox {
        let m = meta(name);
        assert!(m.file_type().is_file(), "{name}");
        assert_eq!(
            m.ino(),
            meta("bin/busybox").ino(),
            "{name} shares the inode"
        );
        assert_eq!(m.nlink(), 3, "{name}");
        assert_eq!(m.mode() & 0o7777, 0o755, "{name}");
        assert_eq!(m.mtime(), i64::from(EPOCH), "{name}");
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            b"busybox binary",
            "{name}"
        );
    }
    assert_eq!(meta("etc/a").ino(), meta("etc/b").ino());
    assert_ne!(meta("etc/a").ino(), meta("bin/busybox").ino());
    assert_eq!(meta("etc/b").nlink(), 2);
    assert_eq!(std::fs::read(dir.path().join("etc/b")).unwrap(), b"first");
    assert_eq!(meta("etc/alone").nlink(), 1);
    assert_eq!(meta("etc/alone").mode() & 0o7777, 0o600);

    for (link, target) in [("bin/sh", "busybox"), ("usr/bin", "../bin")] {
        assert!(meta(link).file_type().is_symlink(), "{link}");
        assert_eq!(
            std::fs::read_link(dir.path().join(link)).unwrap(),
            Path::new(target)
        );
    }
    // Through the symlinks, the same file.
    assert_eq!(
        std::fs::metadata(dir.path().join("usr/bin/sh"))
            .unwrap()
            .ino(),
        meta("bin/busybox").ino()
    );
}
