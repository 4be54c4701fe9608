//! A signed identity as a launch hands it on: to QEMU's `sev-snp-guest` properties that carry it
//! (QEMU 9.1+, `target/i386/sev.c`) — `id-block` (base64 of exactly 96 bytes), `id-auth` (base64
//! of at most 4096 bytes; KVM copies 4096 from the buffer, so all of them are passed) and
//! `author-key-enabled` — and to an emulated PSP's LAUNCH_FINISH, byte for byte the same. QEMU
//! sets ID_BLOCK_EN when `id-block` is given, and KVM passes the author flag only together with an
//! ID block, so the three always travel together.

use crate::auth::IdAuth;
use crate::block::IdBlock;
use crate::error::DecodeError;
use crate::finish::IdInputs;
use crate::layout;
use base64::Engine;

/// Why a pair of ID files cannot be handed to a launch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdFileError {
    #[error("not a well-formed ID block")]
    Block(#[source] DecodeError),
    #[error("not a well-formed ID authentication structure")]
    Auth(#[source] DecodeError),
}

/// One signed launch config's identity as a launch carries it: the bytes of the ID block and ID
/// auth, and whether an author key certified the ID key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuIdArgs {
    block: [u8; layout::block::LEN],
    auth: Box<[u8; layout::auth::LEN]>,
    decoded: IdAuth,
}

impl QemuIdArgs {
    pub fn new(block: &IdBlock, auth: &IdAuth) -> QemuIdArgs {
        QemuIdArgs {
            block: block.encode(),
            auth: auth.encode(),
            decoded: *auth,
        }
    }

    /// The two structures as a signer wrote them (the files of `cargo xtask sign`, or another
    /// tool's), passed on byte for byte. They are decoded first, strictly: a truncated or
    /// malformed file is named here rather than sent to the PSP, and the author flag is read
    /// from the structure rather than chosen beside it. Signatures are not verified: that is
    /// LAUNCH_FINISH's job ([`crate::launch_finish`], on [`QemuIdArgs::inputs`]).
    pub fn from_bytes(block: &[u8], auth: &[u8]) -> Result<QemuIdArgs, IdFileError> {
        IdBlock::decode(block).map_err(IdFileError::Block)?;
        let decoded = IdAuth::decode(auth).map_err(IdFileError::Auth)?;
        // Both sizes were checked by the decoders.
        let block: [u8; layout::block::LEN] = block
            .try_into()
            .map_err(|_| IdFileError::Block(size("ID block", layout::block::LEN, block)))?;
        let auth: Box<[u8; layout::auth::LEN]> = auth
            .to_vec()
            .into_boxed_slice()
            .try_into()
            .map_err(|_| IdFileError::Auth(size("ID auth", layout::auth::LEN, auth)))?;
        Ok(QemuIdArgs {
            block,
            auth,
            decoded,
        })
    }

    /// `author-key-enabled`: derived from the structure, never chosen apart from it, so a launch
    /// cannot claim an author key the structure lacks (the PSP would refuse) or silently drop one
    /// that it carries (the report would then lack AUTHOR_KEY_DIGEST).
    pub fn author_key_enabled(&self) -> bool {
        self.decoded.author.is_some()
    }

    /// SHA-384 of the ID key the structure carries (not yet verified to have signed anything).
    pub fn id_key_digest(&self) -> [u8; 48] {
        self.decoded.id_key.digest()
    }

    /// SHA-384 of the author key the structure carries, if any (not yet verified).
    pub fn author_key_digest(&self) -> Option<[u8; 48]> {
        self.decoded.author.map(|a| a.author_key.digest())
    }

    /// What LAUNCH_FINISH receives: the same bytes and flag as QEMU's properties.
    pub fn inputs(&self) -> IdInputs<'_> {
        IdInputs {
            id_block: &self.block,
            id_auth: &self.auth[..],
            author_key_enabled: self.author_key_enabled(),
        }
    }

    /// `id-block=…,id-auth=…[,author-key-enabled=on]`, to append to `-object sev-snp-guest,…`.
    /// Standard base64 never contains QEMU's `,` separator.
    pub fn properties(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut s = format!(
            "id-block={},id-auth={}",
            b64.encode(self.block),
            b64.encode(&self.auth[..])
        );
        if self.author_key_enabled() {
            s.push_str(",author-key-enabled=on");
        }
        s
    }
}

fn size(structure: &'static str, expected: usize, bytes: &[u8]) -> DecodeError {
    DecodeError::Size {
        structure,
        expected,
        found: bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    fn block() -> IdBlock {
        IdBlock {
            launch_digest: [9; 48],
            family_id: [0; 16],
            image_id: [0; 16],
            guest_svn: 1,
            policy: 0x30000,
        }
    }

    fn field<'a>(properties: &'a str, name: &str) -> &'a str {
        properties
            .split(',')
            .find_map(|f| f.strip_prefix(name))
            .unwrap()
    }

    #[test]
    fn properties_carry_the_encoded_structures_and_the_author_flag() {
        let auth = IdAuth::sign(&block(), &SigningKey::from_scalar_for_tests(3));
        let plain = QemuIdArgs::new(&block(), &auth);
        let p = plain.properties();
        // 96 bytes → 128 base64 characters; 4096 → 5464.
        assert_eq!(
            (field(&p, "id-block=").len(), field(&p, "id-auth=").len()),
            (128, 5464)
        );
        assert!(!plain.author_key_enabled());
        assert!(!p.contains("author-key-enabled"));
        assert!(!p.contains(",,"));
        assert_eq!(plain.author_key_digest(), None);

        let author = SigningKey::from_scalar_for_tests(4);
        let certified = QemuIdArgs::new(&block(), &auth.certify(&author));
        assert!(certified.author_key_enabled());
        assert!(certified.properties().ends_with(",author-key-enabled=on"));
        assert_eq!(
            certified.author_key_digest(),
            Some(author.public_key().digest())
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            b64.decode(field(&certified.properties(), "id-block="))
                .unwrap(),
            block().encode()
        );
    }

    #[test]
    fn from_bytes_passes_the_files_on_unchanged_and_names_a_bad_one() {
        let auth = IdAuth::sign(&block(), &SigningKey::from_scalar_for_tests(3))
            .certify(&SigningKey::from_scalar_for_tests(4));
        let mut auth_bytes = auth.encode();
        // Flipped in a signature: well-formed, so handed on as it is (LAUNCH_FINISH refuses it).
        auth_bytes[layout::auth::ID_BLOCK_SIG.start] ^= 1;
        let args = QemuIdArgs::from_bytes(&block().encode(), &auth_bytes[..]).unwrap();
        assert_eq!(args.inputs().id_auth, &auth_bytes[..]);
        assert_eq!(args.inputs().id_block, &block().encode()[..]);
        assert!(args.inputs().author_key_enabled);

        let truncated = QemuIdArgs::from_bytes(&block().encode()[..95], &auth_bytes[..]);
        assert!(matches!(
            truncated,
            Err(IdFileError::Block(DecodeError::Size { found: 95, .. }))
        ));
        let truncated = QemuIdArgs::from_bytes(&block().encode(), &auth_bytes[..4000]);
        assert!(matches!(
            truncated,
            Err(IdFileError::Auth(DecodeError::Size { found: 4000, .. }))
        ));
    }
}
