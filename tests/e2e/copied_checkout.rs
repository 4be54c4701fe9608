//! A copied checkout acts on itself: `cp -a` of snpkit, its `target/` included, runs the binary
//! compiled in the original (as `cargo xtask` does when cargo finds the copied build fresh, or a
//! CI cache restores `target/`), and every command reads and writes the copy's recipes and
//! images, and builds the guest from the copy's sources, as long as they are the ones the binary
//! was built with (edited, they are refused until it is rebuilt).
//!
//! Of `target/`, only the xtask binary is copied (where cargo put it): it is the one file of it
//! that runs, and the whole folder is gigabytes.

use crate::appliance_repo::measurements_under;
use crate::support::{ok, root};
use std::path::Path;
use std::process::Command;

fn cp_a(from: &Path, to: &Path) {
    ok(Command::new("cp").arg("-a").arg(from).arg(to));
}

fn real(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

#[test]
fn a_copied_checkout_with_its_target_acts_on_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy of snpkit");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(root()).unwrap() {
        let entry = entry.unwrap();
        // Built images are not part of a checkout (a clone has none): copying the original's
        // would make the copy hold the original's measurements from the start.
        if entry.file_name() != "target" && entry.file_name() != "images" {
            cp_a(&entry.path(), &copy.join(entry.file_name()));
        }
    }
    std::fs::create_dir(copy.join("images")).unwrap();
    let _ = std::fs::remove_dir_all(copy.join("fuzz/target"));
    let built = Path::new(env!("CARGO_BIN_EXE_xtask"));
    let rel = built
        .strip_prefix(root())
        .unwrap_or(Path::new("target/debug/xtask"));
    let bin = copy.join(rel);
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    cp_a(built, &bin);
    let xtask = |cwd: &Path, args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.current_dir(cwd)
            .args(args)
            .env_remove("SNPKIT_PROJECT")
            .env_remove("SNPKIT_SOURCE")
            .env_remove("SOURCE_DATE_EPOCH");
        ok(&mut cmd)
    };

    let out = xtask(&copy, &["where", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["project"]["root"], real(&copy), "{v:#}");
    assert_eq!(v["source"]["root"], real(&copy), "{v:#}");
    assert_eq!(v["source"]["built_from"], real(&root()), "{v:#}");
    assert_eq!(v["source"]["guest_sources_match_binary"], true, "{v:#}");

    // Change the copy's hello, lock and build it from inside the copy's recipe folder.
    let file = copy.join("recipes/hello/files/hello");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("running as", "copied checkout, running as"),
    )
    .unwrap();
    let snpkit_lock = std::fs::read(root().join("recipes/hello/recipe.lock")).unwrap();
    let nested = copy.join("recipes/hello/files");
    xtask(&nested, &["lock", "hello"]);
    xtask(&nested, &["build", "hello"]);
    xtask(&copy, &["measure", "hello"]);

    assert_ne!(
        std::fs::read(copy.join("recipes/hello/recipe.lock")).unwrap(),
        snpkit_lock,
        "the copy's lock does not pin its changed file"
    );
    assert_eq!(
        std::fs::read(root().join("recipes/hello/recipe.lock")).unwrap(),
        snpkit_lock,
        "the original's lock was rewritten by the copy"
    );
    // The copy's guest sources edited without rebuilding the copied binary: it must not compile
    // an /init of other sources than its own host side was built with.
    let main = copy.join("crates/guest/src/main.rs");
    let mut text = std::fs::read_to_string(&main).unwrap();
    text.push_str("// edited in the copy\n");
    std::fs::write(&main, text).unwrap();
    let out = Command::new(&bin)
        .current_dir(&copy)
        .args(["build", "hello"])
        .env_remove("SNPKIT_PROJECT")
        .env_remove("SNPKIT_SOURCE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "built from edited guest sources");
    let out = xtask(&copy, &["where", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"]["guest_sources_match_binary"], false, "{v:#}");
    assert!(
        err.contains("not the ones this snpkit binary was built with") && err.contains("Rebuild"),
        "{err}"
    );

    let ours = measurements_under(&copy.join("images"));
    assert!(!ours.is_empty(), "the copy has no image of its own");
    let original = measurements_under(&root().join("images"));
    assert!(
        ours.iter().all(|m| !original.contains(m)),
        "the copy's image landed in the original's images/"
    );
}
