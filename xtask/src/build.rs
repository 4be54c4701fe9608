//! `cargo xtask build <recipe>` and `cargo xtask lock <recipe>`.

use crate::{cli, guest, ui};
use anyhow::Context;
use snpkit_build::{BuildOptions, Reporter};
use snpkit_inputs::Cache;
use snpkit_recipe::{LOCK_FILE, Recipe};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe name (a folder under recipes/).
    pub recipe: String,
    /// Print a JSON summary on stdout instead of text (for CI).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

#[derive(clap::Args)]
pub struct LockArgs {
    /// Recipe name (a folder under recipes/).
    pub recipe: String,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

struct Bars {
    quiet: bool,
}

impl Reporter for Bars {
    fn step(&self, message: &str) -> Box<dyn snpkit_inputs::Progress + '_> {
        Box::new(ui::Step::new(message, self.quiet))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let built = build(&args.recipe, &args.dirs, args.json)?;
    if args.json {
        let summary = serde_json::json!({
            "recipe": built.manifest.recipe,
            "image": built.dir,
            "layout": built.manifest.layout,
            "kernel_release": built.manifest.kernel_release,
            "cmdline": built.manifest.cmdline,
            "artifacts": built.manifest.artifacts,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("built {} in {}", built.manifest.recipe, built.dir.display());
        for a in &built.manifest.artifacts {
            println!("  {:<16} {:>10} bytes  sha256 {}", a.name, a.size, a.sha256);
        }
        println!("  cmdline: {}", built.manifest.cmdline);
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds a recipe into its image folder (shared by `build` and `demo`).
pub fn build(
    recipe_name: &str,
    dirs: &cli::Dirs,
    quiet: bool,
) -> anyhow::Result<snpkit_build::BuiltImage> {
    let root = cli::workspace_root();
    let recipe_file = dirs
        .recipes(&root)
        .join(recipe_name)
        .join(snpkit_recipe::RECIPE_FILE);
    let recipe = Recipe::load_named(&dirs.recipes(&root), recipe_name)?;
    let recipe_text = std::fs::read(&recipe_file)
        .with_context(|| format!("reading {}", recipe_file.display()))?;
    let cache = Cache::from_env()?;

    let step = ui::Step::new("building the guest /init (static)", quiet);
    let guest_init = guest::build(&root, cache.root(), true)?;
    step.finish(&format!("guest /init: {} bytes", guest_init.len()));

    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let mut tools = BTreeMap::new();
    tools.insert("rustc".to_owned(), guest::rustc_version());
    let images_dir = dirs.images(&root);
    let opts = BuildOptions {
        images_dir: &images_dir,
        cache: &cache,
        guest_init: &guest_init,
        source_date_epoch: epoch.as_deref(),
        tools,
        check_firmware: &crate::firmware::check,
        reporter: &Bars { quiet },
    };
    Ok(snpkit_build::build(&recipe, &recipe_text, &opts)?)
}

pub fn lock(args: LockArgs) -> anyhow::Result<ExitCode> {
    let root = cli::workspace_root();
    let recipes = args.dirs.recipes(&root);
    let recipe = Recipe::load_named(&recipes, &args.recipe)?;
    let recipe_file: PathBuf = recipes.join(&args.recipe).join(snpkit_recipe::RECIPE_FILE);
    let text = std::fs::read(&recipe_file)
        .with_context(|| format!("reading {}", recipe_file.display()))?;
    let cache = Cache::from_env()?;
    let lock = snpkit_build::lock(&recipe, &text, &cache, &Bars { quiet: false })?;
    let path = recipe.dir.join(LOCK_FILE);
    let old = std::fs::read_to_string(&path).ok();
    lock.write(&path)?;
    match old {
        Some(old) if old == lock.to_toml() => println!("{} is up to date", path.display()),
        Some(_) => println!(
            "updated {}: review the diff (git diff) before committing it",
            path.display()
        ),
        None => println!("wrote {}", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}
