//! What can go wrong loading, caching or generating the emulated PSP's test chain.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EmulatedError {
    #[error("test chain cache: cannot {action} {path}")]
    Io {
        /// What was being done: "read", "write", "create the folder".
        action: &'static str,
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
    /// A file of the chain that is exposed (a key others can read), no regular file or too large.
    #[error(transparent)]
    File(#[from] snpkit_fsguard::FsError),
}

pub(super) fn io(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> EmulatedError + use<> {
    let path = path.to_path_buf();
    move |source| EmulatedError::Io {
        action,
        path,
        source,
    }
}

pub(super) fn gen_err(e: impl std::fmt::Display) -> EmulatedError {
    EmulatedError::Generate(e.to_string())
}
