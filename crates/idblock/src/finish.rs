//! What the PSP does with an ID block at SNP_LAUNCH_FINISH, as a function: the checks that refuse
//! a launch, and the identity the PSP then writes into every attestation report of the guest.
//!
//! The emulated PSP calls this with the launch digest it computed and the policy the guest was
//! launched with; the signer calls it on what it just produced; a test calls it on what another
//! tool produced. It takes the raw bytes QEMU passes (`id-block`, `id-auth`) and the
//! `author-key-enabled` flag, and hashes and verifies those bytes themselves, as the PSP does.

use crate::auth::IdAuth;
use crate::block::IdBlock;
use crate::error::DecodeError;
use crate::layout::auth::{AUTHOR_KEY, ID_KEY};
use sha2::{Digest, Sha384};

/// KEY_INFO bit 0 (AUTHOR_KEY_EN) of the attestation report.
pub const KEY_INFO_AUTHOR_KEY_EN: u32 = 1;

/// What SNP_LAUNCH_FINISH receives about the guest's identity when ID_BLOCK_EN is 1.
#[derive(Debug, Clone, Copy)]
pub struct IdInputs<'a> {
    /// The 96 bytes QEMU's `id-block` carries.
    pub id_block: &'a [u8],
    /// The 4096 bytes QEMU's `id-auth` carries.
    pub id_auth: &'a [u8],
    /// QEMU's `author-key-enabled` (the command's AUTH_KEY_EN).
    pub author_key_enabled: bool,
}

/// The identity fields the PSP puts into every report of a guest that launched with an ID block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchIdentity {
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub guest_svn: u32,
    /// SHA-384 of the 0x404-byte ID_KEY structure.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the 0x404-byte AUTHOR_KEY structure; zero unless the author key was enabled.
    pub author_key_digest: [u8; 48],
    /// KEY_INFO's AUTHOR_KEY_EN bit.
    pub author_key_en: bool,
}

impl LaunchIdentity {
    /// A guest launched without an ID block: every identity field is zero.
    pub const NONE: LaunchIdentity = LaunchIdentity {
        family_id: [0; 16],
        image_id: [0; 16],
        guest_svn: 0,
        id_key_digest: [0; 48],
        author_key_digest: [0; 48],
        author_key_en: false,
    };

    /// The bits this identity sets in the report's KEY_INFO (the signing-key bits are the
    /// signer's).
    pub fn key_info_bits(&self) -> u32 {
        if self.author_key_en {
            KEY_INFO_AUTHOR_KEY_EN
        } else {
            0
        }
    }
}

/// Which LAUNCH_FINISH check refused the ID block. The PSP fails the command on any of these and
/// the guest never runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchFinishError {
    #[error("the ID block is malformed")]
    IdBlock(#[source] DecodeError),
    #[error("the ID authentication structure is malformed")]
    IdAuth(#[source] DecodeError),
    #[error(
        "author-key-enabled is set but the ID authentication structure carries no author key (sign with --author-key, or launch without author-key-enabled)"
    )]
    AuthorKeyMissing,
    #[error("ID_BLOCK_SIG does not verify with ID_KEY over the ID block")]
    IdBlockSignature,
    #[error("ID_KEY_SIG does not verify with AUTHOR_KEY over ID_KEY")]
    IdKeySignature,
    #[error(
        "the ID block is for launch digest {id_block}, but this launch measured {launch} (sign the ID block for this launch config)"
    )]
    LaunchDigest { id_block: String, launch: String },
    #[error(
        "the ID block's POLICY is {id_block:#x}, but the guest was launched with policy {launch:#x}"
    )]
    Policy { id_block: u64, launch: u64 },
}

impl LaunchFinishError {
    /// A stable name for the check that failed (for verdict lines, logs and tests).
    pub fn check(&self) -> &'static str {
        match self {
            LaunchFinishError::IdBlock(_) => "id_block.format",
            LaunchFinishError::IdAuth(_) => "id_auth.format",
            LaunchFinishError::AuthorKeyMissing => "author_key.present",
            LaunchFinishError::IdBlockSignature => "id_block.signature",
            LaunchFinishError::IdKeySignature => "id_key.signature",
            LaunchFinishError::LaunchDigest { .. } => "id_block.launch_digest",
            LaunchFinishError::Policy { .. } => "id_block.policy",
        }
    }
}

/// The ID block checks of SNP_LAUNCH_FINISH, in this order: both structures well-formed; an
/// author key present if AUTHOR_KEY_EN; ID_BLOCK_SIG verifies with ID_KEY over the 96 bytes;
/// with AUTHOR_KEY_EN, ID_KEY_SIG verifies with AUTHOR_KEY over the 0x404 bytes of ID_KEY; LD
/// equals the launch digest; POLICY equals the launch policy. On success, the identity the
/// report will carry.
///
/// Without AUTHOR_KEY_EN the author fields are ignored, as the ABI says: an author signature
/// present in the structure is neither verified nor reported. They must still be well-formed
/// (zero, or a key on the curve and a signature in range), which is stricter than the PSP: no tool
/// writes anything else there, and a malformed part is a sign of tampering worth refusing.
pub fn launch_finish(
    inputs: &IdInputs<'_>,
    launch_digest: &[u8; 48],
    launch_policy: u64,
) -> Result<LaunchIdentity, LaunchFinishError> {
    let block = IdBlock::decode(inputs.id_block).map_err(LaunchFinishError::IdBlock)?;
    let auth = IdAuth::decode(inputs.id_auth).map_err(LaunchFinishError::IdAuth)?;
    let author = match (inputs.author_key_enabled, auth.author) {
        (true, Some(author)) => Some(author),
        (true, None) => return Err(LaunchFinishError::AuthorKeyMissing),
        (false, _) => None,
    };
    if !auth.id_key.verifies(inputs.id_block, &auth.id_block_sig) {
        return Err(LaunchFinishError::IdBlockSignature);
    }
    let author_key_digest = match author {
        Some(author) => {
            if !author
                .author_key
                .verifies(&inputs.id_auth[ID_KEY], &author.id_key_sig)
            {
                return Err(LaunchFinishError::IdKeySignature);
            }
            Sha384::digest(&inputs.id_auth[AUTHOR_KEY]).into()
        }
        None => [0; 48],
    };
    if &block.launch_digest != launch_digest {
        return Err(LaunchFinishError::LaunchDigest {
            id_block: hex::encode(block.launch_digest),
            launch: hex::encode(launch_digest),
        });
    }
    if block.policy != launch_policy {
        return Err(LaunchFinishError::Policy {
            id_block: block.policy,
            launch: launch_policy,
        });
    }
    Ok(LaunchIdentity {
        family_id: block.family_id,
        image_id: block.image_id,
        guest_svn: block.guest_svn,
        id_key_digest: Sha384::digest(&inputs.id_auth[ID_KEY]).into(),
        author_key_digest,
        author_key_en: inputs.author_key_enabled,
    })
}
