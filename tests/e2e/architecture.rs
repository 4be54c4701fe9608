//! The crate boundaries of docs/architecture.md, checked with `cargo tree`.

use crate::support::root;
use std::process::Command;

fn deps_of(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--package",
            package,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn crate_names(tree: &str) -> Vec<String> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn forbidden_dependency_edges_are_absent() {
    let rules: &[(&str, &[&str])] = &[
        (
            "snpkit-guest",
            &[
                "snpkit-qemu",
                "snpkit-attest",
                "snpkit-image",
                "snpkit-inputs",
                "snpkit-assemble",
                "reqwest",
                "tokio",
            ],
        ),
        ("snpkit-measure", &["snpkit-qemu", "snpkit-attest"]),
        ("snpkit-qemu", &["snpkit-attest"]),
        ("snpkit-attest", &["snpkit-qemu"]),
        (
            "snpkit-recipe",
            &[
                "snpkit-image",
                "snpkit-inputs",
                "snpkit-measure",
                "snpkit-qemu",
                "snpkit-attest",
            ],
        ),
        (
            "snpkit-image",
            &[
                "snpkit-inputs",
                "snpkit-measure",
                "snpkit-qemu",
                "snpkit-attest",
            ],
        ),
        (
            // The KBS protocol core is linked by the static guest /init: no verifier, no async
            // runtime, no HTTP stack, no OpenSSL.
            "snpkit-kbs",
            &[
                "snpkit-attest",
                "snpkit-measure",
                "snpkit-recipe",
                "snpkit-qemu",
                "tokio",
                "reqwest",
                "hyper",
                "axum",
                "openssl",
            ],
        ),
        (
            "snpkit-broker",
            &[
                "snpkit-qemu",
                "snpkit-image",
                "snpkit-inputs",
                "snpkit-assemble",
                "snpkit-guest",
            ],
        ),
        (
            "snpkit-wire",
            &[
                "snpkit-recipe",
                "snpkit-image",
                "snpkit-qemu",
                "snpkit-attest",
                "tokio",
            ],
        ),
    ];
    for (package, forbidden) in rules {
        let names = crate_names(&deps_of(package));
        assert!(
            names.iter().any(|n| n == package),
            "cargo tree did not list {package}"
        );
        for f in *forbidden {
            assert!(
                !names.iter().any(|n| n == f),
                "{package} must not depend on {f}"
            );
        }
    }
}

#[test]
fn every_library_opens_with_a_doc_header() {
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        let file = if lib.exists() { lib } else { main };
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! header saying what the crate owns",
            file.display()
        );
    }
}

/// The README's test command, `.ci/run` and the CI workflow's test job run the same thing, so a
/// green CI means what a user's `cargo xtask test` means.
#[test]
fn readme_ci_script_and_workflow_run_the_same_test_command() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let readme = read("README.md");
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .expect("README has a Quick start section");
    let block = quick
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the quick start has a sh block");
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands.len(),
        2,
        "the quick start is two commands: {commands:?}"
    );
    let test = commands[1];
    assert!(test.starts_with("cargo xtask test"), "{test}");

    let script = read(".ci/run");
    let last = script
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    assert_eq!(
        last,
        format!("exec {test}"),
        ".ci/run must end in the README's command"
    );

    let workflow = read(".github/workflows/ci.yml");
    let mut job = String::new();
    let mut inside = false;
    for line in workflow.lines() {
        // Jobs sit two spaces in: `  name:`.
        let is_job = line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':');
        if is_job {
            inside = line.trim() == "test:";
        } else if inside {
            job.push_str(line);
            job.push('\n');
        }
    }
    assert!(!job.is_empty(), "ci.yml has a `test` job");
    let runs: Vec<&str> = job
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run: "))
        .collect();
    assert_eq!(
        runs,
        [".ci/run"],
        "the test job runs .ci/run and nothing else"
    );
}
