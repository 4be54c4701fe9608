//! Every vector in tests/vectors/dm-verity: root hashes from cryptsetup's own test suite, and full
//! hash devices written by veritysetup 2.6.1 (see that folder's SOURCE.md).
#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use snpkit_image::verity::{
    self, BlockSize, HashAlgorithm, HashFormat, Salt, Superblock, TreeParams, Uuid, VerityOptions,
};
use std::path::PathBuf;

fn vectors() -> PathBuf {
    snpkit_testkit::vectors::path("dm-verity")
}

const UUID: &str = "a60c98d2-ae9b-4865-bfcb-b4e3ace11033";
const SALT: &str = "e48da609055204e89ae53b655ca2216dd983cf3cb829f34f63a297d106d53e2d";

/// The data files SOURCE.md describes (not stored: regenerated here), checked by their sha256.
fn data(name: &str) -> Vec<u8> {
    let (bytes, sha): (Vec<u8>, &str) = match name {
        "zero8m.img" => (
            vec![0; 8 << 20],
            "2daeb1f36095b44b318410b3f4e8b5d989dcc7bb023d1426c492dab0a3053e74",
        ),
        "pat251_1m.img" => (
            (0..1 << 20).map(|i| (i % 251) as u8).collect(),
            "631b84027d6b9e52b539c4e8373622d23032dfadc64d60af87339c9037e4f769",
        ),
        "pat251_300x512.img" => (
            (0..153_600).map(|i| (i % 251) as u8).collect(),
            "ed72645021ae5fde84c295870f5115e15e91af919927da650a4ce60c8b808c5a",
        ),
        other => panic!("SOURCE.md names an unknown data file {other}"),
    };
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha, "{name}");
    bytes
}

fn options(args: &str) -> VerityOptions {
    let mut o = VerityOptions::new(Salt::default(), Uuid::parse_str(UUID).unwrap());
    for arg in args.split_whitespace() {
        let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
        match key {
            "--data-block-size" => {
                o.tree.data_block_size = BlockSize::new(value.parse().unwrap()).unwrap()
            }
            "--hash-block-size" => {
                o.tree.hash_block_size = BlockSize::new(value.parse().unwrap()).unwrap()
            }
            "--hash" => o.tree.hash = value.parse().unwrap(),
            "--format" => o.tree.format = HashFormat::from_number(value.parse().unwrap()).unwrap(),
            "--salt" => o.tree.salt = Salt::from_hex(value).unwrap(),
            "--no-superblock" => o.superblock = Superblock::None,
            other => panic!("results-table.txt uses an option the test does not know: {other}"),
        }
    }
    o
}

#[test]
fn generated_hash_devices_are_reproduced_byte_for_byte() {
    let dir = vectors().join("generated");
    let table = std::fs::read_to_string(dir.join("results-table.txt")).unwrap();
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (case, file, args, root) = (cells[1], cells[2], cells[3], cells[4]);
        let (size, sha) = cells[5].split_once(" / ").unwrap();
        let data = data(file);
        let opts = options(args);
        let formatted = verity::format(&data, &opts).unwrap();
        assert_eq!(hex::encode(&formatted.root_hash), root, "{case}: root hash");
        let want = std::fs::read(dir.join(format!("hashdev.{case}.bin"))).unwrap();
        assert_eq!(want.len().to_string(), size, "{case}: the vector file");
        assert_eq!(
            hex::encode(Sha256::digest(&want)),
            sha,
            "{case}: the vector file"
        );
        assert_eq!(
            formatted.hash_area.len(),
            want.len(),
            "{case}: hash device size"
        );
        assert!(
            formatted.hash_area == want,
            "{case}: hash device bytes differ"
        );

        // The streaming path gives the same, and the tree verifies.
        let streamed = verity::format_reader(&data[..], &opts).unwrap();
        assert_eq!(streamed, formatted, "{case}: streamed");
        let positional = verity::format_at(&data[..], data.len() as u64, &opts).unwrap();
        assert_eq!(positional, formatted, "{case}: positional reads");
        verity::verify(&data[..], &want, &formatted.layout(), &formatted.root_hash).unwrap();
        if let Superblock::V1 { .. } = opts.superblock {
            let (sb, layout) = verity::read_superblock(&want, 0).unwrap();
            assert_eq!(sb.uuid.to_string(), UUID);
            assert_eq!(layout, formatted.layout(), "{case}: superblock");
        }
        rows += 1;
    }
    assert_eq!(rows, 10, "results-table.txt has 10 cases");
}

/// SOURCE.md, "verity-compat-test (`check_root_hash`)": 8 MiB of zeros, data block = hash block.
#[test]
fn cryptsetup_compat_test_root_hashes() {
    let source = std::fs::read_to_string(vectors().join("SOURCE.md")).unwrap();
    let cases: [(u32, HashAlgorithm, u32, &str, &str); 7] = [
        (
            512,
            HashAlgorithm::Sha256,
            1,
            SALT,
            "9de18652fe74edfb9b805aaed72ae2aa48f94333f1ba5c452ac33b1c39325174",
        ),
        (
            1024,
            HashAlgorithm::Sha256,
            1,
            SALT,
            "54d92778750495d1f80832b486ebd007617d746271511bbf0e295e143da2b3df",
        ),
        (
            4096,
            HashAlgorithm::Sha256,
            1,
            SALT,
            "e522df0f97da4febb882ac40f30b37dc0b444bf6df418929463fa25280f09d5c",
        ),
        (
            4096,
            HashAlgorithm::Sha256,
            0,
            SALT,
            "cbbf4ebd004ef65e29b935bb635a39cf754d677f3fa10b0126da725bbdf10f7d",
        ),
        (
            4096,
            HashAlgorithm::Sha256,
            1,
            "-",
            "ef29c902d87350f1da4bfa536e16cebc162a909bf89abe448b81ec500d4fb9bf",
        ),
        (
            1024,
            HashAlgorithm::Sha1,
            1,
            SALT,
            "d0e9163ca8844aaa2e88fe5265a8c5d9ee494a99",
        ),
        (
            1024,
            HashAlgorithm::Sha1,
            1,
            "dadada",
            "73509e8e868be6b8ac939817a98a3d35121413b2",
        ),
    ];
    let zeros = data("zero8m.img");
    for (block, hash, format, salt, root) in cases {
        // The expected values are SOURCE.md's, not typed in here by mistake.
        assert!(source.contains(root), "{root} is not in SOURCE.md");
        let tree = TreeParams {
            hash,
            format: HashFormat::from_number(format).unwrap(),
            data_block_size: BlockSize::new(block).unwrap(),
            hash_block_size: BlockSize::new(block).unwrap(),
            salt: Salt::from_hex(salt).unwrap(),
        };
        for superblock in [
            Superblock::V1 {
                uuid: Uuid::parse_str(UUID).unwrap(),
            },
            Superblock::None,
        ] {
            // Two files, and the one-device layout (`--hash-offset 8388608` after the data).
            for hash_offset in [0, 8 << 20] {
                let opts = VerityOptions {
                    tree: tree.clone(),
                    superblock,
                    hash_offset,
                };
                let f = verity::format(&zeros, &opts).unwrap();
                assert_eq!(
                    hex::encode(&f.root_hash),
                    root,
                    "{block} {hash} v{format} {salt}"
                );
                let mut device = vec![0u8; hash_offset as usize];
                device.extend_from_slice(&f.hash_area);
                verity::verify(&zeros[..], &device, &f.layout(), &f.root_hash).unwrap();
                // ROOT_HASH_BAD of the compat test must fail.
                let mut bad = vec![0u8; hash.digest_len()];
                bad[..4].copy_from_slice(&[0xab, 0xcd, 0xef, 0x00]);
                assert!(verity::verify(&zeros[..], &device, &f.layout(), &bad).is_err());
            }
        }
    }
}

/// SOURCE.md, "api-test.c `VerityTest`": 10000 sectors of zeros.
#[test]
fn cryptsetup_api_test_root_hash() {
    let mut opts = VerityOptions::new(
        Salt::from_hex("20c28ffc129c12360ba6ceea2b6cf04e89c2b41cfe6b8439eb53c1897f50df7b").unwrap(),
        Uuid::parse_str(UUID).unwrap(),
    );
    opts.superblock = Superblock::None;
    let f = verity::format(&vec![0u8; 10_000 * 512], &opts).unwrap();
    assert_eq!(f.data_blocks, 1250);
    assert_eq!(
        hex::encode(&f.root_hash),
        "ab018b003a967fc782effb293b6dccb60b4f40c06bf80d16391acf686d28b5d6"
    );
}
