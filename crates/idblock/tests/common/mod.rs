//! Shared by the integration tests: the vendored vectors and a signed pair to mutate.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use snpkit_idblock::{IdAuth, IdBlock, SigningKey};

pub use snpkit_testkit::vectors::dir as vectors_dir;
pub use snpkit_testkit::vectors::read;

pub const VIRTEE_ID_KEY: &str = "virtee-sev/tests/measurement/test_id_key.pem";
pub const VIRTEE_AUTH_KEY: &str = "virtee-sev/tests/measurement/test_auth_key.pem";
pub const MEASURE_ID_KEY: &str = "virtee-sev-snp-measure/tests/keyfile/id_key_test.pem";
pub const MEASURE_AUTHOR_KEY: &str = "virtee-sev-snp-measure/tests/keyfile/author_key_test.pem";

pub fn key(rel: &str) -> SigningKey {
    SigningKey::from_key_bytes(&read(rel)).unwrap()
}

/// The launch digest the virtee/sev ID block test signs.
pub fn virtee_ld() -> [u8; 48] {
    hex::decode(
        "a14d638341e5674628fe1e02fbedebe5e5ab4faf1dd72d8966068e615bb99efd13d214b35c231715b38e263dc6059745",
    )
    .unwrap()
    .try_into()
    .unwrap()
}

pub const POLICY: u64 = 0x30000;

/// A block with every field set, so a field written in the wrong place shows.
pub fn block() -> IdBlock {
    IdBlock {
        launch_digest: virtee_ld(),
        family_id: *b"snpkit-family-01",
        image_id: *b"snpkit-image-002",
        guest_svn: 3,
        policy: POLICY,
    }
}

/// `block()` signed with virtee's ID key, certified by its author key.
pub fn signed() -> ([u8; 96], Box<[u8; 4096]>) {
    let b = block();
    let auth = IdAuth::sign(&b, &key(VIRTEE_ID_KEY)).certify(&key(VIRTEE_AUTH_KEY));
    (b.encode(), auth.encode())
}

/// `block()` signed with virtee's ID key alone.
pub fn signed_without_author() -> ([u8; 96], Box<[u8; 4096]>) {
    let b = block();
    (b.encode(), IdAuth::sign(&b, &key(VIRTEE_ID_KEY)).encode())
}
