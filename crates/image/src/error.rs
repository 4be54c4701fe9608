use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done: "read", "list", "read the link".
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path:?} in the image: {problem}")]
    Conflict { path: String, problem: String },

    #[error("{path:?} is not a valid path inside the image: {problem}")]
    BadPath { path: String, problem: String },

    #[error("{what}: {problem}")]
    Archive { what: String, problem: String },

    #[error(
        "{path} is {kind}: copied folders and archives may hold regular files, folders, symlinks and \
         hard links only; devices, FIFOs and sockets are refused (see docs/recipes.md)"
    )]
    SpecialFile { path: String, kind: String },

    #[error(
        "symlink {path:?} points to {target:?}, which climbs above the image's root: a symlink must \
         point inside the image (an absolute target, or a relative one that stays below /)"
    )]
    SymlinkEscapes { path: String, target: String },

    /// A host file that could not be read as one (not a regular file, too large).
    #[error(transparent)]
    File(#[from] snpkit_fsguard::FsError),

    #[error("{what} does not fit the cpio newc format: {problem}")]
    TooLarge { what: String, problem: String },

    #[error("writing the image failed")]
    Write(#[source] std::io::Error),
}
