//! `cargo xtask build <recipe>` and `cargo xtask lock <recipe>`.

use crate::{cli, guest, ui};
use snpkit_assemble::{BuildError, BuildOptions, Reporter};
use snpkit_inputs::Cache;
use snpkit_measure::check_launch;
use snpkit_recipe::sources::{MAX_LOCK_FILE, MAX_RECIPE_FILE};
use snpkit_recipe::{LOCK_FILE, Recipe};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe name (a folder under recipes/).
    pub recipe: String,
    /// Print a JSON summary on stdout instead of text (for CI); a failure prints {"error": …}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

#[derive(clap::Args)]
pub struct LockArgs {
    /// Recipe name (a folder under recipes/).
    pub recipe: String,
    /// Print a JSON summary on stdout instead of text (for CI); a failure prints {"error": …}.
    #[arg(long)]
    pub json: bool,
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
    let built = match build(&args.recipe, &args.dirs, args.json) {
        Ok(built) => built,
        Err(e) if args.json => return json_failure(&e),
        Err(e) => return Err(e),
    };
    if args.json {
        let mut summary = serde_json::json!({
            "recipe": built.manifest.recipe,
            "image": built.dir,
            "layout": built.manifest.layout,
            "kernel_release": built.manifest.kernel_release,
            "cmdline": built.manifest.cmdline,
            "artifacts": built.manifest.artifacts,
        });
        if !built.warnings.is_empty() {
            summary["warnings"] = serde_json::json!(built.warnings);
        }
        if !built.from_dependencies.is_empty() {
            summary["from_dependencies"] = serde_json::json!(built.from_dependencies);
        }
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for w in &built.warnings {
            eprintln!("warning: {w}");
        }
        if !built.from_dependencies.is_empty() {
            println!(
                "  taken from dependencies for the closed image: {}",
                built.from_dependencies.join(", ")
            );
        }
        println!("built {} in {}", built.manifest.recipe, built.dir.display());
        for a in &built.manifest.artifacts {
            println!("  {:<16} {:>10} bytes  sha256 {}", a.name, a.size, a.sha256);
        }
        println!("  cmdline: {}", built.manifest.cmdline);
        println!(
            "  {}: the launch digest of each launch configuration",
            snpkit_bundle::files::EXPECTED
        );
        for c in &built.expected.configs {
            println!("    {:<16} {}", c.launch.name, c.measurement);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `{"error": {"kind", "message", "causes"}}` on stdout for machines, the usual line on stderr
/// for people, and a failing exit code.
fn json_failure(e: &anyhow::Error) -> anyhow::Result<ExitCode> {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<BuildError>())
        .map_or("other", BuildError::kind);
    let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
    let v = serde_json::json!({
        "error": { "kind": kind, "message": e.to_string(), "causes": causes }
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    eprintln!("error: {e:#}");
    Ok(ExitCode::FAILURE)
}

/// Builds a recipe into its image folder (shared by `build` and `demo`).
pub fn build(
    recipe_name: &str,
    dirs: &cli::Dirs,
    quiet: bool,
) -> anyhow::Result<snpkit_assemble::BuiltImage> {
    let recipes = dirs.recipes()?;
    let recipe = Recipe::load_named(&recipes, recipe_name).map_err(BuildError::from)?;
    let recipe_file = recipes.join(recipe_name).join(snpkit_recipe::RECIPE_FILE);
    // Before the guest binary is compiled: a recipe that cannot be measured stops at once.
    recipe
        .check_launch(&check_launch)
        .map_err(BuildError::from)?;
    // Sources and the command line too: a recipe refused for them stops in its first second.
    recipe.check_sources().map_err(BuildError::from)?;
    snpkit_recipe::check_cmdline(&recipe, None).map_err(BuildError::from)?;
    let images_dir = dirs.images()?;
    snpkit_assemble::refuse_image_over_recipe(&images_dir, &recipe)?;
    let recipe_text = snpkit_fsguard::read(&recipe_file, "recipe.toml", MAX_RECIPE_FILE)?;
    // A missing, stale or old-format lock stops the build before the guest /init is compiled.
    let lock_path = recipe.dir.join(LOCK_FILE);
    snpkit_recipe::Lock::read(&lock_path, &recipe.name)
        .and_then(|l| l.check_fresh(&recipe_text, &lock_path, &recipe.name))
        .map_err(BuildError::from)?;
    let cache = Cache::from_env().map_err(BuildError::from)?;

    // snpkit's own sources, not the project's: an appliance repository holds recipes only.
    let source = cli::source_tree()?;
    let step = ui::Step::new("guest /init (static; kept by a hash of its inputs)", quiet);
    let init = guest::init(source.root(), &cache, true)?;
    let guest_init = init.bytes;
    step.finish(&format!(
        "guest /init: {} bytes ({}, inputs {})",
        guest_init.len(),
        if init.cached {
            "kept from an earlier build"
        } else {
            "compiled"
        },
        &init.key[..16]
    ));

    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let mut tools = BTreeMap::new();
    tools.insert("rustc".to_owned(), guest::rustc_version());
    let opts = BuildOptions {
        images_dir: &images_dir,
        cache: &cache,
        guest_init: &guest_init,
        source_date_epoch: epoch.as_deref(),
        tools,
        check_firmware: &|ovmf| Ok(snpkit_measure::check_direct_boot_firmware(ovmf)?),
        check_launch: &check_launch,
        predict: &|recipe, files, launch| Ok(snpkit_measure::predict(recipe, files, launch)?),
        reporter: &Bars { quiet },
    };
    Ok(snpkit_assemble::build(&recipe, &recipe_text, &opts)?)
}

pub fn lock(args: LockArgs) -> anyhow::Result<ExitCode> {
    match write_lock(&args) {
        Ok(code) => Ok(code),
        Err(e) if args.json => json_failure(&e),
        Err(e) => Err(e),
    }
}

fn write_lock(args: &LockArgs) -> anyhow::Result<ExitCode> {
    let recipes = args.dirs.recipes()?;
    let recipe = Recipe::load_named(&recipes, &args.recipe).map_err(BuildError::from)?;
    let recipe_file: PathBuf = recipes.join(&args.recipe).join(snpkit_recipe::RECIPE_FILE);
    let text = snpkit_fsguard::read(&recipe_file, "recipe.toml", MAX_RECIPE_FILE)?;
    let cache = Cache::from_env().map_err(BuildError::from)?;
    let lock = snpkit_assemble::lock(
        &recipe,
        &text,
        &cache,
        &check_launch,
        &Bars { quiet: args.json },
    )?;
    let pulled: Vec<String> = lock
        .packages
        .iter()
        .filter_map(|d| {
            d.pulled_by
                .as_ref()
                .map(|by| format!("{} {} (for {by})", d.name, d.version))
        })
        .collect();
    let warnings = snpkit_assemble::script_warnings(&lock);
    let path = recipe.dir.join(LOCK_FILE);
    let old = snpkit_fsguard::read_string(&path, "recipe.lock", MAX_LOCK_FILE).ok();
    lock.write(&path).map_err(BuildError::from)?;
    let status = match old {
        Some(old) if old == lock.to_toml() => "unchanged",
        Some(_) => "updated",
        None => "created",
    };
    if args.json {
        let v = serde_json::json!({
            "recipe": recipe.name,
            "lock": path,
            "status": status,
            "pins": lock,
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if !pulled.is_empty() {
            println!("dependencies pulled in: {}", pulled.join(", "));
        }
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        match status {
            "unchanged" => println!("{} is up to date", path.display()),
            "updated" => println!(
                "updated {}: review the diff (git diff) before committing it",
                path.display()
            ),
            _ => println!("wrote {}", path.display()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
