//! What every command shares: logging, the workspace root, progress bars and output.

use std::path::PathBuf;

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

/// The workspace root: xtask lives one level below it.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The workspace's images folder, `<workspace>/images`.
pub fn default_images() -> PathBuf {
    workspace_root().join(snpkit_bundle::IMAGES_DIR)
}

/// The vendored test vectors (`SNPKIT_VECTORS` overrides), found as the tests find them.
pub use snpkit_testkit::vectors::dir as vectors_dir;

/// Where recipes are read from and images written to (defaults: the workspace's own folders).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Dirs {
    /// Folder of recipes [default: <workspace>/recipes].
    #[arg(long, value_name = "DIR", global = true)]
    pub recipes_dir: Option<PathBuf>,
    /// Folder of images [default: <workspace>/images].
    #[arg(long, value_name = "DIR", global = true)]
    pub images: Option<PathBuf>,
}

impl Dirs {
    pub fn recipes(&self, root: &std::path::Path) -> PathBuf {
        self.recipes_dir
            .clone()
            .unwrap_or_else(|| root.join("recipes"))
    }

    pub fn images(&self, root: &std::path::Path) -> PathBuf {
        self.images
            .clone()
            .unwrap_or_else(|| root.join(snpkit_bundle::IMAGES_DIR))
    }
}
