//! `cargo xtask lock`: resolving every input a recipe names and pinning it.

use crate::BuildError;
use crate::options::Reporter;
use crate::paths::relative;
use snpkit_bundle::{LaunchSpec, Sha256Sum, files};
use snpkit_image::import::{self, HostKind};
use snpkit_inputs::debian::closure::{Root, closure};
use snpkit_inputs::debian::index::Index;
use snpkit_inputs::{Cache, apt, deb, kernel, ovmf};
use snpkit_recipe::{
    DebPin, FirmwareSource, KernelSource, LOCK_VERSION, LaunchProblem, Lock, LockedBlob, LockedDeb,
    LockedFile, LockedFirmware, LockedKernel, Recipe,
};
use std::path::Path;

/// Resolves the recipe's inputs (downloading and building what is needed, so a lock only names
/// inputs that were really obtained) and returns the lock to write. `check_launch` is the
/// measurement's check of each launch configuration (see [`crate::BuildOptions`]).
pub fn lock(
    recipe: &Recipe,
    recipe_text: &[u8],
    cache: &Cache,
    check_launch: &dyn Fn(&LaunchSpec) -> Result<(), LaunchProblem>,
    reporter: &dyn Reporter,
) -> Result<Lock, BuildError> {
    recipe.check_launch(check_launch)?;
    recipe.check_sources()?;
    crate::overlap::refuse_lock_over_inputs(recipe, &recipe.dir.join(snpkit_recipe::LOCK_FILE))?;
    // Before anything is fetched; again once the kernel release is known.
    snpkit_recipe::check_cmdline(recipe, None)?;
    // The local sources too: a special file or an escaping link stops the lock before any
    // download.
    let files = local_files(recipe)?;
    // The packages and the file tree before the kernel and the firmware: what a recipe's author
    // edits most is judged first, in seconds.
    let mut packages = lock_packages(recipe, reporter)?;
    for deb in &mut packages {
        let progress = reporter.step(&format!("fetching {} {}", deb.name, deb.version));
        let bytes = apt::fetch(deb, cache, &*progress, &recipe.name)?;
        deb.maintainer_scripts = deb::maintainer_scripts(&bytes, &deb.filename)?;
    }
    // The file tree as the build will make it, so what the build would refuse (an include that
    // matches nothing, a missing library, a dangling symlink, a missing entry point or workdir)
    // is refused now and no lock pins it.
    let step = reporter.step("checking the file tree (closed image, entry point)");
    crate::tree::appliance(recipe, &packages, &files, cache, reporter)?;
    drop(step);
    let (kernel, modules) = lock_kernel(recipe, cache, reporter)?;
    snpkit_recipe::check_cmdline(recipe, Some(&kernel.release))?;
    let firmware = lock_firmware(recipe, cache, reporter)?;
    let lock = Lock {
        version: LOCK_VERSION,
        recipe_sha256: Sha256Sum::of(recipe_text),
        kernel,
        firmware,
        modules,
        packages,
        files,
    };
    Ok(lock)
}

/// The recipe's packages, each pinned, then what their `Depends`/`Pre-Depends` pull in from
/// the same archive index (`pulled_by` set), in the order reached.
fn lock_packages(recipe: &Recipe, reporter: &dyn Reporter) -> Result<Vec<LockedDeb>, BuildError> {
    let mut pinned = Vec::new();
    for pin in &recipe.packages {
        pinned.push(resolve_pinned(recipe, pin)?);
    }
    let mut packages: Vec<LockedDeb> = pinned.iter().map(|p| p.deb.clone()).collect();
    // The index is read (60 000 stanzas) only when some entry has something to pull in.
    let wants = |(pin, p): (&DebPin, &apt::Pinned)| {
        pin.dependencies && !(p.depends.trim().is_empty() && p.pre_depends.trim().is_empty())
    };
    if !recipe.packages.iter().zip(&pinned).any(wants) {
        return Ok(packages);
    }
    let step = reporter.step("resolving package dependencies from the archive index");
    let index = Index::from_apt()?;
    let roots: Vec<Root<'_>> = recipe
        .packages
        .iter()
        .zip(&pinned)
        .enumerate()
        .map(|(i, (pin, p))| Root {
            key: format!("packages[{i}]"),
            deb: &p.deb,
            pre_depends: &p.pre_depends,
            depends: &p.depends,
            provides: &p.provides,
            exclude: &pin.exclude,
            dependencies: pin.dependencies,
        })
        .collect();
    for p in closure(&index, &roots)? {
        packages.push(LockedDeb {
            pulled_by: Some(p.pulled_by),
            ..p.deb
        });
    }
    drop(step);
    Ok(packages)
}

/// [`resolve_deb`] with the pinned version's relationship fields.
fn resolve_pinned(recipe: &Recipe, pin: &DebPin) -> Result<apt::Pinned, BuildError> {
    let pinned = apt::resolve_stanza(&pin.name, pin.version.as_deref(), &recipe.name)?;
    check_pin(pin, &pinned.deb)?;
    Ok(pinned)
}

/// The archive's .deb for a recipe's pin, refused if it is not the one the recipe pins.
fn resolve_deb(recipe: &Recipe, pin: &DebPin) -> Result<LockedDeb, BuildError> {
    let deb = apt::resolve(&pin.name, pin.version.as_deref(), &recipe.name)?;
    check_pin(pin, &deb)?;
    Ok(deb)
}

fn check_pin(pin: &DebPin, deb: &LockedDeb) -> Result<(), BuildError> {
    if let Some(pinned) = &pin.sha256
        && *pinned != deb.sha256
    {
        return Err(BuildError::LockMismatch {
            what: format!("{} {} in the archive", deb.name, deb.version),
            locked: format!("sha256 {pinned} (recipe)"),
            found: format!("sha256 {}", deb.sha256),
            fix: "the archive serves a different .deb under this version; check why before changing the recipe's sha256".into(),
        });
    }
    Ok(())
}

/// Modules a dm-verity root needs on top of the recipe's: the device-mapper target, the root
/// filesystem and the virtio disks (all modules in Debian's cloud kernel).
const VERITY_MODULES: &[&str] = &["dm-verity", "squashfs", "virtio_blk"];

/// Modules sealed volumes need on top of the recipe's (dependencies are added): dm-integrity
/// under dm-crypt, AEGIS-128 (the AES-NI version where the CPU has it) and the virtio disk.
const VOLUME_MODULES: &[&str] = &[
    "dm-integrity",
    "dm-crypt",
    "aegis128",
    "aegis128-aesni",
    "virtio_blk",
];

/// Modules a `[network]` needs: the virtio NIC's driver (a module in Debian's cloud kernel;
/// its dependencies `net_failover` and `failover` are added like every module's).
const NETWORK_MODULES: &[&str] = &["virtio_net"];

/// The kernel modules to ship: the recipe's, plus what its layout, volumes and network need.
pub(crate) fn module_names(recipe: &Recipe) -> Vec<String> {
    let mut names = recipe.modules.clone();
    if matches!(recipe.layout, snpkit_recipe::Layout::Verity(_)) {
        names.extend(VERITY_MODULES.iter().map(|m| (*m).to_owned()));
    }
    if !recipe.volumes.is_empty() {
        names.extend(VOLUME_MODULES.iter().map(|m| (*m).to_owned()));
    }
    if recipe.network.is_some() {
        names.extend(NETWORK_MODULES.iter().map(|m| (*m).to_owned()));
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
            let deb = resolve_deb(recipe, pin)?;
            let progress = reporter.step(&format!("fetching {} {}", deb.name, deb.version));
            let bytes = apt::fetch(&deb, cache, &*progress, &recipe.name)?;
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
                    path: files::FIRMWARE.into(),
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
    let max = if key.starts_with("kernel") {
        snpkit_bundle::Limit::KERNEL.max
    } else {
        snpkit_bundle::Limit::FIRMWARE.max
    };
    let bytes = snpkit_fsguard::read(path, key, max)?;
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

/// Every local input the recipe reads, pinned by all of it that reaches the image: bytes, and
/// for what `[[directories]]` copies also the normalised mode, symlink targets and folders (an
/// execute bit or a link changes the image as surely as a byte does). The folders are walked by
/// `import::host_entries`, the walk the build copies with, so lock and build agree on what a
/// folder holds and refuse the same special files.
pub(crate) fn local_files(recipe: &Recipe) -> Result<Vec<LockedFile>, BuildError> {
    let file = |path: &Path, mode: Option<String>| -> Result<LockedFile, BuildError> {
        let bytes = snpkit_fsguard::read(path, "a recipe source", import::MAX_MEMBER)?;
        Ok(LockedFile::File {
            path: relative(recipe, path),
            sha256: Sha256Sum::of(&bytes),
            size: bytes.len() as u64,
            mode,
        })
    };
    let mut out = Vec::new();
    for f in &recipe.files {
        out.push(file(&f.src, None)?);
    }
    for a in &recipe.archives {
        out.push(file(&a.src, None)?);
    }
    for d in &recipe.directories {
        for entry in import::host_entries(&d.src)? {
            out.push(match entry.kind {
                HostKind::Dir => LockedFile::Dir {
                    dir: relative(recipe, &entry.path),
                },
                HostKind::File { host_mode } => {
                    let mode = format!("{:04o}", import::normalised_mode(host_mode));
                    file(&entry.path, Some(mode))?
                }
                HostKind::Symlink { target } => {
                    // The rule the copy applies, so a lock never pins what the build refuses.
                    let link = format!("{}/{}", d.dst.trim_end_matches('/'), entry.rel);
                    if !import::symlink_stays_inside(&link, &target) {
                        return Err(snpkit_image::ImageError::SymlinkEscapes {
                            path: link,
                            target,
                        }
                        .into());
                    }
                    LockedFile::Symlink {
                        symlink: relative(recipe, &entry.path),
                        target,
                    }
                }
            });
        }
    }
    // A path can come twice (a [[files]] source inside a [[directories]] source): keep both
    // views, in a fixed order, and drop only exact repeats.
    let rank = |f: &LockedFile| match f {
        LockedFile::File { mode: None, .. } => 0,
        LockedFile::File { mode: Some(_), .. } => 1,
        LockedFile::Symlink { .. } => 2,
        LockedFile::Dir { .. } => 3,
    };
    out.sort_by(|a, b| (a.path(), rank(a)).cmp(&(b.path(), rank(b))));
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn recipe(dir: &Path) -> Recipe {
        let file = dir.join("app/recipe.toml");
        std::fs::create_dir_all(dir.join("app/tree/bin")).unwrap();
        let text = snpkit_testkit::recipe::app(
            "/opt/app/bin/tool",
            "[[directories]]\nsrc = \"tree\"\ndst = \"/opt/app\"\n",
        );
        std::fs::write(&file, text).unwrap();
        Recipe::load(&file).unwrap()
    }

    #[test]
    fn what_directories_copy_is_pinned_beyond_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let r = recipe(dir.path());
        let tree = dir.path().join("app/tree");
        let tool = tree.join("bin/tool");
        std::fs::write(&tool, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = local_files(&r).unwrap();
        assert!(before.contains(&LockedFile::Dir {
            dir: "tree/bin".into()
        }));

        // The execute bit alone: same bytes, different image.
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exec = local_files(&r).unwrap();
        assert_ne!(exec, before, "a new execute bit must make the lock stale");
        assert!(exec.iter().any(|f| matches!(f,
            LockedFile::File { path, mode: Some(m), .. } if path == "tree/bin/tool" && m == "0755")));
        // A host mode the image does not see (0700 normalises to 0755 too) changes nothing.
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(local_files(&r).unwrap(), exec);

        // A new symlink, then a changed target.
        std::os::unix::fs::symlink("tool", tree.join("bin/sh")).unwrap();
        let linked = local_files(&r).unwrap();
        assert!(linked.contains(&LockedFile::Symlink {
            symlink: "tree/bin/sh".into(),
            target: "tool".into()
        }));
        std::fs::remove_file(tree.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", tree.join("bin/sh")).unwrap();
        assert_ne!(local_files(&r).unwrap(), linked);

        // An empty folder is an entry of the image as well.
        let with_link = local_files(&r).unwrap();
        std::fs::create_dir(tree.join("empty")).unwrap();
        assert_ne!(local_files(&r).unwrap(), with_link);
    }
}
