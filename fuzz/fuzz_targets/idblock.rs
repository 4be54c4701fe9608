//! ID blocks and ID authentication structures reach the launcher as files and the emulated PSP
//! from the launch description: whoever supplies them is an adversary. Decoding and the
//! LAUNCH_FINISH check must never panic; what decodes re-encodes canonically; a pass means both
//! signatures verify over the bytes given.
//!
//! Input: `flags: u8` (bit 0: author-key-enabled) ‖ ID block (the next 96 bytes, fewer if the
//! input ends) ‖ ID auth (the rest). The check runs against the launch digest and policy the
//! block itself claims, so mutations reach the signature checks rather than stopping at LD.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_idblock::layout::auth::ID_KEY;
use snpkit_idblock::{ID_BLOCK_LEN, IdAuth, IdBlock, IdInputs, launch_finish};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (block, auth) = rest.split_at(rest.len().min(ID_BLOCK_LEN));

    if let Ok(b) = IdBlock::decode(block) {
        assert_eq!(&b.encode()[..], block, "an accepted ID block re-encodes to its bytes");
    }
    if let Ok(a) = IdAuth::decode(auth) {
        // Canonical but for AUTHOR_KEY_ALGO without an author key (0 and 1 read, 0 written).
        let mut expected = auth.to_vec();
        if a.author.is_none() {
            expected[4..8].fill(0);
        }
        let again = a.encode();
        assert_eq!(&again[..], &expected[..], "an accepted ID auth re-encodes canonically");
        assert_eq!(IdAuth::decode(&again[..]), Ok(a));
    }

    if block.len() != ID_BLOCK_LEN {
        return;
    }
    let mut ld = [0u8; 48];
    ld.copy_from_slice(&block[..48]);
    let mut policy = [0u8; 8];
    policy.copy_from_slice(&block[0x58..0x60]);
    let policy = u64::from_le_bytes(policy);
    let inputs = IdInputs {
        id_block: block,
        id_auth: auth,
        author_key_enabled: flags & 1 == 1,
    };
    if let Ok(identity) = launch_finish(&inputs, &ld, policy) {
        let a = IdAuth::decode(auth).expect("a passing ID auth decodes");
        assert!(a.id_key.verifies(block, &a.id_block_sig));
        assert_eq!(identity.id_key_digest, a.id_key.digest());
        if inputs.author_key_enabled {
            let author = a.author.expect("a pass with AUTHOR_KEY_EN has an author key");
            assert!(author.author_key.verifies(&auth[ID_KEY], &author.id_key_sig));
            assert_eq!(identity.author_key_digest, author.author_key.digest());
        } else {
            assert_eq!(identity.author_key_digest, [0; 48]);
        }
        // The same structures never pass for another launch digest or policy.
        let mut other = ld;
        other[47] ^= 0x80;
        assert!(launch_finish(&inputs, &other, policy).is_err());
        assert!(launch_finish(&inputs, &ld, policy ^ 1).is_err());
    }
});
