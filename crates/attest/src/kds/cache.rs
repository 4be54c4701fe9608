//! The KDS cache on disk: one file per URL path, written atomically.

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

pub fn read(path: &Path) -> Result<Option<Vec<u8>>, KdsError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KdsError::Cache {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<(), KdsError> {
    let err = |source| KdsError::Cache {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
