//! `cargo xtask build`: the hello image read back with our reader and the system's cpio, its
//! manifest checked, and bad input refused without touching the previous image.

use crate::support::{Sandbox, fails, gunzip, ok, read_tree};
use snpkit_bundle::{Expected, InputKind, Manifest, Sha256Sum, files};
use snpkit_image::cpio::read_newc;
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

    // The manifest vouches for every file of the image folder but itself and the prediction.
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(dir.join(files::MANIFEST)).unwrap()).unwrap();
    let tree = read_tree(&dir);
    assert_eq!(
        manifest.artifacts.len() + 2,
        tree.len(),
        "image files: {:?}",
        tree.keys()
    );
    // The build wrote the prediction, byte for byte what `measure` writes from the folder.
    let predicted = tree[files::EXPECTED].clone();
    ok(&mut sb.xtask(&["measure", "hello"]));
    assert_eq!(
        std::fs::read(dir.join(files::EXPECTED)).unwrap(),
        predicted,
        "build and measure predict the same"
    );
    let expected = Expected::from_json(&dir, &predicted).unwrap();
    assert_eq!(expected.configs.len(), manifest.launch.len());
    for (input, file) in expected.inputs.iter().zip([
        files::FIRMWARE,
        files::KERNEL,
        files::INITRD,
        files::CMDLINE,
    ]) {
        assert_eq!(
            input.sha256,
            manifest.artifact(file).unwrap().sha256,
            "{file}"
        );
    }
    for a in &manifest.artifacts {
        let bytes = &tree[&a.name];
        assert_eq!(Sha256Sum::of(bytes), a.sha256, "{}", a.name);
        assert_eq!(bytes.len() as u64, a.size, "{}", a.name);
    }
    assert_eq!(tree[files::CMDLINE], manifest.cmdline.as_bytes());
    assert_eq!(manifest.launch.len(), 2);
    assert!(
        manifest
            .inputs
            .iter()
            .any(|i| i.kind == InputKind::Deb && i.name == "busybox-static")
    );
    assert!(
        manifest
            .inputs
            .iter()
            .any(|i| i.kind == InputKind::GuestInit)
    );
    assert!(manifest.tools.contains_key("rustc"));

    // Our reader: owners, times and the pieces /init needs.
    let cpio = gunzip(&tree[files::INITRD]);
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
        // Launch configurations are read as the measurement will read them, before anything is
        // fetched or compiled.
        (
            "vcpu_type = \"EPYC-v4\"",
            "vcpu_type = \"Pentium\"",
            &[
                "recipe.toml: launch[0].vcpu_type",
                "unknown vCPU type \"Pentium\"",
                "e.g. \"EPYC-v4\"",
            ],
        ),
        (
            "vmm = \"qemu\"",
            "vmm = \"xen\"",
            &[
                "recipe.toml: launch[0].vmm",
                "use one of: qemu, ec2, ec2-rdx-0x600, gce",
            ],
        ),
        (
            "guest_features = 0x1",
            "guest_features = 0x20",
            &["recipe.toml: launch[0].guest_features", "set bit 0"],
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
        assert!(sb.images_empty(), "{from} -> {to} wrote into images/");
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
    sb.edit_recipe(
        "hello",
        "source = \"amdsev\"",
        &format!("path = \"OvmfX64.fd\"\nsha256 = \"{sum}\""),
    );
    ok(&mut sb.xtask(&["lock", "hello"]));
    let err = fails(&mut sb.xtask(&["build", "hello"]));
    assert!(
        err.contains("SNP_KERNEL_HASHES") && err.contains("cargo xtask ovmf"),
        "{err}"
    );
    assert!(sb.images_empty(), "nothing written");
}

/// Without apt (another distribution, or a broken PATH) the error says what snpkit needs it for.
#[test]
fn apt_unavailable_is_named() {
    let sb = Sandbox::with_recipe("hello");
    let empty = tempfile::tempdir().unwrap();
    let err = fails(sb.xtask(&["lock", "hello"]).env("PATH", empty.path()));
    assert!(err.contains("apt-cache") && err.contains("Debian"), "{err}");
}

/// Every VMM spelling the measurement accepts is a valid recipe: `ec2-rdx-0x600` gets past the
/// launch check and stops only at the lock, which the changed recipe has made stale.
#[test]
fn the_recipe_accepts_the_vmm_spellings_the_measurement_accepts() {
    let sb = Sandbox::with_recipe("hello");
    let file = sb.recipe_file("hello");
    let good = std::fs::read_to_string(&file).unwrap();
    for vmm in ["ec2", "ec2-rdx-0x600", "gce", "QEMU"] {
        std::fs::write(
            &file,
            good.replacen("vmm = \"qemu\"", &format!("vmm = \"{vmm}\""), 1),
        )
        .unwrap();
        let err = fails(&mut sb.xtask(&["build", "hello"]));
        assert!(
            err.contains("recipe.lock is out of date") && !err.contains("launch[0]"),
            "{vmm}: {err}"
        );
    }
}

/// A lock pinning a version the archive does not have, and a cache that has never seen it: the
/// build says the version is gone, what apt offers, and the two commands that fix it, with this
/// recipe's name, and `--json` says so on stdout.
#[test]
fn a_locked_version_gone_from_the_archive_is_named_at_build_time() {
    let sb = Sandbox::with_recipe("hello");
    let recipe_file = sb.recipe_file("hello");
    let lock_file = sb.recipes().join("hello/recipe.lock");
    let real = "1:1.35.0-4+deb12u1+b1";
    let recipe = std::fs::read_to_string(&recipe_file)
        .unwrap()
        .replace(real, "1:0.1-1");
    std::fs::write(&recipe_file, &recipe).unwrap();
    // Nothing in any cache has this hash, so the build must ask apt for the package.
    let unseen = Sha256Sum::of(b"a busybox-static nobody has built");
    let lock = std::fs::read_to_string(&lock_file).unwrap();
    let old_recipe_sum = lock
        .lines()
        .find_map(|l| l.strip_prefix("recipe_sha256 = "))
        .unwrap()
        .to_owned();
    let busybox_sum = "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744";
    for needle in [real, busybox_sum, old_recipe_sum.as_str()] {
        assert_eq!(
            lock.matches(needle).count(),
            1,
            "test bug: {needle} in the lock"
        );
    }
    let lock = lock
        .replace(real, "1:0.1-1")
        .replace(busybox_sum, &unseen.to_string())
        .replace(
            &old_recipe_sum,
            &format!("\"{}\"", Sha256Sum::of(recipe.as_bytes())),
        );
    std::fs::write(&lock_file, lock).unwrap();

    let out = crate::support::run(&mut sb.xtask(&["build", "hello", "--json"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "busybox-static version 1:0.1-1 is no longer in the archive",
        &format!("apt offers: {real}"),
        "run `apt-get update` (as root), then `cargo xtask lock hello`",
    ] {
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON on failure too");
    assert_eq!(json["error"]["kind"], "version_gone", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cargo xtask lock hello"),
        "{json}"
    );
    assert!(sb.images_empty(), "nothing written");
}

/// `lock --json`: what was pinned on success, `{"error": …}` on failure.
#[test]
fn lock_speaks_json() {
    let sb = Sandbox::with_recipe("hello");
    let out = ok(&mut sb.xtask(&["lock", "hello", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["recipe"], "hello");
    assert_eq!(v["status"], "unchanged", "{v}");
    assert_eq!(v["pins"]["kernel"]["release"], "6.12.95+deb12-cloud-amd64");
    assert_eq!(v["pins"]["packages"][0]["name"], "busybox-static");

    sb.edit_recipe(
        "hello",
        "name = \"busybox-static\"",
        "name = \"snpkit-no-such-package\"",
    );
    let out = crate::support::run(&mut sb.xtask(&["lock", "hello", "--json"]));
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on failure");
    assert_eq!(v["error"]["kind"], "package_unknown", "{v}");
}

/// An entry point that is not in the image is refused at build time, not found at boot.
#[test]
fn an_entry_point_missing_from_the_image_is_refused() {
    let sb = Sandbox::with_recipe("hello");
    sb.edit_recipe(
        "hello",
        "argv = [\"/usr/bin/hello\"]",
        "argv = [\"/usr/bin/helo\"]",
    );
    // `lock` assembles the tree as `build` will, so it refuses the recipe first and keeps the
    // lock it had; `build` on that older lock then finds the recipe changed.
    let lock_file = sb.recipes().join("hello/recipe.lock");
    let before = std::fs::read(&lock_file).unwrap();
    for command in ["lock", "build"] {
        let out = crate::support::run(&mut sb.xtask(&[command, "hello", "--json"]));
        assert!(!out.status.success(), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if command == "lock" {
            assert!(
                err.contains(
                    "recipe.toml: entry.argv[0]: /usr/bin/helo does not exist in the image"
                ),
                "{err}"
            );
            assert_eq!(v["error"]["kind"], "entry_missing");
        } else {
            assert_eq!(v["error"]["kind"], "lock_stale", "{err}");
        }
    }
    assert_eq!(
        std::fs::read(&lock_file).unwrap(),
        before,
        "the old lock is kept"
    );
    assert!(sb.images_empty());
}

/// What `[[directories]]` copies is pinned beyond its bytes: a new execute bit or a new symlink
/// changes the image, so the lock must be refreshed first.
#[test]
fn modes_and_symlinks_under_directories_are_pinned_by_the_lock() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::with_recipe("hello");
    let tree = sb.recipes().join("hello/files/tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("tool"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(tree.join("tool"), std::fs::Permissions::from_mode(0o644)).unwrap();
    sb.edit_recipe(
        "hello",
        "[entry]",
        "[[directories]]\nsrc = \"files/tree\"\ndst = \"/opt/tree\"\n\n[entry]",
    );
    ok(&mut sb.xtask(&["lock", "hello"]));
    let lock = std::fs::read_to_string(sb.recipes().join("hello/recipe.lock")).unwrap();
    assert!(
        lock.contains("path = \"files/tree/tool\"") && lock.contains("mode = \"0644\""),
        "{lock}"
    );

    std::fs::set_permissions(tree.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = fails(&mut sb.xtask(&["build", "hello"]));
    assert!(
        err.contains("local files changed since the lock was written: files/tree/tool"),
        "{err}"
    );
    ok(&mut sb.xtask(&["lock", "hello"]));

    std::os::unix::fs::symlink("tool", tree.join("sh")).unwrap();
    let err = fails(&mut sb.xtask(&["build", "hello"]));
    assert!(
        err.contains("local files changed since the lock was written: files/tree/sh"),
        "{err}"
    );
}
