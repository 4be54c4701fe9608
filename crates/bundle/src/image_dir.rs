//! [`ImageDir`]: `images/<recipe>/`, the paths of its files and reading them.

use crate::fsio::{Limit, read_counted, read_regular, write_atomic};
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
    /// The image of `recipe` in the images folder `images` (`images/<recipe>/`).
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
        let manifest =
            serde_json::from_slice::<Manifest>(&bytes).map_err(|source| BundleError::Json {
                path: path.clone(),
                what: "snpkit manifest",
                source,
            })?;
        if manifest.schema != crate::MANIFEST_SCHEMA {
            return Err(BundleError::Schema {
                path,
                found: manifest.schema,
                supported: crate::MANIFEST_SCHEMA,
            });
        }
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
        serde_json::from_slice::<LaunchOnly>(&bytes)
            .map(|m| m.launch)
            .map_err(|source| BundleError::Json {
                path,
                what: "manifest with a \"launch\" array",
                source,
            })
    }

    /// The kernel command line file, bytes as measured.
    pub fn read_cmdline(&self) -> Result<Vec<u8>, BundleError> {
        read_regular(&self.cmdline(), Limit::CMDLINE)
    }

    fn read_or_no_image(&self, path: &Path, limit: Limit) -> Result<Vec<u8>, BundleError> {
        read_regular(path, limit).map_err(|e| match e {
            BundleError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                self.no_image(Some(source))
            }
            e => e,
        })
    }

    /// The image's prediction, `expected.json`; missing, an error that says how to make it.
    pub fn read_expected(&self) -> Result<Expected, BundleError> {
        let path = self.expected();
        let bytes = read_regular(&path, Limit::EXPECTED).map_err(|e| {
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
        write_atomic(&self.expected(), expected.to_json().as_bytes())
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

    /// Starts a boot run: `runs/<id>.partial/`, which becomes `runs/<id>/` when it finishes and
    /// `runs/<id>.failed/` otherwise.
    pub fn start_run(&self) -> Result<PartialRun, BundleError> {
        self.require()?;
        PartialRun::start(&self.runs(), RunId::now())
    }
}

impl Expected {
    /// Parses an `expected.json` read from `path`, refusing other schemas.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Expected, BundleError> {
        let expected: Expected =
            serde_json::from_slice(bytes).map_err(|source| BundleError::Json {
                path: path.to_owned(),
                what: "expected.json",
                source,
            })?;
        if expected.schema != EXPECTED_SCHEMA {
            return Err(BundleError::Schema {
                path: path.to_owned(),
                found: expected.schema,
                supported: EXPECTED_SCHEMA,
            });
        }
        Ok(expected)
    }

    /// An `expected.json` a user names (`verify --expected FILE`): a file or a pipe, bounded by
    /// counting.
    pub fn read_given(path: &Path) -> Result<Expected, BundleError> {
        Expected::from_json(path, &read_counted(path, Limit::EXPECTED)?)
    }
}
