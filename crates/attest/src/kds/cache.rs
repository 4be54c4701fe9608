//! The KDS cache on disk: one file per URL path, written atomically, read with a size cap.

use super::KdsError;
use std::io::Read;
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
    /// Larger than the cap (its size): not read, so a damaged or planted file cannot exhaust memory.
    TooBig(u64),
    Bytes(Vec<u8>),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KdsError + use<> {
    let path = path.to_path_buf();
    move |source| KdsError::Cache {
        action,
        path,
        source,
    }
}

pub fn read(path: &Path, max: u64) -> Result<Cached, KdsError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Cached::Missing),
        Err(source) => return Err(io("open", path)(source)),
    };
    let mut bytes = Vec::new();
    // Read at most one byte past the cap: the metadata could change under us.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read", path))?;
    if bytes.len() as u64 > max {
        let size = std::fs::metadata(path).map_or(max + 1, |m| m.len());
        return Ok(Cached::TooBig(size));
    }
    Ok(Cached::Bytes(bytes))
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), KdsError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("create the folder", parent))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename into place", path))
}
