//! The `[verity]` table's choices, as types: an unknown spelling is an error when the recipe is
//! read, never a silent fallback to a default when the image is built.
//!
//! The hash, the corruption mode and the boot check are `snpkit-wire`'s types, the very ones the
//! guest reads back from the measured command line: recipe.toml spells them as the command line
//! does, and nothing maps one set of names onto another in between.

pub use snpkit_wire::verity::{BootCheck, Corruption, HashAlgorithm};

/// The root filesystem (see `snpkit_image::rootfs` for why not erofs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootFilesystem {
    Squashfs,
}

impl RootFilesystem {
    pub const ALL: [RootFilesystem; 1] = [Self::Squashfs];

    /// The spelling in recipe.toml.
    pub fn name(self) -> &'static str {
        match self {
            Self::Squashfs => "squashfs",
        }
    }
}

/// The choice spelled `value` among `all`.
pub(crate) fn from_name<T: Copy>(all: &[T], name: fn(T) -> &'static str, value: &str) -> Option<T> {
    all.iter().copied().find(|c| name(*c) == value)
}

/// The spellings for an error's fix: the default first, then the others.
pub(crate) fn spellings<T: Copy + PartialEq>(
    all: &[T],
    name: fn(T) -> &'static str,
    default: T,
) -> String {
    std::iter::once(default)
        .chain(all.iter().copied().filter(|c| *c != default))
        .map(name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for h in HashAlgorithm::ALL {
            assert_eq!(
                from_name(&HashAlgorithm::ALL, HashAlgorithm::name, h.name()),
                Some(h)
            );
        }
        assert_eq!(
            from_name(&Corruption::ALL, Corruption::name, "ignore"),
            None
        );
        assert_eq!(
            from_name(&BootCheck::ALL, BootCheck::name, "Full"),
            None,
            "spellings are exact"
        );
        assert_eq!(
            spellings(
                &HashAlgorithm::ALL,
                HashAlgorithm::name,
                HashAlgorithm::Sha256
            ),
            "sha256, sha1, sha512"
        );
    }
}
