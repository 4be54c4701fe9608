use std::path::PathBuf;

/// Everything that can be wrong with a recipe or its lock file. Each variant names the file, the
/// key and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: not a valid recipe: {message}")]
    Syntax { path: PathBuf, message: String },

    #[error("{path}: {key}: {problem}; {fix}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
        fix: String,
    },

    #[error("{path}: cmdline template: {message}")]
    Template { path: PathBuf, message: String },

    #[error(
        "no recipe named {name:?}: {path} does not exist; recipes are folders under recipes/ holding a recipe.toml"
    )]
    NotFound { name: String, path: PathBuf },

    #[error(
        "{path} is missing: run `cargo xtask lock {recipe}` to resolve and pin the recipe's inputs"
    )]
    LockMissing { recipe: String, path: PathBuf },

    #[error(
        "{path}: not a valid lock file: {message}; run `cargo xtask lock {recipe}` to rewrite it"
    )]
    LockSyntax {
        recipe: String,
        path: PathBuf,
        message: String,
    },

    #[error(
        "{path} is out of date: {what}; run `cargo xtask lock {recipe}` to re-resolve the inputs and review the diff"
    )]
    LockStale {
        recipe: String,
        path: PathBuf,
        what: String,
    },
}

impl RecipeError {
    pub(crate) fn invalid(
        path: &std::path::Path,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
