//! The `[[volumes]]` table: what parses, into which checked values, and every refusal naming the
//! file, the key and the fix.
#![allow(clippy::unwrap_used)]

use snpkit_recipe::{MAX_VOLUME_MIB, MIN_VOLUME_MIB, Recipe, RecipeError, VolumeKey};
use snpkit_testkit::recipe::app;
use std::path::Path;

fn parse(volumes: &str) -> Result<Recipe, RecipeError> {
    Recipe::parse(
        &app("/usr/bin/app", volumes),
        Path::new("recipes/app/recipe.toml"),
    )
}

fn table(name: &str, size_mib: u64, mount: &str, key: &str) -> String {
    format!(
        "[[volumes]]\nname = \"{name}\"\nsize_mib = {size_mib}\nmount = \"{mount}\"\nkey = \"{key}\"\n"
    )
}

/// The error for `volumes`, which must name the file and contain every needle.
fn refused(volumes: &str, needles: &[&str]) -> String {
    let err = parse(volumes)
        .expect_err(&format!("should be refused:\n{volumes}"))
        .to_string();
    assert!(
        err.contains("recipes/app/recipe.toml"),
        "error names no file: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "error {err:?} lacks {n:?}");
    }
    err
}

#[test]
fn volumes_parse_into_checked_specs() {
    let two =
        table("data", 64, "/var/lib/app", "sealed") + &table("log-2", 16, "/srv/log", "sealed");
    let r = parse(&two).unwrap();
    assert_eq!(r.volumes.len(), 2);
    let data = r.volume("data").unwrap();
    assert_eq!(
        (data.size_mib, data.mount.as_str(), data.key.clone()),
        (64, "/var/lib/app", VolumeKey::Sealed)
    );
    assert_eq!(data.size_bytes(), 64 << 20);
    assert_eq!(r.volume("log-2").unwrap().mount, "/srv/log");
    let missing = r.volume("cache").unwrap_err().to_string();
    assert!(missing.contains("choose one of: data, log-2"), "{missing}");
}

#[test]
fn no_table_means_no_volumes() {
    let r = parse("").unwrap();
    assert!(r.volumes.is_empty());
    let err = r.volume("data").unwrap_err().to_string();
    assert!(err.contains("has no [[volumes]]"), "{err}");
}

#[test]
fn names_fit_the_disk_serial() {
    for bad in ["", "toolongname", "Data", "-data", "da_ta", "da/ta"] {
        refused(
            &table(bad, 64, "/data", "sealed"),
            &["volumes[0].name", "snpkit-vol-<name>"],
        );
    }
    // Nine characters is the most a 20-byte virtio serial leaves.
    assert!(parse(&table("abcdefghi", 64, "/data", "sealed")).is_ok());
    let twice = table("data", 64, "/a", "sealed") + &table("data", 64, "/b", "sealed");
    refused(&twice, &["volumes[1].name", "named twice"]);
}

#[test]
fn sizes_are_bounded() {
    for bad in [0, MIN_VOLUME_MIB - 1, MAX_VOLUME_MIB + 1] {
        refused(
            &table("data", bad, "/data", "sealed"),
            &["volumes[0].size_mib", &format!("{bad} MiB"), "use 16 to"],
        );
    }
    for good in [MIN_VOLUME_MIB, MAX_VOLUME_MIB] {
        assert_eq!(
            parse(&table("data", good, "/data", "sealed"))
                .unwrap()
                .volumes[0]
                .size_mib,
            good
        );
    }
    // A negative or fractional size is a type error from the TOML reader.
    refused(
        "[[volumes]]\nname = \"data\"\nsize_mib = -1\nmount = \"/data\"\nkey = \"sealed\"\n",
        &["size_mib"],
    );
}

#[test]
fn mount_points_are_normalised_own_folders() {
    for bad in ["data", "/data/", "/a//b", "/a/../b", "/a/./b"] {
        refused(
            &table("data", 64, bad, "sealed"),
            &["volumes[0].mount", "normalised absolute path"],
        );
    }
    refused(
        &table("data", 64, "/", "sealed"),
        &["volumes[0].mount", "over the appliance's root"],
    );
    for system in ["/proc", "/sys/fs", "/dev", "/etc/snpkit/x", "/init"] {
        refused(
            &table("data", 64, system, "sealed"),
            &["volumes[0].mount", "snpkit's /init own"],
        );
    }
    // /devices is not /dev, /etc/snpkitx not /etc/snpkit: prefixes are whole components.
    assert!(parse(&table("data", 64, "/devices", "sealed")).is_ok());
    assert!(parse(&table("data", 64, "/etc/snpkitx", "sealed")).is_ok());
    for (first, second) in [("/a", "/a"), ("/a", "/a/b"), ("/a/b", "/a")] {
        let two = table("one", 64, first, "sealed") + &table("two", 64, second, "sealed");
        refused(
            &two,
            &["volumes[1].mount", "\"one\"", "none inside another"],
        );
    }
    let siblings = table("one", 64, "/a", "sealed") + &table("two", 64, "/ab", "sealed");
    assert!(parse(&siblings).is_ok());
}

#[test]
fn kbs_keys_name_a_broker_resource() {
    let recipe = parse(&table("data", 64, "/data", "kbs:default/key/data")).unwrap();
    assert_eq!(
        recipe.volumes[0].key,
        VolumeKey::Kbs("default/key/data".into())
    );
    for bad in ["kbs:default/key", "kbs:a/../b", "kbs:"] {
        let err = refused(
            &table("data", 64, "/data", bad),
            &["volumes[0].key", "kbs:<repository>/<type>/<tag>"],
        );
        assert!(err.contains(bad), "{err}");
    }
    for bad in ["Sealed", "", "tpm", "kbs"] {
        refused(
            &table("data", 64, "/data", bad),
            &["volumes[0].key", "not a key source", "key = \"sealed\""],
        );
    }
}

#[test]
fn every_field_is_required_and_no_other() {
    for missing in ["name", "size_mib", "mount", "key"] {
        let text: String = table("data", 64, "/data", "sealed")
            .lines()
            .filter(|l| !l.starts_with(missing))
            .map(|l| format!("{l}\n"))
            .collect();
        refused(&text, &[&format!("missing field `{missing}`")]);
    }
    refused(
        &(table("data", 64, "/data", "sealed") + "size = 64\n"),
        &["unknown field `size`"],
    );
}
