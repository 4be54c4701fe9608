//! The `[verity]` table's choices, as types: an unknown spelling is an error when the recipe is
//! read, never a silent fallback to a default when the image is built.

/// Defines a closed set of spellings with their parser and printer.
macro_rules! choice {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every choice with its spelling in recipe.toml.
            pub const ALL: &'static [($name, &'static str)] = &[$(($name::$variant, $text)),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub(crate) fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().find(|(_, t)| *t == name).map(|(v, _)| *v)
            }

            pub(crate) fn spellings() -> String {
                Self::ALL.iter().map(|(_, t)| *t).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice! {
    /// The hash of the dm-verity tree.
    VerityHash { Sha256 = "sha256", Sha1 = "sha1", Sha512 = "sha512" }
}

choice! {
    /// What the kernel does when a block does not match its hash.
    OnCorruption { Panic = "panic", Restart = "restart" }
}

choice! {
    /// When blocks are checked.
    VerityCheck {
        /// `/init` reads every block once before the appliance starts, so any corruption stops
        /// the boot with a message.
        Full = "full",
        /// Blocks are checked when first read.
        Lazy = "lazy",
    }
}

choice! {
    /// The root filesystem (see `snpkit_image::rootfs` for why not erofs).
    RootFilesystem { Squashfs = "squashfs" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for (v, t) in VerityHash::ALL {
            assert_eq!(VerityHash::from_name(t), Some(*v));
            assert_eq!(v.as_str(), *t);
        }
        assert_eq!(OnCorruption::from_name("ignore"), None);
        assert_eq!(VerityCheck::from_name("Full"), None, "spellings are exact");
        assert_eq!(VerityHash::spellings(), "sha256, sha1, sha512");
    }
}
