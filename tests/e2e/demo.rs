//! `cargo xtask demo`: the bundled appliance end to end, in a sandbox's recipes and images
//! folders, as a newcomer runs it (one more emulated boot of hello).

use crate::boot::BOOTS;
use crate::support::{Sandbox, ok};
use snpkit_bundle::{ImageDir, files};

#[test]
fn the_demo_builds_measures_boots_and_verifies_hello() {
    let sb = Sandbox::with_recipe("hello");
    let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let out = ok(sb
        .xtask(&["demo", "hello"])
        .arg("--recipes-dir")
        .arg(sb.recipes()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for step in [
        "[1/6]",
        "[3/6] build",
        "[4/6] measure",
        "[5/6] boot",
        "[6/6] verify",
    ] {
        assert!(stdout.contains(step), "no {step:?} in:\n{stdout}");
    }
    assert!(
        stdout.contains("EMULATED LAUNCH — NOT HARDWARE-BACKED"),
        "{stdout}"
    );
    assert!(stdout.contains("VERDICT: PASS"), "{stdout}");
    // Everything landed in the sandbox's images folder.
    let image = ImageDir::new(&sb.images(), "hello");
    for file in [files::MANIFEST, files::EXPECTED] {
        assert!(
            image.path().join(file).is_file(),
            "no {file} in {}",
            image.path().display()
        );
    }
    let runs: Vec<_> = std::fs::read_dir(image.runs())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        snpkit_bundle::RunDir::at(&runs[0]).record().is_file(),
        "{runs:?}"
    );
}
