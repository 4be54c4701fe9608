//! The dm-verity appliance end to end under the emulated launch: verity-hello boots, checks its
//! root before it attests with the predicted measurement, and runs from the verified root; a
//! flipped byte anywhere in the root filesystem or its hash tree makes the guest refuse to run
//! the appliance and the run fail with the guest's reason, sent over the channel (so a hardened
//! image without a console says it too); a guest that dm-verity reboots after it attested
//! (`restart_on_corruption`) fails the run; a changed root hash on the command line is refused
//! by the firmware.

use crate::boot::BOOTS;
use crate::support::{Sandbox, fails, ok};
use snpkit_bundle::{ImageDir, RunDir, files};
use std::path::Path;
use std::process::Command;

/// What the guest says, over the channel, when its root does not match the measured root hash.
const MISMATCH: &str = "the guest refused to run the appliance: dm-verity: the root filesystem does not match the measured root hash";

fn built() -> Sandbox {
    let sb = Sandbox::with_recipe("verity-hello");
    ok(&mut sb.xtask(&["build", "verity-hello"]));
    ok(&mut sb.xtask(&["measure", "verity-hello"]));
    sb
}

fn flip(path: &std::path::Path, at: usize) -> Vec<u8> {
    let saved = std::fs::read(path).unwrap();
    let mut bytes = saved.clone();
    bytes[at] ^= 0x80;
    std::fs::write(path, bytes).unwrap();
    saved
}

#[test]
fn verity_hello_is_checked_by_the_standard_tools() {
    let sb = Sandbox::with_recipe("verity-hello");
    ok(&mut sb.xtask(&["build", "verity-hello"]));
    let dir = ImageDir::new(&sb.images(), "verity-hello");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.manifest()).unwrap()).unwrap();
    let v = &manifest["verity"];
    let cmdline = std::fs::read_to_string(dir.cmdline()).unwrap();
    assert!(
        cmdline.contains(&format!("root={}", v["root_hash"].as_str().unwrap())),
        "{cmdline}"
    );
    // veritysetup, the reference, accepts our tree with our parameters.
    let out = ok(Command::new("veritysetup")
        .arg("verify")
        .arg(dir.rootfs())
        .arg(dir.verity())
        .arg(v["root_hash"].as_str().unwrap())
        .args(["--no-superblock", "--hash", v["hash"].as_str().unwrap()])
        .args([
            "--salt",
            v["salt"].as_str().unwrap(),
            "--data-blocks",
            v["data_blocks"].as_str().unwrap(),
        ]));
    assert!(out.status.success());
    // unsquashfs, the reference reader, sees the appliance with root owners and the epoch.
    let listing = ok(Command::new("unsquashfs").arg("-lln").arg(dir.rootfs()));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("-rwxr-xr-x 0/0") && listing.contains("squashfs-root/usr/bin/hello"),
        "{listing}"
    );
    assert!(
        listing.contains("2025-01-01 00:00 squashfs-root/bin/busybox"),
        "{listing}"
    );
    // The initramfs holds /init and modules only.
    let cpio = crate::support::gunzip(&std::fs::read(dir.initrd()).unwrap());
    let names: Vec<String> = snpkit_image::cpio::read_newc(&cpio)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("dm-verity.ko.xz")) && names.iter().any(|n| n == "init")
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("busybox") || n.contains("usr/bin/hello")),
        "{names:?}"
    );
}

#[test]
fn verity_hello_boots_attests_and_runs_from_the_verified_root() {
    let sb = built();
    let one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let out = ok(&mut sb.xtask(&["boot", "verity-hello", "--launch", "emulated", "--json"]));
    drop(one);
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = ImageDir::new(&sb.images(), "verity-hello");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(image.expected()).unwrap()).unwrap();
    assert_eq!(record["measurement"], expected["configs"][0]["measurement"]);
    let verdict = ok(&mut sb.xtask(&["verify", "verity-hello", "--allow-emulated"]));
    assert!(String::from_utf8_lossy(&verdict.stdout).contains("VERDICT: PASS"));
    let run = std::fs::read_dir(image.runs())
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let console = std::fs::read_to_string(RunDir::at(run).console_log()).unwrap();
    assert!(console.contains("from a dm-verity root"), "{console}");
    // The order that makes evidence mean something: the whole root is checked and mounted, then
    // the guest attests, then the entry point runs from the verified root.
    let at = |line: &str| {
        console
            .find(line)
            .unwrap_or_else(|| panic!("no {line:?} on the console:\n{console}"))
    };
    let checked = at("snpkit-init: dm-verity: all");
    let mounted = at("snpkit-init: dm-verity: /dev/dm-");
    let attested = at("snpkit-init: evidence sent to the host");
    let started = at("snpkit-init: starting the entry point");
    assert!(
        checked < mounted && mounted < attested && attested < started,
        "{console}"
    );
    assert_eq!(record["entry"], "exited with status 0");
}

fn verity_param(sb: &Sandbox, recipe: &str, key: &str) -> usize {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ImageDir::new(&sb.images(), recipe).manifest()).unwrap(),
    )
    .unwrap();
    manifest["verity"][key].as_str().unwrap().parse().unwrap()
}

fn boot_fails(sb: &Sandbox, recipe: &str) -> String {
    let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    fails(&mut sb.xtask(&["boot", recipe, "--launch", "emulated"]))
}

#[test]
fn a_flipped_byte_in_the_root_or_its_tree_stops_the_appliance() {
    let sb = built();
    let dir = sb.images().join("verity-hello");
    let block = verity_param(&sb, "verity-hello", "data_block_size");
    let blocks = verity_param(&sb, "verity-hello", "data_blocks");
    let data_len = std::fs::metadata(dir.join(files::ROOTFS)).unwrap().len() as usize;
    let hash_len = std::fs::metadata(dir.join(files::VERITY)).unwrap().len() as usize;
    assert!(blocks * block <= data_len);
    // The first and the last data block, one in the middle; the top hash block (the tree's first,
    // checked against the root hash) and the last hash block (a leaf). The full check reads every
    // data block, so each is found before the guest attests, and the data blocks by number.
    let middle = data_len / 2 + 17;
    let cases: [(&str, usize, Option<usize>); 5] = [
        (files::ROOTFS, 0, Some(0)),
        (files::ROOTFS, middle, Some(middle / block)),
        (files::ROOTFS, blocks * block - 1, Some(blocks - 1)),
        (files::VERITY, 100, None),
        (files::VERITY, hash_len - 1, None),
    ];
    for (file, at, bad_block) in cases {
        let path = dir.join(file);
        let saved = flip(&path, at);
        let err = boot_fails(&sb, "verity-hello");
        std::fs::write(&path, saved).unwrap();
        // The guest's words, over the channel, lead the run's error.
        assert!(err.contains(MISMATCH), "{file} byte {at}: {err}");
        if let Some(n) = bad_block {
            assert!(
                err.contains(&format!("reading data block {n} (byte {})", n * block)),
                "{file} byte {at}: {err}"
            );
        }
        assert!(
            !err.contains("evidence sent") && !err.contains("hello from"),
            "the guest neither attested nor ran the appliance: {err}"
        );
    }
}

/// A copy of verity-hello with `edit` applied to its recipe and `files` added to its folder,
/// locked and built.
fn variant(edit: impl Fn(String) -> String, files: &[(&str, &[u8])]) -> Sandbox {
    let sb = Sandbox::with_recipe("verity-hello");
    let recipe = sb.recipe_file("verity-hello");
    let text = edit(std::fs::read_to_string(&recipe).unwrap());
    std::fs::write(&recipe, text).unwrap();
    for (name, bytes) in files {
        std::fs::write(sb.recipes().join("verity-hello/files").join(name), bytes).unwrap();
    }
    ok(&mut sb.xtask(&["lock", "verity-hello"]));
    ok(&mut sb.xtask(&["build", "verity-hello"]));
    sb
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in the recipe");
    text.replace(from, to)
}

fn offset_of(haystack: &Path, needle: &[u8]) -> usize {
    std::fs::read(haystack)
        .unwrap()
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("random bytes do not compress: squashfs stores them as they are")
}

#[test]
fn a_guest_rebooted_by_dm_verity_after_attesting_fails_the_run() {
    // restart_on_corruption, blocks checked when first read, and an entry point that reads a
    // file whose one byte is flipped: the guest attests, then the kernel restarts the machine
    // as the appliance reads it. QEMU exits 0 (-no-reboot); the run must still fail.
    let blob = snpkit_testkit::rng::SplitMix64::new(0x5eed).bytes(256 << 10);
    let sb = variant(
        |text| {
            let text = replace_once(
                &text,
                "on_corruption = \"panic\"",
                "on_corruption = \"restart\"",
            );
            let text = replace_once(&text, "\ncheck = \"full\"", "\ncheck = \"lazy\"");
            let text = replace_once(
                &text,
                "argv = [\"/usr/bin/hello\"]",
                "argv = [\"/bin/sh\", \"-c\", \"busybox cat /srv/blob > /dev/null; exec /usr/bin/hello\"]",
            );
            text + "\n[[files]]\nsrc = \"files/blob\"\ndst = \"/srv/blob\"\nmode = 0o644\n"
        },
        &[("blob", &blob)],
    );
    let rootfs = ImageDir::new(&sb.images(), "verity-hello").rootfs();
    let at = offset_of(&rootfs, &blob[128 << 10..(128 << 10) + 64]) + 7;
    flip(&rootfs, at);
    let err = boot_fails(&sb, "verity-hello");
    assert!(
        err.contains("the guest attested, but the run ended without its report that the appliance's entry point finished"),
        "{err}"
    );
    assert!(
        err.contains(&format!("data block {} is corrupted", at / 4096)),
        "the kernel's reason is named: {err}"
    );
    let runs = ImageDir::new(&sb.images(), "verity-hello").runs();
    let kept: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter()
            .all(|n| n.ends_with(snpkit_bundle::run_files::FAILED_SUFFIX)),
        "no run was recorded as passed: {kept:?}"
    );
}

#[test]
fn a_hardened_image_without_a_console_still_says_why_it_refused() {
    // hardened = true refuses console= on the command line: nothing from Linux reaches the
    // serial console, so the guest's reason can only come over the channel.
    let sb = variant(
        |text| {
            let text = replace_once(&text, "hardened = false", "hardened = true");
            replace_once(&text, "cmdline = \"console=ttyS0 ", "cmdline = \"")
        },
        &[],
    );
    let image = ImageDir::new(&sb.images(), "verity-hello");
    let rootfs = image.rootfs();
    let len = std::fs::metadata(&rootfs).unwrap().len() as usize;
    let at = len / 3;
    flip(&rootfs, at);
    let err = boot_fails(&sb, "verity-hello");
    assert!(err.contains(MISMATCH), "{err}");
    assert!(
        err.contains(&format!("reading data block {}", at / 4096)),
        "{err}"
    );
    let run = std::fs::read_dir(image.runs())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let console = std::fs::read_to_string(RunDir::at(run).console_log()).unwrap();
    assert!(
        !console.contains("snpkit-init") && !console.contains("Linux version"),
        "a hardened image's console stays quiet:\n{console}"
    );
}

#[test]
fn a_changed_root_hash_on_the_command_line_is_refused_by_the_firmware() {
    let sb = built();
    let path = ImageDir::new(&sb.images(), "verity-hello").cmdline();
    let cmdline = std::fs::read_to_string(&path).unwrap();
    let at = cmdline.find(",root=").unwrap() + ",root=".len();
    let mut changed = cmdline.clone().into_bytes();
    changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, changed).unwrap();
    let one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let err = fails(&mut sb.xtask(&["boot", "verity-hello", "--launch", "emulated"]));
    drop(one);
    assert!(err.contains("the firmware refused the image"), "{err}");
}
