//! Fetching the kernel and the firmware, each checked against the lock before it is used.

use crate::BuildError;
use crate::check::{mismatch, stale};
use crate::options::{BuildOptions, Reporter};
use crate::paths::relative;
use crate::resolve::{module_names, read_checked};
use snpkit_bundle::{Input, InputKind, Sha256Sum, files};
use snpkit_inputs::{Cache, Progress, apt, kernel, ovmf};
use snpkit_recipe::{DebPin, FirmwareSource, KernelSource, Lock, LockedBlob, LockedDeb, Recipe};

/// The kernel and firmware of an image, checked against the lock, and the inputs they came from
/// (for the manifest, in the order fetched).
pub(crate) struct Fetched {
    pub kernel: kernel::KernelFiles,
    pub firmware: Vec<u8>,
    pub inputs: Vec<Input>,
}

/// The kernel, then the firmware, which must also pass the caller's fitness check.
pub(crate) fn fetch(
    recipe: &Recipe,
    lock: &Lock,
    opts: &BuildOptions<'_>,
) -> Result<Fetched, BuildError> {
    let mut inputs = Vec::new();
    let kernel = fetch_kernel(recipe, lock, opts, &mut inputs)?;
    let firmware = fetch_firmware(recipe, lock, opts, &mut inputs)?;
    (opts.check_firmware)(&firmware).map_err(BuildError::FirmwareUnfit)?;
    Ok(Fetched {
        kernel,
        firmware,
        inputs,
    })
}

fn fetch_kernel(
    recipe: &Recipe,
    lock: &Lock,
    opts: &BuildOptions<'_>,
    inputs: &mut Vec<Input>,
) -> Result<kernel::KernelFiles, BuildError> {
    let files = match (&recipe.kernel, &lock.kernel.deb) {
        (KernelSource::Debian(pin), Some(deb)) => {
            if !is_locked(pin, deb) {
                return Err(stale(
                    recipe,
                    format!(
                        "the kernel package is {} {:?} in the recipe but {} {} in the lock",
                        pin.name, pin.version, deb.name, deb.version
                    ),
                ));
            }
            let (bytes, progress) = fetch_deb(recipe, deb, opts.cache, opts.reporter, inputs)?;
            progress.set_message(&format!("reading {}", deb.filename));
            kernel::from_deb(&bytes, &deb.filename, &module_names(recipe))?
        }
        (
            KernelSource::Local {
                path,
                sha256,
                modules_dir,
            },
            None,
        ) => {
            let bytes = read_checked(path, sha256, "kernel.path")?;
            inputs.push(Input {
                kind: InputKind::File,
                name: relative(recipe, path),
                version: None,
                sha256: *sha256,
                size: bytes.len() as u64,
            });
            kernel::from_disk(bytes, modules_dir.as_deref(), &module_names(recipe))?
        }
        _ => {
            return Err(stale(
                recipe,
                "the kernel source changed kind (package vs path)".into(),
            ));
        }
    };
    check_blob(
        recipe,
        "the kernel image",
        &lock.kernel.image,
        &files.vmlinuz,
    )?;
    if files.release != lock.kernel.release {
        return Err(mismatch(
            recipe,
            "the kernel release",
            &lock.kernel.release,
            &files.release,
        ));
    }
    if files.load_order != lock.modules {
        return Err(stale(
            recipe,
            format!(
                "the module list resolves to {:?}, the lock has {:?}",
                files.load_order, lock.modules
            ),
        ));
    }
    Ok(files)
}

fn fetch_firmware(
    recipe: &Recipe,
    lock: &Lock,
    opts: &BuildOptions<'_>,
    inputs: &mut Vec<Input>,
) -> Result<Vec<u8>, BuildError> {
    let bytes = match &recipe.firmware {
        FirmwareSource::AmdSev => {
            let src = ovmf::Edk2Source::from_lock(&lock.firmware).ok_or_else(|| {
                stale(
                    recipe,
                    "the lock pins no edk2 source for the AmdSev firmware".into(),
                )
            })?;
            let progress = opts
                .reporter
                .step("AmdSev OVMF (cached after the first build)");
            let built = ovmf::build(&src, opts.cache, false, &*progress)?;
            for s in [&src.orig, &src.debian] {
                inputs.push(Input {
                    kind: InputKind::Edk2Source,
                    name: s.path.clone(),
                    version: Some(src.version.clone()),
                    sha256: s.sha256,
                    size: s.size,
                });
            }
            snpkit_fsguard::read(
                &built.path,
                "the built OVMF",
                snpkit_bundle::Limit::FIRMWARE.max,
            )?
        }
        FirmwareSource::Local { path, sha256 } => read_checked(path, sha256, "firmware.path")?,
    };
    if Sha256Sum::of(&bytes) != lock.firmware.ovmf.sha256 {
        return Err(BuildError::LockMismatch {
            what: "the AmdSev OVMF built here".into(),
            locked: lock.firmware.ovmf.sha256.to_string(),
            found: Sha256Sum::of(&bytes).to_string(),
            fix: format!(
                "the firmware did not build reproducibly against the lock: a different compiler (gcc, nasm, \
                 iasl) gives different bytes; compare `cargo xtask ovmf --json` tool versions with the machine \
                 that wrote the lock, or run `cargo xtask lock {}` to pin this build",
                recipe.name
            ),
        });
    }
    inputs.push(Input {
        kind: InputKind::Firmware,
        name: files::FIRMWARE.into(),
        version: lock.firmware.edk2_version.clone(),
        sha256: lock.firmware.ovmf.sha256,
        size: bytes.len() as u64,
    });
    Ok(bytes)
}

/// Whether the lock's package is the one the recipe pins (its name, and its version if pinned).
pub(crate) fn is_locked(pin: &DebPin, deb: &LockedDeb) -> bool {
    pin.name == deb.name && pin.version.as_ref().is_none_or(|v| *v == deb.version)
}

/// Fetches a locked package (`apt::fetch`: from the cache, or downloaded and checked) and records
/// it among `inputs`; returns its bytes and the step's progress, still showing.
pub(crate) fn fetch_deb<'r>(
    recipe: &Recipe,
    deb: &LockedDeb,
    cache: &Cache,
    reporter: &'r dyn Reporter,
    inputs: &mut Vec<Input>,
) -> Result<(Vec<u8>, Box<dyn Progress + 'r>), BuildError> {
    let progress = reporter.step(&format!("fetching {} {}", deb.name, deb.version));
    let bytes = apt::fetch(deb, cache, &*progress, &recipe.name)?;
    inputs.push(Input {
        kind: InputKind::Deb,
        name: deb.name.clone(),
        version: Some(deb.version.clone()),
        sha256: deb.sha256,
        size: deb.size,
    });
    Ok((bytes, progress))
}

fn check_blob(
    recipe: &Recipe,
    what: &str,
    locked: &LockedBlob,
    bytes: &[u8],
) -> Result<(), BuildError> {
    let found = Sha256Sum::of(bytes);
    if found != locked.sha256 {
        return Err(mismatch(
            recipe,
            what,
            &locked.sha256.to_string(),
            &found.to_string(),
        ));
    }
    Ok(())
}
