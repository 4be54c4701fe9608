//! Reading host files and archives into a [`Tree`]: the one module of this crate that does I/O.
//!
//! Modes are normalised rather than copied from the host: a file is `0755` if any execute bit is
//! set, else `0644`; directories are `0755`. What a checkout's files look like on disk depends on
//! the umask of whoever cloned it (077 gives 0600/0700), and an image must not. Modes inside tar
//! archives and packages are part of their content and are kept.
//!
//! What a copied folder or an archive may hold (docs/recipes.md says it for users), one rule for
//! both:
//! - regular files, read with a bound ([`MAX_MEMBER`] each, [`MAX_UNPACKED`] for a whole archive);
//! - folders;
//! - symlinks, copied as links and never followed on the builder, whose target stays inside the
//!   image: absolute, or relative without climbing above the image's root from where the link
//!   sits ([`ImageError::SymlinkEscapes`]);
//! - hard links (archives only) to a regular file already in the image; on the host, a file with
//!   several links is copied as a file;
//! - nothing else: device nodes, FIFOs and sockets are refused by name
//!   ([`ImageError::SpecialFile`]). An image needs no device node of its own (`/dev` is a
//!   devtmpfs, and snpkit adds `/dev/console` itself), and a copied FIFO would hang the build.

use crate::ImageError;
use crate::tree::{Tree, key};
use snpkit_fsguard::{Bounded, FileKind};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest file copied into an image: from a folder, unpacked from an archive, or a recipe's
/// `[[files]]` and `[[archives]]` source itself (the initramfs is held in memory, and must fit the
/// guest's).
pub const MAX_MEMBER: u64 = 4 << 30;
/// The most bytes one archive may unpack to (a small archive can hold a huge compressed file).
pub const MAX_UNPACKED: u64 = MAX_MEMBER;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + use<> {
    let path = path.to_owned();
    move |source| ImageError::Io {
        action,
        path,
        source,
    }
}

/// `dst` + `/` + `rel`, as an image path.
fn join(dst: &str, rel: &str) -> String {
    format!("{}/{}", dst.trim_end_matches('/'), rel)
}

/// A host file's mode as the image records it.
pub fn normalised_mode(host_mode: u32) -> u32 {
    if host_mode & 0o111 != 0 { 0o755 } else { 0o644 }
}

/// Whether a symlink at `link` (an image path) pointing to `target` stays inside the image:
/// absolute targets are image paths; a relative one may not climb above the root.
pub fn symlink_stays_inside(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth = link
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .count()
        .saturating_sub(1);
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." if depth == 0 => return false,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    true
}

fn add_checked_symlink(tree: &mut Tree, link: &str, target: &str) -> Result<(), ImageError> {
    if !symlink_stays_inside(link, target) {
        return Err(ImageError::SymlinkEscapes {
            path: link.to_owned(),
            target: target.to_owned(),
        });
    }
    tree.add_symlink(link, target)
}

/// One entry under a host folder, as a copy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The path on the host.
    pub path: PathBuf,
    /// The path relative to the walked folder, `/`-separated.
    pub rel: String,
    pub kind: HostKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKind {
    Dir,
    /// A regular file with the host's permission bits (the image normalises them).
    File {
        host_mode: u32,
    },
    /// A symlink and its target, not followed.
    Symlink {
        target: String,
    },
}

/// Everything under the host folder `src`, sorted by path, classified by the rules of the module
/// docs: symlinks recorded (never followed), devices, FIFOs and sockets refused by name. The one
/// walk both `lock` (what it pins) and the build (what it copies) use.
pub fn host_entries(src: &Path) -> Result<Vec<HostEntry>, ImageError> {
    let mut out = Vec::new();
    walk(src, "", &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<HostEntry>) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io("list", dir))?
        .collect::<Result<_, _>>()
        .map_err(io("list", dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(ImageError::BadPath {
                path: path.display().to_string(),
                problem: "file name is not UTF-8".into(),
            });
        };
        let rel = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io("inspect", &path))?;
        let kind = match FileKind::of(meta.file_type()) {
            FileKind::Folder => HostKind::Dir,
            FileKind::Regular => HostKind::File {
                host_mode: meta.permissions().mode(),
            },
            FileKind::Symlink => {
                let link = std::fs::read_link(&path).map_err(io("read the link", &path))?;
                let Some(target) = link.to_str() else {
                    return Err(ImageError::BadPath {
                        path: path.display().to_string(),
                        problem: "symlink target is not UTF-8".into(),
                    });
                };
                HostKind::Symlink {
                    target: target.to_owned(),
                }
            }
            other => {
                return Err(ImageError::SpecialFile {
                    path: path.display().to_string(),
                    kind: other.to_string(),
                });
            }
        };
        let is_dir = kind == HostKind::Dir;
        out.push(HostEntry {
            path: path.clone(),
            rel: rel.clone(),
            kind,
        });
        if is_dir {
            walk(&path, &rel, out)?;
        }
    }
    Ok(())
}

/// Adds everything under the host directory `src` at `dst` (`/` for the image root).
pub fn add_host_dir(tree: &mut Tree, src: &Path, dst: &str) -> Result<(), ImageError> {
    if dst != "/" {
        tree.add_dir(dst, 0o755)?;
    }
    for e in host_entries(src)? {
        let target = join(dst, &e.rel);
        match e.kind {
            HostKind::Dir => tree.add_dir(&target, 0o755)?,
            HostKind::File { host_mode } => {
                let data = snpkit_fsguard::read(&e.path, "a file of a copied folder", MAX_MEMBER)?;
                tree.add_file(&target, data, normalised_mode(host_mode))?;
            }
            HostKind::Symlink { target: link } => add_checked_symlink(tree, &target, &link)?,
        }
    }
    Ok(())
}

/// How much an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per regular file.
    pub member: u64,
    /// For the whole unpacked stream (headers included).
    pub unpacked: u64,
}

/// [`MAX_MEMBER`] and [`MAX_UNPACKED`].
pub const LIMITS: Limits = Limits {
    member: MAX_MEMBER,
    unpacked: MAX_UNPACKED,
};

/// Adds the contents of a tar archive (plain, gzip, xz or zstd, told apart by magic bytes) at `dst`.
pub fn add_tar(tree: &mut Tree, archive: &[u8], dst: &str, what: &str) -> Result<(), ImageError> {
    add_tar_within(tree, archive, dst, what, LIMITS)
}

/// [`add_tar`] with other limits (tests use small ones).
pub fn add_tar_within(
    tree: &mut Tree,
    archive: &[u8],
    dst: &str,
    what: &str,
    limits: Limits,
) -> Result<(), ImageError> {
    let bad = |problem: String| ImageError::Archive {
        what: what.to_owned(),
        problem,
    };
    let decoded: Box<dyn Read + '_> = match archive {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(archive)),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Box::new(liblzma::read::XzDecoder::new(archive)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            Box::new(zstd::stream::read::Decoder::new(archive).map_err(|e| bad(e.to_string()))?)
        }
        _ => Box::new(archive),
    };
    // The whole unpacked stream is counted: a few KiB of gzip can claim terabytes.
    let reader = Bounded::new(
        decoded,
        Path::new(what),
        "an archive's unpacked contents",
        limits.unpacked,
    );
    if dst != "/" {
        tree.add_dir(dst, 0o755)?;
    }
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        count += 1;
        let raw = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let rel = match key(&raw) {
            Ok(rel) => rel,
            // The archive's root entry ("./") names the destination itself.
            Err(_) if raw.trim_matches(|c| c == '.' || c == '/').is_empty() => continue,
            Err(e) => return Err(bad(e.to_string())),
        };
        let target = join(dst, &rel);
        // Links and symlinks have no mode of their own; read it only where it means something.
        let mode = |entry: &tar::Entry<'_, _>| -> Result<u32, ImageError> {
            Ok(entry
                .header()
                .mode()
                .map_err(|e| bad(format!("{raw}: {e}")))?
                & 0o7777)
        };
        let link = || -> Result<String, ImageError> {
            let l = entry.link_name().map_err(|e| bad(format!("{raw}: {e}")))?;
            Ok(l.map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let special = |kind: &str| ImageError::SpecialFile {
            path: format!("{what}: {raw}"),
            kind: kind.to_owned(),
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => tree.add_dir(&target, mode(&entry)?)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = mode(&entry)?;
                // The header's size only sizes the first allocation; the count bounds the read.
                let claimed = entry.size().min(64 << 20) as usize;
                let mut data = Vec::with_capacity(claimed);
                let mut member = Bounded::new(
                    &mut entry,
                    Path::new(&raw),
                    "an archive member",
                    limits.member,
                );
                if let Err(e) = member.read_to_end(&mut data) {
                    return Err(bad(format!("{raw}: {}", member.error(e, "unpack"))));
                }
                tree.add_file(&target, data, mode)?;
            }
            tar::EntryType::Symlink => {
                let l = link()?;
                add_checked_symlink(tree, &target, &l)?;
            }
            tar::EntryType::Link => {
                let l = link()?;
                let l = key(&l).map_err(|e| bad(e.to_string()))?;
                tree.add_hardlink(&target, &join(dst, &l))?;
            }
            tar::EntryType::Char => return Err(special("a character device")),
            tar::EntryType::Block => return Err(special("a block device")),
            tar::EntryType::Fifo => return Err(special("a FIFO (named pipe)")),
            // Extended headers carry long names and are consumed by the tar crate.
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => return Err(bad(format!("{raw}: unsupported entry type {other:?}"))),
        }
    }
    if count == 0 && !archive.is_empty() {
        return Err(bad("not a tar archive (no entries)".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tree::NodeKind;

    #[test]
    fn host_dir_modes_do_not_depend_on_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("data"), b"d").unwrap();
        std::os::unix::fs::symlink("sub/tool", dir.path().join("link")).unwrap();
        std::fs::set_permissions(
            dir.path().join("sub/tool"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::set_permissions(
            dir.path().join("data"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::set_permissions(
            dir.path().join("sub"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let mut t = Tree::new();
        add_host_dir(&mut t, dir.path(), "/opt/app").unwrap();
        assert_eq!(t.get("/opt/app/sub/tool").unwrap().mode, 0o755);
        assert_eq!(t.get("/opt/app/data").unwrap().mode, 0o644);
        assert_eq!(t.get("/opt/app/sub").unwrap().mode, 0o755);
        assert_eq!(
            t.get("/opt/app/link").unwrap().kind,
            NodeKind::Symlink("sub/tool".into())
        );
    }

    #[test]
    fn tar_keeps_modes_links_and_refuses_escapes() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o4755);
        b.append_data(&mut h, "bin/tool", &b"abc"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Link);
        l.set_size(0);
        b.append_link(&mut l, "bin/tool2", "bin/tool").unwrap();
        let bytes = b.into_inner().unwrap();
        let mut t = Tree::new();
        add_tar(&mut t, &bytes, "/opt", "x.tar").unwrap();
        assert_eq!(t.get("/opt/bin/tool").unwrap().mode, 0o4755);
        assert_eq!(
            t.get("/opt/bin/tool2").unwrap().kind,
            NodeKind::HardLink("opt/bin/tool".into())
        );

        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &bytes).unwrap();
            e.finish().unwrap()
        };
        let mut t2 = Tree::new();
        add_tar(&mut t2, &gz, "/opt", "x.tar.gz").unwrap();
        assert_eq!(t, t2);

        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        // tar::Builder refuses ".." itself; write the name straight into the header.
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        evil.append(&h, &b"x"[..]).unwrap();
        let evil = evil.into_inner().unwrap();
        let err = add_tar(&mut Tree::new(), &evil, "/", "evil.tar").unwrap_err();
        assert!(err.to_string().contains(".."), "{err}");
        assert!(
            add_tar(
                &mut Tree::new(),
                b"garbage that is no tar archive, though long enough",
                "/",
                "g"
            )
            .is_err()
        );
    }
}

#[cfg(test)]
mod hostile {
    //! What a hostile archive or folder can hold, one row per case.
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h
    }

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn special(kind: tar::EntryType) -> Vec<u8> {
        archive(|b| {
            let mut h = header(kind, 0);
            h.set_device_major(1).unwrap();
            h.set_device_minor(5).unwrap();
            b.append_data(&mut h, "dev/x", &[][..]).unwrap();
        })
    }

    fn symlink(name: &str, target: &str) -> Vec<u8> {
        archive(|b| {
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, name, target).unwrap();
        })
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn archive_rows() {
        let small = Limits {
            member: 1024,
            unpacked: 16 * 1024,
        };
        let big_member = archive(|b| {
            b.append_data(
                &mut header(tar::EntryType::Regular, 4096),
                "big",
                &[0u8; 4096][..],
            )
            .unwrap();
        });
        let many = archive(|b| {
            for i in 0..40 {
                b.append_data(
                    &mut header(tar::EntryType::Regular, 512),
                    format!("f{i}"),
                    &[1u8; 512][..],
                )
                .unwrap();
            }
        });
        // A header claiming a terabyte: nothing may allocate it.
        let liar = {
            let mut h = header(tar::EntryType::Regular, 1 << 40);
            h.set_path("huge").unwrap();
            h.set_cksum();
            let mut bytes = h.as_bytes().to_vec();
            bytes.extend([0u8; 1024]);
            bytes
        };
        let dangling = archive(|b| {
            let mut h = header(tar::EntryType::Link, 0);
            b.append_link(&mut h, "b", "missing").unwrap();
        });
        // (name, archive, dst, error words or None for accepted)
        type Row<'a> = (&'a str, Vec<u8>, &'a str, Option<&'a [&'a str]>);
        let rows: Vec<Row<'_>> = vec![
            (
                "char device",
                special(tar::EntryType::Char),
                "/",
                Some(&["character device", "refused"]),
            ),
            (
                "block device",
                special(tar::EntryType::Block),
                "/",
                Some(&["block device"]),
            ),
            ("fifo", special(tar::EntryType::Fifo), "/", Some(&["FIFO"])),
            (
                "symlink climbing out",
                symlink("a/b", "../../etc/shadow"),
                "/",
                Some(&["climbs above the image's root"]),
            ),
            (
                "symlink climbing out of dst",
                symlink("x", "../../../../../etc"),
                "/opt/app",
                Some(&["climbs above"]),
            ),
            (
                "absolute symlink",
                symlink("bin/sh", "/bin/busybox"),
                "/",
                None,
            ),
            (
                "relative symlink inside",
                symlink("usr/bin/x", "../lib/x"),
                "/",
                None,
            ),
            ("symlink to the root", symlink("a/root", ".."), "/", None),
            (
                "member over its limit",
                big_member.clone(),
                "/",
                Some(&["larger than 1 KiB"]),
            ),
            (
                "member over its limit, gzip",
                gz(&big_member),
                "/",
                Some(&["larger than 1 KiB"]),
            ),
            (
                "archive over its unpacked limit",
                gz(&many),
                "/",
                Some(&["more than 16 KiB"]),
            ),
            (
                "header lies about its size",
                liar,
                "/",
                Some(&["unexpected EOF"]),
            ),
            (
                "hard link to nothing",
                dangling,
                "/",
                Some(&["not a regular file in the image"]),
            ),
        ];
        for (name, bytes, dst, want) in rows {
            let got = add_tar_within(&mut Tree::new(), &bytes, dst, "x.tar", small);
            match (got, want) {
                (Ok(()), None) => {}
                (Err(e), Some(words)) => {
                    let text = e.to_string();
                    for w in words {
                        assert!(text.contains(w), "{name}: {text:?} lacks {w:?}");
                    }
                }
                (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn folder_rows() {
        use std::os::unix::fs::symlink;
        type Make = fn(&Path);
        let rows: &[(&str, Make, Option<&str>)] = &[
            (
                "fifo",
                |d| {
                    assert!(
                        std::process::Command::new("mkfifo")
                            .arg(d.join("p"))
                            .status()
                            .unwrap()
                            .success()
                    );
                },
                Some("a FIFO (named pipe)"),
            ),
            (
                "socket",
                |d| {
                    std::os::unix::net::UnixListener::bind(d.join("s")).unwrap();
                },
                Some("a socket"),
            ),
            (
                "symlink climbing out",
                |d| symlink("../../../../etc/shadow", d.join("l")).unwrap(),
                Some("climbs above"),
            ),
            (
                "absolute symlink to a host file",
                |d| symlink("/etc/shadow", d.join("l")).unwrap(),
                None,
            ),
            (
                "symlink to a host folder is not followed",
                |d| symlink("/etc", d.join("etc")).unwrap(),
                None,
            ),
        ];
        for (name, make, want) in rows {
            let dir = tempfile::tempdir().unwrap();
            make(dir.path());
            let mut t = Tree::new();
            match (add_host_dir(&mut t, dir.path(), "/opt"), want) {
                (Ok(()), None) => {
                    // Copied as links: nothing of the host's /etc came in.
                    assert!(t.iter().all(|(p, _)| !p.starts_with("opt/etc/")), "{name}");
                }
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
            }
        }
    }
}
