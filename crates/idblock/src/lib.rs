//! Signing what we ship: the SEV-SNP ID block and ID authentication information of
//! SNP_LAUNCH_FINISH, and the checks the PSP makes on them.
//!
//! Owns the two structures (layouts with every reserved byte, strict decoding), deterministic
//! ECDSA P-384/SHA-384 signing with an ID key and optionally an author key, the PSP's
//! LAUNCH_FINISH checks as a function with the identity it then reports (ID_KEY_DIGEST,
//! AUTHOR_KEY_DIGEST, FAMILY_ID, IMAGE_ID, GUEST_SVN, KEY_INFO's author bit), P-384 key files,
//! and the QEMU property values. Knows nothing of recipes, image folders, QEMU processes or
//! report verification: it takes bytes and returns values, except [`keyfile`], the small edge that
//! reads and writes key files.
//!
//! ```text
//! SigningKey::from_key_bytes / keyfile::read_signing_key ─┐
//! IdBlock { LD, FAMILY_ID, IMAGE_ID, GUEST_SVN, POLICY } ──┼─▶ IdAuth::sign(&block, &id_key)[.certify(&author_key)]
//!                                                          │        │
//!                  block.encode() (96 B), auth.encode() (4096 B) ◀──┘──▶ QemuIdArgs::new(&block, &auth)
//!                                   │                   files written ──▶ QemuIdArgs::from_bytes(block, auth)
//!                                   │                                      ├─▶ .properties() (QEMU's argv)
//!                                   │                                      └─▶ .inputs() (the same bytes)
//!   launch_finish(&IdInputs { id_block, id_auth, author_key_enabled }, &launch_digest, policy)
//!                                   └─▶ LaunchIdentity (what the report carries) | LaunchFinishError (which check)
//! ```
//!
//! # Relation to the `sev` crate and other tools
//! virtee/sev 8.0 has ID block types (`measurement::idblock_types`), but only behind its OpenSSL
//! feature, reading keys from paths; its signatures are randomised (so the same image signs to
//! different bytes each time), it never verifies a signature, and it decodes without checking
//! algorithms, curves or reserved bytes. We hand-write the layouts and the checks here (they are
//! small tables, see [`layout`]) and leave the cryptography to RustCrypto's `p384` (RFC 6979
//! deterministic ECDSA, curve arithmetic, PKCS#8/SEC1/SPKI), the stack `snpkit-attest` already
//! verifies reports with. The tests compare our bytes with virtee/sev's published vectors,
//! accept sev-snp-measure 0.0.13's `snp-create-id-block` output, and verify our signatures with
//! Python's `cryptography`, which also reproduces them byte for byte (RFC 6979 on both sides).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod auth;
mod block;
mod ecdsa;
mod error;
mod finish;
pub mod keyfile;
mod keys;
pub mod layout;
mod qemu;

pub use auth::{AuthorSignature, IdAuth};
pub use block::{ID_BLOCK_VERSION, IdBlock};
pub use ecdsa::{PublicKey, Signature};
pub use error::DecodeError;
pub use finish::{
    IdInputs, KEY_INFO_AUTHOR_KEY_EN, LaunchFinishError, LaunchIdentity, launch_finish,
};
pub use keys::{KeyError, MAX_KEY_LEN, SigningKey};
pub use qemu::{IdFileError, QemuIdArgs};

/// Size of the ID block.
pub const ID_BLOCK_LEN: usize = layout::block::LEN;
/// Size of the ID authentication information.
pub const ID_AUTH_LEN: usize = layout::auth::LEN;
