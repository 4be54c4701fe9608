//! What can go wrong loading, caching or generating the emulated PSP's test chain.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EmulatedError {
    #[error("test chain cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("test chain cache {path} is damaged ({reason}); delete the folder to regenerate it")]
    Damaged { path: PathBuf, reason: String },
    #[error("generating the test chain failed: {0}")]
    Generate(String),
    #[error("no cache folder: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmulatedError + '_ {
    move |source| EmulatedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn gen_err(e: impl std::fmt::Display) -> EmulatedError {
    EmulatedError::Generate(e.to_string())
}
