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
    assert!(
        err.contains("is a folder") && err.contains("a sealed volume is a regular file"),
        "{err}"
    );
    assert!(!image.runs().exists(), "no run was started");
    assert!(!image.volume("data").unwrap().exists());
}

/// The pid of the QEMU whose command line names `volume` (only the test's own QEMU does: the path
/// is in the test's temporary folder).
fn qemu_with(volume: &Path) -> Option<u32> {
    let needle = volume.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let argv0 = cmdline.split(|b| *b == 0).next()?;
        let is_qemu = argv0.ends_with(b"qemu-system-x86_64");
        let names = cmdline.windows(needle.len()).any(|w| w == needle);
        (is_qemu && names).then_some(pid)
    })
}

#[test]
fn a_volume_whose_qemu_was_killed_mid_write_still_opens_with_what_was_synced() {
    let sb = Sandbox::with_recipe(RECIPE);
    // The same appliance, which after printing (and syncing) its count keeps rewriting a file.
    let script = sb.recipes().join(RECIPE).join("files/sealed-hello");
    let text = std::fs::read_to_string(&script).unwrap();
    let churn = "echo churning\ni=0\nwhile [ $i -lt 40 ]; do\n    \
                 busybox dd if=/dev/urandom of=\"$dir/churn\" bs=64k count=8 conv=fsync 2>/dev/null\n    \
                 i=$((i + 1))\ndone\n";
    std::fs::write(&script, format!("{text}{churn}")).unwrap();
    ok(&mut sb.xtask(&["lock", RECIPE]));
    ok(&mut sb.xtask(&["build", RECIPE]));
    let image = ImageDir::new(&sb.images(), RECIPE);
    let volume = image.volume("data").unwrap();

    let one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = sb
        .xtask(&["boot", RECIPE, "--launch", "emulated"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the appliance to be rewriting its file, then kill its QEMU without warning.
    let start = std::time::Instant::now();
    let killed = loop {
        let churning = std::fs::read_dir(image.runs())
            .into_iter()
            .flatten()
            .flatten()
            .any(|run| {
                std::fs::read_to_string(run.path().join(snpkit_bundle::run_files::CONSOLE_LOG))
                    .is_ok_and(|log| log.contains("boot count: 1") && log.contains("churning"))
            });
        if churning {
            std::thread::sleep(std::time::Duration::from_millis(700));
            let pid = qemu_with(&volume).expect("QEMU is still running the appliance");
            ok(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]));
            break true;
        }
        if start.elapsed() > std::time::Duration::from_secs(240)
            || child.try_wait().unwrap().is_some()
        {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(killed, "the appliance never reached its writes: {stderr}");
    assert!(!out.status.success(), "a killed QEMU is a failed run");
    drop(one);
    // The kill fell among the writes: the failed run's console never saw the entry point end.
    let failed = std::fs::read_dir(image.runs())
        .unwrap()
        .flatten()
        .find(|r| {
            r.file_name()
                .to_string_lossy()
                .ends_with(snpkit_bundle::run_files::FAILED_SUFFIX)
        })
        .expect("the killed run is kept as failed");
    let log =
        std::fs::read_to_string(failed.path().join(snpkit_bundle::run_files::CONSOLE_LOG)).unwrap();
    assert!(
        log.contains("churning") && !log.contains("exited with status"),
        "QEMU was not killed while the appliance was writing:\n{log}"
    );

    // The next boot opens the volume (no reformatting) and finds the synced count.
    assert_eq!(boot_count(&sb), 2);
    let newest = image.newest_run().unwrap();
    let console = std::fs::read_to_string(newest.console_log()).unwrap();
    assert!(
        console.contains("volume data: /dev/vda (serial snpkit-vol-data) is open")
            && !console.contains("is blank: formatting it"),
        "{console}"
    );
}

/// Issue 12's `kbs:` keys (issue 11's broker): a malformed resource is refused by lock; without
/// `--kbs` the boot is refused before QEMU starts; with a broker serving a 32-byte key the guest
/// formats the volume with it (HKDF per volume) and the header records the broker as the key's
/// source, while the key itself is nowhere in the run folder.
#[test]
fn a_volume_keyed_by_the_broker_opens_with_its_key_and_records_the_source() {
    let sb = Sandbox::with_recipe(RECIPE);
    sb.edit_recipe(RECIPE, "key = \"sealed\"", "key = \"kbs:default/volume\"");
    let err = fails(&mut sb.xtask(&["lock", RECIPE]));
    assert!(
        err.contains("volumes[0].key") && err.contains("kbs:<repository>/<type>/<tag>"),
        "{err}"
    );
    sb.edit_recipe(
        RECIPE,
        "kbs:default/volume\"",
        "kbs:default/sealed-hello/volume-key\"",
    );
    ok(&mut sb.xtask(&["lock", RECIPE]));
    ok(&mut sb.xtask(&["build", RECIPE]));
    let image = ImageDir::new(&sb.images(), RECIPE);
    let err = fails(&mut sb.xtask(&["boot", RECIPE, "--launch", "emulated"]));
    assert!(
        err.contains(
            "volume data is keyed by a key broker (resource default/sealed-hello/volume-key)"
        ) && err.contains("--kbs"),
        "{err}"
    );

    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (broker, url) = crate::secrets::serve_resource(
        dir.path(),
        &image.expected(),
        "default/sealed-hello/volume-key",
        &key,
    );
    let out = {
        let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
        ok(&mut sb.xtask(&["boot", RECIPE, "--launch", "emulated", "--kbs", &url]))
    };
    drop(broker);
    assert!(String::from_utf8_lossy(&out.stdout).contains("EMULATED"));
    let run = image.newest_run().unwrap();
    let console = std::fs::read_to_string(run.console_log()).unwrap();
    assert!(
        console
            .contains("volume data: key released by the broker (default/sealed-hello/volume-key)")
            && console.contains("keyed by the broker's key")
            && console.contains("boot count: 1"),
        "{console}"
    );
    let volume = std::fs::read(image.volume("data").unwrap()).unwrap();
    match snpkit_wire::volume::decode(&volume[..snpkit_wire::volume::HEADER_LEN]).unwrap() {
        snpkit_wire::volume::Found::Header(header, _) => {
            assert_eq!(header.source, snpkit_wire::volume::KeySource::Kbs);
            assert_eq!(header.name, "data");
        }
        other => panic!("no header: {other:?}"),
    }
    for entry in std::fs::read_dir(run.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(key.len()).any(|w| w == key)
                    && !String::from_utf8_lossy(&bytes).contains(&hex::encode(&key)),
                "{} holds the volume key",
                path.display()
            );
        }
    }
}
