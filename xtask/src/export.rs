//! `cargo xtask export trustee <recipe>`: the image's reference values and a resource policy in
//! Trustee's formats (snpkit-trustee), written into `images/<recipe>/trustee/`.

use crate::cli;
use anyhow::Context;
use snpkit_attest::policy::Policy;
use snpkit_bundle::ImageDir;
use snpkit_recipe::Recipe;
use snpkit_trustee::{ExportOptions, export};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Reference values for Trustee's RVPS (the names its default CPU policy reads) and a KBS
    /// resource policy releasing the recipe's [[secrets]] and kbs: volume keys only to this image.
    Trustee(TrusteeArgs),
}

#[derive(clap::Args)]
struct TrusteeArgs {
    /// Recipe name (its image must be built: images/<recipe>/expected.json).
    recipe: String,
    /// Export one launch config of expected.json (all by default).
    #[arg(long, value_name = "NAME")]
    config: Option<String>,
    /// Verification policy (TOML, as for `cargo xtask verify --policy`): its [min_tcb] becomes the
    /// accepted TCB values.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Whether your hosts run with SMT enabled (with --tsme-enabled: Trustee then compares both).
    #[arg(long, value_name = "BOOL")]
    smt_enabled: Option<bool>,
    /// Whether your hosts run with TSME enabled.
    #[arg(long, value_name = "BOOL")]
    tsme_enabled: Option<bool>,
    /// Write here instead of images/<recipe>/trustee/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    dirs: cli::Dirs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Trustee(a) => trustee(a),
    }
}

fn trustee(a: TrusteeArgs) -> anyhow::Result<ExitCode> {
    let recipe = Recipe::load_named(&a.dirs.recipes()?, &a.recipe)?;
    let images = a.dirs.images()?;
    let image = ImageDir::new(&images, &recipe.name);
    image.require()?;
    let expected = image.read_expected().with_context(|| {
        format!(
            "no prediction to export: run `cargo xtask build {}` first",
            recipe.name
        )
    })?;
    let policy = match &a.policy {
        Some(p) => {
            let text = snpkit_fsguard::read_string(p, "policy", 1 << 20)?;
            Policy::from_toml(&text).with_context(|| format!("policy {}", p.display()))?
        }
        None => Policy::default(),
    };
    // What the image asks the broker for: its secrets and the keys of its kbs: volumes.
    let resources: Vec<String> = recipe
        .secrets
        .iter()
        .map(|s| s.resource.to_string())
        .chain(recipe.volumes.iter().filter_map(|v| match &v.key {
            snpkit_recipe::VolumeKey::Kbs(resource) => Some(resource.clone()),
            snpkit_recipe::VolumeKey::Sealed => None,
        }))
        .collect();
    let options = ExportOptions {
        config: a.config,
        smt_enabled: a.smt_enabled,
        tsme_enabled: a.tsme_enabled,
    };
    let export = export(&expected, &policy, &resources, &options)?;
    let out = a.out.unwrap_or_else(|| image.trustee());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let files = [
        ("reference-values.json", export.reference_values_json()),
        ("rvps-message.json", export.rvps_message()),
        ("resource-policy.rego", export.resource_policy.clone()),
    ];
    for (name, text) in &files {
        snpkit_fsguard::write_atomic(&out.join(name), name, text.as_bytes(), 0o644)?;
    }
    println!(
        "Trustee reference values for {} ({} measurement{}) in {}:",
        recipe.name,
        export.measurements.len(),
        if export.measurements.len() == 1 {
            ""
        } else {
            "s"
        },
        out.display()
    );
    println!("  reference-values.json  the RVPS sample provenance (name → accepted values)");
    println!(
        "  rvps-message.json      register it: rvps-tool register --path rvps-message.json --addr …"
    );
    println!(
        "  resource-policy.rego   the KBS resource policy: {} resource{} for this image only",
        resources.len(),
        if resources.len() == 1 { "" } else { "s" }
    );
    for note in &export.notes {
        println!("note: {note}");
    }
    Ok(ExitCode::SUCCESS)
}
