use snpkit_bundle::BundleError;
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

    /// Writing the image folder (out of space, runs/ that could not move, …).
    #[error(transparent)]
    Bundle(#[from] BundleError),

    #[error("cannot {action} {path}")]
    Io {
        /// What was being done: "read", "list", "sync".
        action: &'static str,
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
        "kernel {release}: module {module} is in the lock's load order but not in the kernel's files; the \
         kernel input is not what was locked: run `cargo xtask lock {recipe}` and review the diff"
    )]
    ModuleMissing {
        release: String,
        module: String,
        recipe: String,
    },

    #[error("cannot write /etc/snpkit/init.json")]
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

    #[error("cannot predict the launch digests of {recipe}")]
    Prediction {
        recipe: String,
        #[source]
        source: crate::options::PredictionFailed,
    },

    #[error("SOURCE_DATE_EPOCH={value:?} is not a timestamp snpkit can use: {why}")]
    BadEpoch { value: String, why: String },

    #[error(
        "the firmware cannot be used for measured direct boot: use firmware.source = \"amdsev\" (built by \
         `cargo xtask ovmf`)"
    )]
    FirmwareUnfit(#[source] crate::options::UnfitReason),
}

impl BuildError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io {
            action,
            path,
            source,
        }
    }
}

impl BuildError {
    /// A short, stable name for what went wrong, for machines (`build --json` prints it).
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::Recipe(e) => match e {
                RecipeError::Read { .. } => "recipe_unreadable",
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
                _ => "input",
            },
            BuildError::Image(_) => "image",
            BuildError::Bundle(e) => match e {
                BundleError::OutOfSpace { .. } => "out_of_space",
                BundleError::KeptNotMoved { .. } => "runs_not_moved",
                _ => "io",
            },
            BuildError::Io { .. } => "io",
            BuildError::LockMismatch { .. } => "lock_mismatch",
            BuildError::Reserved { .. } => "reserved_path",
            BuildError::Verity(_) => "verity",
            BuildError::ModuleMissing { .. } => "module_missing",
            BuildError::InitConfig(_) => "init_config",
            BuildError::EntryMissing { .. } => "entry_missing",
            BuildError::BadEpoch { .. } => "bad_source_date_epoch",
            BuildError::FirmwareUnfit(_) => "firmware_unfit",
            BuildError::Prediction { .. } => "prediction",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfit_firmware_has_its_own_kind_and_says_its_reason_once() {
        let e = BuildError::FirmwareUnfit("it has no SNP_KERNEL_HASHES section".into());
        assert_eq!(e.kind(), "firmware_unfit");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("it has no SNP_KERNEL_HASHES section")
        );
        assert!(!e.to_string().contains("SNP_KERNEL_HASHES"), "{e}");
        assert!(
            e.to_string().contains("firmware.source = \"amdsev\""),
            "{e}"
        );
    }
}
