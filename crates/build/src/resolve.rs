//! `cargo xtask lock`: resolving every input a recipe names and pinning it.

use crate::{BuildError, Reporter};
use snpkit_inputs::{Cache, apt, kernel, ovmf};
use snpkit_recipe::{
    FirmwareSource, KernelSource, LOCK_VERSION, Lock, LockedBlob, LockedDeb, LockedFirmware,
    LockedKernel, Recipe, Sha256Sum,
};
use std::path::Path;

/// Resolves the recipe's inputs (downloading and building what is needed, so a lock only names
/// inputs that were really obtained) and returns the lock to write.
pub fn lock(
    recipe: &Recipe,
    recipe_text: &[u8],
    cache: &Cache,
    reporter: &dyn Reporter,
) -> Result<Lock, BuildError> {
    recipe.check_sources()?;
    let (kernel, modules) = lock_kernel(recipe, cache, reporter)?;
    let firmware = lock_firmware(recipe, cache, reporter)?;
    let mut packages = Vec::new();
    for pin in &recipe.packages {
        let deb = resolve_deb(&pin.name, pin.version.as_deref(), pin.sha256.as_ref())?;
        let progress = reporter.step(&format!("fetching {} {}", deb.name, deb.version));
        apt::fetch(&deb, cache, &*progress)?;
        packages.push(deb);
    }
    Ok(Lock {
        version: LOCK_VERSION,
        recipe_sha256: Sha256Sum::of(recipe_text),
        kernel,
        firmware,
        modules,
        packages,
        files: local_files(recipe)?,
    })
}

fn resolve_deb(
    name: &str,
    version: Option<&str>,
    sha256: Option<&Sha256Sum>,
) -> Result<LockedDeb, BuildError> {
    let deb = apt::resolve(name, version)?;
    if let Some(pinned) = sha256
        && *pinned != deb.sha256
    {
        return Err(BuildError::LockMismatch {
            what: format!("{} {} in the archive", deb.name, deb.version),
            locked: format!("sha256 {pinned} (recipe)"),
            found: format!("sha256 {}", deb.sha256),
            fix: "the archive serves a different .deb under this version; check why before changing the recipe's sha256".into(),
        });
    }
    Ok(deb)
}

/// Modules a dm-verity root needs on top of the recipe's: the device-mapper target, the root
/// filesystem and the virtio disks (all modules in Debian's cloud kernel).
const VERITY_MODULES: &[&str] = &["dm-verity", "squashfs", "virtio_blk"];

/// The kernel modules to ship: the recipe's, plus what its layout needs.
pub(crate) fn module_names(recipe: &Recipe) -> Vec<String> {
    let mut names = recipe.modules.clone();
    if matches!(recipe.layout, snpkit_recipe::Layout::Verity(_)) {
        names.extend(VERITY_MODULES.iter().map(|m| (*m).to_owned()));
    }
    names
}

fn lock_kernel(
    recipe: &Recipe,
    cache: &Cache,
    reporter: &dyn Reporter,
) -> Result<(LockedKernel, Vec<String>), BuildError> {
    match &recipe.kernel {
        KernelSource::Debian(pin) => {
            let deb = resolve_deb(&pin.name, pin.version.as_deref(), pin.sha256.as_ref())?;
            let progress = reporter.step(&format!("fetching {} {}", deb.name, deb.version));
            let bytes = apt::fetch(&deb, cache, &*progress)?;
            progress.set_message(&format!("reading {}", deb.filename));
            let files = kernel::from_deb(&bytes, &deb.filename, &module_names(recipe))?;
            let image = LockedBlob {
                path: format!("boot/vmlinuz-{}", files.release),
                sha256: Sha256Sum::of(&files.vmlinuz),
                size: files.vmlinuz.len() as u64,
            };
            Ok((
                LockedKernel {
                    release: files.release,
                    deb: Some(deb),
                    image,
                },
                files.load_order,
            ))
        }
        KernelSource::Local {
            path,
            sha256,
            modules_dir,
        } => {
            let bytes = read_checked(path, sha256, "kernel.path")?;
            let files = kernel::from_disk(bytes, modules_dir.as_deref(), &module_names(recipe))?;
            let image = LockedBlob {
                path: relative(recipe, path),
                sha256: *sha256,
                size: files.vmlinuz.len() as u64,
            };
            Ok((
                LockedKernel {
                    release: files.release,
                    deb: None,
                    image,
                },
                files.load_order,
            ))
        }
    }
}

fn lock_firmware(
    recipe: &Recipe,
    cache: &Cache,
    reporter: &dyn Reporter,
) -> Result<LockedFirmware, BuildError> {
    match &recipe.firmware {
        FirmwareSource::AmdSev => {
            let src = ovmf::Edk2Source::pinned();
            let progress = reporter.step("building the AmdSev OVMF from the pinned edk2 source");
            let built = ovmf::build(&src, cache, false, &*progress)?;
            Ok(LockedFirmware {
                source: "amdsev".into(),
                edk2_version: Some(src.version),
                edk2_sources: vec![src.orig, src.debian],
                ovmf: LockedBlob {
                    path: "OVMF.fd".into(),
                    sha256: built.sha256,
                    size: built.size,
                },
            })
        }
        FirmwareSource::Local { path, sha256 } => {
            let bytes = read_checked(path, sha256, "firmware.path")?;
            Ok(LockedFirmware {
                source: "local".into(),
                edk2_version: None,
                edk2_sources: Vec::new(),
                ovmf: LockedBlob {
                    path: relative(recipe, path),
                    sha256: *sha256,
                    size: bytes.len() as u64,
                },
            })
        }
    }
}

pub(crate) fn read_checked(
    path: &Path,
    expected: &Sha256Sum,
    key: &str,
) -> Result<Vec<u8>, BuildError> {
    let bytes = std::fs::read(path).map_err(BuildError::io(path))?;
    let found = Sha256Sum::of(&bytes);
    if found != *expected {
        return Err(BuildError::Input(
            snpkit_inputs::InputError::ChecksumMismatch {
                what: format!("{} ({key})", path.display()),
                expected: *expected,
                found,
                fix: format!(
                    "if the new file is intended, put its sha256 in the recipe's {key} entry"
                ),
            },
        ));
    }
    Ok(bytes)
}

/// A path inside the recipe folder, as the lock writes it.
pub(crate) fn relative(recipe: &Recipe, path: &Path) -> String {
    path.strip_prefix(&recipe.dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Every local file the recipe reads, hashed, sorted by path.
pub(crate) fn local_files(recipe: &Recipe) -> Result<Vec<LockedBlob>, BuildError> {
    let mut out = Vec::new();
    let mut add = |path: &Path| -> Result<(), BuildError> {
        let bytes = std::fs::read(path).map_err(BuildError::io(path))?;
        out.push(LockedBlob {
            path: relative(recipe, path),
            sha256: Sha256Sum::of(&bytes),
            size: bytes.len() as u64,
        });
        Ok(())
    };
    for f in &recipe.files {
        add(&f.src)?;
    }
    for a in &recipe.archives {
        add(&a.src)?;
    }
    for d in &recipe.directories {
        for file in walk_files(&d.src)? {
            add(&file)?;
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

/// Regular files under `dir`, recursively (symlinks are recorded in the image, not followed).
pub(crate) fn walk_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, BuildError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(BuildError::io(&d))? {
            let entry = entry.map_err(BuildError::io(&d))?;
            let ft = entry.file_type().map_err(BuildError::io(entry.path()))?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
