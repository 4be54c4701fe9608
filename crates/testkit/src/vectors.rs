//! The external test vectors vendored under `tests/vectors/` (each folder's SOURCE.md says where
//! it came from). `SNPKIT_VECTORS` points elsewhere, e.g. at a fuller collection.

use std::path::{Path, PathBuf};

/// `$SNPKIT_VECTORS` if set, else the workspace's `tests/vectors`.
pub fn dir() -> PathBuf {
    std::env::var_os("SNPKIT_VECTORS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors"))
}

/// `dir()/rel`.
pub fn path(rel: &str) -> PathBuf {
    dir().join(rel)
}

/// The bytes of vector `rel`. A missing vector is a broken checkout, not a reason to skip: panics
/// saying how to fix it.
pub fn read(rel: &str) -> Vec<u8> {
    let p = path(rel);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "test vector {} is missing ({e}); set SNPKIT_VECTORS or restore tests/vectors",
            p.display()
        )
    })
}
