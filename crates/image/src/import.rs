//! Reading host files and archives into a [`Tree`]: the one module of this crate that does I/O.
//!
//! Modes are normalised rather than copied from the host: a file is `0755` if any execute bit is
//! set, else `0644`; directories are `0755`. What a checkout's files look like on disk depends on
//! the umask of whoever cloned it (077 gives 0600/0700), and an image must not. Modes inside tar
//! archives and packages are part of their content and are kept.

use crate::ImageError;
use crate::tree::{Tree, key};
use std::io::Read;
use std::path::Path;

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

/// Adds everything under the host directory `src` at `dst` (`/` for the image root).
pub fn add_host_dir(tree: &mut Tree, src: &Path, dst: &str) -> Result<(), ImageError> {
    if dst != "/" {
        tree.add_dir(dst, 0o755)?;
    }
    walk(tree, src, dst)
}

fn walk(tree: &mut Tree, dir: &Path, dst: &str) -> Result<(), ImageError> {
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
        let target = join(dst, name);
        let meta = std::fs::symlink_metadata(&path).map_err(io("inspect", &path))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            tree.add_dir(&target, 0o755)?;
            walk(tree, &path, &target)?;
        } else if ft.is_file() {
            let data = std::fs::read(&path).map_err(io("read", &path))?;
            tree.add_file(&target, data, normalised_mode(meta.permissions().mode()))?;
        } else if ft.is_symlink() {
            let link = std::fs::read_link(&path).map_err(io("read the link", &path))?;
            tree.add_symlink(&target, &link.to_string_lossy())?;
        } else {
            return Err(ImageError::BadPath {
                path: path.display().to_string(),
                problem: "only files, directories and symlinks can be copied from the host".into(),
            });
        }
    }
    Ok(())
}

/// Adds the contents of a tar archive (plain, gzip, xz or zstd, told apart by magic bytes) at `dst`.
pub fn add_tar(tree: &mut Tree, archive: &[u8], dst: &str, what: &str) -> Result<(), ImageError> {
    let bad = |problem: String| ImageError::Archive {
        what: what.to_owned(),
        problem,
    };
    let reader: Box<dyn Read + '_> = match archive {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(archive)),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Box::new(liblzma::read::XzDecoder::new(archive)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            Box::new(zstd::stream::read::Decoder::new(archive).map_err(|e| bad(e.to_string()))?)
        }
        _ => Box::new(archive),
    };
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
        match entry.header().entry_type() {
            tar::EntryType::Directory => tree.add_dir(&target, mode(&entry)?)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = mode(&entry)?;
                let mut data = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| bad(format!("{raw}: {e}")))?;
                tree.add_file(&target, data, mode)?;
            }
            tar::EntryType::Symlink => {
                let l = link()?;
                tree.add_symlink(&target, &l)?;
            }
            tar::EntryType::Link => {
                let l = link()?;
                let l = key(&l).map_err(|e| bad(e.to_string()))?;
                tree.add_hardlink(&target, &join(dst, &l))?;
            }
            tar::EntryType::Char => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                tree.add_char_device(&target, major, minor, mode(&entry)?)?;
            }
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
