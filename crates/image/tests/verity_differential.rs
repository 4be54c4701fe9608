//! Randomized differential test against the real `veritysetup format` (Debian cryptsetup-bin):
//! sizes, block sizes, algorithms, salts, formats, superblock on and off, hash offsets. The seed is
//! fixed (override with SNPKIT_VERITY_SEED) and printed with every failure.
#![allow(clippy::unwrap_used)]

use snpkit_image::verity::{
    self, BlockSize, HashAlgorithm, HashFormat, Salt, Superblock, TreeParams, Uuid, VerityOptions,
};
use std::path::Path;
use std::process::Command;

const CASES: usize = 300;

use snpkit_testkit::rng::SplitMix64 as Rng;

fn veritysetup() -> &'static str {
    let ok = Command::new("veritysetup")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "veritysetup is needed as the oracle: apt-get install cryptsetup-bin (or run `cargo xtask setup`)"
    );
    "veritysetup"
}

fn random_options(rng: &mut Rng) -> VerityOptions {
    let sizes = [512, 1024, 2048, 4096];
    let hash = HashAlgorithm::ALL[rng.below(3) as usize];
    let salt = match rng.below(4) {
        0 => Salt::default(),
        1 => Salt::new(rng.bytes(32)).unwrap(),
        _ => {
            let len = 1 + rng.below(256) as usize;
            Salt::new(rng.bytes(len)).unwrap()
        }
    };
    let tree = TreeParams {
        hash,
        format: if rng.below(3) == 0 {
            HashFormat::ChromeOs
        } else {
            HashFormat::V1
        },
        data_block_size: BlockSize::new(sizes[rng.below(4) as usize]).unwrap(),
        hash_block_size: BlockSize::new(sizes[rng.below(4) as usize]).unwrap(),
        salt,
    };
    let superblock = if rng.below(2) == 0 {
        Superblock::V1 {
            uuid: uuid::Builder::from_random_bytes(rng.bytes(16).try_into().unwrap()).into_uuid(),
        }
    } else {
        Superblock::None
    };
    let hash_offset = match (rng.below(3), superblock) {
        (0, Superblock::V1 { .. }) => rng.below(16) * 512,
        (0, Superblock::None) => rng.below(8) * u64::from(tree.hash_block_size.get()),
        _ => 0,
    };
    VerityOptions {
        tree,
        superblock,
        hash_offset,
    }
}

fn args(o: &VerityOptions) -> Vec<String> {
    let mut a = vec![
        format!("--data-block-size={}", o.tree.data_block_size),
        format!("--hash-block-size={}", o.tree.hash_block_size),
        format!("--hash={}", o.tree.hash),
        format!("--format={}", o.tree.format.number()),
        format!("--salt={}", o.tree.salt),
        format!("--hash-offset={}", o.hash_offset),
    ];
    match o.superblock {
        Superblock::V1 { uuid } => a.push(format!("--uuid={uuid}")),
        Superblock::None => a.push("--no-superblock".into()),
    }
    a
}

fn their_format(dir: &Path, data: &[u8], o: &VerityOptions) -> (Vec<u8>, String) {
    let data_path = dir.join("data");
    let hash_path = dir.join("hash");
    std::fs::write(&data_path, data).unwrap();
    // veritysetup 2.6 fails to write a superblock past the end of the hash file ("Error during
    // update of verity header"): give it a file that reaches just past the superblock; it grows
    // the file for the tree itself.
    let start = match o.superblock {
        Superblock::V1 { .. } => o.hash_offset as usize + verity::SUPERBLOCK_LEN,
        Superblock::None => 0,
    };
    std::fs::write(&hash_path, vec![0u8; start]).unwrap();
    let out = Command::new(veritysetup())
        .arg("format")
        .args(args(o))
        .arg(&data_path)
        .arg(&hash_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "veritysetup format {:?} failed: {}",
        args(o),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let root = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap()
        .trim()
        .to_string();
    (std::fs::read(&hash_path).unwrap(), root)
}

#[test]
fn random_cases_match_veritysetup() {
    let seed = snpkit_testkit::rng::seed("SNPKIT_VERITY_SEED", 0x5eed_0006);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed);
    for case in 0..CASES {
        let o = random_options(&mut rng);
        let dbs = o.tree.data_block_size.bytes();
        // Mostly small trees of one to four levels; now and then a single block (no tree at all).
        let blocks = match rng.below(10) {
            0 => 1,
            1 => 2 + rng.below(3000),
            _ => 2 + rng.below(300),
        } as usize;
        let data = if rng.below(5) == 0 {
            vec![0u8; blocks * dbs]
        } else {
            rng.bytes(blocks * dbs)
        };
        let context = format!(
            "case {case} of seed {seed:#x} (SNPKIT_VERITY_SEED={seed}): {blocks} blocks, veritysetup format {}",
            args(&o).join(" ")
        );
        let (mut their_device, their_root) = their_format(dir.path(), &data, &o);
        // With a single data block there is no tree to write, and veritysetup leaves the file
        // short of the offset; the bytes before the offset are not the tree's anyway.
        if their_device.len() < o.hash_offset as usize {
            their_device.resize(o.hash_offset as usize, 0);
        }
        let ours = verity::format(&data, &o).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(
            hex::encode(&ours.root_hash),
            their_root,
            "{context}: root hash"
        );
        let mut our_device = vec![0u8; o.hash_offset as usize];
        our_device.extend_from_slice(&ours.hash_area);
        assert_eq!(
            our_device.len(),
            their_device.len(),
            "{context}: hash device size"
        );
        assert!(
            our_device == their_device,
            "{context}: hash device bytes differ"
        );
        verity::verify(&data[..], &their_device, &ours.layout(), &ours.root_hash)
            .unwrap_or_else(|e| panic!("{context}: verify: {e}"));
    }
}

/// veritysetup truncates data that is not a whole number of blocks; we refuse it.
#[test]
fn partial_blocks_are_refused_where_veritysetup_would_drop_them() {
    let o = VerityOptions::new(Salt::default(), Uuid::nil());
    for len in [1usize, 4095, 4097, 1 << 20 | 1] {
        let err = verity::format(&vec![1u8; len], &o).unwrap_err();
        assert!(
            matches!(err, verity::VerityError::NotBlockAligned { len: l, .. } if l == len as u64),
            "{len}: {err}"
        );
        let err = verity::format_reader(&vec![1u8; len][..], &o).unwrap_err();
        assert!(
            matches!(err, verity::VerityError::NotBlockAligned { .. }),
            "{len}: {err}"
        );
    }
}
