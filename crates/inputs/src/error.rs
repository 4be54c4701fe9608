use snpkit_bundle::Sha256Sum;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done: "read", "create the folder", "rename into place".
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A host file that could not be read as one (not a regular file, too large, outside its
    /// folder).
    #[error(transparent)]
    File(#[from] snpkit_fsguard::FsError),

    #[error(
        "no cache directory: neither SNPKIT_CACHE, XDG_CACHE_HOME nor HOME is set; set one of them"
    )]
    NoCacheDir,

    #[error("{what}: SHA-256 is {found}, but {expected} is pinned; {fix}")]
    ChecksumMismatch {
        what: String,
        expected: Sha256Sum,
        found: Sha256Sum,
        fix: String,
    },

    #[error(
        "`{tool}` is not available ({detail}); snpkit fetches Debian packages through apt: run this on Debian or \
         Ubuntu (`cargo xtask setup` adds the suites it needs), or give the recipe a local kernel (kernel.path)"
    )]
    AptUnavailable { tool: String, detail: String },

    #[error(
        "apt knows no package {name:?}; check the name, and run `cargo xtask setup` (as root) so apt has the \
         bookworm-backports and trixie suites snpkit uses"
    )]
    PackageUnknown { name: String },

    #[error(
        "{name} version {version} is no longer in the archive (apt offers: {available}); Debian replaces \
         kernels and point releases every few weeks, and apt may only have an old index: run `apt-get update` \
         (as root), then `cargo xtask lock {recipe}`. If the version is still gone, pin an available one in \
         the recipe (or remove version and sha256 there), lock again, then review and commit the new lock"
    )]
    VersionGone {
        name: String,
        version: String,
        available: String,
        /// The recipe whose lock pins the package, for the command that refreshes it.
        recipe: String,
    },

    /// A package's dependencies cannot be resolved from the archive index.
    #[error("{key}: {chain} {problem}; {fix}")]
    Dependency {
        /// The recipe entry whose closure it is, `packages[i]`.
        key: String,
        /// From the entry's package to the one whose dependency fails, `a → b → c`.
        chain: String,
        problem: String,
        fix: String,
    },

    #[error("`{command}` failed: {detail}")]
    CommandFailed { command: String, detail: String },

    #[error("{what}: not a valid Debian package: {detail}")]
    BadDeb { what: String, detail: String },

    #[error("{what}: {detail}")]
    BadKernel { what: String, detail: String },

    #[error(
        "kernel {release} has no module named {name:?} (not in modules.dep or modules.builtin); check the name with `modinfo`"
    )]
    ModuleNotFound { release: String, name: String },

    #[error(
        "building the AmdSev OVMF failed at `{step}`; the last lines of its log ({log}):\n{tail}"
    )]
    OvmfBuild {
        step: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "{path} {problem}; snpkit builds the AmdSev OVMF in this fixed folder (the path ends up in the \
         firmware) and uses it only when it is its own: remove it (as its owner, or root) if no build is \
         running there, then rerun"
    )]
    UnsafeBuildPath { path: PathBuf, problem: String },

    #[error(
        "{tool} is needed to {purpose} but is not installed; run `cargo xtask setup` (as root) or install the Debian package {package}"
    )]
    ToolMissing {
        tool: String,
        purpose: String,
        package: String,
    },
}

impl InputError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> InputError {
        let path = path.into();
        move |source| InputError::Io {
            action,
            path,
            source,
        }
    }
}
