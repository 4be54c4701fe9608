//! Every way a recipe can be wrong gets an error naming the file, the key and the fix.
#![allow(clippy::unwrap_used)]

use snpkit_recipe::{
    BootCheck, CmdlineContext, Corruption, FirmwareSource, HashAlgorithm, KernelSource,
    LaunchProblem, Layout, Recipe, RecipeError, RootFilesystem, check_cmdline, render_cmdline,
};
use snpkit_testkit::recipe::LAUNCH;
use std::path::Path;
use std::sync::LazyLock;

const HEAD: &str = r#"
name = "app"
cmdline = "console=ttyS0 {{ vars.extra }}"
hardened = false
modules = ["sev-guest"]
[kernel]
package = "linux-image-6.12.95+deb12-cloud-amd64"
version = "6.12.95-1~bpo12+1"
sha256 = "69c92f43b23821de79576fa4d7c86e2924ae2c1b247a47cc5ed9339e220fbcb7"
[firmware]
source = "amdsev"
[[files]]
src = "files/app"
dst = "/usr/bin/app"
mode = 0o755
[entry]
argv = ["/usr/bin/app", "--serve"]
[vars]
extra = "quiet"
"#;

/// A recipe that uses every kind of key once, with the fixtures' launch table.
static GOOD: LazyLock<String> = LazyLock::new(|| format!("{HEAD}{LAUNCH}"));

fn file() -> &'static Path {
    Path::new("recipes/app/recipe.toml")
}

fn parse(text: &str) -> Result<Recipe, RecipeError> {
    Recipe::parse(text, file())
}

/// `GOOD` with one line replaced, expecting an error that mentions every needle.
fn fails(from: &str, to: &str, needles: &[&str]) {
    assert!(GOOD.contains(from), "test bug: {from:?} not in GOOD");
    let text = GOOD.replacen(from, to, 1);
    let err = parse(&text)
        .expect_err(&format!("{from:?} -> {to:?} should fail"))
        .to_string();
    assert!(
        err.contains("recipes/app/recipe.toml"),
        "error names no file: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "error {err:?} lacks {n:?}");
    }
}

#[test]
fn good_recipe_parses_into_checked_types() {
    let r = parse(&GOOD).unwrap();
    assert_eq!(r.name, "app");
    assert_eq!(r.layout, Layout::Initramfs);
    assert!(
        matches!(r.kernel, KernelSource::Debian(ref p) if p.version.as_deref() == Some("6.12.95-1~bpo12+1"))
    );
    assert_eq!(r.firmware, FirmwareSource::AmdSev);
    assert_eq!(r.files[0].src, Path::new("recipes/app/files/app"));
    assert_eq!(r.files[0].mode, 0o755);
    assert_eq!(r.launch_config("one").unwrap().vcpus, 1);
    assert!(
        r.launch_config("two")
            .unwrap_err()
            .to_string()
            .contains("choose one of: one")
    );
}

#[test]
fn syntax_and_unknown_keys() {
    fails("name = \"app\"", "name = ", &["not a valid recipe"]);
    fails(
        "hardened = false",
        "hardened = false\ncolour = 1",
        &["unknown field `colour`"],
    );
    fails("vcpus = 1", "vcpus = \"one\"", &["invalid type"]);
}

#[test]
fn names_and_folders() {
    fails("name = \"app\"", "name = \"App!\"", &["name", "lowercase"]);
    fails(
        "name = \"app\"",
        "name = \"other\"",
        &["recipes/app/", "set name = \"app\""],
    );
}

#[test]
fn kernel_and_firmware_pins() {
    fails(
        "sha256 = \"69c92f",
        "sha256 = \"zz9c92f",
        &["kernel.sha256", "64 hex digits"],
    );
    fails(
        "version = \"6.12.95-1~bpo12+1\"\n",
        "",
        &["kernel.sha256", "a checksum without a version"],
    );
    fails(
        "package = \"linux",
        "path = \"vmlinuz\"\npackage = \"linux",
        &["kernel", "exactly one of"],
    );
    fails(
        "source = \"amdsev\"",
        "source = \"ovmfx64\"",
        &["firmware.source", "amdsev"],
    );
    fails(
        "source = \"amdsev\"",
        "path = \"OVMF.fd\"",
        &["firmware.sha256", "missing"],
    );
}

#[test]
fn paths_stay_inside() {
    fails(
        "src = \"files/app\"",
        "src = \"../secrets\"",
        &["files[0].src", "inside the recipe folder"],
    );
    fails(
        "src = \"files/app\"",
        "src = \"/etc/shadow\"",
        &["files[0].src"],
    );
    fails(
        "dst = \"/usr/bin/app\"",
        "dst = \"usr/bin/app\"",
        &["files[0].dst", "absolute"],
    );
    fails(
        "dst = \"/usr/bin/app\"",
        "dst = \"/usr/../etc/x\"",
        &["files[0].dst"],
    );
    fails("mode = 0o755", "mode = 0o17777", &["files[0].mode"]);
    fails(
        "argv = [\"/usr/bin/app\", \"--serve\"]",
        "argv = []",
        &["entry.argv", "empty"],
    );
    fails(
        "argv = [\"/usr/bin/app\", \"--serve\"]",
        "argv = [\"app\"]",
        &["entry.argv[0]"],
    );
    fails(
        "modules = [\"sev-guest\"]",
        "modules = [\"sev-guest.ko\"]",
        &["modules[0]"],
    );
}

#[test]
fn launch_configs() {
    // QEMU's q35 limit, the same the measurement accepts (snpkit_measure::vcpus).
    fails("vcpus = 1", "vcpus = 0", &["launch[0].vcpus", "1 to 4096"]);
    fails(
        "vcpus = 1",
        "vcpus = 4097",
        &["launch[0].vcpus", "1 to 4096"],
    );
    let most = parse(&GOOD.replacen("vcpus = 1", "vcpus = 4096", 1)).unwrap();
    assert_eq!(most.launch[0].vcpus, 4096);
    fails(
        "policy = 0x30000",
        "policy = 0x10000",
        &["launch[0].policy", "bit 17"],
    );
    fails(
        "policy = 0x30000",
        "policy = 0xb0000",
        &["launch[0].policy", "DEBUG"],
    );
    fails(
        "memory_mib = 512",
        "memory_mib = 64",
        &["launch[0].memory_mib"],
    );
    let twice = GOOD.to_owned() + &GOOD[GOOD.find("[[launch]]").unwrap()..];
    assert!(
        parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("used twice")
    );
    let none = &GOOD[..GOOD.find("[[launch]]").unwrap()];
    assert!(
        parse(none)
            .unwrap_err()
            .to_string()
            .contains("no launch configuration")
    );
}

/// VMM, CPU model and guest features are the measurement's to judge; the recipe turns its verdict
/// into an error naming the file, the key and the fix.
#[test]
fn launch_checks_from_outside_name_the_key() {
    let r = parse(&GOOD.replace("vmm = \"qemu\"", "vmm = \"xen\"")).unwrap();
    let check = |c: &snpkit_bundle::LaunchSpec| {
        if c.vmm == "xen" {
            Err(LaunchProblem {
                field: "vmm",
                problem: "unknown VMM \"xen\"".into(),
                fix: "use one of: qemu, ec2".into(),
            })
        } else {
            Ok(())
        }
    };
    let err = r.check_launch(&check).unwrap_err().to_string();
    assert_eq!(
        err,
        "recipes/app/recipe.toml: launch[0].vmm: launch configuration \"one\": unknown VMM \"xen\"; use one of: qemu, ec2"
    );
    parse(&GOOD).unwrap().check_launch(&check).unwrap();
}

#[test]
fn layout_and_verity() {
    fails(
        "hardened = false",
        "hardened = false\nlayout = \"squash\"",
        &["layout", "unknown layout"],
    );
    let verity = |table: &str| {
        GOOD.replace("hardened = false", "hardened = false\nlayout = \"verity\"")
            + "[verity]\n"
            + table
            + "\n"
    };
    // Unknown spellings are errors, never a quiet default.
    for (table, key, choices) in [
        ("hash = \"md5\"", "verity.hash", "sha256, sha1, sha512"),
        (
            "on_corruption = \"ignore\"",
            "verity.on_corruption",
            "panic, restart",
        ),
        (
            "on_corruption = \"Restart\"",
            "verity.on_corruption",
            "panic, restart",
        ),
        ("check = \"once\"", "verity.check", "full, lazy"),
        ("filesystem = \"erofs\"", "verity.filesystem", "squashfs"),
    ] {
        let err = parse(&verity(table)).unwrap_err().to_string();
        assert!(
            err.contains("recipes/app/recipe.toml")
                && err.contains(key)
                && err.contains(&format!("use one of: {choices}")),
            "{table}: {err}"
        );
    }
    let Layout::Verity(v) = parse(&verity("")).unwrap().layout else {
        panic!("not a verity layout")
    };
    assert_eq!(
        (
            v.filesystem,
            v.hash,
            v.on_corruption,
            v.check,
            v.seed.as_str()
        ),
        (
            RootFilesystem::Squashfs,
            HashAlgorithm::Sha256,
            Corruption::Panic,
            BootCheck::Full,
            "app"
        )
    );
    let Layout::Verity(v) = parse(&verity(
        "hash = \"sha512\"\non_corruption = \"restart\"\ncheck = \"lazy\"",
    ))
    .unwrap()
    .layout
    else {
        panic!("not a verity layout")
    };
    assert_eq!(
        (v.hash, v.on_corruption, v.check),
        (HashAlgorithm::Sha512, Corruption::Restart, BootCheck::Lazy)
    );
}

fn ctx(r: &Recipe) -> CmdlineContext {
    CmdlineContext {
        name: r.name.clone(),
        layout: "initramfs",
        kernel_release: "6.12".into(),
        vars: r.vars.clone(),
        verity: None,
    }
}

#[test]
fn cmdline_renders_exactly_and_refuses_back_doors() {
    let r = parse(&GOOD).unwrap();
    assert_eq!(render_cmdline(&r, &ctx(&r)).unwrap(), "console=ttyS0 quiet");
    // Whitespace is kept: a trailing space changes the measurement and must survive.
    let r = parse(&GOOD.replace("{{ vars.extra }}\"", "{{ vars.extra }} \"")).unwrap();
    assert_eq!(
        render_cmdline(&r, &ctx(&r)).unwrap(),
        "console=ttyS0 quiet "
    );

    let r = parse(&GOOD.replace("{{ vars.extra }}", "{{ vars.missing }}")).unwrap();
    assert!(
        render_cmdline(&r, &ctx(&r))
            .unwrap_err()
            .to_string()
            .contains("cmdline template")
    );
    fails("{{ vars.extra }}", "{{ vars.extra", &["cmdline template"]);

    for door in ["init=/bin/sh", "rdinit=/bin/sh", "rd.shell", "single"] {
        let r = parse(&GOOD.replace("{{ vars.extra }}", door)).unwrap();
        let err = render_cmdline(&r, &ctx(&r)).unwrap_err().to_string();
        assert!(err.contains("bypass snpkit's /init"), "{door}: {err}");
    }
    let hardened = parse(&GOOD.replace("hardened = false", "hardened = true")).unwrap();
    let err = render_cmdline(&hardened, &ctx(&hardened))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("console=ttyS0") && err.contains("hardened"),
        "{err}"
    );
}

/// The forms a whitespace-splitting check missed: each is judged as the kernel reads it, already
/// when the recipe is checked before lock and build fetch anything.
#[test]
fn cmdline_is_judged_as_the_kernel_reads_it_before_anything_is_fetched() {
    // (vars.extra as TOML writes it, words of the error)
    let rows: &[(&str, &[&str])] = &[
        (
            r#"\"init=/bin/sh\""#,
            &["bypass snpkit's /init", "[entry].argv"],
        ),
        (r#"quiet\u000Binit=/bin/sh"#, &["vertical tab", "0x0b"]),
        (r#"quiet\tinit=/bin/sh"#, &["a tab"]),
        (r"quiet\u00E0init=/bin/sh", &["not ASCII", "0xA0"]),
        (r"quiet\u00A0init=/bin/sh", &["not ASCII"]),
        ("quiet -- init=/bin/sh", &["bypass", "init (after --)"]),
        (r#"quiet \"--\" rdinit=/bin/sh"#, &["bypass"]),
        ("systemd.debug-shell", &["bypass"]),
        ("rd.cmdline=ask", &["bypass", "dracut"]),
        (r#"x=\"a init=/bin/sh\""#, &["bypass", "x86's early parser"]),
        (r#"\"a=b"#, &["double quotes"]),
        ("'rd.shell'", &["single quote"]),
        ("init=", &["bypass"]),
    ];
    for (extra, words) in rows {
        let text = GOOD.replace(r#"extra = "quiet""#, &format!("extra = \"{extra}\""));
        let r = parse(&text).unwrap_or_else(|e| panic!("{extra}: {e}"));
        let err = check_cmdline(&r, None)
            .expect_err(&format!("{extra} must be refused"))
            .to_string();
        for w in *words {
            assert!(err.contains(w), "{extra}: {err:?} lacks {w:?}");
        }
    }
    // Dashes and underscores are one in the kernel's names; hardened refuses either spelling.
    let hardened = GOOD
        .replace("hardened = false", "hardened = true")
        .replace("console=ttyS0 ", "");
    for extra in [
        "ignore-loglevel",
        "ignore_loglevel",
        "earlycon",
        "quiet \\\"console=hvc0\\\"",
    ] {
        let text = hardened.replace(r#"extra = "quiet""#, &format!("extra = \"{extra}\""));
        let r = parse(&text).unwrap();
        let err = check_cmdline(&r, None).expect_err(extra).to_string();
        assert!(err.contains("hardened image"), "{extra}: {err}");
    }
    let ok = parse(&hardened).unwrap();
    check_cmdline(&ok, Some("6.12.95+deb12-cloud-amd64")).unwrap();
}

/// A recipe folder on disk whose `files/app` is what `make` puts there.
fn on_disk(make: impl FnOnce(&Path, &Path)) -> (tempfile::TempDir, Result<(), RecipeError>) {
    let dir = tempfile::tempdir().unwrap();
    let recipe_dir = dir.path().join("recipes/app");
    std::fs::create_dir_all(recipe_dir.join("files")).unwrap();
    std::fs::write(recipe_dir.join("recipe.toml"), GOOD.as_str()).unwrap();
    make(dir.path(), &recipe_dir);
    let r = Recipe::load(&recipe_dir.join("recipe.toml")).unwrap();
    let result = r.check_sources();
    (dir, result)
}

#[test]
fn sources_that_lead_outside_the_recipe_folder_are_refused_with_where_they_lead() {
    use std::os::unix::fs::symlink;
    let (_d, ok) = on_disk(|_, r| std::fs::write(r.join("files/app"), b"x").unwrap());
    ok.unwrap();
    // A symlink inside the folder to a file inside it is fine.
    let (_d, ok) = on_disk(|_, r| {
        std::fs::write(r.join("real"), b"x").unwrap();
        symlink("../real", r.join("files/app")).unwrap();
    });
    ok.unwrap();
    type Make = fn(&Path, &Path);
    let rows: &[(&str, Make, &[&str])] = &[
        (
            "absolute symlink",
            |_, r| symlink("/etc/hostname", r.join("files/app")).unwrap(),
            &["leads to /etc/hostname", "outside the recipe folder"],
        ),
        (
            "relative climb",
            |top, r| {
                std::fs::write(top.join("secret"), b"s").unwrap();
                symlink("../../../secret", r.join("files/app")).unwrap();
            },
            &[
                "files[0].src",
                "secret",
                "outside the recipe folder",
                "may only put its own files",
            ],
        ),
        (
            "linked folder",
            |top, r| {
                std::fs::create_dir(top.join("outside")).unwrap();
                std::fs::write(top.join("outside/app"), b"builder's").unwrap();
                std::fs::remove_dir(r.join("files")).unwrap();
                symlink(top.join("outside"), r.join("files")).unwrap();
            },
            &["outside/app", "outside the recipe folder"],
        ),
        (
            "fifo",
            |_, r| {
                assert!(
                    std::process::Command::new("mkfifo")
                        .arg(r.join("files/app"))
                        .status()
                        .unwrap()
                        .success()
                );
            },
            &["FIFO", "not a file", "regular file"],
        ),
        (
            "device",
            |_, r| symlink("/dev/zero", r.join("files/app")).unwrap(),
            &["character device"],
        ),
        (
            "folder",
            |_, r| std::fs::create_dir(r.join("files/app")).unwrap(),
            &["is a folder, not a file"],
        ),
        (
            "missing",
            |_, _| {},
            &["files/app", "create it or fix the path"],
        ),
    ];
    for (name, make, words) in rows {
        let (_d, result) = on_disk(make);
        let err = result.expect_err(name).to_string();
        for w in *words {
            assert!(err.contains(w), "{name}: {err:?} lacks {w:?}");
        }
    }
}

const IDENTITY: &str = r#"
[identity]
family_id = "5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11"
image_id = "00000000000000000000000000000001"
guest_svn = 3
"#;

#[test]
fn identity_is_checked_and_optional() {
    assert_eq!(parse(&GOOD).unwrap().identity, None);
    let id = parse(&format!("{}{IDENTITY}", *GOOD))
        .unwrap()
        .identity
        .unwrap();
    assert_eq!(id.family_id[..4], [0x5e, 0x0d, 0x3a, 0xb4]);
    assert_eq!(id.image_id, {
        let mut one = [0u8; 16];
        one[15] = 1;
        one
    });
    assert_eq!(id.guest_svn, 3);
}

/// Hostile and mistaken `[identity]` tables: each refused, naming `identity.<key>` and the fix.
#[test]
fn hostile_identity_values_are_refused_by_key() {
    let rows: &[(&str, &str, &[&str])] = &[
        (
            "guest_svn = 3",
            "guest_svn = -1",
            &["identity.guest_svn", "-1 is out of range"],
        ),
        (
            "guest_svn = 3",
            "guest_svn = 4294967296",
            &["identity.guest_svn", "out of range"],
        ),
        ("guest_svn = 3", "guest_svn = \"3\"", &["invalid type"]),
        ("guest_svn = 3\n", "", &["identity.guest_svn", "missing"]),
        (
            "family_id = \"5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11\"",
            "family_id = \"5e0d3ab4\"",
            &["identity.family_id", "not 16 bytes", "UUID"],
        ),
        (
            "family_id = \"5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11\"",
            "family_id = 7",
            &["invalid type"],
        ),
        (
            "image_id = \"00000000000000000000000000000001\"",
            "image_id = \"000000000000000000000000000000010\"",
            &["identity.image_id", "not 16 bytes"],
        ),
        (
            "image_id = \"00000000000000000000000000000001\"",
            "image_id = \"0000000000000000000000000000000g\"",
            &["identity.image_id", "not 16 bytes"],
        ),
        (
            "image_id = \"00000000000000000000000000000001\"",
            &format!("image_id = \"{}\"", "a".repeat(100_000)),
            &["identity.image_id", "not 16 bytes"],
        ),
        (
            "image_id = \"00000000000000000000000000000001\"\n",
            "",
            &["identity.image_id", "missing"],
        ),
        (
            "guest_svn = 3",
            "guest_svn = 3\nid_key = \"keys/id.pem\"",
            &["identity.id_key", "never go into a recipe", "--id-key"],
        ),
        (
            "guest_svn = 3",
            "guest_svn = 3\nauthor_key = \"-----BEGIN PRIVATE KEY-----\"",
            &["identity.author_key", "never go into a recipe"],
        ),
        (
            "guest_svn = 3",
            "guest_svn = 3\nsvn = 4",
            &["unknown field `svn`"],
        ),
    ];
    let good = format!("{}{IDENTITY}", *GOOD);
    for (from, to, needles) in rows {
        assert!(good.contains(from), "test bug: {from:?}");
        let err = parse(&good.replacen(from, to, 1))
            .expect_err(&format!("{to:?} should fail"))
            .to_string();
        assert!(err.contains("recipes/app/recipe.toml"), "{err}");
        for n in *needles {
            assert!(err.contains(n), "{to:?}: {err:?} lacks {n:?}");
        }
        // A hostile value is quoted, not echoed whole.
        assert!(err.len() < 2000, "{} bytes of error", err.len());
    }
}

#[test]
fn launch_host_data_is_64_hex_digits() {
    let with = GOOD.replacen(
        "memory_mib = 512",
        &format!("memory_mib = 512\nhost_data = \"{}\"", "0f".repeat(32)),
        1,
    );
    let r = parse(&with).unwrap();
    assert_eq!(r.launch[0].host_data.unwrap().0, [0x0f; 32]);
    for bad in [
        "\"0f\"".to_owned(),
        format!("\"{}\"", "zz".repeat(32)),
        "32".to_owned(),
    ] {
        fails(
            "memory_mib = 512",
            &format!("memory_mib = 512\nhost_data = {bad}"),
            &["host_data"],
        );
    }
}

const SECRET: &str = r#"
[[secrets]]
name = "token"
resource = "default/app/token"
"#;

/// `GOOD` plus one `[[secrets]]` entry with `extra` lines.
fn with_secret(extra: &str) -> String {
    format!("{}{SECRET}{extra}", *GOOD)
}

#[test]
fn secrets_default_to_an_owner_only_file_in_the_tmpfs() {
    let r = parse(&with_secret("")).unwrap();
    let [s] = r.secrets.as_slice() else {
        panic!("one secret: {:?}", r.secrets)
    };
    assert_eq!(s.name, "token");
    assert_eq!(s.resource.to_string(), "default/app/token");
    assert_eq!(s.path, "/run/secrets/token");
    assert_eq!(s.mode, 0o400);
    let init = s.init_secret();
    assert_eq!(
        (init.resource.as_str(), init.path.as_str(), init.mode),
        ("default/app/token", "/run/secrets/token", 0o400)
    );
    let r = parse(&with_secret(
        "path = \"/run/secrets/app/key.pem\"\nmode = 0o440\n",
    ))
    .unwrap();
    assert_eq!(
        (r.secrets[0].path.as_str(), r.secrets[0].mode),
        ("/run/secrets/app/key.pem", 0o440)
    );
    assert!(parse(&GOOD).unwrap().secrets.is_empty());
}

#[test]
fn secrets_are_checked_where_they_are_written() {
    let two = |second: &str| format!("{}{SECRET}\n[[secrets]]\n{second}", *GOOD);
    for (text, needles) in [
        (
            with_secret("").replace("name = \"token\"", "name = \"../token\""),
            &["secrets[0].name", "not a secret name"][..],
        ),
        (
            with_secret("").replace("name = \"token\"", "name = \".hidden\""),
            &["secrets[0].name"],
        ),
        (
            two("name = \"token\"\nresource = \"a/b/c\"\n"),
            &["secrets[1].name", "also the name of secrets[0]"],
        ),
        (
            with_secret("").replace("default/app/token", "default/token"),
            &["secrets[0].resource", "<repository>/<type>/<tag>"],
        ),
        (
            with_secret("").replace("default/app/token", "default/../token"),
            &["secrets[0].resource", "names no file"],
        ),
        (
            with_secret("path = \"/etc/token\"\n"),
            &["secrets[0].path", "under /run/secrets/"],
        ),
        (
            with_secret("path = \"/run/secrets/../shadow\"\n"),
            &["secrets[0].path"],
        ),
        (
            with_secret("path = \"/run/secrets/\"\n"),
            &["secrets[0].path"],
        ),
        (
            with_secret("path = \"/run/secretsX/a\"\n"),
            &["secrets[0].path"],
        ),
        (
            two("name = \"other\"\nresource = \"a/b/c\"\npath = \"/run/secrets/token\"\n"),
            &["secrets[1].path", "also the path of secrets[0]"],
        ),
        (
            with_secret("mode = 0o4755\n"),
            &["secrets[0].mode", "at most 0o777"],
        ),
        (with_secret("owner = \"app\"\n"), &["owner"]),
    ] {
        let err = parse(&text).expect_err(&text).to_string();
        assert!(err.contains("recipes/app/recipe.toml"), "{err}");
        for n in needles {
            assert!(err.contains(n), "{err:?} lacks {n:?}");
        }
    }
}

#[test]
fn network_and_entry_log_are_read_and_checked() {
    use snpkit_recipe::EntryLog;
    let plain = parse(&GOOD).unwrap();
    assert_eq!(plain.network, None);
    assert_eq!(plain.entry.log, EntryLog::Channel);

    let text = format!(
        "{}\n[network]\nforward = [\"tcp:8080:80\", \"udp:5353:53\"]\n",
        GOOD.replacen("[vars]", "log = \"none\"\n[vars]", 1)
    );
    let r = parse(&text).unwrap();
    assert_eq!(r.entry.log, EntryLog::None);
    let n = r.network.unwrap();
    assert_eq!(n.address, std::net::Ipv4Addr::new(10, 0, 2, 15));
    let spelled: Vec<String> = n.forward.iter().map(ToString::to_string).collect();
    assert_eq!(spelled, ["tcp:8080:80", "udp:5353:53"]);

    fails(
        "[vars]",
        "log = \"journal\"\n[vars]",
        &["entry.log", "\"channel\"", "\"none\""],
    );
    let bad = format!("{}\n[network]\nforward = [\"tcp:0.0.0.0:80:80\"]\n", *GOOD);
    let err = parse(&bad).unwrap_err().to_string();
    assert!(
        err.contains("network.forward[0]") && err.contains("127.0.0.1 only"),
        "{err}"
    );
}

#[test]
fn an_undefined_template_variable_is_named() {
    let text = snpkit_testkit::recipe::app("/bin/app", "").replacen(
        "cmdline = \"",
        "cmdline = \"x={{ vars.typo }} y={{ verity.arg }} ",
        1,
    );
    let recipe = Recipe::parse(&text, std::path::Path::new("recipes/app/recipe.toml")).unwrap();
    let err = snpkit_recipe::check_cmdline(&recipe, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("undefined variable vars.typo, verity.arg")
            && err.contains("the template can use name, layout, kernel_release"),
        "{err}"
    );
}

fn app_with(tables: &str, entry: &str) -> Result<Recipe, RecipeError> {
    let text = snpkit_testkit::recipe::app("/bin/app", tables).replacen(
        "argv = [\"/bin/app\"]\n",
        &format!("argv = [\"/bin/app\"]\n{entry}"),
        1,
    );
    Recipe::parse(&text, Path::new("recipes/app/recipe.toml"))
}

#[test]
fn package_dependencies_exclude_and_the_entrys_account() {
    let pkg = "[[packages]]\nname = \"mini-httpd\"\nexclude = [\"lsb-base\"]\n";
    let r = app_with(pkg, "").unwrap();
    assert!(
        r.packages[0].dependencies,
        "dependencies are pulled in by default"
    );
    assert_eq!(r.packages[0].exclude, ["lsb-base"]);
    assert!(r.entry.user.is_none() && r.entry.workdir.is_none());

    let err = app_with(&format!("{pkg}dependencies = false\n"), "")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("packages[0].exclude: an exclude list on a package without dependencies"),
        "{err}"
    );
    let err = app_with("[[packages]]\nname = \"x\"\nexclude = [\"Bad Name\"]\n", "")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("packages[0].exclude[0]: \"Bad Name\" is not a Debian package name"),
        "{err}"
    );

    let r = app_with("", "user = \"web\"\nworkdir = \"/srv\"\n").unwrap();
    let u = r.entry.user.unwrap();
    assert_eq!(
        (u.user.as_str(), u.uid, u.group.as_str(), u.gid),
        ("web", 1000, "web", 1000)
    );
    assert_eq!(r.entry.workdir.as_deref(), Some("/srv"));
    let u = app_with("", "user = \"web\"\nuid = 1500\ngroup = \"www\"\n")
        .unwrap()
        .entry
        .user
        .unwrap();
    assert_eq!(
        (u.uid, u.group.as_str(), u.gid),
        (1500, "www", 1500),
        "gid follows uid"
    );

    for (entry, want) in [
        ("uid = 5\n", "entry.uid: set without entry.user"),
        (
            "user = \"root\"\n",
            "entry.user: \"root\" is not an account name",
        ),
        (
            "user = \"Web\"\n",
            "entry.user: \"Web\" is not an account name",
        ),
        (
            "user = \"web\"\ngid = 65534\n",
            "entry.gid: 65534 is not an id",
        ),
        (
            "user = \"web\"\nworkdir = \"srv\"\n",
            "entry.workdir: \"srv\" is not a normalised absolute path",
        ),
    ] {
        let err = app_with("", entry).unwrap_err().to_string();
        assert!(err.contains(want), "{entry}: {err}");
    }
}

#[test]
fn a_verity_line_too_long_for_the_real_root_hash_is_refused_before_the_build() {
    // 1900 bytes of options: with a short stand-in for the verity token the line would fit;
    // with the token the build writes (root hash, salt, geometry) it does not.
    let pad = format!("a={}", "x".repeat(1900));
    let text = snpkit_testkit::recipe::app("/bin/app", "")
        .replacen(
            "name = \"app\"\n",
            "name = \"app\"\nlayout = \"verity\"\n",
            1,
        )
        .replacen(
            "cmdline = \"\"",
            &format!("cmdline = \"{{{{ verity.arg }}}} {pad}\""),
            1,
        );
    let recipe = Recipe::parse(&text, Path::new("recipes/app/recipe.toml")).unwrap();
    let err = snpkit_recipe::check_cmdline(&recipe, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bytes") && err.contains("keep it under 2048 bytes"),
        "{err}"
    );
    // Shorter by the token's length, it passes.
    let fits = text.replacen(&pad, &format!("a={}", "x".repeat(1500)), 1);
    let recipe = Recipe::parse(&fits, Path::new("recipes/app/recipe.toml")).unwrap();
    snpkit_recipe::check_cmdline(&recipe, None).unwrap();
}
