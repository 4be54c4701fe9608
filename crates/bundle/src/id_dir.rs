//! `id/`: an image's signed identities, one pair of files per launch config —
//! `<config>.id-block` (the 96-byte ID block) and `<config>.id-auth` (the 4096-byte ID
//! authentication information) — as `cargo xtask sign` writes them and `boot` hands them to QEMU
//! and the PSP. Bytes only here: what they mean is `snpkit-idblock`'s.
//!
//! The folder is written as a whole (a new folder swapped in), so a reader never sees a block
//! beside the auth of another signing, nor the files of a launch config the image no longer has.
//! It is one of the entries a rebuild keeps ([`crate::KEPT`]): a reproducible rebuild predicts
//! the same digests, and its signatures stay valid without taking the signing keys out again; a
//! rebuild that changes the digest leaves blocks whose LD no longer matches, which LAUNCH_FINISH
//! refuses by name (and `boot` says which image they were signed for).

use crate::limits::Limit;
use crate::{BundleError, ImageDir, files, id_files};
use snpkit_fsguard::sync_dir;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The two files of one launch config, as they are on disk. Their sizes are bounded by
/// [`Limit::ID_BLOCK`] and [`Limit::ID_AUTH`]; whether they are well-formed is for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdFiles {
    pub block_path: PathBuf,
    pub auth_path: PathBuf,
    pub block: Vec<u8>,
    pub auth: Vec<u8>,
}

/// One launch config's pair, to write.
#[derive(Debug, Clone, Copy)]
pub struct IdPair<'a> {
    pub config: &'a str,
    pub block: &'a [u8],
    pub auth: &'a [u8],
}

/// A launch config name as part of a file name: the recipe allows letters, digits, `-`, `_` and
/// `.`; a manifest edited by hand may hold anything, so refuse what would leave the folder.
fn check_config(config: &str) -> Result<(), BundleError> {
    if config.is_empty() || config.contains('/') || config.contains('\0') {
        return Err(BundleError::BadName {
            name: config.to_owned(),
            why: "a launch config name becomes a file name under id/",
        });
    }
    Ok(())
}

impl ImageDir {
    /// The signed identities, `id/`.
    pub fn id_dir(&self) -> PathBuf {
        self.path().join(files::ID)
    }

    /// `id/<config>.id-block`.
    pub fn id_block(&self, config: &str) -> PathBuf {
        self.id_dir()
            .join(format!("{config}.{}", id_files::BLOCK_EXT))
    }

    /// `id/<config>.id-auth`.
    pub fn id_auth(&self, config: &str) -> PathBuf {
        self.id_dir()
            .join(format!("{config}.{}", id_files::AUTH_EXT))
    }

    /// The pair of launch config `config`, or `None` when the image has neither file for it. One
    /// without the other is an error: half a signing is never launched without.
    pub fn read_id(&self, config: &str) -> Result<Option<IdFiles>, BundleError> {
        check_config(config)?;
        let (block_path, auth_path) = (self.id_block(config), self.id_auth(config));
        let read = |path: &Path, limit| match Limit::read(limit, path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        };
        match (
            read(&block_path, Limit::ID_BLOCK)?,
            read(&auth_path, Limit::ID_AUTH)?,
        ) {
            (None, None) => Ok(None),
            (Some(block), Some(auth)) => Ok(Some(IdFiles {
                block_path,
                auth_path,
                block,
                auth,
            })),
            (Some(_), None) => Err(half(&block_path, &auth_path, self.recipe())),
            (None, Some(_)) => Err(half(&auth_path, &block_path, self.recipe())),
        }
    }

    /// Replaces `id/` with exactly `pairs`: written and synced into a new folder beside it, then
    /// swapped in with one rename (`RENAME_EXCHANGE` when there is an old one, which is then
    /// removed). Files are 0644: signatures are public.
    pub fn write_id(&self, pairs: &[IdPair<'_>]) -> Result<(), BundleError> {
        self.require()?;
        for p in pairs {
            check_config(p.config)?;
        }
        let target = self.id_dir();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.new-", files::ID))
            .tempdir_in(self.path())
            .map_err(BundleError::write(&target))?;
        for p in pairs {
            for (ext, bytes) in [(id_files::BLOCK_EXT, p.block), (id_files::AUTH_EXT, p.auth)] {
                let path = tmp.path().join(format!("{}.{ext}", p.config));
                let mut f = std::fs::File::create(&path).map_err(BundleError::write(&path))?;
                f.write_all(bytes).map_err(BundleError::write(&path))?;
                set_mode(&path, 0o644)?;
                f.sync_all().map_err(BundleError::write(&path))?;
            }
        }
        set_mode(tmp.path(), 0o755)?;
        sync_dir(tmp.path(), "the new id folder")?;
        if std::fs::symlink_metadata(&target).is_err() {
            std::fs::rename(tmp.path(), &target)
                .map_err(BundleError::change("move the new signatures to", &target))?;
            // The folder has its final name; nothing is left for `tmp` to remove.
            let _ = tmp.keep();
        } else {
            use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
            renameat2(
                AT_FDCWD,
                tmp.path(),
                AT_FDCWD,
                &target,
                RenameFlags::RENAME_EXCHANGE,
            )
            .map_err(|e| BundleError::change("swap the new signatures with", &target)(e.into()))?;
            // `tmp` now names the old folder; dropping it removes it.
            drop(tmp);
        }
        Ok(sync_dir(self.path(), "the image folder")?)
    }
}

fn half(present: &Path, missing: &Path, recipe: &str) -> BundleError {
    BundleError::Inconsistent {
        path: present.to_owned(),
        why: format!(
            "{} is missing: an ID block and its ID auth come in pairs; sign again with `cargo xtask sign {recipe} --id-key FILE`, or remove both",
            missing.display()
        ),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(BundleError::change("set the permissions of", path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn image() -> (tempfile::TempDir, ImageDir) {
        let images = tempfile::tempdir().unwrap();
        std::fs::create_dir(images.path().join("hello")).unwrap();
        let image = ImageDir::new(images.path(), "hello");
        (images, image)
    }

    #[test]
    fn pairs_round_trip_and_a_new_signing_replaces_the_whole_folder() {
        let (_keep, image) = image();
        assert_eq!(image.read_id("a").unwrap(), None);
        let (block, auth) = ([1u8; 96], [2u8; 4096]);
        let pair = |config| IdPair {
            config,
            block: &block,
            auth: &auth,
        };
        image.write_id(&[pair("a"), pair("b")]).unwrap();
        let a = image.read_id("a").unwrap().unwrap();
        assert_eq!(
            (a.block.as_slice(), a.auth.as_slice()),
            (&block[..], &auth[..])
        );
        assert_eq!(a.block_path, image.id_dir().join("a.id-block"));
        image.write_id(&[pair("b")]).unwrap();
        assert_eq!(
            image.read_id("a").unwrap(),
            None,
            "a's pair went with the old folder"
        );
        assert!(image.read_id("b").unwrap().is_some());
        let names: Vec<_> = std::fs::read_dir(image.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["id"], "no temporary folder left behind");
    }

    #[test]
    fn half_a_pair_oversized_files_and_bad_names_are_refused() {
        let (_keep, image) = image();
        let (block, auth) = ([1u8; 96], [2u8; 4096]);
        image
            .write_id(&[IdPair {
                config: "a",
                block: &block,
                auth: &auth,
            }])
            .unwrap();
        std::fs::remove_file(image.id_auth("a")).unwrap();
        let err = image.read_id("a").unwrap_err();
        assert!(err.to_string().contains("come in pairs"), "{err}");
        std::fs::write(image.id_auth("a"), [0u8; 4097]).unwrap();
        let err = image.read_id("a").unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::File(snpkit_fsguard::FsError::TooLarge { max: 4096, .. })
            ),
            "{err}"
        );
        for bad in ["", "../x", "a/b"] {
            assert!(matches!(
                image.read_id(bad),
                Err(BundleError::BadName { .. })
            ));
        }
        // A folder where a file should be is named, not followed.
        std::fs::remove_file(image.id_auth("a")).unwrap();
        std::fs::create_dir(image.id_auth("a")).unwrap();
        let err = image.read_id("a").unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::File(snpkit_fsguard::FsError::NotRegular { .. })
            ),
            "{err}"
        );
    }
}
