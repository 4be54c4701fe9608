//! Sealed volumes end to end (issue 12): `recipes/sealed-hello` built and booted under the
//! emulated launch (real QEMU, AmdSev firmware, Debian kernel, the emulated PSP's MSG_KEY_REQ):
//! the host creates the volume file on the first boot, the guest formats it and the boot counter
//! in it goes on across boots and a rebuild; another image (a changed command line, so another
//! measurement) is refused with the guest's "key does not match" and the file is left as it was.

use crate::boot::BOOTS;
use crate::support::{Sandbox, fails, ok};
use sha2::{Digest, Sha256};
use snpkit_bundle::ImageDir;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const RECIPE: &str = "sealed-hello";

/// Boots the image once (emulated) and returns the `boot count: N` its appliance printed.
fn boot_count(sb: &Sandbox) -> u32 {
    let out = {
        let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
        ok(&mut sb.xtask(&["boot", RECIPE, "--launch", "emulated", "--json"]))
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"launch\""),
        "boot --json printed: {stdout}"
    );
    let newest = ImageDir::new(&sb.images(), RECIPE)
        .newest_run()
        .expect("the boot wrote a run");
    let console = std::fs::read_to_string(newest.console_log()).unwrap();
    let counts: Vec<u32> = console
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("boot count: "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 1, "one count per boot in:\n{console}");
    counts[0]
}

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn expected_json(sb: &Sandbox) -> String {
    std::fs::read_to_string(ImageDir::new(&sb.images(), RECIPE).expected()).unwrap()
}

#[test]
fn sealed_hello_counts_its_boots_and_another_image_cannot_open_its_volume() {
    let sb = Sandbox::with_recipe(RECIPE);
    ok(&mut sb.xtask(&["build", RECIPE]));
    let image = ImageDir::new(&sb.images(), RECIPE);
    let volume = image.volume("data").unwrap();
    assert!(!volume.exists(), "the build makes no volume file");

    // First boot: the host creates the file sparse at 16 MiB, the guest formats it.
    assert_eq!(boot_count(&sb), 1);
    let meta = std::fs::metadata(&volume).unwrap();
    assert_eq!(meta.len(), 16 << 20, "the recipe's size_mib");
    assert!(
        meta.blocks() * 512 < meta.len(),
        "the volume file stays sparse: {} of {} bytes allocated",
        meta.blocks() * 512,
        meta.len()
    );
    assert_eq!(boot_count(&sb), 2);

    // A rebuild of the same recipe keeps the volume, and the count goes on.
    let first_prediction = expected_json(&sb);
    let kept = sha256(&volume);
    ok(&mut sb.xtask(&["build", RECIPE]));
    assert_eq!(
        sha256(&volume),
        kept,
        "a rebuild keeps the volume as it was"
    );
    assert_eq!(boot_count(&sb), 3);

    // Another image: one more (harmless) kernel option, so another measurement and another key.
    let file = sb.recipe_file(RECIPE);
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = text.replace("panic=-1 ", "panic=-1 mitigations=auto ");
    assert_ne!(text, changed, "test bug: the cmdline was not changed");
    std::fs::write(&file, changed).unwrap();
    ok(&mut sb.xtask(&["lock", RECIPE]));
    ok(&mut sb.xtask(&["build", RECIPE]));
    assert_ne!(
        expected_json(&sb),
        first_prediction,
        "the changed command line must change the measurement"
    );
    let before = sha256(&volume);
    let len_before = std::fs::metadata(&volume).unwrap().len();
    let err = {
        let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
        fails(&mut sb.xtask(&["boot", RECIPE, "--launch", "emulated"]))
    };
    assert!(err.contains("the key does not match"), "{err}");
    assert!(err.contains("left untouched"), "{err}");
    assert!(
        !err.contains("boot count:"),
        "the entry point must not run: {err}"
    );
    assert_eq!(
        (sha256(&volume), std::fs::metadata(&volume).unwrap().len()),
        (before, len_before),
        "a refused volume is left byte for byte as it was"
    );
}

#[test]
fn volume_overrides_are_checked_before_anything_runs() {
    let sb = Sandbox::with_recipe(RECIPE);
    ok(&mut sb.xtask(&["build", RECIPE]));
    let image = ImageDir::new(&sb.images(), RECIPE);
    let other = sb.dir.path().join("other.img");
    for (arg, needle) in [
        (
            format!("cache={}", other.display()),
            "the image has no volume \"cache\" (it has: data)",
        ),
        ("data".to_owned(), "is not NAME=PATH"),
        ("Data=/x".to_owned(), "a-z, 0-9"),
        ("data=".to_owned(), "names no file"),
    ] {
        let err = fails(&mut sb.xtask(&["boot", RECIPE, "--launch", "emulated", "--volume", &arg]));
        assert!(err.contains(needle), "--volume {arg}: {err}");
    }
    // A folder cannot be a disk: refused before QEMU starts or a run folder is made.
    std::fs::create_dir(&other).unwrap();
    let err = fails(&mut sb.xtask(&[
        "boot",
        RECIPE,
        "--launch",
        "emulated",
        "--volume",
        &format!("data={}", other.display()),
    ]));
    assert!(err.contains("is a folder, not a regular file"), "{err}");
    assert!(!image.runs().exists(), "no run was started");
    assert!(!image.volume("data").unwrap().exists());
}
