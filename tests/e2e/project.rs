//! Which project a command acts on, from the outside: no project around the current folder,
//! `SNPKIT_PROJECT` (good and bad), and the flag over the variable. The finder's own table is
//! `crates/project`'s unit tests; bad `--project` values are rows of the hostile suite.

use crate::support::{copy_dir, fails, ok, root, xtask};
use std::path::Path;

fn real(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

fn where_root(out: std::process::Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["project"]["root"].clone()
}

#[test]
fn outside_any_project_commands_that_need_one_say_how_to_name_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = xtask();
        cmd.current_dir(tmp.path())
            .env_remove("SNPKIT_PROJECT")
            .args(args);
        cmd
    };
    for args in [
        &["build", "hello"][..],
        &["lock", "hello"],
        &["boot", "hello"],
    ] {
        let err = fails(&mut run(args));
        assert!(err.contains("no snpkit project here"), "{args:?}: {err}");
        assert!(err.contains("--project DIR"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // verify's input errors end with 2, as every other unreadable input of verify.
    let out = run(&["verify", "hello"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no snpkit project here"));
    // `where` says so and fails; nothing was written.
    let out = run(&["where"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("project  none"));
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
}

#[test]
fn the_variable_names_the_project_and_the_flag_wins_over_it() {
    let tmp = tempfile::tempdir().unwrap();
    let team = tmp.path().join("team");
    copy_dir(&root().join("recipes/hello"), &team.join("recipes/hello"));
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("snpkit.toml"), "").unwrap();

    // From inside snpkit's checkout, the variable wins over the search.
    let out = ok(xtask()
        .current_dir(root())
        .env("SNPKIT_PROJECT", &team)
        .args(["where", "--json"]));
    assert_eq!(where_root(out), real(&team));
    let out = ok(xtask()
        .current_dir(root())
        .env("SNPKIT_PROJECT", &team)
        .args(["--project"])
        .arg(&other)
        .args(["where", "--json"]));
    assert_eq!(where_root(out), real(&other));

    // A variable naming no project is refused by name, not searched above.
    let err = fails(
        xtask()
            .current_dir(&team)
            .env("SNPKIT_PROJECT", team.join("recipes/hello"))
            .args(["build", "hello"]),
    );
    assert!(err.contains("SNPKIT_PROJECT="), "{err}");
    assert!(err.contains("is not a snpkit project"), "{err}");
    let err = fails(
        xtask()
            .current_dir(&team)
            .env("SNPKIT_PROJECT", tmp.path().join("missing"))
            .args(["lock", "hello"]),
    );
    assert!(err.contains("does not exist"), "{err}");
    assert!(!team.join("images").exists());
}

/// The regression this guards: no xtask command may read a path compiled into the binary. The one
/// `env!("CARGO_MANIFEST_DIR")` left is `cli::built_from`, a hint for finding snpkit's own
/// sources that `snpkit_project::SourceTree` checks at run time.
#[test]
fn xtask_compiles_in_no_path_but_the_checked_source_hint() {
    let mut uses = Vec::new();
    let mut stack = vec![root().join("xtask/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    if line.contains("env!(\"CARGO_MANIFEST_DIR\")")
                        && !line.trim_start().starts_with("//")
                    {
                        uses.push(format!("{}:{}", path.display(), i + 1));
                    }
                }
            }
        }
    }
    assert_eq!(uses.len(), 1, "compiled-in paths: {uses:?}");
    assert!(uses[0].contains("xtask/src/cli.rs"), "{uses:?}");
}
