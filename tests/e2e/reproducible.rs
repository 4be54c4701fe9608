//! Reproducibility, the heart of the build: two checkouts in different folders, built with
//! different umasks, time zones, locales and wall clocks, give byte-identical image folders,
//! predicted launch digests (`expected.json`) included.
//!
//! Each checkout is a copy of this working tree (tracked and untracked, not ignored, files), and
//! its own xtask is compiled from it, so paths really differ. The second copy's files carry the
//! permissions a umask of 077 gives (0600/0700), and its build runs under libfaketime 1000 days in
//! the future. Compilation shares one target folder in the cache so a warm machine is quick.

use crate::support::{ok, read_tree, root};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Both layouts: everything in the initramfs, and a squashfs root with its dm-verity tree.
const RECIPES: &[&str] = &["hello", "verity-hello"];

fn copy_checkout(to: &Path, private: bool) {
    let out = ok(Command::new("git").current_dir(root()).args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]));
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = String::from_utf8_lossy(rel).into_owned();
        let from = root().join(&rel);
        if !from.is_file() {
            continue; // deleted in the working tree but still in the index
        }
        let target = to.join(&rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&from, &target).unwrap();
        if private {
            let mode = std::fs::metadata(&target).unwrap().permissions().mode();
            let private_mode = if mode & 0o111 != 0 { 0o700 } else { 0o600 };
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(private_mode))
                .unwrap();
        }
    }
}

fn build_in(
    checkout: &Path,
    target_dir: &Path,
    umask: &str,
    env: &[(&str, &str)],
    clock: Option<&str>,
) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ok(Command::new(&cargo)
        .current_dir(checkout)
        .args(["build", "--quiet", "--package", "xtask"])
        .env("CARGO_TARGET_DIR", target_dir)
        // Both checkouts share the target folder, and incremental compilation would hand the
        // second one the first one's `env!("CARGO_MANIFEST_DIR")`: the project is found from the
        // current folder whatever it says, but the binary should be each checkout's own.
        .env("CARGO_INCREMENTAL", "0"));
    let xtask = target_dir.join("debug/xtask");
    let mut line = format!("umask {umask}; ");
    let xtask = xtask.display();
    let fake = clock
        .map(|offset| format!("faketime -f '{offset}' "))
        .unwrap_or_default();
    let steps: Vec<String> = RECIPES
        .iter()
        .flat_map(|r| {
            [
                format!("{fake}'{xtask}' build {r}"),
                format!("{fake}'{xtask}' measure {r}"),
            ]
        })
        .collect();
    line.push_str(&steps.join(" && "));
    let mut cmd = Command::new("sh");
    cmd.current_dir(checkout)
        .args(["-c", &line])
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("SNPKIT_PROJECT")
        // The binary lives in the shared target folder, beside no checkout: name the sources.
        .env("SNPKIT_SOURCE", checkout)
        // Compile the guest /init in each checkout instead of taking the one kept for the same
        // inputs, and fail if it differs from the kept one.
        .env("SNPKIT_FRESH_INIT", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    ok(&mut cmd);
}

#[test]
fn hello_is_byte_identical_across_checkouts_umasks_zones_locales_and_clocks() {
    assert!(
        Command::new("faketime").arg("--version").output().is_ok(),
        "faketime is not installed: run `cargo xtask setup` (package faketime)"
    );
    let cache = snpkit_inputs::Cache::from_env().unwrap();
    let target_dir = cache.root().join("repro-target");
    let a_parent = tempfile::tempdir().unwrap();
    let b_parent = tempfile::Builder::new()
        .prefix("another-place")
        .tempdir_in("/var/tmp")
        .unwrap();
    let a = a_parent.path().join("snpkit");
    let b = b_parent.path().join("deeper/checkout of snpkit");
    copy_checkout(&a, false);

    build_in(
        &a,
        &target_dir,
        "022",
        &[("TZ", "UTC"), ("LANG", "C.UTF-8"), ("LC_ALL", "C.UTF-8")],
        None,
    );
    // Copied only now, so its files are newer than the first build: cargo's freshness check is by
    // mtime and relative path, and would otherwise reuse the first checkout's xtask binary.
    copy_checkout(&b, true);
    build_in(
        &b,
        &target_dir,
        "077",
        &[
            ("TZ", "Pacific/Chatham"),
            ("LANG", "de_DE.UTF-8"),
            ("LC_ALL", "de_DE.UTF-8"),
        ],
        Some("+1000d"),
    );

    for recipe in RECIPES {
        let images = snpkit_bundle::IMAGES_DIR;
        let image_a = read_tree(&a.join(images).join(recipe));
        let image_b = read_tree(&b.join(images).join(recipe));
        use snpkit_bundle::files;
        for file in [files::INITRD, files::MANIFEST, files::EXPECTED] {
            assert!(
                image_a.contains_key(file),
                "no {file} in the first {recipe} image"
            );
        }
        assert_eq!(
            image_a.keys().collect::<Vec<_>>(),
            image_b.keys().collect::<Vec<_>>(),
            "{recipe}"
        );
        for (name, bytes) in &image_a {
            assert!(
                bytes == &image_b[name],
                "{recipe}/{name} differs between the two builds"
            );
        }
    }
}
