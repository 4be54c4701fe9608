//! Reading with bounds and writing atomically: the two ways every file of the folder is touched.
//!
//! Bounds count the bytes actually read, never the size a file reports: a FIFO, a character
//! device or a `/proc` file reports 0 and then never ends. Files of an image folder are read only
//! when they are regular files ([`read_regular`]); a file a user names on the command line may be
//! anything readable, a pipe included, and is only counted ([`read_counted`]).

use crate::BundleError;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a file is and how large it may be, for reading it and for the error when it is larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What the file is, in words (`manifest`, `report`).
    pub what: &'static str,
    pub max: u64,
}

impl Limit {
    pub const MANIFEST: Limit = Limit {
        what: "manifest",
        max: 16 << 20,
    };
    pub const EXPECTED: Limit = Limit {
        what: "expected.json",
        max: 16 << 20,
    };
    pub const RUN_RECORD: Limit = Limit {
        what: "run record",
        max: 64 << 10,
    };
    /// A report (1184 bytes), with room for an HCL wrapper, and no more.
    pub const REPORT: Limit = Limit {
        what: "report",
        max: 64 << 10,
    };
    pub const PUBKEY: Limit = Limit {
        what: "public key",
        max: 64 << 10,
    };
    pub const NONCE: Limit = Limit {
        what: "nonce",
        max: 1024,
    };
    /// The kernel takes a few KiB at most; generous, so that the measurement names the problem.
    pub const CMDLINE: Limit = Limit {
        what: "kernel command line",
        max: 1 << 20,
    };
}

/// Reads a regular file of at most `limit.max` bytes. Anything else — a folder, a FIFO (whose
/// open would wait for a writer), a device — is refused before a byte is read.
pub fn read_regular(path: &Path, limit: Limit) -> Result<Vec<u8>, BundleError> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below either way.
    // For a regular file the flag changes nothing.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits() | nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)
        .map_err(BundleError::read(path))?;
    let kind = file
        .metadata()
        .map_err(BundleError::read(path))?
        .file_type();
    if !kind.is_file() {
        return Err(BundleError::NotAFile {
            path: path.to_owned(),
            kind: describe(kind),
        });
    }
    read_at_most(file, path, limit)
}

/// Reads whatever `path` names — a file, a pipe, `/dev/stdin` — up to `limit.max` bytes; one byte
/// more is an error. For paths a user gives on the command line, where a pipe is a fair choice.
pub fn read_counted(path: &Path, limit: Limit) -> Result<Vec<u8>, BundleError> {
    let file = File::open(path).map_err(BundleError::read(path))?;
    read_at_most(file, path, limit)
}

fn read_at_most(file: File, path: &Path, limit: Limit) -> Result<Vec<u8>, BundleError> {
    let mut bytes = Vec::new();
    file.take(limit.max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(BundleError::read(path))?;
    if bytes.len() as u64 > limit.max {
        return Err(BundleError::TooBig {
            path: path.to_owned(),
            what: limit.what,
            max: limit.max,
        });
    }
    Ok(bytes)
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part: a
/// temporary file beside it, synced, renamed over it, and the folder synced. Mode 0644.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempfile_in(dir)
        .map_err(BundleError::write(path))?;
    tmp.write_all(bytes).map_err(BundleError::write(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(BundleError::write(path))?;
    tmp.as_file().sync_all().map_err(BundleError::write(path))?;
    // On failure the temporary file is removed when `tmp`, handed back in the error, drops.
    tmp.persist(path)
        .map_err(|e| BundleError::write(path)(e.error))?;
    sync_dir(dir)
}

/// Makes a folder's entries (names, renames) durable, not only its files.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BundleError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(BundleError::change("sync", dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SMALL: Limit = Limit {
        what: "test file",
        max: 8,
    };

    #[test]
    fn reads_a_file_up_to_its_limit_and_refuses_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("f");
        std::fs::write(&at, b"12345678").unwrap();
        assert_eq!(read_regular(&at, SMALL).unwrap(), b"12345678");
        assert_eq!(read_counted(&at, SMALL).unwrap(), b"12345678");
        std::fs::write(&at, b"123456789").unwrap();
        for err in [
            read_regular(&at, SMALL).unwrap_err(),
            read_counted(&at, SMALL).unwrap_err(),
        ] {
            assert!(matches!(err, BundleError::TooBig { max: 8, .. }), "{err}");
            assert!(err.to_string().contains("at most 8 bytes"), "{err}");
        }
    }

    /// Files that report size 0 and never end, or never begin: refused or cut off by counting.
    #[test]
    fn hostile_file_types_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let cases: [(&Path, &str); 4] = [
            (&fifo, "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (Path::new("/dev/null"), "a character device"),
            (dir.path(), "a folder"),
        ];
        for (path, kind) in cases {
            let err = read_regular(path, SMALL).unwrap_err();
            assert!(
                matches!(&err, BundleError::NotAFile { kind: k, .. } if *k == kind),
                "{}: {err}",
                path.display()
            );
        }
        // Counted, /dev/zero ends at the limit instead of filling memory.
        let err = read_counted(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert!(matches!(err, BundleError::TooBig { .. }), "{err}");
        // A /proc file reports size 0 but has content: counting reads it.
        let status = read_counted(
            Path::new("/proc/self/status"),
            Limit {
                max: 1 << 20,
                ..SMALL
            },
        );
        assert!(status.unwrap().starts_with(b"Name:"));
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let err = read_regular(Path::new("/nonexistent/snpkit"), SMALL).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("expected.json");
        write_atomic(&at, b"old").unwrap();
        write_atomic(&at, b"new contents").unwrap();
        assert_eq!(std::fs::read(&at).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["expected.json"]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&at).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Into a folder that does not exist: an error naming the file, nothing created.
        let err = write_atomic(&dir.path().join("no/such/file"), b"x").unwrap_err();
        assert!(err.to_string().contains("no/such/file"), "{err}");
    }
}
