//! Unpacking a `.deb` in Rust: an `ar` archive whose `data.tar.{xz,zst,gz}` member holds the files.
//!
//! We read the tar headers ourselves instead of extracting to disk, so an image takes each file's
//! mode from the package, not from whatever umask the build machine has.

use crate::InputError;
use std::io::Read;

/// One entry of a package's data archive. `path` is relative (`usr/bin/x`, no leading `./` or `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebEntry {
    pub path: String,
    pub mode: u32,
    pub kind: DebEntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebEntryKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// A hard link to another entry of the same archive (relative path).
    Hardlink(String),
}

/// The entries of `deb`'s data archive for which `want(path)` is true (directories are always
/// returned, they are cheap and carry modes). `what` names the package in errors.
pub fn data_entries(
    deb: &[u8],
    what: &str,
    want: &dyn Fn(&str) -> bool,
) -> Result<Vec<DebEntry>, InputError> {
    let bad = |detail: String| InputError::BadDeb {
        what: what.to_owned(),
        detail,
    };
    let mut archive = ar::Archive::new(deb);
    let mut saw_version = false;
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(|e| bad(format!("ar archive: {e}")))?;
        let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
        if name == "debian-binary" {
            let mut v = String::new();
            member
                .read_to_string(&mut v)
                .map_err(|e| bad(format!("debian-binary: {e}")))?;
            if !v.starts_with("2.") {
                return Err(bad(format!("format {:?}, expected 2.x", v.trim())));
            }
            saw_version = true;
            continue;
        }
        let Some(compression) = name.strip_prefix("data.tar") else {
            continue;
        };
        if !saw_version {
            return Err(bad("data member before debian-binary".into()));
        }
        // A short member is a truncated package: decoders and tar may otherwise stop quietly at
        // a boundary and return fewer files than the package has.
        let declared = member.header().size();
        // A header's size only sizes the allocation within what the package can hold.
        let mut compressed = Vec::with_capacity(declared.min(deb.len() as u64) as usize);
        member
            .read_to_end(&mut compressed)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        if compressed.len() as u64 != declared {
            return Err(bad(format!(
                "{name} is {} bytes but its header says {declared}: the package is truncated",
                compressed.len()
            )));
        }
        let tar = decompress(&name, compression, compressed).map_err(bad)?;
        return read_tar(&tar[..], &name, want).map_err(bad);
    }
    Err(bad("no data.tar member".into()))
}

/// A member's tar bytes, decompressed by its name's suffix (`compression`, after `.tar`).
fn decompress(name: &str, compression: &str, compressed: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut tar = Vec::new();
    let decoded = match compression {
        ".xz" => liblzma::read::XzDecoder::new(&compressed[..]).read_to_end(&mut tar),
        ".zst" => zstd::stream::read::Decoder::new(&compressed[..])
            .and_then(|mut d| d.read_to_end(&mut tar)),
        ".gz" => flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut tar),
        "" => return Ok(compressed),
        other => return Err(format!("unsupported {name} compression {other:?}")),
    };
    decoded.map_err(|e| format!("{name}: {e}"))?;
    Ok(tar)
}

/// Maintainer scripts that run at installation (`preinst`, `postinst`) in the package's
/// `control.tar`: snpkit unpacks files and runs no script, so these are what a recipe may
/// have to do by other means.
pub fn maintainer_scripts(deb: &[u8], what: &str) -> Result<Vec<String>, InputError> {
    let bad = |detail: String| InputError::BadDeb {
        what: what.to_owned(),
        detail,
    };
    let mut archive = ar::Archive::new(deb);
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(|e| bad(format!("ar archive: {e}")))?;
        let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
        let Some(compression) = name.strip_prefix("control.tar") else {
            continue;
        };
        let mut compressed = Vec::new();
        member
            .read_to_end(&mut compressed)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        let tar = decompress(&name, compression, compressed).map_err(bad)?;
        let mut found = Vec::new();
        let mut entries = tar::Archive::new(&tar[..]);
        for entry in entries.entries().map_err(|e| bad(format!("{name}: {e}")))? {
            let entry = entry.map_err(|e| bad(format!("{name}: {e}")))?;
            let path = entry.path().map_err(|e| bad(format!("{name}: {e}")))?;
            let path = normalise(&path.to_string_lossy()).unwrap_or_default();
            if matches!(path.as_str(), "preinst" | "postinst") {
                found.push(path);
            }
        }
        found.sort();
        return Ok(found);
    }
    Err(bad("no control.tar member".into()))
}

fn read_tar(
    reader: impl Read,
    member: &str,
    want: &dyn Fn(&str) -> bool,
) -> Result<Vec<DebEntry>, String> {
    let mut tar = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in tar.entries().map_err(|e| format!("{member}: {e}"))? {
        let mut entry = entry.map_err(|e| format!("{member}: {e}"))?;
        let raw_path = entry
            .path()
            .map_err(|e| format!("{member}: {e}"))?
            .to_string_lossy()
            .into_owned();
        let path =
            normalise(&raw_path).ok_or_else(|| format!("{member}: unsafe path {raw_path:?}"))?;
        if path.is_empty() {
            continue;
        }
        let mode = entry
            .header()
            .mode()
            .map_err(|e| format!("{member}: {path}: {e}"))?
            & 0o7777;
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => DebEntryKind::Dir,
            _ if !want(&path) => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::with_capacity(entry.size().min(64 << 20) as usize);
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| format!("{member}: {path}: {e}"))?;
                DebEntryKind::File(data)
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("{member}: {path}: {e}"))?;
                DebEntryKind::Symlink(
                    target
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| format!("{member}: {path}: {e}"))?;
                let target = target
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                DebEntryKind::Hardlink(
                    normalise(&target)
                        .ok_or_else(|| format!("{member}: unsafe link {target:?}"))?,
                )
            }
            // Device nodes and fifos have no place in a package's data we ship.
            _ => continue,
        };
        out.push(DebEntry { path, mode, kind });
    }
    Ok(out)
}

/// `./usr/bin/x` → `usr/bin/x`; `None` for paths that climb out (`..`) of the archive.
pub(crate) fn normalise(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Builds a .deb in memory with the tar and ar crates: a real package layout, not a mock.
    pub(crate) fn make_deb(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, data, mode) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, path, *data).unwrap();
        }
        let tar = tar.into_inner().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        std::io::Write::write_all(&mut xz, &tar).unwrap();
        let data = xz.finish().unwrap();
        let mut ar = ar::Builder::new(Vec::new());
        ar.append(
            &ar::Header::new(b"debian-binary".to_vec(), 4),
            &b"2.0\n"[..],
        )
        .unwrap();
        ar.append(
            &ar::Header::new(b"data.tar.xz".to_vec(), data.len() as u64),
            &data[..],
        )
        .unwrap();
        ar.into_inner().unwrap()
    }

    #[test]
    fn reads_files_with_modes_and_filter() {
        let deb = make_deb(&[
            ("./usr/bin/a", b"AAA", 0o755),
            ("./usr/share/b", b"B", 0o644),
        ]);
        let entries = data_entries(&deb, "test", &|p| p.starts_with("usr/bin")).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, "usr/bin/a");
        assert_eq!(entries[0].mode, 0o755);
        assert_eq!(entries[0].kind, DebEntryKind::File(b"AAA".to_vec()));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        for bad in [&b""[..], b"!<arch>\n", b"not an archive at all"] {
            let err = data_entries(bad, "pkg", &|_| true).unwrap_err();
            assert!(matches!(err, InputError::BadDeb { .. }), "{err}");
            assert!(
                err.to_string()
                    .starts_with("pkg: not a valid Debian package"),
                "{err}"
            );
        }
    }

    #[test]
    fn truncated_package_is_an_error_not_a_panic() {
        let deb = make_deb(&[("./x", &[7u8; 5000], 0o644)]);
        for cut in [8, 60, 100, deb.len() / 2, deb.len() - 1] {
            assert!(
                data_entries(&deb[..cut], "pkg", &|_| true).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn normalise_refuses_climbing_paths() {
        assert_eq!(normalise("./a/b/").as_deref(), Some("a/b"));
        assert_eq!(normalise("a/../../etc"), None);
    }
}
