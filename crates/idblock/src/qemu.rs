//! The values of QEMU's `sev-snp-guest` properties that carry the identity (QEMU 9.1+,
//! `target/i386/sev.c`): `id-block` (base64 of exactly 96 bytes), `id-auth` (base64 of at most
//! 4096 bytes; KVM copies 4096 from the buffer, so all of them are passed) and
//! `author-key-enabled`. QEMU sets ID_BLOCK_EN when `id-block` is given, and KVM passes the
//! author flag only together with an ID block, so the three always travel together.

use crate::auth::IdAuth;
use crate::block::IdBlock;
use base64::Engine;

/// The property values for one signed launch config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuIdArgs {
    /// `id-block=`: standard base64 (it never contains QEMU's `,` separator).
    pub id_block: String,
    /// `id-auth=`: standard base64 of all 4096 bytes.
    pub id_auth: String,
    /// `author-key-enabled=`: derived from `auth`, never chosen apart from it, so a launch cannot
    /// claim an author key the structure lacks (the PSP would refuse) or silently drop one that
    /// it carries (the report would then lack AUTHOR_KEY_DIGEST).
    pub author_key_enabled: bool,
}

impl QemuIdArgs {
    pub fn new(block: &IdBlock, auth: &IdAuth) -> QemuIdArgs {
        let b64 = base64::engine::general_purpose::STANDARD;
        QemuIdArgs {
            id_block: b64.encode(block.encode()),
            id_auth: b64.encode(&auth.encode()[..]),
            author_key_enabled: auth.author.is_some(),
        }
    }

    /// `id-block=…,id-auth=…[,author-key-enabled=on]`, to append to `-object sev-snp-guest,…`.
    pub fn properties(&self) -> String {
        let mut s = format!("id-block={},id-auth={}", self.id_block, self.id_auth);
        if self.author_key_enabled {
            s.push_str(",author-key-enabled=on");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn properties_carry_the_encoded_structures_and_the_author_flag() {
        let block = IdBlock {
            launch_digest: [9; 48],
            family_id: [0; 16],
            image_id: [0; 16],
            guest_svn: 1,
            policy: 0x30000,
        };
        let auth = IdAuth::sign(&block, &SigningKey::from_scalar_for_tests(3));
        let plain = QemuIdArgs::new(&block, &auth);
        assert_eq!((plain.id_block.len(), plain.id_auth.len()), (128, 5464));
        assert!(!plain.author_key_enabled);
        assert!(!plain.properties().contains("author-key-enabled"));
        assert!(
            !plain
                .properties()
                .contains(','.to_string().repeat(2).as_str())
        );

        let certified =
            QemuIdArgs::new(&block, &auth.certify(&SigningKey::from_scalar_for_tests(4)));
        assert!(certified.author_key_enabled);
        assert!(certified.properties().ends_with(",author-key-enabled=on"));
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(b64.decode(&certified.id_block).unwrap(), block.encode());
    }
}
