//! `cargo xtask bench edit-loop`: the developer's loop on an appliance, timed step by step.
//!
//! A copy of the `hello` recipe in a temporary appliance repository (outside any checkout,
//! reached with `--project`), built once to warm the caches; then, per run, one line of its local
//! file `files/hello` changes and `lock`, `build`, `boot --launch emulated` and `verify
//! --allow-emulated` run as a user runs them (this binary, one process each), until the verdict
//! passes. Printed: the wall time of each step and the total, per run and their medians, against
//! the goal of issue 14 (< 25 s).

use crate::bench_timing::{median, timed};
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const GOAL: Duration = Duration::from_secs(25);
const STEPS: &[&str] = &["lock", "build", "boot", "verify"];

pub fn run(runs: usize) -> anyhow::Result<ExitCode> {
    let runs = runs.max(1);
    let me = std::env::current_exe().context("finding this binary")?;
    let source = crate::cli::source_tree()?;
    let repo = tempfile::Builder::new()
        .prefix("snpkit-bench-edit-loop-")
        .tempdir()
        .context("creating the temporary appliance repository")?;
    let recipe = repo.path().join("recipes/hello");
    copy_dir(&source.root().join("recipes/hello"), &recipe)?;
    let project = repo.path().display().to_string();
    let args = |step: &str| -> Vec<String> {
        let mut a = vec![
            "--project".to_owned(),
            project.clone(),
            step.to_owned(),
            "hello".to_owned(),
        ];
        match step {
            "boot" => a.extend(["--launch".to_owned(), "emulated".to_owned()]),
            "verify" => a.push("--allow-emulated".to_owned()),
            _ => {}
        }
        a
    };
    println!(
        "edit loop on a copy of hello in {} (EMULATED boot)",
        repo.path().display()
    );
    println!("warming the caches: lock and build once");
    for step in ["lock", "build"] {
        timed(&me, &args(step))?;
    }
    let file = recipe.join("files/hello");
    let original =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut per_step: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len()];
    let mut totals = Vec::new();
    for run in 1..=runs {
        std::fs::write(&file, format!("{original}echo \"edit {run}\"\n"))
            .with_context(|| format!("editing {}", file.display()))?;
        let mut total = Duration::ZERO;
        let mut line = format!("run {run}:");
        for (i, step) in STEPS.iter().enumerate() {
            let (took, _) = timed(&me, &args(step))?;
            per_step[i].push(took);
            total += took;
            line.push_str(&format!("  {step} {:.2} s", took.as_secs_f64()));
        }
        totals.push(total);
        println!("{line}  total {:.1} s", total.as_secs_f64());
    }
    println!("median of {runs} run(s):");
    for (step, times) in STEPS.iter().zip(per_step) {
        println!("  {step:<7} {:>6.2} s", median(times).as_secs_f64());
    }
    let total = median(totals);
    println!(
        "  total   {:>6.1} s  (goal < {} s: {})",
        total.as_secs_f64(),
        GOAL.as_secs(),
        if total < GOAL { "met" } else { "NOT met" }
    );
    Ok(ExitCode::SUCCESS)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
