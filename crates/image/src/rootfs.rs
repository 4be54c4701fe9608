//! The read-only root filesystem of a dm-verity appliance: squashfs, written in Rust.
//!
//! Why squashfs through the `backhand` crate, not erofs through `mkfs.erofs`: the image is
//! written from our in-memory [`Tree`] in our order, with every owner, mode and time set by us,
//! so reproducibility does not hang on an external tool's version, flags or the order in which
//! the build host's filesystem returns directory entries (erofs-utils 1.5, Debian 12's, has no
//! way to build from a sorted stream). The Debian cloud kernel ships squashfs with xz as a module.
//! Hard links become separate inodes whose identical data backhand stores once. The root
//! directory's mtime is 0 (backhand has no setter for it); every other entry has the epoch.
//!
//! The image is padded with zeros to a multiple of the dm-verity data block size.

use crate::ImageError;
use crate::tree::{NodeKind, Tree};
use backhand::compression::Compressor;
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};
use std::io::Cursor;

/// squashfs block size: 128 KiB, mksquashfs's default; a good balance of ratio and random reads.
const BLOCK_SIZE: u32 = 128 * 1024;

/// Writes `tree` as a squashfs image (xz) with every time set to `mtime` and owners root, padded
/// to a multiple of `pad_to` bytes.
pub fn squashfs(tree: &Tree, mtime: u32, pad_to: u64) -> Result<Vec<u8>, ImageError> {
    let fail = |problem: String| ImageError::Archive {
        what: "the squashfs root filesystem".into(),
        problem,
    };
    let mut fs = FilesystemWriter::default();
    fs.set_time(mtime);
    fs.set_block_size(BLOCK_SIZE);
    fs.set_only_root_id();
    fs.set_root_mode(0o755);
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    let compressor =
        FilesystemCompressor::new(Compressor::Xz, None).map_err(|e| fail(e.to_string()))?;
    fs.set_compressor(compressor);
    let header = |mode: u32| NodeHeader {
        permissions: mode as u16,
        uid: 0,
        gid: 0,
        mtime,
    };

    for (path, node) in tree.iter() {
        let h = header(node.mode);
        let result = match &node.kind {
            NodeKind::Dir => fs.push_dir(path, h),
            NodeKind::File(data) => fs.push_file(Cursor::new(data.to_vec()), path, h),
            NodeKind::HardLink(target) => match tree.get(target).map(|n| &n.kind) {
                Some(NodeKind::File(data)) => fs.push_file(Cursor::new(data.to_vec()), path, h),
                _ => {
                    return Err(fail(format!(
                        "/{path}: hard link to a missing file /{target}"
                    )));
                }
            },
            NodeKind::Symlink(target) => fs.push_symlink(target.as_str(), path, h),
            NodeKind::CharDevice { major, minor } => {
                fs.push_char_device(encode_dev(*major, *minor), path, h)
            }
        };
        result.map_err(|e| fail(format!("/{path}: {e}")))?;
    }
    let mut out = Cursor::new(Vec::new());
    fs.write(&mut out).map_err(|e| fail(e.to_string()))?;
    let mut bytes = out.into_inner();
    if pad_to > 1 {
        let len = bytes.len() as u64;
        let padded = len.div_ceil(pad_to) * pad_to;
        bytes.resize(padded as usize, 0);
    }
    Ok(bytes)
}

/// The kernel's `new_encode_dev`, which squashfs stores for device inodes.
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.add_file("/usr/bin/hello", &b"#!/bin/sh\necho hi\n"[..], 0o755)
            .unwrap();
        t.add_file("/etc/big", vec![7u8; 300_000], 0o600).unwrap();
        t.add_hardlink("/etc/big2", "/etc/big").unwrap();
        t.add_symlink("/bin", "usr/bin").unwrap();
        t
    }

    #[test]
    fn same_tree_same_bytes_padded_to_blocks() {
        let a = squashfs(&sample(), 1_735_689_600, 4096).unwrap();
        let b = squashfs(&sample(), 1_735_689_600, 4096).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len() % 4096, 0);
        assert_eq!(&a[..4], b"hsqs", "squashfs magic");
        assert_ne!(
            a,
            squashfs(&sample(), 1, 4096).unwrap(),
            "the epoch is in the image"
        );
    }

    #[test]
    fn reads_back_with_backhand() {
        let bytes = squashfs(&sample(), 1_735_689_600, 4096).unwrap();
        let reader = backhand::FilesystemReader::from_reader(Cursor::new(bytes)).unwrap();
        let mut seen = Vec::new();
        for node in reader.files() {
            let path = node.fullpath.display().to_string();
            assert_eq!(node.header.uid, 0);
            let want = if path == "/" { 0 } else { 1_735_689_600 };
            assert_eq!(node.header.mtime, want, "{path}");
            if path == "/etc/big" {
                assert_eq!(node.header.permissions, 0o600);
            }
            seen.push(path);
        }
        for want in ["/usr/bin/hello", "/etc/big", "/etc/big2", "/bin"] {
            assert!(
                seen.iter().any(|p| p == want),
                "{want} missing from {seen:?}"
            );
        }
    }
}
