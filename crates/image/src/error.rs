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

    #[error("{what} does not fit the cpio newc format: {problem}")]
    TooLarge { what: String, problem: String },

    #[error("writing the image failed")]
    Write(#[source] std::io::Error),
}
