use std::path::PathBuf;

/// Why no project (or no snpkit source tree) could be used. Each names the folder and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{how} is empty: name the folder that holds recipes/ (or snpkit.toml)")]
    Empty { how: String },
    #[error("{how}: {path} does not exist: name the folder that holds recipes/ (or snpkit.toml)")]
    Missing { how: String, path: PathBuf },
    #[error("{how}: {path} is not a folder: name the folder that holds recipes/ (or snpkit.toml)")]
    NotAFolder { how: String, path: PathBuf },
    #[error(
        "{how}: {path} is not a snpkit project: it holds neither a recipes/ folder nor a snpkit.toml file; \
         name the folder that does (or create snpkit.toml there to make it one)"
    )]
    NotAProject { how: String, path: PathBuf },
    #[error("{how}: {path} cannot be read: {source}")]
    Unreadable {
        how: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no snpkit project here: neither {start} nor any folder above it holds a recipes/ folder or a \
         snpkit.toml file; run from inside a project, or pass --project DIR (or set SNPKIT_PROJECT)"
    )]
    NotFound { start: PathBuf },
    #[error(
        "the current folder cannot be read ({source}): pass --project DIR (or set SNPKIT_PROJECT)"
    )]
    NoCurrentDir {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{how}: {path} is not a snpkit source tree (no Cargo.toml, xtask/Cargo.toml and crates/guest/Cargo.toml): \
         name the snpkit checkout"
    )]
    NotASourceTree { how: String, path: PathBuf },
    #[error(
        "snpkit's sources are not where this binary was built ({built_from}) and not around it ({exe}): \
         the guest /init cannot be compiled; set SNPKIT_SOURCE to a snpkit checkout of the same version, \
         or rebuild snpkit where its sources are"
    )]
    NoSourceTree { built_from: PathBuf, exe: PathBuf },
}
