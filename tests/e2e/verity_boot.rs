//! The dm-verity appliance end to end under the emulated launch: verity-hello boots, attests with
//! the predicted measurement and runs from the verified root; a flipped byte in the root
//! filesystem or its hash tree makes the guest refuse to run the appliance and the run fail with
//! that reason; a changed root hash on the command line is refused by the firmware.

use crate::boot::BOOTS;
use crate::support::{Sandbox, fails, ok};
use std::process::Command;

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
    let dir = sb.images().join("verity-hello");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let v = &manifest["verity"];
    let cmdline = std::fs::read_to_string(dir.join("cmdline")).unwrap();
    assert!(
        cmdline.contains(&format!("root={}", v["root_hash"].as_str().unwrap())),
        "{cmdline}"
    );
    // veritysetup, the reference, accepts our tree with our parameters.
    let out = ok(Command::new("veritysetup")
        .arg("verify")
        .arg(dir.join("rootfs.img"))
        .arg(dir.join("rootfs.verity"))
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
    let listing = ok(Command::new("unsquashfs")
        .arg("-lln")
        .arg(dir.join("rootfs.img")));
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
    let cpio = crate::support::gunzip(&std::fs::read(dir.join("initrd.cpio.gz")).unwrap());
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
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.images().join("verity-hello/expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["measurement"], expected["configs"][0]["measurement"]);
    let verdict = ok(&mut sb.xtask(&["verify", "verity-hello", "--allow-emulated"]));
    assert!(String::from_utf8_lossy(&verdict.stdout).contains("VERDICT: PASS"));
    let runs = sb.images().join("verity-hello/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let console = std::fs::read_to_string(run.join("console.log")).unwrap();
    assert!(console.contains("from a dm-verity root"), "{console}");
    assert!(
        console.contains("dm-verity: all"),
        "every block was read before the appliance started:\n{console}"
    );
}

#[test]
fn a_flipped_byte_in_the_root_or_its_tree_stops_the_appliance() {
    let sb = built();
    let dir = sb.images().join("verity-hello");
    let data_len = std::fs::metadata(dir.join("rootfs.img")).unwrap().len() as usize;
    // The first byte of the filesystem, one in the middle of the data, and the tree's first byte.
    for (file, at) in [
        ("rootfs.img", 0),
        ("rootfs.img", data_len / 2 + 17),
        ("rootfs.verity", 0),
    ] {
        let path = dir.join(file);
        let saved = flip(&path, at);
        let one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
        let err = fails(&mut sb.xtask(&["boot", "verity-hello", "--launch", "emulated"]));
        drop(one);
        std::fs::write(&path, saved).unwrap();
        assert!(
            err.contains("refused to run the appliance") && err.contains("dm-verity"),
            "{file} byte {at}: {err}"
        );
    }
}

#[test]
fn a_changed_root_hash_on_the_command_line_is_refused_by_the_firmware() {
    let sb = built();
    let path = sb.images().join("verity-hello/cmdline");
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
