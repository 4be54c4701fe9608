//! Every check of SNP_LAUNCH_FINISH made to fail, each by the smallest change that should trip
//! it, and the identity reported when all pass.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use snpkit_idblock::layout::{auth, public_key, signature};
use snpkit_idblock::{
    DecodeError, IdAuth, IdInputs, LaunchFinishError, LaunchIdentity, launch_finish,
};

fn run(block: &[u8], auth: &[u8], author: bool) -> Result<LaunchIdentity, LaunchFinishError> {
    launch_finish(
        &IdInputs {
            id_block: block,
            id_auth: auth,
            author_key_enabled: author,
        },
        &virtee_ld(),
        POLICY,
    )
}

#[test]
fn a_genuine_pair_reports_its_identity() {
    let (b, a) = signed();
    let id = run(&b, &a[..], true).unwrap();
    assert_eq!(&id.family_id, b"snpkit-family-01");
    assert_eq!(&id.image_id, b"snpkit-image-002");
    assert_eq!(id.guest_svn, 3);
    assert_eq!(id.id_key_digest, key(VIRTEE_ID_KEY).public_key().digest());
    assert_eq!(
        id.author_key_digest,
        key(VIRTEE_AUTH_KEY).public_key().digest()
    );
    assert!(id.author_key_en);
    assert_eq!(id.key_info_bits(), 1);
}

#[test]
fn without_author_key_the_author_digest_and_bit_are_zero() {
    let (b, a) = signed_without_author();
    let id = run(&b, &a[..], false).unwrap();
    assert_eq!(id.id_key_digest, key(VIRTEE_ID_KEY).public_key().digest());
    assert_eq!(id.author_key_digest, [0; 48]);
    assert!(!id.author_key_en);
    assert_eq!(id.key_info_bits(), 0);
}

#[test]
fn an_author_signature_is_ignored_when_author_key_en_is_off() {
    // The ABI: ID_KEY_SIG and AUTHOR_KEY are ignored with AUTHOR_KEY_EN = 0. Even a broken one.
    let (b, mut a) = signed();
    a[auth::ID_KEY_SIG.start] ^= 1;
    let id = run(&b, &a[..], false).unwrap();
    assert_eq!(id.author_key_digest, [0; 48]);
    assert!(!id.author_key_en);
    assert_eq!(
        run(&b, &a[..], true).unwrap_err(),
        LaunchFinishError::IdKeySignature
    );
}

#[test]
fn flipped_id_block_signature_byte_fails_the_signature_check() {
    let (b, mut a) = signed();
    a[auth::ID_BLOCK_SIG.start + signature::S.start] ^= 0x01;
    let err = run(&b, &a[..], true).unwrap_err();
    assert_eq!(err, LaunchFinishError::IdBlockSignature);
    assert_eq!(err.check(), "id_block.signature");
}

#[test]
fn a_changed_block_byte_fails_the_signature_check() {
    // The signature covers every byte, FAMILY_ID included.
    let (mut b, a) = signed();
    b[0x30] ^= 0x80;
    assert_eq!(
        run(&b, &a[..], true).unwrap_err(),
        LaunchFinishError::IdBlockSignature
    );
}

#[test]
fn flipped_id_key_signature_byte_fails_the_author_check() {
    let (b, mut a) = signed();
    a[auth::ID_KEY_SIG.start + signature::R.start + 5] ^= 0x40;
    let err = run(&b, &a[..], true).unwrap_err();
    assert_eq!(err, LaunchFinishError::IdKeySignature);
    assert_eq!(err.check(), "id_key.signature");
}

#[test]
fn an_author_key_that_did_not_sign_fails_the_author_check() {
    // Author signature made by virtee's author key, but another valid key put in AUTHOR_KEY.
    let (b, mut a) = signed();
    let other = key(MEASURE_AUTHOR_KEY).public_key().to_snp_bytes();
    a[auth::AUTHOR_KEY].copy_from_slice(&other);
    assert_eq!(
        run(&b, &a[..], true).unwrap_err(),
        LaunchFinishError::IdKeySignature
    );
}

#[test]
fn an_id_block_for_another_launch_digest_fails_the_digest_check() {
    let mut block = block();
    block.launch_digest[47] ^= 1;
    let auth = IdAuth::sign(&block, &key(VIRTEE_ID_KEY));
    let err = run(&block.encode(), &auth.encode()[..], false).unwrap_err();
    assert!(
        matches!(&err, LaunchFinishError::LaunchDigest { id_block, launch }
            if id_block.ends_with("44") && launch.ends_with("45")),
        "{err}"
    );
    assert_eq!(err.check(), "id_block.launch_digest");
}

#[test]
fn an_id_block_for_another_policy_fails_the_policy_check() {
    let mut block = block();
    block.policy = 0x30000 | 1 << 19; // debug allowed: not what the guest was launched with
    let auth = IdAuth::sign(&block, &key(VIRTEE_ID_KEY));
    let err = run(&block.encode(), &auth.encode()[..], false).unwrap_err();
    assert_eq!(
        err,
        LaunchFinishError::Policy {
            id_block: 0xB0000,
            launch: 0x30000
        }
    );
    assert_eq!(err.check(), "id_block.policy");
}

#[test]
fn author_key_enabled_without_an_author_key_fails() {
    let (b, a) = signed_without_author();
    let err = run(&b, &a[..], true).unwrap_err();
    assert_eq!(err, LaunchFinishError::AuthorKeyMissing);
    assert_eq!(err.check(), "author_key.present");
}

#[test]
fn a_wrong_curve_fails_the_format_check() {
    let (b, mut a) = signed();
    a[auth::ID_KEY.start + public_key::CURVE] = 1; // P-256
    let err = run(&b, &a[..], true).unwrap_err();
    assert_eq!(
        err,
        LaunchFinishError::IdAuth(DecodeError::Curve {
            field: "ID_KEY",
            found: 1
        })
    );
    assert_eq!(err.check(), "id_auth.format");
    let (b, mut a) = signed();
    a[auth::AUTHOR_KEY.start + public_key::CURVE] = 3;
    assert_eq!(
        run(&b, &a[..], true).unwrap_err(),
        LaunchFinishError::IdAuth(DecodeError::Curve {
            field: "AUTHOR_KEY",
            found: 3
        })
    );
}

#[test]
fn a_wrong_algorithm_fails_the_format_check() {
    let (b, mut a) = signed();
    a[auth::ID_KEY_ALGO] = 2;
    assert!(matches!(
        run(&b, &a[..], true).unwrap_err(),
        LaunchFinishError::IdAuth(DecodeError::Algorithm {
            field: "ID_KEY_ALGO",
            found: 2,
            ..
        })
    ));
    let (b, mut a) = signed();
    a[auth::AUTHOR_KEY_ALGO] = 0;
    assert!(matches!(
        run(&b, &a[..], true).unwrap_err(),
        LaunchFinishError::IdAuth(DecodeError::Algorithm {
            field: "AUTHOR_KEY_ALGO",
            found: 0,
            ..
        })
    ));
}

#[test]
fn a_reserved_byte_set_fails_the_format_check() {
    for at in [
        0x008,
        0x03F,
        auth::ID_BLOCK_SIG.start + 0x30,
        auth::ID_BLOCK_SIG.start + 0x1FF,
        auth::ID_KEY.start + 0x034,
        auth::ID_KEY.start + 0x403,
        0x644,
        auth::ID_KEY_SIG.start + 0x90,
        auth::AUTHOR_KEY.start + 0x094,
        0xC84,
        0xFFF,
    ] {
        let (b, mut a) = signed();
        a[at] = 0x01;
        let err = run(&b, &a[..], true).unwrap_err();
        assert!(
            matches!(&err, LaunchFinishError::IdAuth(DecodeError::Reserved { start, end, .. })
                if (*start..*end).contains(&at)),
            "byte {at:#x}: {err:?}"
        );
        assert_eq!(err.check(), "id_auth.format");
    }
}

#[test]
fn a_wrong_version_fails_the_block_format_check() {
    let (mut b, a) = signed();
    b[0x50] = 2;
    let err = run(&b, &a[..], true).unwrap_err();
    assert_eq!(
        err,
        LaunchFinishError::IdBlock(DecodeError::Version { found: 2 })
    );
    assert_eq!(err.check(), "id_block.format");
}

#[test]
fn error_messages_never_repeat_their_source() {
    let (b, mut a) = signed();
    a[0x10] = 1;
    let err = run(&b, &a[..], true).unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(!err.to_string().contains(&source), "{err}");
    assert!(source.contains("0x008..0x040"), "{source}");
}
