//! How much of each file of an image folder snpkit reads, and the one way it reads and writes
//! them: through `snpkit-fsguard` (regular files only, bounded by counting bytes; a temporary file,
//! synced and renamed).
//!
//! The bounds are the folder's own knowledge (what a manifest or a report can be), so every
//! reader of the same file, in any crate, refuses the same sizes with the same words.

use crate::BundleError;
use std::path::Path;

/// What a file is and how large it may be, for reading it and for the error when it is larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What the file is, in words (`manifest`, `report`).
    pub what: &'static str,
    pub max: u64,
}

impl Limit {
    pub const MANIFEST: Limit = Limit {
        what: "manifest",
        max: 16 << 20,
    };
    pub const EXPECTED: Limit = Limit {
        what: "expected.json",
        max: 16 << 20,
    };
    pub const RUN_RECORD: Limit = Limit {
        what: "run record",
        max: 64 << 10,
    };
    /// A report (1184 bytes), with room for an HCL or other wrapper, and no more.
    pub const REPORT: Limit = Limit {
        what: "report",
        max: 64 << 10,
    };
    pub const PUBKEY: Limit = Limit {
        what: "public key",
        max: 64 << 10,
    };
    pub const NONCE: Limit = Limit {
        what: "nonce",
        max: 1024,
    };
    /// An ID block is exactly 96 bytes; its decoder names any other size.
    pub const ID_BLOCK: Limit = Limit {
        what: "signed ID block file",
        max: 96,
    };
    /// An ID authentication structure is exactly 4096 bytes.
    pub const ID_AUTH: Limit = Limit {
        what: "signed ID auth file",
        max: 4096,
    };
    /// The kernel takes a few KiB at most; generous, so that the measurement names the problem.
    pub const CMDLINE: Limit = Limit {
        what: "kernel command line",
        max: 1 << 20,
    };
    /// A kernel image (a bzImage is 10–20 MiB): the image's, a recipe's local one, `--kernel`.
    pub const KERNEL: Limit = Limit {
        what: "kernel",
        max: 512 << 20,
    };
    /// An initrd: QEMU loads it into guest memory whole.
    pub const INITRD: Limit = Limit {
        what: "initrd",
        max: 4 << 30,
    };
    /// An OVMF or SVSM image (an AmdSev OVMF is 4 MiB): the image's, a recipe's, `--ovmf`.
    pub const FIRMWARE: Limit = Limit {
        what: "firmware",
        max: 64 << 20,
    };

    /// All of the regular file `path`, at most `self.max` bytes.
    pub fn read(self, path: &Path) -> Result<Vec<u8>, BundleError> {
        Ok(snpkit_fsguard::read(path, self.what, self.max)?)
    }
}

/// Writes a file of the folder atomically, mode 0644 (see [`snpkit_fsguard::write_atomic`]).
pub(crate) fn write_file(path: &Path, what: &str, bytes: &[u8]) -> Result<(), BundleError> {
    Ok(snpkit_fsguard::write_atomic(path, what, bytes, 0o644)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SMALL: Limit = Limit {
        what: "test file",
        max: 8,
    };

    #[test]
    fn reads_a_file_up_to_its_limit_and_refuses_one_byte_more_or_no_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("f");
        std::fs::write(&at, b"12345678").unwrap();
        assert_eq!(SMALL.read(&at).unwrap(), b"12345678");
        std::fs::write(&at, b"123456789").unwrap();
        let err = SMALL.read(&at).unwrap_err();
        assert!(err.to_string().contains("larger than 8 bytes"), "{err}");
        for path in [Path::new("/dev/zero"), dir.path()] {
            let err = SMALL.read(path).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        assert!(
            SMALL
                .read(&dir.path().join("absent"))
                .unwrap_err()
                .is_not_found()
        );
    }
}
