//! A team's own appliance repository, built with snpkit from outside it: a generated repository
//! holding only `recipes/hello/` (with its local file changed) runs the steps of the documented
//! CI workflow, docs/examples/appliance-ci.yml, read from the file itself so the document and
//! the test cannot drift apart. Everything must land in the repository, nothing in snpkit's tree.

use crate::support::{copy_dir, ok, root};
use std::path::Path;
use std::process::Command;

const WORKFLOW: &str = "docs/examples/appliance-ci.yml";
const BEGIN: &str = "# --- snpkit steps begin";
const END: &str = "# --- snpkit steps end";

/// The `run:` blocks between the markers, in order, with the step names.
pub fn workflow_steps(yml: &str) -> Vec<(String, String)> {
    let start = yml.find(BEGIN).expect("the workflow has its begin marker");
    let end = yml.find(END).expect("the workflow has its end marker");
    let mut steps = Vec::new();
    let mut name = String::new();
    let mut lines = yml[start..end].lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(n) = t.strip_prefix("- name:") {
            name = n.trim().to_owned();
        } else if t == "run: |" {
            let indent = line.len() - t.len();
            let mut script = String::new();
            while let Some(next) = lines.peek() {
                let body = next.trim_start();
                if !body.is_empty() && next.len() - body.len() <= indent {
                    break;
                }
                script.push_str(body);
                script.push('\n');
                lines.next();
            }
            steps.push((name.clone(), script));
        } else if let Some(one) = t.strip_prefix("run:") {
            steps.push((name.clone(), one.trim().to_owned()));
        }
    }
    steps
}

/// A repository with `recipes/hello/` only (its file changed by `marker`), locked and
/// committed as a developer would before pushing.
pub fn appliance_repo(at: &Path, marker: &str) {
    copy_dir(&root().join("recipes/hello"), &at.join("recipes/hello"));
    let file = at.join("recipes/hello/files/hello");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("running as", &format!("{marker}, running as")),
    )
    .unwrap();
    std::fs::write(at.join(".gitignore"), "/images/\n").unwrap();
}

pub fn git(repo: &Path, args: &[&str]) {
    ok(Command::new("git")
        .current_dir(repo)
        .args([
            "-c",
            "user.name=snpkit test",
            "-c",
            "user.email=test@snpkit.invalid",
        ])
        .args(args));
}

/// Every `measurement` value in every expected.json under `images`.
pub fn measurements_under(images: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(images) else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("expected.json")) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for c in v["configs"].as_array().into_iter().flatten() {
            if let Some(m) = c["measurement"].as_str() {
                found.push(m.to_owned());
            }
        }
    }
    found
}

#[test]
fn the_documented_workflow_builds_boots_and_verifies_an_appliance_repo_outside_snpkit() {
    let yml = std::fs::read_to_string(root().join(WORKFLOW)).unwrap();
    let steps = workflow_steps(&yml);
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        steps.len() >= 6,
        "too few steps found in {WORKFLOW}: {names:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("team-appliances");
    appliance_repo(&repo, "edited in the appliance repo test");
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let snpkit_lock = std::fs::read(root().join("recipes/hello/recipe.lock")).unwrap();
    // The developer's side: lock the changed recipe, commit.
    ok(Command::new(xtask)
        .current_dir(&repo)
        .args(["lock", "hello"]));
    git(&repo, &["init", "--quiet"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "--quiet", "-m", "hello, changed"]);

    for (name, script) in &steps {
        let out = Command::new("bash")
            .current_dir(&repo)
            .args(["-euo", "pipefail", "-c", script])
            .env("SNPKIT", xtask)
            .env("RECIPE", "hello")
            .env_remove("SNPKIT_PROJECT")
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "workflow step {name:?} failed ({}):\n{script}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The outputs are the repository's.
    let publish = repo.join("publish");
    let expected = std::fs::read(publish.join("expected.json")).unwrap();
    assert_eq!(
        expected,
        std::fs::read(repo.join("images/hello/expected.json")).unwrap()
    );
    let digests = std::fs::read_to_string(publish.join("image-digests.txt")).unwrap();
    for file in [
        "expected.json",
        "initrd.cpio.gz",
        "manifest.json",
        "vmlinuz",
    ] {
        assert!(
            digests.contains(&format!("./{file}")),
            "{file} missing:\n{digests}"
        );
    }
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(publish.join("verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["passed"], serde_json::json!(true), "{verdict:#}");
    assert_eq!(verdict["emulated"], serde_json::json!(true), "{verdict:#}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(publish.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["recipe"], "hello");

    // And none is snpkit's: its lock untouched, its images without this build's digests.
    let ours = measurements_under(&repo.join("images"));
    assert!(!ours.is_empty());
    let snpkit = measurements_under(&root().join("images"));
    assert!(
        ours.iter().all(|m| !snpkit.contains(m)),
        "the appliance repo's image landed in snpkit's images/"
    );
    assert_eq!(
        std::fs::read(root().join("recipes/hello/recipe.lock")).unwrap(),
        snpkit_lock,
        "snpkit's own hello lock was rewritten"
    );
    // The changed file made another image than snpkit's hello (else the checks above prove nothing).
    assert_ne!(
        std::fs::read(repo.join("recipes/hello/recipe.lock")).unwrap(),
        snpkit_lock,
        "the generated repo's lock should pin its changed file"
    );
}

#[test]
fn the_workflow_steps_are_found_in_order() {
    let yml = std::fs::read_to_string(root().join(WORKFLOW)).unwrap();
    let names: Vec<String> = workflow_steps(&yml).into_iter().map(|(n, _)| n).collect();
    let want = [
        "Where",
        "lock",
        "Build twice",
        "Measure",
        "Boot EMULATED",
        "Verify",
        "Gather",
    ];
    assert_eq!(names.len(), want.len(), "{names:?}");
    for (n, w) in names.iter().zip(want) {
        assert!(n.contains(w), "{n:?} is not the {w:?} step");
    }
}
