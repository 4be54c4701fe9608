//! The verity superblock comes from a disk anyone may have written: parsing must never panic,
//! whatever parses must re-encode to the same bytes, and verifying against it must fail cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_image::verity::{self, TreeLayout, VeritySuperblock};

fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = VeritySuperblock::parse(data) {
        assert_eq!(
            sb.encode()[..],
            data[..verity::SUPERBLOCK_LEN],
            "accepted superblocks are canonical"
        );
        // A small tree over the same bytes: every error path of verify, no panic, no huge allocation.
        let layout = TreeLayout {
            tree: sb.tree.clone(),
            data_blocks: sb.data_blocks.min(256),
            hash_start_block: 1,
        };
        let root = vec![0u8; sb.tree.hash.digest_len()];
        let _ = verity::verify(data, data, &layout, &root);
    }
    if let Some(offset) = data.first() {
        let _ = verity::read_superblock(data, u64::from(*offset) * 512);
    }
});
