//! `cargo xtask build`: the hello image read back with our reader and the system's cpio, its
//! manifest checked, and bad input refused without touching the previous image.

use crate::support::{Sandbox, fails, gunzip, ok, read_tree};
use snpkit_image::cpio::read_newc;
use snpkit_image::manifest::Manifest;
use snpkit_recipe::Sha256Sum;
use snpkit_wire::init::{InitConfig, Root};
use std::process::{Command, Stdio};

#[test]
fn hello_builds_and_reads_back() {
    let sb = Sandbox::with_recipe("hello");
    let out = ok(&mut sb.xtask(&["build", "hello", "--json"]));
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(summary["recipe"], "hello");
    let dir = sb.images().join("hello");

    // The manifest vouches for every file of the image folder.
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let files = read_tree(&dir);
    assert_eq!(
        manifest.artifacts.len() + 1,
        files.len(),
        "image files: {:?}",
        files.keys()
    );
    for a in &manifest.artifacts {
        let bytes = &files[&a.name];
        assert_eq!(Sha256Sum::of(bytes), a.sha256, "{}", a.name);
        assert_eq!(bytes.len() as u64, a.size, "{}", a.name);
    }
    assert_eq!(files["cmdline"], manifest.cmdline.as_bytes());
    assert_eq!(manifest.launch.len(), 2);
    assert!(
        manifest
            .inputs
            .iter()
            .any(|i| i.kind == "deb" && i.name == "busybox-static")
    );
    assert!(manifest.inputs.iter().any(|i| i.kind == "guest-init"));
    assert!(manifest.tools.contains_key("rustc"));

    // Our reader: owners, times and the pieces /init needs.
    let cpio = gunzip(&files["initrd.cpio.gz"]);
    let entries = read_newc(&cpio).unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e.uid == 0 && e.gid == 0 && e.mtime == 1_735_689_600)
    );
    let get = |n: &str| {
        entries
            .iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("no {n} in the initramfs"))
    };
    assert_eq!(get("init").mode, 0o100_755);
    assert_eq!(&get("init").data[..4], b"\x7fELF");
    assert_eq!(get("usr/bin/hello").mode, 0o100_755);
    assert_eq!(get("bin/sh").data, b"busybox");
    let config: InitConfig = serde_json::from_slice(&get("etc/snpkit/init.json").data).unwrap();
    assert_eq!(config.entry.argv, ["/usr/bin/hello"]);
    assert_eq!(config.root, Root::Initramfs);
    assert!(
        config.modules.last().unwrap().ends_with("sev-guest.ko.xz"),
        "{:?}",
        config.modules
    );
    for m in &config.modules {
        assert!(
            !get(m.trim_start_matches('/')).data.is_empty(),
            "{m} shipped empty"
        );
    }

    // The system's cpio sees the same entries, in the same order.
    let mut child = Command::new("cpio")
        .args(["-t", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cpio is installed (`cargo xtask setup`)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &cpio).unwrap();
    drop(child.stdin.take());
    let listed = child.wait_with_output().unwrap();
    assert!(listed.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let ours: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ours);
}

#[test]
fn failed_build_keeps_the_previous_image() {
    let sb = Sandbox::with_recipe("hello");
    ok(&mut sb.xtask(&["build", "hello"]));
    let dir = sb.images().join("hello");
    let before = read_tree(&dir);

    // A local input changed after locking: the build must refuse and leave the image alone.
    std::fs::write(
        sb.recipes().join("hello/files/hello"),
        "#!/bin/sh\necho tampered\n",
    )
    .unwrap();
    let err = fails(&mut sb.xtask(&["build", "hello"]));
    assert!(
        err.contains("files/hello") && err.contains("cargo xtask lock hello"),
        "{err}"
    );
    assert_eq!(read_tree(&dir), before);
    let names: Vec<_> = std::fs::read_dir(sb.images())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["hello"], "no temporary folders left in images/");
}

#[test]
fn bad_recipes_get_clear_errors_and_write_nothing() {
    let sb = Sandbox::with_recipe("hello");
    let file = sb.recipe_file("hello");
    let good = std::fs::read_to_string(&file).unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "vcpus = 1",
            "vcpus = 0",
            &["recipe.toml", "launch[0].vcpus"],
        ),
        (
            "name = \"hello\"",
            "name = \"hello",
            &["recipe.toml", "not a valid recipe"],
        ),
        (
            "src = \"files/hello\"",
            "src = \"files/missing\"",
            &["files/missing"],
        ),
        // A changed recipe needs a new lock before it builds.
        (
            "memory_mib = 512\n\n",
            "memory_mib = 1024\n\n",
            &["recipe.lock is out of date", "cargo xtask lock hello"],
        ),
    ];
    for (from, to, needles) in cases {
        assert!(good.contains(from), "test bug: {from}");
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let err = fails(&mut sb.xtask(&["build", "hello"]));
        for n in *needles {
            assert!(err.contains(n), "{from} -> {to}: {err:?} lacks {n:?}");
        }
        assert!(
            std::fs::read_dir(sb.images()).unwrap().next().is_none(),
            "{from} -> {to} wrote into images/"
        );
    }
    std::fs::remove_dir_all(sb.recipes().join("hello")).unwrap();
    let err = fails(&mut sb.xtask(&["build", "hello"]));
    assert!(err.contains("no recipe named \"hello\""), "{err}");
}

#[test]
fn packages_that_apt_cannot_supply_are_named() {
    let sb = Sandbox::with_recipe("hello");
    let file = sb.recipe_file("hello");
    let good = std::fs::read_to_string(&file).unwrap();
    let unknown = good.replace(
        "name = \"busybox-static\"",
        "name = \"snpkit-no-such-package\"",
    );
    std::fs::write(&file, unknown).unwrap();
    let err = fails(&mut sb.xtask(&["lock", "hello"]));
    assert!(
        err.contains("apt knows no package \"snpkit-no-such-package\""),
        "{err}"
    );

    let gone = good.replace(
        "version = \"1:1.35.0-4+deb12u1+b1\"",
        "version = \"1:0.1-1\"",
    );
    std::fs::write(&file, gone).unwrap();
    let err = fails(&mut sb.xtask(&["lock", "hello"]));
    assert!(
        err.contains("busybox-static version 1:0.1-1 is no longer in the archive"),
        "{err}"
    );
    assert!(
        err.contains("1:1.35.0-4+deb12u1+b1"),
        "the error lists what apt offers: {err}"
    );

    let wrong_sum = good.replace(
        "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
        &"ab".repeat(32),
    );
    std::fs::write(&file, wrong_sum).unwrap();
    let err = fails(&mut sb.xtask(&["lock", "hello"]));
    assert!(err.contains("serves a different .deb"), "{err}");
}

/// A disk that fills up mid-build: a 4 MiB tmpfs as the images folder (the image is ~17 MB).
#[test]
fn disk_full_mid_build_leaves_nothing_half_written() {
    assert!(
        nix_is_root(),
        "this test mounts a small tmpfs to fill the disk and needs root; run `sudo cargo xtask test`"
    );
    let sb = Sandbox::with_recipe("hello");
    let images = sb.images();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "snpkit-test"])
        .arg(&images)
        .status()
        .unwrap();
    assert!(mount.success(), "mount tmpfs failed");
    let err = fails(&mut sb.xtask(&["build", "hello"]));
    let listing: Vec<_> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let _ = Command::new("umount").arg(&images).status();
    assert!(
        err.contains(&format!("{}/ is out of space writing", images.display()))
            && err.contains("MB needed); free space and rerun; the previous image is unchanged"),
        "{err}"
    );
    assert!(listing.is_empty(), "left behind: {listing:?}");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A plain OvmfX64 has no SNP_KERNEL_HASHES section: it would boot a kernel, initrd and cmdline that
/// nothing binds to the measurement, so the build refuses it.
#[test]
fn a_firmware_without_kernel_hashes_is_refused() {
    let sb = Sandbox::with_recipe("hello");
    let fixture = crate::support::root()
        .join("tests/vectors/virtee-sev-snp-measure/tests/fixtures/ovmf_OvmfX64_suffix.bin");
    std::fs::copy(&fixture, sb.recipes().join("hello/OvmfX64.fd")).unwrap();
    let sum = Sha256Sum::of(&std::fs::read(&fixture).unwrap());
    let file = sb.recipe_file("hello");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "source = \"amdsev\"",
        &format!("path = \"OvmfX64.fd\"\nsha256 = \"{sum}\""),
    );
    std::fs::write(&file, text).unwrap();
    ok(&mut sb.xtask(&["lock", "hello"]));
    let err = fails(&mut sb.xtask(&["build", "hello"]));
    assert!(
        err.contains("SNP_KERNEL_HASHES") && err.contains("cargo xtask ovmf"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(sb.images()).unwrap().next().is_none(),
        "nothing written"
    );
}

/// Without apt (another distribution, or a broken PATH) the error says what snpkit needs it for.
#[test]
fn apt_unavailable_is_named() {
    let sb = Sandbox::with_recipe("hello");
    let empty = tempfile::tempdir().unwrap();
    let err = fails(sb.xtask(&["lock", "hello"]).env("PATH", empty.path()));
    assert!(err.contains("apt-cache") && err.contains("Debian"), "{err}");
}
