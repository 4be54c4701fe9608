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
                "snpkit-build",
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
