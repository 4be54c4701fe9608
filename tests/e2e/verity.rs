//! `cargo xtask verity format|verify` next to `veritysetup format|verify` on the same files.

use crate::support::{fails, ok, xtask};
use std::path::Path;
use std::process::Command;

const SALT: &str = "e48da609055204e89ae53b655ca2216dd983cf3cb829f34f63a297d106d53e2d";
const UUID: &str = "a60c98d2-ae9b-4865-bfcb-b4e3ace11033";

fn veritysetup() -> Command {
    let found = Command::new("veritysetup").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "veritysetup is needed: apt-get install cryptsetup-bin (or `cargo xtask setup`)"
    );
    Command::new("veritysetup")
}

fn stdout(out: std::process::Output) -> String {
    String::from_utf8(out.stdout).unwrap()
}

fn root_hash(summary: &str) -> String {
    summary
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn format_prints_and_writes_what_veritysetup_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.img");
    std::fs::write(
        &data,
        (0..3 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    for extra in [
        &[][..],
        &["--hash=sha512", "--format=0", "--data-block-size=1024"][..],
        &["--no-superblock", "--hash=sha1", "--hash-block-size=512"][..],
        &["--hash-offset=8192"][..],
    ] {
        // The same file name for both, since the summary's first line names it.
        let hash = Path::new("hash.img");
        let run = |cmd: &mut Command| {
            let _ = std::fs::remove_file(dir.path().join(hash));
            let out = stdout(ok(cmd
                .current_dir(dir.path())
                .args(["--salt", SALT, "--uuid", UUID])
                .args(extra)
                .arg(&data)
                .arg(hash)));
            (out, std::fs::read(dir.path().join(hash)).unwrap())
        };
        let (ours, our_bytes) = run(xtask().args(["verity", "format"]));
        let (theirs, their_bytes) = run(veritysetup().arg("format"));
        assert_eq!(ours, theirs, "{extra:?}");
        assert!(
            our_bytes == their_bytes,
            "{extra:?}: hash device bytes differ"
        );
    }
}

#[test]
fn verify_accepts_a_good_tree_and_names_a_bad_block() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.img");
    let hash = dir.path().join("hash.img");
    std::fs::write(&data, vec![7u8; 1 << 20]).unwrap();
    let summary = stdout(ok(xtask().args(["verity", "format"]).arg(&data).arg(&hash)));
    let root = root_hash(&summary);
    // No --salt: a random one, as veritysetup picks.
    let salt = summary
        .lines()
        .find_map(|l| l.strip_prefix("Salt:"))
        .unwrap()
        .trim();
    assert_eq!(salt.len(), 64);
    assert_ne!(salt, SALT);

    ok(xtask()
        .args(["verity", "verify"])
        .arg(&data)
        .arg(&hash)
        .arg(&root));
    ok(veritysetup().arg("verify").arg(&data).arg(&hash).arg(&root));

    let mut bytes = std::fs::read(&data).unwrap();
    bytes[5 * 4096 + 17] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    let err = fails(
        xtask()
            .args(["verity", "verify"])
            .arg(&data)
            .arg(&hash)
            .arg(&root),
    );
    assert!(
        err.contains("data block 5 (byte 20480) is corrupted"),
        "{err}"
    );

    let err = fails(
        xtask()
            .args(["verity", "verify"])
            .arg(&data)
            .arg(&hash)
            .arg("abcd"),
    );
    assert!(
        err.contains("the root hash is 2 bytes; sha256 needs 32"),
        "{err}"
    );
    let err = fails(
        xtask()
            .args(["verity", "verify"])
            .arg(&data)
            .arg(&data)
            .arg(&root),
    );
    assert!(err.contains("no verity signature"), "{err}");
    let err = fails(
        xtask()
            .args(["verity", "format", "--salt", "xyz"])
            .arg(&data)
            .arg(&hash),
    );
    assert!(err.contains("salt \"xyz\" is not hex"), "{err}");
}

#[test]
fn one_file_layout_with_data_blocks_and_hash_offset_matches_veritysetup() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2 << 20).map(|i| (i % 241) as u8).collect();
    let run = |cmd: &mut Command| {
        // The data, then the tree, in one file named the same for both tools.
        std::fs::write(dir.path().join("disk.img"), &data).unwrap();
        let out = stdout(ok(cmd
            .current_dir(dir.path())
            .args(["--salt", SALT, "--uuid", UUID])
            .args(["--data-blocks=512", "--hash-offset=2097152"])
            .args(["disk.img", "disk.img"])));
        (out, std::fs::read(dir.path().join("disk.img")).unwrap())
    };
    let (ours, our_bytes) = run(xtask().args(["verity", "format"]));
    let (theirs, their_bytes) = run(veritysetup().arg("format"));
    assert_eq!(ours, theirs);
    assert!(our_bytes == their_bytes, "one-file images differ");
    assert_eq!(
        &our_bytes[..data.len()],
        &data[..],
        "the data is left alone"
    );
    let root = root_hash(&ours);
    ok(xtask().current_dir(dir.path()).args([
        "verity",
        "verify",
        "--hash-offset=2097152",
        "disk.img",
        "disk.img",
        &root,
    ]));
}
