//! The KDS cache on disk: one file per URL path, written atomically, read with a size cap.

use super::KdsError;
use std::path::{Path, PathBuf};

/// `/vcek/v1/Milan/<hwid>?blSPL=3&…` → `<dir>/vcek/v1/Milan/<hwid>/blSPL=3&….der`.
pub fn file_for(dir: &Path, url_path: &str) -> PathBuf {
    let (path, query) = url_path.split_once('?').unwrap_or((url_path, ""));
    let mut file = dir.to_path_buf();
    for part in path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        file.push(part);
    }
    if !query.is_empty() {
        file.push(format!("{}.der", query.replace(['/', '\\'], "_")));
    }
    file
}

/// What a cache file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    Missing,
    /// Not usable as read (larger than the cap, not a regular file, unreadable): why. Never read
    /// past the cap, so a damaged or planted file cannot exhaust memory or hang on a FIFO.
    Unusable(String),
    Bytes(Vec<u8>),
}

/// Reads a cache file, at most `max` bytes, regular files only. Never an error: whatever is
/// wrong with a cache file makes it [`Cached::Unusable`], so it costs a fetch, not a verdict.
pub fn read(path: &Path, max: u64) -> Cached {
    match snpkit_fsguard::read(path, "a KDS cache file", max) {
        Ok(bytes) => Cached::Bytes(bytes),
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Cached::Missing,
        Err(snpkit_fsguard::FsError::TooLarge { .. }) => {
            // The size is only for the message: the read stopped at the cap.
            let size = std::fs::metadata(path).map_or(max + 1, |m| m.len());
            Cached::Unusable(format!("{size} bytes, more than {max}"))
        }
        Err(e) => Cached::Unusable(e.to_string()),
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KdsError + use<> {
    let path = path.to_path_buf();
    move |source| KdsError::Cache {
        action,
        path,
        source,
    }
}

/// Removes a cache file that failed its checks, with a note, and returns the reason for
/// messages. A file that cannot be removed is left (and will be fetched over when online).
pub fn discard(path: &Path, what: &str, reason: String) -> String {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::warn!(
            "KDS cache: {} is not {what} ({reason}); removed it, it is fetched again when online",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(
            "KDS cache: {} is not {what} ({reason}), and removing it failed: {e}",
            path.display()
        ),
    }
    reason
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), KdsError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("create the folder", parent))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename into place", path))
}
