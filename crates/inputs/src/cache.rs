//! The content-addressed cache: `blobs/sha256/<hex>` holds bytes whose SHA-256 is their name.
//!
//! It lives outside the checkout, in snpkit's cache folder ([`snpkit_cache::root`]), so that
//! clones, worktrees and CI runs share downloads and firmware builds.
//! Blobs are checked again when read: a corrupted cache costs a download, never a wrong image.

use crate::InputError;
use sha2::{Digest, Sha256};
use snpkit_bundle::Sha256Sum;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache of this user, from the environment.
    pub fn from_env() -> Result<Cache, InputError> {
        snpkit_cache::root()
            .map(Cache::at)
            .ok_or(InputError::NoCacheDir)
    }

    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A subdirectory for one kind of artifact (`ovmf`, `oracles`, …), created on demand.
    pub fn dir(&self, name: &str) -> Result<PathBuf, InputError> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).map_err(InputError::io("create the folder", &dir))?;
        Ok(dir)
    }

    fn blob_path(&self, sum: &Sha256Sum) -> PathBuf {
        self.root.join("blobs").join("sha256").join(sum.to_hex())
    }

    /// The bytes named `sum`, if the cache holds them intact. A blob that no longer matches its
    /// name is removed, so the caller fetches it again.
    pub fn get(&self, sum: &Sha256Sum) -> Result<Option<Vec<u8>>, InputError> {
        let path = self.blob_path(sum);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(InputError::io("read", path)(e)),
        };
        if Sha256Sum::of(&bytes) != *sum {
            tracing::warn!("cache blob {} is corrupted; removing it", path.display());
            std::fs::remove_file(&path).map_err(InputError::io("remove", &path))?;
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores `bytes` after checking them against `expected`; `what` names them in errors.
    pub fn put(
        &self,
        bytes: &[u8],
        expected: &Sha256Sum,
        what: &str,
        fix: &str,
    ) -> Result<PathBuf, InputError> {
        let found = Sha256Sum::of(bytes);
        if found != *expected {
            return Err(InputError::ChecksumMismatch {
                what: what.to_owned(),
                expected: *expected,
                found,
                fix: fix.to_owned(),
            });
        }
        self.put_unchecked(bytes)
    }

    /// Stores bytes under their own hash (for things we produced, like a firmware build).
    pub fn put_unchecked(&self, bytes: &[u8]) -> Result<PathBuf, InputError> {
        let sum = Sha256Sum(Sha256::digest(bytes).into());
        let path = self.blob_path(&sum);
        if path.is_file() {
            return Ok(path);
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        std::fs::create_dir_all(&dir).map_err(InputError::io("create the folder", &dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(InputError::io("create a temporary file in", &dir))?;
        tmp.write_all(bytes)
            .map_err(InputError::io("write", tmp.path()))?;
        tmp.persist(&path)
            .map_err(|e| InputError::io("rename into place", path.clone())(e.error))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn put_then_get_round_trips_and_refuses_wrong_sum() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let sum = Sha256Sum::of(b"hello");
        assert!(cache.get(&sum).unwrap().is_none());
        cache.put(b"hello", &sum, "test blob", "fix").unwrap();
        assert_eq!(cache.get(&sum).unwrap().as_deref(), Some(&b"hello"[..]));
        let err = cache.put(b"hellO", &sum, "test blob", "fix").unwrap_err();
        assert!(matches!(err, InputError::ChecksumMismatch { .. }), "{err}");
    }

    #[test]
    fn corrupted_blob_is_dropped_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let sum = Sha256Sum::of(b"data");
        let path = cache.put(b"data", &sum, "blob", "fix").unwrap();
        std::fs::write(&path, b"evil").unwrap();
        assert!(cache.get(&sum).unwrap().is_none());
        assert!(!path.exists());
    }
}
