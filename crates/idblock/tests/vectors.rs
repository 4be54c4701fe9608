//! Published vectors: virtee/sev's ID block test and sev-snp-measure's, with their key files
//! (vendored under tests/vectors, see each folder's SOURCE.md).
//!
//! Both tools sign with randomised ECDSA (OpenSSL), so their signature bytes cannot be reproduced:
//! we compare every other byte exactly (the ID block, the key structures, the algorithms, the
//! reserved ranges and the key digests), and check that their signatures verify in our
//! LAUNCH_FINISH check.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use sha2::{Digest, Sha256};
use snpkit_idblock::layout::{auth, signature};
use snpkit_idblock::{IdAuth, IdBlock, IdInputs, launch_finish};

// virtee/sev `tests/id-block.rs` (read at commit 29a43b64fb0e88e7beabf4c8b148bd7faef0ee06; the
// key and signature files are vendored from 9cf2adbffa209cc5becf7ff89ffdf624e7278ced, see
// tests/vectors/virtee-sev/SOURCE.md), `test_id_block_and_key_digests`: the launch digest of
// `common::virtee_ld()` and the key files `tests/measurement/test_{id,auth}_key.pem`, every other
// input left at its default (FAMILY_ID and IMAGE_ID zero, GUEST_SVN 0, POLICY 0x30000).
const VIRTEE_ID_BLOCK: &str = "oU1jg0HlZ0Yo/h4C++3r5eWrT68d1y2JZgaOYVu5nv0T0hSzXCMXFbOOJj3GBZdFAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAwAAAAAA";
const VIRTEE_ID_KEY_DIGEST: &str =
    "WfssaG36T+9J84M5qndckAUcKNVzg93DuvO160sUlt87DbvcuuX+J2d6ZEggdz/i";
const VIRTEE_AUTH_KEY_DIGEST: &str =
    "7tgRafsMteDsNHlPEo/U4MSkb2fGWhrfqB/LJLzAiMJyNpt//D6ytq9qQoShs2xf";
// Same file, `test_auth_block_generation`: its expected AUTH block (base64 in the source) is the
// vendored `tests/measurement/test_auth_block.bin`; this is the SHA-256 of the decoded base64.
const VIRTEE_AUTH_BLOCK_SHA256: &str =
    "357559109700077566355a0fefd0fbdcfdf7f5b82de7e3ede55f8054d4bea447";

// sev-snp-measure `tests/test_id_block.py` (read at commit 76ddfeee315520b1ea3a0ca14e6cb1f14b16f217)
// with `tests/keyfile/{id_key_test,author_key_test}.pem` (SEC1 `EC PRIVATE KEY` files, vendored from
// 8f2b337e, see tests/vectors/virtee-sev-snp-measure/SOURCE.md).
const MEASURE_LD: &str = "B28FLQi9p6cAqipgjFyqawDrrSl7bWioWkWx5mmlWLZ+G5HShKMB/mPE+gdQRn7t";
const MEASURE_ID_BLOCK: &str = "B28FLQi9p6cAqipgjFyqawDrrSl7bWioWkWx5mmlWLZ+G5HShKMB/mPE+gdQRn7tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAwAAAAAA";
const MEASURE_ID_KEY_HASH: &str =
    "hwt+NcU/inLQ0yL3WrKvgmJ5Kq9leWIs5BMcPyHyied8sFYKXjuQs5MuZ07HCcsU";
const MEASURE_AUTHOR_KEY_HASH: &str =
    "YxEcNLv8Ckk4+aAJvQdJgNgXIyPmFZnJ/TNtqGcySOHcqY0L6PdjdqEGuK/UwKBX";

fn default_block(ld: [u8; 48]) -> IdBlock {
    IdBlock {
        launch_digest: ld,
        family_id: [0; 16],
        image_id: [0; 16],
        guest_svn: 0,
        policy: POLICY,
    }
}

/// Every byte except the R and S of the two signatures (the randomised part).
fn without_signature_values(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    for sig in [auth::ID_BLOCK_SIG, auth::ID_KEY_SIG] {
        v[sig.start + signature::R.start..sig.start + signature::R.end].fill(0);
        v[sig.start + signature::S.start..sig.start + signature::S.end].fill(0);
    }
    v
}

#[test]
fn virtee_id_block_and_key_digests_are_byte_equal() {
    let block = default_block(virtee_ld());
    assert_eq!(B64.encode(block.encode()), VIRTEE_ID_BLOCK);
    assert_eq!(
        B64.encode(key(VIRTEE_ID_KEY).public_key().digest()),
        VIRTEE_ID_KEY_DIGEST
    );
    assert_eq!(
        B64.encode(key(VIRTEE_AUTH_KEY).public_key().digest()),
        VIRTEE_AUTH_KEY_DIGEST
    );
}

#[test]
fn virtee_auth_block_matches_ours_but_for_the_signature_values() {
    let theirs = read("virtee-sev/tests/measurement/test_auth_block.bin");
    assert_eq!(
        hex::encode(Sha256::digest(&theirs)),
        VIRTEE_AUTH_BLOCK_SHA256
    );
    let ours = IdAuth::sign(&default_block(virtee_ld()), &key(VIRTEE_ID_KEY))
        .certify(&key(VIRTEE_AUTH_KEY))
        .encode();
    assert_eq!(
        without_signature_values(&ours[..]),
        without_signature_values(&theirs)
    );
    // Theirs decodes strictly and re-encodes to the same bytes.
    assert_eq!(&IdAuth::decode(&theirs).unwrap().encode()[..], &theirs[..]);
}

#[test]
fn virtee_signatures_pass_our_launch_finish_with_their_digests() {
    // test_auth_block.bin carries test_id_sig.bin and test_auth_sig.bin, made with OpenSSL over
    // the expected ID block and the ID key.
    let theirs = read("virtee-sev/tests/measurement/test_auth_block.bin");
    let block = B64.decode(VIRTEE_ID_BLOCK).unwrap();
    assert_eq!(
        &theirs[auth::ID_BLOCK_SIG],
        &read("virtee-sev/tests/measurement/test_id_sig.bin")[..]
    );
    assert_eq!(
        &theirs[auth::ID_KEY_SIG],
        &read("virtee-sev/tests/measurement/test_auth_sig.bin")[..]
    );
    let identity = launch_finish(
        &IdInputs {
            id_block: &block,
            id_auth: &theirs,
            author_key_enabled: true,
        },
        &virtee_ld(),
        POLICY,
    )
    .unwrap();
    assert_eq!(B64.encode(identity.id_key_digest), VIRTEE_ID_KEY_DIGEST);
    assert_eq!(
        B64.encode(identity.author_key_digest),
        VIRTEE_AUTH_KEY_DIGEST
    );
    assert!(identity.author_key_en);
    assert_eq!(identity.key_info_bits(), 1);
}

#[test]
fn sev_snp_measure_id_block_and_key_hashes_are_byte_equal() {
    let ld: [u8; 48] = B64.decode(MEASURE_LD).unwrap().try_into().unwrap();
    assert_eq!(B64.encode(default_block(ld).encode()), MEASURE_ID_BLOCK);
    // SEC1 key files: the other private key format.
    assert_eq!(
        B64.encode(key(MEASURE_ID_KEY).public_key().digest()),
        MEASURE_ID_KEY_HASH
    );
    assert_eq!(
        B64.encode(key(MEASURE_AUTHOR_KEY).public_key().digest()),
        MEASURE_AUTHOR_KEY_HASH
    );
}

#[test]
fn our_pair_for_the_virtee_inputs_passes_launch_finish() {
    let block = default_block(virtee_ld());
    let auth = IdAuth::sign(&block, &key(VIRTEE_ID_KEY)).certify(&key(VIRTEE_AUTH_KEY));
    let (b, a) = (block.encode(), auth.encode());
    let identity = launch_finish(
        &IdInputs {
            id_block: &b,
            id_auth: &a[..],
            author_key_enabled: true,
        },
        &virtee_ld(),
        POLICY,
    )
    .unwrap();
    assert_eq!(B64.encode(identity.id_key_digest), VIRTEE_ID_KEY_DIGEST);
    assert_eq!(
        B64.encode(identity.author_key_digest),
        VIRTEE_AUTH_KEY_DIGEST
    );
}
