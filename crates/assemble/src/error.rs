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

    /// A host file that could not be read as one (not a regular file, too large), or an output
    /// that would overwrite an input.
    #[error(transparent)]
    File(#[from] snpkit_fsguard::FsError),

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

    #[error(
        "moving the boot runs/ of {} into the new image failed ({source}); {outcome}",
        target.display()
    )]
    RunsNotMoved {
        target: PathBuf,
        source: std::io::Error,
        outcome: String,
    },

    #[error(
        "kernel {release}: module {module} is in the lock's load order but not in the kernel's files; the \
         kernel input is not what was locked: run `cargo xtask lock {recipe}` and review the diff"
    )]
    ModuleMissing {
        release: String,
        module: String,
        recipe: String,
    },

    #[error("cannot write /etc/snpkit/init.json: {0}")]
    InitConfig(#[source] serde_json::Error),

    #[error(
        "{}: entry.argv[0]: {argv0} {problem} in the image; {fix}",
        file.display()
    )]
    EntryMissing {
        file: PathBuf,
        argv0: String,
        problem: String,
        fix: String,
    },

    #[error("SOURCE_DATE_EPOCH={value:?} is not a timestamp snpkit can use: {why}")]
    BadEpoch { value: String, why: String },
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}

impl BuildError {
    /// A short, stable name for what went wrong, for machines (`build --json` prints it).
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::Recipe(e) => match e {
                RecipeError::File(f) if f.kind() == "io" => "recipe_unreadable",
                RecipeError::File(f) => f.kind(),
                RecipeError::Syntax { .. } => "recipe_syntax",
                RecipeError::Invalid { .. } => "recipe_invalid",
                RecipeError::Template { .. } => "cmdline_template",
                RecipeError::NotFound { .. } => "recipe_not_found",
                RecipeError::LockMissing { .. } => "lock_missing",
                RecipeError::LockSyntax { .. } => "lock_invalid",
                RecipeError::LockStale { .. } => "lock_stale",
                _ => "recipe",
            },
            BuildError::Input(e) => match e {
                InputError::ChecksumMismatch { .. } => "checksum_mismatch",
                InputError::AptUnavailable { .. } => "apt_unavailable",
                InputError::PackageUnknown { .. } => "package_unknown",
                InputError::VersionGone { .. } => "version_gone",
                InputError::ModuleNotFound { .. } => "module_not_found",
                InputError::OvmfBuild { .. } => "ovmf_build_failed",
                InputError::ToolMissing { .. } => "tool_missing",
                InputError::UnsafeBuildPath { .. } => "unsafe_build_path",
                InputError::File(f) => f.kind(),
                _ => "input",
            },
            BuildError::Image(snpkit_image::ImageError::File(f)) => f.kind(),
            BuildError::Image(snpkit_image::ImageError::SpecialFile { .. }) => "special_file",
            BuildError::Image(snpkit_image::ImageError::SymlinkEscapes { .. }) => {
                "symlink_escapes_image"
            }
            BuildError::Image(_) => "image",
            BuildError::File(f) => f.kind(),
            BuildError::Io { .. } => "io",
            BuildError::LockMismatch { .. } => "lock_mismatch",
            BuildError::Reserved { .. } => "reserved_path",
            BuildError::Verity(_) => "verity",
            BuildError::OutOfSpace { .. } => "out_of_space",
            BuildError::RunsNotMoved { .. } => "runs_not_moved",
            BuildError::ModuleMissing { .. } => "module_missing",
            BuildError::InitConfig(_) => "init_config",
            BuildError::EntryMissing { .. } => "entry_missing",
            BuildError::BadEpoch { .. } => "bad_source_date_epoch",
        }
    }
}
