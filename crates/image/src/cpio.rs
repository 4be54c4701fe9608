//! The initramfs as a cpio "newc" archive, byte for byte reproducible.
//!
//! Headers are written with the `cpio` crate's `newc::Builder`, with every field set by us: the
//! crate does the format, we decide the values. Entries come in the tree's order (sorted, parents
//! first); uid and gid are 0; every mtime is the build epoch; inode numbers count up from 1 in
//! archive order, shared by hard links; device numbers are 0. Hard links follow GNU cpio: every
//! name carries the shared inode and link count, and the data travels with the last name. The
//! kernel's initramfs unpacker and `cpio -i` both rebuild the links from that.

use crate::ImageError;
use crate::tree::{Node, NodeKind, Tree};
use std::collections::BTreeMap;
use std::io::{Read, Write};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Writes `tree` as a newc archive (with its trailer) to `out`.
pub fn write_newc(tree: &Tree, mtime: u32, out: impl Write) -> Result<(), ImageError> {
    // A regular file and its hard links form one inode; find each inode's names first.
    let mut names_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (path, node) in tree.iter() {
        match &node.kind {
            NodeKind::File(_) => names_of.entry(path).or_default().push(path),
            NodeKind::HardLink(target) => names_of.entry(target.as_str()).or_default().push(path),
            _ => {}
        }
    }
    for names in names_of.values_mut() {
        names.sort_unstable();
    }
    let mut ino_of: BTreeMap<&str, u32> = BTreeMap::new();
    let mut next_ino: u32 = 1;
    let mut out = out;
    for (path, node) in tree.iter() {
        let identity = match &node.kind {
            NodeKind::HardLink(target) => target.as_str(),
            _ => path,
        };
        let ino = *ino_of.entry(identity).or_insert_with(|| {
            let ino = next_ino;
            next_ino += 1;
            ino
        });
        let (file_type, data, nlink, rdev): (u32, &[u8], usize, (u32, u32)) = match &node.kind {
            NodeKind::Dir => (S_IFDIR, &[], 2, (0, 0)),
            NodeKind::Symlink(target) => (S_IFLNK, target.as_bytes(), 1, (0, 0)),
            NodeKind::CharDevice { major, minor } => (S_IFCHR, &[], 1, (*major, *minor)),
            NodeKind::File(_) | NodeKind::HardLink(_) => {
                let names = names_of.get(identity).map(Vec::as_slice).unwrap_or(&[]);
                let last = names.last() == Some(&path);
                let data: &[u8] = match tree.get(identity).map(|n| &n.kind) {
                    Some(NodeKind::File(d)) if last => d,
                    _ => &[],
                };
                (S_IFREG, data, names.len(), (0, 0))
            }
        };
        let size = u32::try_from(data.len()).map_err(|_| ImageError::TooLarge {
            what: format!("/{path}"),
            problem: format!("{} bytes; newc stores sizes in 32 bits", data.len()),
        })?;
        let header = ::cpio::newc::Builder::new(path)
            .ino(ino)
            .mode(file_type | node.mode)
            .uid(0)
            .gid(0)
            .nlink(u32::try_from(nlink).unwrap_or(u32::MAX))
            .mtime(mtime)
            .dev_major(0)
            .dev_minor(0)
            .rdev_major(rdev.0)
            .rdev_minor(rdev.1);
        let mut w = header.write(out, size);
        w.write_all(data).map_err(ImageError::Write)?;
        out = w.finish().map_err(ImageError::Write)?;
    }
    ::cpio::newc::trailer(out).map_err(ImageError::Write)?;
    Ok(())
}

/// One entry read back from a newc archive (for tests and `cargo xtask` checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEntry {
    pub name: String,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub rdev: (u32, u32),
    pub data: Vec<u8>,
}

/// Reads every entry of a newc archive up to its trailer.
pub fn read_newc(mut bytes: &[u8]) -> Result<Vec<ReadEntry>, ImageError> {
    let bad = |e: std::io::Error| ImageError::Archive {
        what: "cpio archive".into(),
        problem: e.to_string(),
    };
    let mut out = Vec::new();
    loop {
        let mut reader = ::cpio::newc::Reader::new(bytes).map_err(bad)?;
        let e = reader.entry();
        if e.is_trailer() {
            return Ok(out);
        }
        let mut entry = ReadEntry {
            name: e.name().to_owned(),
            ino: e.ino(),
            mode: e.mode(),
            uid: e.uid(),
            gid: e.gid(),
            nlink: e.nlink(),
            mtime: e.mtime(),
            rdev: (e.rdev_major(), e.rdev_minor()),
            data: Vec::new(),
        };
        reader.read_to_end(&mut entry.data).map_err(bad)?;
        bytes = reader.finish().map_err(bad)?;
        out.push(entry);
    }
}

/// The node's type as cpio mode bits, for tests that compare archives with trees.
pub fn file_type_bits(node: &Node) -> u32 {
    match node.kind {
        NodeKind::Dir => S_IFDIR,
        NodeKind::File(_) | NodeKind::HardLink(_) => S_IFREG,
        NodeKind::Symlink(_) => S_IFLNK,
        NodeKind::CharDevice { .. } => S_IFCHR,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.add_file("/bin/busybox", &b"\x7fELF busybox"[..], 0o755)
            .unwrap();
        t.add_hardlink("/bin/sh", "/bin/busybox").unwrap();
        t.add_hardlink("/bin/ash", "/bin/busybox").unwrap();
        t.add_symlink("/bin/ls", "busybox").unwrap();
        t.add_char_device("/dev/console", 5, 1, 0o600).unwrap();
        t.add_file("/etc/motd", &b"hi\n"[..], 0o644).unwrap();
        t.add_dir("/proc", 0o555).unwrap();
        t
    }

    fn archive(t: &Tree, mtime: u32) -> Vec<u8> {
        let mut out = Vec::new();
        write_newc(t, mtime, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_with_fixed_owners_times_and_inodes() {
        let bytes = archive(&sample(), 1_700_000_000);
        let entries = read_newc(&bytes).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/ash",
                "bin/busybox",
                "bin/ls",
                "bin/sh",
                "dev",
                "dev/console",
                "etc",
                "etc/motd",
                "proc"
            ]
        );
        assert!(
            entries
                .iter()
                .all(|e| e.uid == 0 && e.gid == 0 && e.mtime == 1_700_000_000)
        );
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
        // One inode for the three names; data only with the last name in archive order.
        assert_eq!(get("bin/ash").ino, get("bin/busybox").ino);
        assert_eq!(get("bin/sh").ino, get("bin/busybox").ino);
        assert_eq!(get("bin/busybox").nlink, 3);
        assert!(get("bin/ash").data.is_empty() && get("bin/busybox").data.is_empty());
        assert_eq!(get("bin/sh").data, b"\x7fELF busybox");
        assert_eq!(get("bin/ls").mode, S_IFLNK | 0o777);
        assert_eq!(get("bin/ls").data, b"busybox");
        assert_eq!(get("dev/console").rdev, (5, 1));
        assert_eq!(get("dev/console").mode, S_IFCHR | 0o600);
        assert_eq!(get("proc").mode, S_IFDIR | 0o555);
        let inos: std::collections::BTreeSet<u32> = entries.iter().map(|e| e.ino).collect();
        assert_eq!(
            inos.len(),
            entries.len() - 2,
            "inode numbers are unique but for hard links"
        );
    }

    #[test]
    fn same_tree_same_bytes_and_epoch_changes_them() {
        let a = archive(&sample(), 1);
        assert_eq!(a, archive(&sample(), 1));
        assert_ne!(a, archive(&sample(), 2));
        // Insertion order does not matter, only content.
        let mut t = Tree::new();
        t.add_dir("/proc", 0o555).unwrap();
        t.add_file("/etc/motd", &b"hi\n"[..], 0o644).unwrap();
        t.add_char_device("/dev/console", 5, 1, 0o600).unwrap();
        t.add_file("/bin/busybox", &b"\x7fELF busybox"[..], 0o755)
            .unwrap();
        t.add_symlink("/bin/ls", "busybox").unwrap();
        t.add_hardlink("/bin/ash", "/bin/busybox").unwrap();
        t.add_hardlink("/bin/sh", "/bin/busybox").unwrap();
        assert_eq!(a, archive(&t, 1));
    }

    #[test]
    fn archive_is_4_byte_aligned_and_ends_with_trailer() {
        let bytes = archive(&sample(), 0);
        assert_eq!(bytes.len() % 4, 0);
        let tail = String::from_utf8_lossy(&bytes[bytes.len() - 24..]);
        assert!(tail.contains("TRAILER!!!"), "{tail}");
    }

    #[test]
    fn reading_garbage_is_an_error() {
        assert!(read_newc(b"not a cpio archive at all, certainly not").is_err());
        let bytes = archive(&sample(), 0);
        assert!(read_newc(&bytes[..bytes.len() / 2]).is_err());
    }
}
