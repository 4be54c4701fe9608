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

    /// A host file that could not be read as one (not a regular file, too large), or an output
    /// that would overwrite an input.
    #[error(transparent)]
    File(#[from] snpkit_fsguard::FsError),

    /// Writing the image folder (out of space, runs/ that could not move, …).
    #[error(transparent)]
    Bundle(#[from] BundleError),

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

    #[error(
        "{}: {key}: {pattern:?} matches nothing in {package}; list the package's files with \
         `dpkg-deb -c {filename}` (in the cache, or `apt-get download {package}`) and correct the path",
        file.display()
    )]
    IncludeUnmatched {
        file: PathBuf,
        key: String,
        pattern: String,
        package: String,
        filename: String,
    },

    #[error("the image is not closed: {path} needs {missing}, which is not in the image; {fix}")]
    NotClosed {
        /// The ELF file, absolute in the image.
        path: String,
        /// `the library libssl.so.3` or `its interpreter /lib64/ld-linux-x86-64.so.2`.
        missing: String,
        fix: String,
    },

    #[error(
        "the symlink {path} -> {target} is left dangling in the image ({why}); add what it points to, or \
         remove the link (a package's include may have taken the link without its target)"
    )]
    DanglingSymlink {
        path: String,
        target: String,
        why: String,
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
                InputError::Dependency { .. } => "dependency_unsatisfied",
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
            BuildError::Bundle(e) => match e {
                BundleError::OutOfSpace { .. } => "out_of_space",
                BundleError::KeptNotMoved { .. } => "runs_not_moved",
                _ => "io",
            },
            BuildError::LockMismatch { .. } => "lock_mismatch",
            BuildError::Reserved { .. } => "reserved_path",
            BuildError::Verity(_) => "verity",
            BuildError::ModuleMissing { .. } => "module_missing",
            BuildError::InitConfig(_) => "init_config",
            BuildError::EntryMissing { .. } => "entry_missing",
            BuildError::IncludeUnmatched { .. } => "include_unmatched",
            BuildError::NotClosed { .. } => "image_not_closed",
            BuildError::DanglingSymlink { .. } => "dangling_symlink",
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
