//! `cargo xtask build`: every input checked against the lock, the tree assembled, the image written.

use crate::entry::check_entry;
use crate::output::write_image_dir;
use crate::packages::add_packages;
use crate::resolve::{local_files, module_names, read_checked, relative};
use crate::{BuildError, Reporter};
use snpkit_image::manifest::{Artifact, Input, MANIFEST_FILE, MANIFEST_SCHEMA, Manifest, files};
use snpkit_image::{Tree, cpio, gzip, import, rootfs};
use snpkit_inputs::{Cache, apt, kernel, ovmf};
use snpkit_recipe::sources::MAX_SOURCE_FILE;
use snpkit_recipe::{
    CmdlineContext, FirmwareSource, KernelSource, LaunchConfig, LaunchProblem, Layout, Lock,
    LockedBlob, LockedFile, Recipe, Sha256Sum, VerityContext, VeritySpec, render_cmdline,
};
use snpkit_wire::init::{Entry, INIT_CONFIG_PATH, INIT_SCHEMA, InitConfig, Root};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct BuildOptions<'a> {
    /// Where image folders go (`<workspace>/images`).
    pub images_dir: &'a Path,
    pub cache: &'a Cache,
    /// The static guest `/init` binary.
    pub guest_init: &'a [u8],
    /// `SOURCE_DATE_EPOCH` from the environment, if set: it overrides the recipe's epoch.
    pub source_date_epoch: Option<&'a str>,
    /// Versions of the tools whose output lands in the image, for the manifest.
    pub tools: BTreeMap<String, String>,
    /// Checks the firmware before it is used; returns why it is unfit. Measured direct boot
    /// needs an AmdSev OVMF with an SNP_KERNEL_HASHES section (the measure crate knows how to
    /// look; this crate does not).
    pub check_firmware: &'a dyn Fn(&[u8]) -> Result<(), String>,
    /// Checks a launch configuration the way the measurement will read it (CPU model, VMM,
    /// guest features): this crate does not know those lists, and a build whose launch
    /// configurations cannot be measured should stop before it fetches anything.
    pub check_launch: &'a dyn Fn(&LaunchConfig) -> Result<(), LaunchProblem>,
    pub reporter: &'a dyn Reporter,
}

#[derive(Debug)]
pub struct BuiltImage {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Paths our `/init` owns inside every image.
const RESERVED: &[&str] = &["init", "etc/snpkit"];

pub fn build(
    recipe: &Recipe,
    recipe_text: &[u8],
    opts: &BuildOptions<'_>,
) -> Result<BuiltImage, BuildError> {
    recipe.check_launch(opts.check_launch)?;
    recipe.check_sources()?;
    crate::overlap::refuse_image_over_recipe(opts.images_dir, recipe)?;
    let lock_path = recipe.dir.join(snpkit_recipe::LOCK_FILE);
    let lock = Lock::read(&lock_path, &recipe.name)?;
    lock.check_fresh(recipe_text, &lock_path, &recipe.name)?;
    snpkit_recipe::check_cmdline(recipe, Some(&lock.kernel.release))?;
    check_local_files(recipe, &lock, &lock_path)?;
    let epoch = epoch(recipe, opts.source_date_epoch)?;

    let mut inputs = Vec::new();
    let kernel = fetch_kernel(recipe, &lock, opts, &mut inputs)?;
    let firmware = fetch_firmware(recipe, &lock, opts, &mut inputs)?;
    (opts.check_firmware)(&firmware).map_err(|why| BuildError::LockMismatch {
        what: "the firmware".into(),
        locked: "an AmdSev OVMF that binds kernel, initrd and cmdline".into(),
        found: why,
        fix: "use firmware.source = \"amdsev\" (built by `cargo xtask ovmf`)".into(),
    })?;

    let step = opts.reporter.step("assembling the file tree");
    let mut tree = Tree::new();
    base_dirs(&mut tree)?;
    add_packages(recipe, &lock, opts, &mut tree, &mut inputs)?;
    for a in &recipe.archives {
        let bytes = snpkit_fsguard::read(&a.src, "an archive", MAX_SOURCE_FILE)?;
        import::add_tar(&mut tree, &bytes, &a.dst, &relative(recipe, &a.src))?;
    }
    for d in &recipe.directories {
        import::add_host_dir(&mut tree, &d.src, &d.dst)?;
    }
    for f in &recipe.files {
        let bytes = snpkit_fsguard::read(&f.src, "a file", MAX_SOURCE_FILE)?;
        tree.add_file(&f.dst, bytes, f.mode)?;
    }
    for s in &recipe.symlinks {
        tree.add_symlink(&s.path, &s.target)?;
    }
    for (path, _) in tree.iter() {
        if let Some(r) = RESERVED
            .iter()
            .find(|r| path == **r || path.starts_with(&format!("{r}/")))
        {
            return Err(BuildError::Reserved {
                path: format!("/{path}"),
                why: format!("/{r} belongs to snpkit's init"),
            });
        }
    }
    check_entry(recipe, &tree)?;
    for f in &lock.files {
        // Symlinks and folders are entries of the initramfs; the manifest lists bytes.
        if let LockedFile::File {
            path, sha256, size, ..
        } = f
        {
            inputs.push(Input {
                kind: "file".into(),
                name: path.clone(),
                version: None,
                sha256: *sha256,
                size: *size,
            });
        }
    }

    // Initramfs layout: the appliance is the initramfs. Verity layout: the appliance becomes a
    // squashfs root with a dm-verity tree, and the initramfs holds only what /init needs.
    let (mut initramfs, root, verity) = match &recipe.layout {
        Layout::Initramfs => (tree, Root::Initramfs, None),
        Layout::Verity(spec) => {
            step.set_message(&format!(
                "writing the squashfs root ({} entries)",
                tree.len()
            ));
            let rootfs = rootfs::squashfs(&tree, epoch, u64::from(spec.data_block_size))?;
            step.set_message("hashing the dm-verity tree");
            let built = verity_tree(&rootfs, spec)?;
            let mut small = Tree::new();
            base_dirs(&mut small)?;
            let root = Root::Verity {
                fstype: spec.filesystem.name().to_owned(),
                data_device: "/dev/vda".into(),
                hash_device: "/dev/vdb".into(),
            };
            (small, root, Some((rootfs, built)))
        }
    };

    let module_root = format!("lib/modules/{}", kernel.release);
    let mut module_paths = Vec::new();
    for rel in &kernel.load_order {
        let data = kernel
            .modules
            .get(rel)
            .cloned()
            .ok_or_else(|| BuildError::ModuleMissing {
                release: kernel.release.clone(),
                module: rel.clone(),
                recipe: recipe.name.clone(),
            })?;
        let path = format!("{module_root}/{rel}");
        inputs.push(Input {
            kind: "kernel-module".into(),
            name: rel.clone(),
            version: None,
            sha256: Sha256Sum::of(&data),
            size: data.len() as u64,
        });
        initramfs.add_file(&path, data, 0o644)?;
        module_paths.push(format!("/{path}"));
    }
    let init_config = InitConfig {
        schema: INIT_SCHEMA,
        appliance: recipe.name.clone(),
        entry: Entry {
            argv: recipe.entry.argv.clone(),
            env: recipe.entry.env.clone(),
        },
        modules: module_paths,
        root,
    };
    let mut init_json = serde_json::to_vec_pretty(&init_config).map_err(BuildError::InitConfig)?;
    init_json.push(b'\n');
    initramfs.add_file(INIT_CONFIG_PATH, init_json, 0o644)?;
    initramfs.add_file("/init", opts.guest_init.to_vec(), 0o755)?;
    inputs.push(Input {
        kind: "guest-init".into(),
        name: "snpkit-init".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        sha256: Sha256Sum::of(opts.guest_init),
        size: opts.guest_init.len() as u64,
    });
    step.set_message(&format!(
        "writing the initramfs ({} entries, {} MB)",
        initramfs.len(),
        initramfs.file_bytes() / 1_000_000
    ));
    let mut cpio_bytes =
        Vec::with_capacity(initramfs.file_bytes() as usize + initramfs.len() * 256);
    cpio::write_newc(&initramfs, epoch, &mut cpio_bytes)?;
    step.set_message("compressing the initramfs");
    let initrd = gzip::gzip(&cpio_bytes, gzip::LEVEL)?;
    drop(step);

    let ctx = CmdlineContext {
        name: recipe.name.clone(),
        layout: if verity.is_some() {
            "verity"
        } else {
            "initramfs"
        },
        kernel_release: kernel.release.clone(),
        vars: recipe.vars.clone(),
        verity: verity.as_ref().map(|(_, v)| VerityContext {
            arg: v.arg.clone(),
            root_hash: v.manifest["root_hash"].clone(),
            salt: v.manifest["salt"].clone(),
        }),
    };
    let cmdline = render_cmdline(recipe, &ctx)?;

    let mut out_files: Vec<(&str, &[u8])> = vec![
        (files::KERNEL, &kernel.vmlinuz),
        (files::INITRD, &initrd),
        (files::CMDLINE, cmdline.as_bytes()),
        (files::FIRMWARE, &firmware),
    ];
    if let Some((rootfs, v)) = &verity {
        out_files.push((files::ROOTFS, rootfs));
        out_files.push((files::VERITY, &v.hash_device));
    }
    let mut tools = opts.tools.clone();
    tools.insert("snpkit".into(), env!("CARGO_PKG_VERSION").into());
    tools.insert(
        "initramfs".into(),
        format!(
            "cpio newc (cpio crate), gzip level {} (flate2 zlib-rs, 1 MiB chunks)",
            gzip::LEVEL
        ),
    );
    if verity.is_some() {
        tools.insert(
            "rootfs".into(),
            "squashfs xz (backhand), dm-verity tree (snpkit)".into(),
        );
    }
    if let Some(v) = &lock.firmware.edk2_version {
        tools.insert(
            "edk2".into(),
            format!("Debian edk2 {v}, OvmfPkg/AmdSev/AmdSevX64.dsc RELEASE GCC5"),
        );
    }
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        recipe: recipe.name.clone(),
        layout: ctx.layout.into(),
        source_date_epoch: i64::from(epoch),
        kernel_release: kernel.release.clone(),
        cmdline: cmdline.clone(),
        artifacts: out_files.iter().map(|(n, b)| Artifact::of(n, b)).collect(),
        inputs,
        tools,
        launch: recipe.launch.clone(),
        verity: verity.as_ref().map(|(_, v)| v.manifest.clone()),
    };
    let manifest_json = manifest.to_json();
    let mut all = out_files;
    all.push((MANIFEST_FILE, manifest_json.as_bytes()));
    let dir = write_image_dir(opts.images_dir, &recipe.name, &all)?;
    Ok(BuiltImage { dir, manifest })
}

/// A dm-verity tree over the root filesystem, with everything the command line and the manifest
/// say about it.
struct VerityBuilt {
    hash_device: Vec<u8>,
    /// The `snpkit.verity=` token.
    arg: String,
    manifest: BTreeMap<String, String>,
}

fn verity_tree(rootfs: &[u8], spec: &VeritySpec) -> Result<VerityBuilt, BuildError> {
    use snpkit_image::verity::{
        self, BlockSize, Superblock, VerityOptions, salt_from_seed, uuid_from_seed,
    };
    let bad = |what: &str, e: &dyn std::fmt::Display| BuildError::Verity(format!("{what}: {e}"));
    let salt = salt_from_seed(&spec.seed, "salt");
    let uuid = uuid_from_seed(&spec.seed, "uuid");
    let mut options = VerityOptions::new(salt, uuid);
    // No superblock: the kernel never reads it (every parameter is on the measured command line),
    // so a changed superblock byte would go unnoticed; without one, every byte of the hash device
    // is part of the tree and checked.
    options.superblock = Superblock::None;
    options.tree.hash = spec.hash;
    options.tree.data_block_size =
        BlockSize::new(spec.data_block_size).map_err(|e| bad("data block size", &e))?;
    options.tree.hash_block_size =
        BlockSize::new(spec.hash_block_size).map_err(|e| bad("hash block size", &e))?;
    let formatted = verity::format(rootfs, &options).map_err(|e| bad("hash tree", &e))?;
    let params = formatted
        .kernel_params(spec.on_corruption, spec.check)
        .map_err(|e| bad("parameters", &e))?;
    let mut manifest = BTreeMap::new();
    manifest.insert("filesystem".into(), spec.filesystem.name().into());
    manifest.insert("hash".into(), spec.hash.name().into());
    manifest.insert("root_hash".into(), hex::encode(&formatted.root_hash));
    manifest.insert("salt".into(), hex::encode(options.tree.salt.as_bytes()));
    manifest.insert("data_block_size".into(), spec.data_block_size.to_string());
    manifest.insert("hash_block_size".into(), spec.hash_block_size.to_string());
    manifest.insert("data_blocks".into(), formatted.data_blocks.to_string());
    manifest.insert(
        "hash_start_block".into(),
        formatted.hash_start_block.to_string(),
    );
    manifest.insert("on_corruption".into(), spec.on_corruption.name().into());
    manifest.insert("check".into(), spec.check.name().into());
    Ok(VerityBuilt {
        hash_device: formatted.hash_area,
        arg: params.to_cmdline_arg(),
        manifest,
    })
}

fn epoch(recipe: &Recipe, env: Option<&str>) -> Result<u32, BuildError> {
    let value = match env {
        Some(s) => s.trim().parse::<i64>().map_err(|e| BuildError::BadEpoch {
            value: s.to_owned(),
            why: e.to_string(),
        })?,
        None => recipe.source_date_epoch,
    };
    // newc stores mtimes as 32-bit unsigned seconds.
    u32::try_from(value).map_err(|_| BuildError::BadEpoch {
        value: value.to_string(),
        why: "cpio newc stores times from 1970 to 2106 only".into(),
    })
}

/// Every local file must still be what the lock says: a changed file is a changed input.
fn check_local_files(recipe: &Recipe, lock: &Lock, lock_path: &Path) -> Result<(), BuildError> {
    let now = local_files(recipe)?;
    if now != lock.files {
        let mut changed: Vec<&str> = now
            .iter()
            .filter(|f| !lock.files.contains(f))
            .map(LockedFile::path)
            .chain(
                lock.files
                    .iter()
                    .filter(|f| !now.iter().any(|n| n.path() == f.path()))
                    .map(LockedFile::path),
            )
            .collect();
        changed.sort_unstable();
        changed.dedup();
        let changed = changed.join(", ");
        return Err(snpkit_recipe::RecipeError::LockStale {
            recipe: recipe.name.clone(),
            path: lock_path.to_owned(),
            what: format!("local files changed since the lock was written: {changed}"),
        }
        .into());
    }
    Ok(())
}

fn base_dirs(tree: &mut Tree) -> Result<(), BuildError> {
    for (dir, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("etc", 0o755),
    ] {
        tree.add_dir(dir, mode)?;
    }
    // The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
    tree.add_char_device("dev/console", 5, 1, 0o600)?;
    Ok(())
}

fn fetch_kernel(
    recipe: &Recipe,
    lock: &Lock,
    opts: &BuildOptions<'_>,
    inputs: &mut Vec<Input>,
) -> Result<kernel::KernelFiles, BuildError> {
    let files = match (&recipe.kernel, &lock.kernel.deb) {
        (KernelSource::Debian(pin), Some(deb)) => {
            if pin.name != deb.name || pin.version.as_ref().is_some_and(|v| *v != deb.version) {
                return Err(stale(
                    recipe,
                    format!(
                        "the kernel package is {} {:?} in the recipe but {} {} in the lock",
                        pin.name, pin.version, deb.name, deb.version
                    ),
                ));
            }
            let progress = opts
                .reporter
                .step(&format!("fetching {} {}", deb.name, deb.version));
            let bytes = apt::fetch(deb, opts.cache, &*progress, &recipe.name)?;
            progress.set_message(&format!("reading {}", deb.filename));
            inputs.push(Input {
                kind: "deb".into(),
                name: deb.name.clone(),
                version: Some(deb.version.clone()),
                sha256: deb.sha256,
                size: deb.size,
            });
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
                kind: "file".into(),
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
                    kind: "edk2-source".into(),
                    name: s.path.clone(),
                    version: Some(src.version.clone()),
                    sha256: s.sha256,
                    size: s.size,
                });
            }
            snpkit_fsguard::read(
                &built.path,
                "the built OVMF",
                snpkit_recipe::sources::MAX_FIRMWARE_FILE,
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
        kind: "firmware".into(),
        name: files::FIRMWARE.into(),
        version: lock.firmware.edk2_version.clone(),
        sha256: lock.firmware.ovmf.sha256,
        size: bytes.len() as u64,
    });
    Ok(bytes)
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

fn mismatch(recipe: &Recipe, what: &str, locked: &str, found: &str) -> BuildError {
    BuildError::LockMismatch {
        what: what.to_owned(),
        locked: locked.to_owned(),
        found: found.to_owned(),
        fix: format!(
            "an input changed under the same pin; find out why before running `cargo xtask lock {}`",
            recipe.name
        ),
    }
}

pub(crate) fn stale(recipe: &Recipe, what: String) -> BuildError {
    snpkit_recipe::RecipeError::LockStale {
        recipe: recipe.name.clone(),
        path: recipe.dir.join(snpkit_recipe::LOCK_FILE),
        what,
    }
    .into()
}
