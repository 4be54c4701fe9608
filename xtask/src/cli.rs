//! What every command shares: logging, the project and the source tree, progress bars and output.

use snpkit_project::{Project, SourceTree};
use std::path::PathBuf;
use std::sync::OnceLock;

pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SNPKIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `--project DIR` as given, set once by `main` before any command runs.
static PROJECT_FLAG: OnceLock<Option<PathBuf>> = OnceLock::new();
/// The project, found on first use: commands that need none (`verify --report`, `keygen`,
/// `setup`) run anywhere.
static PROJECT: OnceLock<Project> = OnceLock::new();

pub fn set_project_flag(flag: Option<PathBuf>) {
    // Set once, from `main`; a second call (none today) keeps the first value.
    let _ = PROJECT_FLAG.set(flag);
}

/// The project this command acts on: `--project`, else `$SNPKIT_PROJECT`, else upwards from the
/// current folder (`snpkit_project::Project::find`). Never the tree the binary was built in.
pub fn project() -> anyhow::Result<&'static Project> {
    if let Some(p) = PROJECT.get() {
        return Ok(p);
    }
    let flag = PROJECT_FLAG.get().cloned().flatten();
    let found = Project::locate(flag.as_deref())?;
    tracing::info!(root = %found.root().display(), how = %found.found(), "project");
    Ok(PROJECT.get_or_init(|| found))
}

/// The workspace this binary was compiled in: only a hint for [`source_tree`], checked there.
pub fn built_from() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// snpkit's own sources (the guest `/init`'s crates, the fuzz targets, the workspace `cargo
/// xtask test` runs), found at run time by `snpkit_project::SourceTree`.
pub fn source_tree() -> anyhow::Result<SourceTree> {
    let tree = SourceTree::locate(&built_from())?;
    if let Some(other) = tree.built_from() {
        tracing::info!(
            "this binary was built in {}; using the snpkit sources at {} ({})",
            other.display(),
            tree.root().display(),
            tree.found()
        );
    }
    Ok(tree)
}

/// The project's images folder, `<project>/images`.
pub fn default_images() -> anyhow::Result<PathBuf> {
    Ok(project()?.images())
}

/// The vendored test vectors (`SNPKIT_VECTORS` overrides), found as the tests find them.
pub use snpkit_testkit::vectors::dir as vectors_dir;

/// Where recipes are read from and images written to (defaults: the project's own folders).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Dirs {
    /// Folder of recipes [default: <project>/recipes].
    #[arg(long, value_name = "DIR", global = true)]
    pub recipes_dir: Option<PathBuf>,
    /// Folder of images [default: <project>/images].
    #[arg(long, value_name = "DIR", global = true)]
    pub images: Option<PathBuf>,
}

impl Dirs {
    pub fn recipes(&self) -> anyhow::Result<PathBuf> {
        match &self.recipes_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(project()?.recipes()),
        }
    }

    pub fn images(&self) -> anyhow::Result<PathBuf> {
        match &self.images {
            Some(dir) => Ok(dir.clone()),
            None => default_images(),
        }
    }
}

/// `cargo xtask verify … | head`: once the reader of stdout (or stderr) has gone, a command's words
/// have nowhere to go, and it ends quietly with 141, the status a shell reports for a tool ended
/// by SIGPIPE (so `set -o pipefail` still sees it), instead of panicking with 101.
///
/// std's `print!` panics when a write fails; this hook recognises that panic by std's message and
/// the error's text (the io error itself is not reachable from a hook) and hands every other panic
/// to the default hook. Not `signal(SIGPIPE, SIG_DFL)`: that needs unsafe code and would also end
/// snpkit without a word when a child's pipe (QEMU's, apt's) closes, where an error is wanted.
pub fn quiet_on_broken_pipe() {
    let broken = std::io::Error::from_raw_os_error(nix::errno::Errno::EPIPE as i32).to_string();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let printing = text.starts_with("failed printing to stdout")
            || text.starts_with("failed printing to stderr");
        if printing && text.ends_with(&broken) {
            std::process::exit(141);
        }
        default(info)
    }));
}
