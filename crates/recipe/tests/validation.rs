//! Every way a recipe can be wrong gets an error naming the file, the key and the fix.
#![allow(clippy::unwrap_used)]

use snpkit_recipe::{
    BootCheck, CmdlineContext, Corruption, FirmwareSource, HashAlgorithm, KernelSource,
    LaunchProblem, Layout, Recipe, RecipeError, RootFilesystem, render_cmdline,
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
