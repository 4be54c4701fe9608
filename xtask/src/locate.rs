//! `cargo xtask where`: which project a command here would act on and why, and where snpkit's
//! own sources and cache are.

use crate::cli;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let project = cli::project();
    let source = cli::source_tree();
    let cache = snpkit_cache::root();
    // Whether `build` would accept these guest sources (see source_print.rs).
    let same_sources = source.as_ref().ok().map(|s| {
        format!("{:016x}", crate::source_print::fingerprint(s.root()))
            == env!("SNPKIT_GUEST_SOURCES")
    });
    if args.json {
        let project_json = match &project {
            Ok(p) => serde_json::json!({
                "root": p.root(),
                "found_by": p.found().to_string(),
                "recipes": p.recipes(),
                "images": p.images(),
                "recipe_names": p.recipe_names(),
            }),
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
        };
        let source_json = match &source {
            Ok(s) => serde_json::json!({
                "root": s.root(),
                "found_by": s.found().to_string(),
                "built_from": s.built_from(),
                "guest_sources_match_binary": same_sources,
            }),
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
        };
        let v = serde_json::json!({
            "project": project_json,
            "source": source_json,
            "cache": cache,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        match &project {
            Ok(p) => {
                println!("project  {}", p.root().display());
                println!("  found by {}", p.found());
                let names = p.recipe_names();
                let names = if names.is_empty() {
                    "none yet".to_owned()
                } else {
                    names.join(", ")
                };
                println!("  recipes  {} ({names})", p.recipes().display());
                println!("  images   {}", p.images().display());
            }
            Err(e) => println!("project  none: {e:#}"),
        }
        match &source {
            Ok(s) => {
                println!("snpkit sources {}", s.root().display());
                println!("  found as {}", s.found());
                if same_sources == Some(false) {
                    println!(
                        "  its guest sources are NOT the ones this binary was built with: rebuild snpkit from there before `build`"
                    );
                }
                if let Some(other) = s.built_from() {
                    println!(
                        "  note: this binary was compiled in {}; it builds the guest /init from the sources above",
                        other.display()
                    );
                }
            }
            Err(e) => println!("snpkit sources none: {e:#}"),
        }
        match &cache {
            Some(c) => println!("cache    {}", c.display()),
            None => println!("cache    none (set SNPKIT_CACHE or HOME)"),
        }
    }
    let ok = project.is_ok() && source.is_ok() && cache.is_some();
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
