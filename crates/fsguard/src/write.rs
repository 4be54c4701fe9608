//! Writes that a reader never sees half done.

use crate::FsError;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part: a
/// temporary file beside it (same folder, so the rename stays on one file system), written,
/// given `mode`, synced, renamed over `path`, and the folder synced. `what` names the file in
/// errors. On any failure the temporary file is removed and `path` is as it was.
pub fn write_atomic(path: &Path, what: &str, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let io = |doing: &'static str| {
        move |error: std::io::Error| FsError::Io {
            path: path.to_path_buf(),
            what: what.to_owned(),
            doing,
            error,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Created 0600 by tempfile: the bytes are never readable by others before `mode` says so.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempfile_in(dir)
        .map_err(io("write"))?;
    tmp.write_all(bytes).map_err(io("write"))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io("write"))?;
    tmp.as_file().sync_all().map_err(io("write"))?;
    // On failure the temporary file is removed when the one handed back in the error drops.
    tmp.persist(path)
        .map_err(|e| io("rename into place")(e.error))?;
    sync_dir(dir, what)
}

/// Makes a folder's entries (names, renames) durable, not only its files' bytes.
pub fn sync_dir(dir: &Path, what: &str) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|error| FsError::Io {
            path: dir.to_path_buf(),
            what: what.to_owned(),
            doing: "sync the folder of",
            error,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_with_their_mode_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("expected.json");
        write_atomic(&at, "expected.json", b"old", 0o644).unwrap();
        write_atomic(&at, "expected.json", b"new contents", 0o644).unwrap();
        assert_eq!(std::fs::read(&at).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["expected.json"]);
        assert_eq!(
            std::fs::metadata(&at).unwrap().permissions().mode() & 0o777,
            0o644
        );
        write_atomic(&at, "a key", b"secret", 0o600).unwrap();
        assert_eq!(
            std::fs::metadata(&at).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Into a folder that does not exist: an error naming the file, nothing created.
        let err = write_atomic(&dir.path().join("no/such/file"), "x", b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("no/such/file"), "{err}");
        assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    }
}
