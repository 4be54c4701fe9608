//! [`ImageDir`]: `images/<recipe>/`, the paths of its files and reading them.

use crate::json;
use crate::limits::{Limit, write_file};
use crate::run_dir::{PartialRun, RunDir, RunId};
use crate::{BundleError, EXPECTED_SCHEMA, Expected, LaunchSpec, Manifest, Sha256Sum, files};
use std::path::{Path, PathBuf};

/// The image folder of one recipe. Holding one says nothing about what is on disk: every read
/// checks, and a missing image or prediction is an error that names the command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDir {
    dir: PathBuf,
    recipe: String,
}

impl ImageDir {
    /// The image of the recipe a user named: the name checked by [`check_recipe_name`] first, so
    /// no command reads or writes outside the images folder (`../x`, `a/b`, `.`).
    pub fn named(images: &Path, recipe: &str) -> Result<ImageDir, BundleError> {
        check_recipe_name(recipe)?;
        Ok(ImageDir::new(images, recipe))
    }

    /// The image of `recipe` in the images folder `images` (`images/<recipe>/`); `recipe` is a
    /// name already checked (a loaded recipe's); a name from a user goes through [`ImageDir::named`].
    pub fn new(images: &Path, recipe: &str) -> ImageDir {
        ImageDir {
            dir: images.join(recipe),
            recipe: recipe.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn recipe(&self) -> &str {
        &self.recipe
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.join(files::MANIFEST)
    }

    pub fn expected(&self) -> PathBuf {
        self.dir.join(files::EXPECTED)
    }

    pub fn kernel(&self) -> PathBuf {
        self.dir.join(files::KERNEL)
    }

    pub fn initrd(&self) -> PathBuf {
        self.dir.join(files::INITRD)
    }

    pub fn cmdline(&self) -> PathBuf {
        self.dir.join(files::CMDLINE)
    }

    pub fn firmware(&self) -> PathBuf {
        self.dir.join(files::FIRMWARE)
    }

    /// The dm-verity data device (verity layouts only).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(files::ROOTFS)
    }

    /// The dm-verity hash device (verity layouts only).
    pub fn verity(&self) -> PathBuf {
        self.dir.join(files::VERITY)
    }

    /// The boot runs, `runs/<id>/`.
    pub fn runs(&self) -> PathBuf {
        self.dir.join(files::RUNS)
    }

    /// Reference values and a resource policy for Trustee, `trustee/` (`cargo xtask export trustee`).
    pub fn trustee(&self) -> PathBuf {
        self.dir.join(files::TRUSTEE)
    }

    /// Fails with the command that builds the image when there is no image folder.
    pub fn require(&self) -> Result<(), BundleError> {
        match std::fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(self.no_image(None)),
            Err(e) => Err(self.no_image(Some(e))),
        }
    }

    /// No image here; `source`, the reason a read found none, stays the error's cause.
    fn no_image(&self, source: Option<std::io::Error>) -> BundleError {
        BundleError::NoImage {
            dir: self.dir.clone(),
            recipe: self.recipe.clone(),
            source,
        }
    }

    /// `manifest.json`, whole and checked.
    pub fn read_manifest(&self) -> Result<Manifest, BundleError> {
        self.read_manifest_hashed().map(|(m, _)| m)
    }

    /// `manifest.json` and the SHA-256 of the bytes it was parsed from (one read: the digest is
    /// of the manifest returned, whatever happens to the file meanwhile).
    pub fn read_manifest_hashed(&self) -> Result<(Manifest, Sha256Sum), BundleError> {
        let path = self.manifest();
        let bytes = self.read_or_no_image(&path, Limit::MANIFEST)?;
        let manifest: Manifest = json::parse_versioned(
            &path,
            &bytes,
            "snpkit manifest",
            crate::MANIFEST_SCHEMA,
            |m: &Manifest| m.schema,
        )?;
        Ok((manifest, Sha256Sum::of(&bytes)))
    }

    /// Only the launch configurations of `manifest.json`, ignoring every other field: what
    /// `measure` and `explain` need, from this snpkit's manifests or another's.
    pub fn read_launch_specs(&self) -> Result<Vec<LaunchSpec>, BundleError> {
        #[derive(serde::Deserialize)]
        struct LaunchOnly {
            launch: Vec<LaunchSpec>,
        }
        let path = self.manifest();
        let bytes = self.read_or_no_image(&path, Limit::MANIFEST)?;
        json::parse::<LaunchOnly>(&path, &bytes, "manifest with a \"launch\" array")
            .map(|m| m.launch)
    }

    /// The kernel command line file, bytes as measured.
    pub fn read_cmdline(&self) -> Result<Vec<u8>, BundleError> {
        Limit::CMDLINE.read(&self.cmdline())
    }

    fn read_or_no_image(&self, path: &Path, limit: Limit) -> Result<Vec<u8>, BundleError> {
        snpkit_fsguard::read(path, limit.what, limit.max).map_err(|e| match e {
            snpkit_fsguard::FsError::Io { error, .. }
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                self.no_image(Some(error))
            }
            e => e.into(),
        })
    }

    /// The image's prediction, `expected.json`; missing, an error that says how to make it.
    pub fn read_expected(&self) -> Result<Expected, BundleError> {
        let path = self.expected();
        let bytes = Limit::EXPECTED.read(&path).map_err(|e| {
            if e.is_not_found() {
                BundleError::NoExpected {
                    path: path.clone(),
                    recipe: self.recipe.clone(),
                }
            } else {
                e
            }
        })?;
        Expected::from_json(&path, &bytes)
    }

    /// Replaces `expected.json` atomically.
    pub fn write_expected(&self, expected: &Expected) -> Result<(), BundleError> {
        write_file(
            &self.expected(),
            "expected.json",
            expected.to_json().as_bytes(),
        )
    }

    /// The run `id` (which need not exist).
    pub fn run(&self, id: &RunId) -> RunDir {
        RunDir::at(self.runs().join(id.as_str()))
    }

    /// The newest finished run: the run folder whose `run.json` was written last.
    pub fn newest_run(&self) -> Result<RunDir, BundleError> {
        let runs = self.runs();
        let no_runs = || BundleError::NoRuns { dir: runs.clone() };
        let entries = std::fs::read_dir(&runs).map_err(|_| no_runs())?;
        let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
        for entry in entries.flatten() {
            if unfinished(&entry.file_name()) {
                // A crash between writing run.json and the rename leaves one in a `.partial`.
                continue;
            }
            let dir = RunDir::at(entry.path());
            if let Ok(meta) = std::fs::metadata(dir.record()) {
                let t = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                let newer = best
                    .as_ref()
                    .is_none_or(|(bt, bp)| (t, entry.path()) > (*bt, bp.clone()));
                if newer {
                    best = Some((t, entry.path()));
                }
            }
        }
        best.map(|(_, p)| RunDir::at(p)).ok_or_else(no_runs)
    }

    /// The runs that did not finish (`<id>.failed`, `<id>.partial`) and were touched after `run`'s
    /// `run.json` was written, newest last: what a verifier that picked `run` as the newest
    /// finished run passed over, to be said aloud rather than skipped in silence.
    pub fn unfinished_since(&self, run: &RunDir) -> Vec<String> {
        let Ok(since) = std::fs::metadata(run.record()).and_then(|m| m.modified()) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(self.runs()) else {
            return Vec::new();
        };
        let mut newer: Vec<(std::time::SystemTime, String)> = entries
            .flatten()
            .filter(|e| unfinished(&e.file_name()))
            .filter_map(|e| {
                let t = e.metadata().and_then(|m| m.modified()).ok()?;
                (t > since).then(|| (t, e.file_name().to_string_lossy().into_owned()))
            })
            .collect();
        newer.sort();
        newer.into_iter().map(|(_, name)| name).collect()
    }

    /// The first of `sources` (a recipe's `recipe.toml`, `recipe.lock`) changed after this image's
    /// `manifest.json` was written: the image is older than what it is built from. Sources that do
    /// not exist are no evidence either way and are passed over.
    pub fn built_before<'a>(
        &self,
        sources: &'a [PathBuf],
    ) -> Result<Option<&'a Path>, BundleError> {
        let manifest = self.manifest();
        let built = std::fs::metadata(&manifest)
            .and_then(|m| m.modified())
            .map_err(|source| BundleError::Read {
                path: manifest.clone(),
                source,
            })?;
        Ok(sources
            .iter()
            .find(|s| {
                std::fs::metadata(s)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t > built)
            })
            .map(PathBuf::as_path))
    }

    /// Starts a boot run: `runs/<id>.partial/`, which becomes `runs/<id>/` when it finishes and
    /// `runs/<id>.failed/` otherwise.
    pub fn start_run(&self) -> Result<PartialRun, BundleError> {
        self.require()?;
        PartialRun::start(&self.runs(), RunId::now())
    }
}

/// A run folder that did not finish: kept for its console log, never evidence.
fn unfinished(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.ends_with(crate::run_files::FAILED_SUFFIX)
        || name.ends_with(crate::run_files::PARTIAL_SUFFIX)
}

/// The one rule for recipe names, shared by the recipe's `name`, `lock`, `build`, `boot`, `measure`
/// and `verify`: 1-64 of `a-z 0-9 - _`, not starting with `-`. A name is a folder under `recipes/`
/// and `images/`, so a name that is a path (`../etc`, `a/b`) or hidden (`.x`) never reaches the
/// file system.
pub fn check_recipe_name(name: &str) -> Result<(), BundleError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(BundleError::BadRecipeName {
            name: name.to_owned(),
        })
    }
}

impl Expected {
    /// Parses an `expected.json` read from `path`, refusing other schemas.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Expected, BundleError> {
        json::parse_versioned(
            path,
            bytes,
            "expected.json",
            EXPECTED_SCHEMA,
            |e: &Expected| e.schema,
        )
    }

    /// An `expected.json` a user names (`verify --expected FILE`): a regular file, bounded by
    /// counting, like every file snpkit reads.
    pub fn read_given(path: &Path) -> Result<Expected, BundleError> {
        Expected::from_json(path, &Limit::EXPECTED.read(path)?)
    }
}
