use snpkit_image::ImageError;
use snpkit_inputs::InputError;
use snpkit_recipe::RecipeError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),

    #[error(transparent)]
    Input(#[from] InputError),

    #[error(transparent)]
    Image(#[from] ImageError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{what} does not match recipe.lock: locked {locked}, found {found}; {fix}")]
    LockMismatch {
        what: String,
        locked: String,
        found: String,
        fix: String,
    },

    #[error("{path} is a reserved path in snpkit images ({why}); the recipe must not write it")]
    Reserved { path: String, why: String },

    #[error("dm-verity: {0}")]
    Verity(String),

    #[error("SOURCE_DATE_EPOCH={value:?} is not a timestamp snpkit can use: {why}")]
    BadEpoch { value: String, why: String },
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}
