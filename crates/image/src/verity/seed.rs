//! Salt and UUID from a seed (the recipe's), so the same recipe gives the same hash device
//! (mkosi's `Seed=` does the same). Each is SHA-256 over a versioned domain tag, a label telling
//! apart several verity devices of one image, and the seed; the label and the seed are
//! length-prefixed so no two (label, seed) pairs hash the same bytes.

use super::Salt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn derive(tag: &[u8], seed: &str, label: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    h.update((label.len() as u64).to_le_bytes());
    h.update(label.as_bytes());
    h.update((seed.len() as u64).to_le_bytes());
    h.update(seed.as_bytes());
    h.finalize().into()
}

/// A 32-byte salt (veritysetup's default size).
pub fn salt_from_seed(seed: &str, label: &str) -> Salt {
    Salt::from_bytes32(derive(b"snpkit/verity/salt/v1\0", seed, label))
}

/// A version 4 (random) UUID made of derived bytes.
pub fn uuid_from_seed(seed: &str, label: &str) -> Uuid {
    let bytes = derive(b"snpkit/verity/uuid/v1\0", seed, label);
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes[..16]);
    uuid::Builder::from_random_bytes(first).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_labels_give_distinct_stable_values() {
        let a = salt_from_seed("recipe-seed", "root");
        assert_eq!(a, salt_from_seed("recipe-seed", "root"));
        assert_eq!(a.as_bytes().len(), 32);
        assert_ne!(a, salt_from_seed("recipe-seed", "data"));
        assert_ne!(a, salt_from_seed("recipe-seeD", "root"));
        // Length prefixes: moving a character between label and seed changes the result.
        assert_ne!(salt_from_seed("ab", "c"), salt_from_seed("b", "ca"));
        let u = uuid_from_seed("recipe-seed", "root");
        assert_eq!(u, uuid_from_seed("recipe-seed", "root"));
        assert_ne!(u, uuid_from_seed("recipe-seed", "data"));
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(u.as_bytes()[..], a.as_bytes()[..16]);
    }

    #[test]
    fn derivation_is_pinned() {
        // A change here changes every image's hash device: bump the tag's version instead.
        let mut input = b"snpkit/verity/salt/v1\0".to_vec();
        input.extend_from_slice(&4u64.to_le_bytes());
        input.extend_from_slice(b"root");
        input.extend_from_slice(&4u64.to_le_bytes());
        input.extend_from_slice(b"seed");
        let want: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(salt_from_seed("seed", "root").as_bytes(), &want[..]);
    }
}
