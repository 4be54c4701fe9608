use std::path::PathBuf;

/// What went wrong with the image folder. Each variant names the path; none repeats its
/// `#[source]` in its message (the chain is printed once, by whoever prints the error).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Only the path: the cause (`No such file or directory`) follows as the source, as in
    /// `cat: PATH: CAUSE`.
    #[error("{}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Writing, or another change to the folder: what was being done, and to what.
    #[error("cannot {action} {}", path.display())]
    Write {
        /// "write", "create", "sync", "swap the new image with", …
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{} is {kind}, not a regular file: the files of an image folder are read only from regular files",
        path.display()
    )]
    NotAFile { path: PathBuf, kind: &'static str },

    #[error("{} is larger than a {what} can be (at most {max} bytes)", path.display())]
    TooBig {
        path: PathBuf,
        what: &'static str,
        max: u64,
    },

    #[error("{} is not a valid {what}", path.display())]
    Json {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("{}: {why}", path.display())]
    Inconsistent { path: PathBuf, why: String },

    #[error("{} has schema {found}; this snpkit reads schema {supported}", path.display())]
    Schema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The cause, when there is one (the folder or its manifest not found), follows in the chain.
    #[error("no image at {}: run `cargo xtask build {recipe}` first", dir.display())]
    NoImage {
        dir: PathBuf,
        recipe: String,
        #[source]
        source: Option<std::io::Error>,
    },

    #[error(
        "{} is missing: the image has no prediction; run `cargo xtask measure {recipe}` (or rebuild \
         with `cargo xtask build {recipe}`, which writes it)",
        path.display()
    )]
    NoExpected { path: PathBuf, recipe: String },

    #[error("{} holds no boot runs (runs/<id>/run.json); run `cargo xtask boot` first", dir.display())]
    NoRuns { dir: PathBuf },

    #[error("{id:?} is not a run id: {why}")]
    BadRunId { id: String, why: &'static str },

    #[error("{} is not a file name of an image folder: {why}", name)]
    BadName { name: String, why: &'static str },

    #[error(
        "{}/ is out of space writing {file} (about {needed_mb} MB needed); free space and rerun; the previous \
         image is unchanged",
        dir.display()
    )]
    OutOfSpace {
        dir: PathBuf,
        file: String,
        needed_mb: u64,
    },

    #[error("moving {entry}/ of {} into the new image failed; {outcome}", target.display())]
    KeptNotMoved {
        target: PathBuf,
        entry: String,
        #[source]
        source: std::io::Error,
        outcome: String,
    },
}

impl BundleError {
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BundleError {
        let path = path.into();
        move |source| BundleError::Read { path, source }
    }

    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BundleError {
        BundleError::change("write", path)
    }

    /// `map_err` for a change to the folder other than writing a file: `action` says which.
    pub(crate) fn change(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> BundleError {
        let path = path.into();
        move |source| BundleError::Write {
            action,
            path,
            source,
        }
    }

    /// True when the file (or folder) the error is about does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            BundleError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound
        )
    }
}
