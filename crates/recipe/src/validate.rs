//! Validation: [`RawRecipe`] as TOML spelled it becomes a [`Recipe`] whose every field has
//! been checked, or an error naming the file, the key and the fix. The checks run in the order
//! of the file's keys, so the first problem reported is the first one a reader meets.

use crate::model::{
    ArchiveSpec, DebPin, DirSpec, FileSpec, FirmwareSource, KernelSource, Layout, Recipe,
    SymlinkSpec, VeritySpec,
};
use crate::raw::{
    RawArchive, RawDir, RawFile, RawFirmware, RawKernel, RawPackage, RawRecipe, RawSymlink,
    RawVerity,
};
use crate::verity::{self, BootCheck, Corruption, HashAlgorithm, RootFilesystem};
use crate::{LaunchSpec, RecipeError, Sha256Sum};
use crate::{cmdline, volumes};
use snpkit_bundle::MAX_VCPUS;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The recipe's pinned default for SOURCE_DATE_EPOCH when it names none: 2025-01-01T00:00:00Z.
const DEFAULT_EPOCH: i64 = 1_735_689_600;

/// Checks `raw`, read from `file` (for messages and for resolving relative paths; not read here).
pub(crate) fn recipe(raw: RawRecipe, file: &Path) -> Result<Recipe, RecipeError> {
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let v = Validator { file };

    let name = v.name(&raw.name)?;
    let layout = v.layout(&raw, &name)?;
    let source_date_epoch = v.source_date_epoch(raw.source_date_epoch)?;
    let kernel = v.kernel(&raw.kernel, &dir)?;
    let firmware = v.firmware(&raw.firmware, &dir)?;
    let hardened = raw.hardened.unwrap_or(true);
    cmdline::check_template(&raw.cmdline, file)?;
    v.modules(&raw.modules)?;
    let packages = v.packages(&raw.packages)?;
    let files = v.files(&raw.files, &dir)?;
    let directories = v.directories(&raw.directories, &dir)?;
    let archives = v.archives(&raw.archives, &dir)?;
    let symlinks = v.symlinks(&raw.symlinks)?;
    let entry = crate::entry::check(file, &raw.entry, &|key, s| v.abs_path(key, s))?;
    v.launch(&raw.launch)?;
    let identity = raw
        .identity
        .as_ref()
        .map(|i| crate::identity::identity(i, file))
        .transpose()?;
    let volumes = volumes::check(file, &raw.volumes, &|key, s| v.abs_path(key, s))?;
    let secrets = crate::secrets::check(file, &raw.secrets)?;
    let network = raw
        .network
        .as_ref()
        .map(|n| crate::network::check(file, n))
        .transpose()?;

    Ok(Recipe {
        dir,
        file: file.to_owned(),
        name,
        description: raw.description,
        layout,
        source_date_epoch,
        hardened,
        kernel,
        firmware,
        cmdline: raw.cmdline,
        modules: raw.modules,
        packages,
        files,
        directories,
        archives,
        symlinks,
        entry,
        vars: raw.vars,
        launch: raw.launch,
        identity,
        volumes,
        secrets,
        network,
    })
}

struct Validator<'a> {
    file: &'a Path,
}

impl Validator<'_> {
    fn err(
        &self,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> RecipeError {
        RecipeError::invalid(self.file, key, problem, fix)
    }

    fn layout(&self, raw: &RawRecipe, name: &str) -> Result<Layout, RecipeError> {
        match raw.layout.as_deref().unwrap_or("initramfs") {
            "initramfs" => {
                if raw.verity.is_some() {
                    return Err(self.err(
                        "verity",
                        "a [verity] table in an initramfs recipe",
                        "set layout = \"verity\" or remove [verity]",
                    ));
                }
                Ok(Layout::Initramfs)
            }
            "verity" => Ok(Layout::Verity(self.verity(raw.verity.as_ref(), name)?)),
            other => Err(self.err(
                "layout",
                format!("unknown layout {other:?}"),
                "use \"initramfs\" (everything in the measured initrd) or \"verity\" (dm-verity root)",
            )),
        }
    }

    fn source_date_epoch(&self, raw: Option<i64>) -> Result<i64, RecipeError> {
        let source_date_epoch = raw.unwrap_or(DEFAULT_EPOCH);
        if source_date_epoch < 0 {
            return Err(self.err(
                "source_date_epoch",
                "negative timestamp",
                "use seconds since 1970-01-01 UTC",
            ));
        }
        Ok(source_date_epoch)
    }

    fn modules(&self, modules: &[String]) -> Result<(), RecipeError> {
        for (i, m) in modules.iter().enumerate() {
            if m.is_empty() || m.contains('/') || m.ends_with(".ko") {
                return Err(self.err(
                    format!("modules[{i}]"),
                    format!("{m:?} is not a module name"),
                    "write the name modprobe uses, e.g. \"sev-guest\"",
                ));
            }
        }
        Ok(())
    }

    fn packages(&self, packages: &[RawPackage]) -> Result<Vec<DebPin>, RecipeError> {
        packages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let key = format!("packages[{i}]");
                let pin = self.deb(&key, &p.name, p.version.as_deref(), p.sha256.as_deref())?;
                let include = p
                    .include
                    .iter()
                    .enumerate()
                    .map(|(j, s)| self.abs_path(&format!("{key}.include[{j}]"), s))
                    .collect::<Result<_, _>>()?;
                let exclude = p
                    .exclude
                    .iter()
                    .enumerate()
                    .map(|(j, e)| {
                        self.package_name(&format!("{key}.exclude[{j}]"), e)
                            .map(|()| e.clone())
                    })
                    .collect::<Result<_, _>>()?;
                let dependencies = p.dependencies.unwrap_or(true);
                if !dependencies && !p.exclude.is_empty() {
                    return Err(self.err(
                        format!("{key}.exclude"),
                        "an exclude list on a package without dependencies",
                        "remove exclude (nothing is pulled in with dependencies = false), or drop dependencies = false",
                    ));
                }
                Ok(DebPin {
                    include,
                    exclude,
                    dependencies,
                    ..pin
                })
            })
            .collect()
    }

    fn files(&self, files: &[RawFile], dir: &Path) -> Result<Vec<FileSpec>, RecipeError> {
        files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mode = f.mode.unwrap_or(0o644);
                if mode > 0o7777 {
                    return Err(self.err(
                        format!("files[{i}].mode"),
                        format!("{mode:#o} is not a permission mode"),
                        "write an octal mode such as 0o755",
                    ));
                }
                Ok(FileSpec {
                    src: self.src(&format!("files[{i}].src"), &f.src, dir)?,
                    dst: self.abs_path(&format!("files[{i}].dst"), &f.dst)?,
                    mode,
                })
            })
            .collect()
    }

    fn directories(&self, dirs: &[RawDir], dir: &Path) -> Result<Vec<DirSpec>, RecipeError> {
        dirs.iter()
            .enumerate()
            .map(|(i, d)| {
                Ok(DirSpec {
                    src: self.src(&format!("directories[{i}].src"), &d.src, dir)?,
                    dst: self.abs_path(&format!("directories[{i}].dst"), &d.dst)?,
                })
            })
            .collect()
    }

    fn archives(
        &self,
        archives: &[RawArchive],
        dir: &Path,
    ) -> Result<Vec<ArchiveSpec>, RecipeError> {
        archives
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Ok(ArchiveSpec {
                    src: self.src(&format!("archives[{i}].src"), &a.src, dir)?,
                    dst: self.abs_path(&format!("archives[{i}].dst"), &a.dst)?,
                })
            })
            .collect()
    }

    fn symlinks(&self, symlinks: &[RawSymlink]) -> Result<Vec<SymlinkSpec>, RecipeError> {
        symlinks
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if s.target.is_empty() || s.target.contains('\0') {
                    return Err(self.err(
                        format!("symlinks[{i}].target"),
                        "empty or contains NUL",
                        "give the link's target path",
                    ));
                }
                Ok(SymlinkSpec {
                    path: self.abs_path(&format!("symlinks[{i}].path"), &s.path)?,
                    target: s.target.clone(),
                })
            })
            .collect()
    }

    fn name(&self, name: &str) -> Result<String, RecipeError> {
        // The image folder's rule, so every command that takes a name agrees with this one.
        if snpkit_bundle::check_recipe_name(name).is_err() {
            return Err(self.err(
                "name",
                format!("{name:?} is not a valid recipe name"),
                "use 1-64 lowercase letters, digits, '-' or '_' (it becomes a folder name under images/)",
            ));
        }
        let folder = self
            .file
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str());
        if let Some(folder) = folder
            && folder != name
        {
            return Err(self.err(
                "name",
                format!("the recipe is called {name:?} but lives in recipes/{folder}/"),
                format!("rename the folder or set name = {folder:?}"),
            ));
        }
        Ok(name.to_owned())
    }

    fn sha256(&self, key: &str, value: &str) -> Result<Sha256Sum, RecipeError> {
        value.parse().map_err(|e: snpkit_bundle::BadSha256| {
            self.err(
                key,
                e.to_string(),
                "write the file's `sha256sum` (64 lowercase hex digits)",
            )
        })
    }

    fn deb(
        &self,
        key: &str,
        name: &str,
        version: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<DebPin, RecipeError> {
        self.package_name(&format!("{key}.name"), name)?;
        if let Some(version) = version
            && (version.is_empty()
                || version.contains(char::is_whitespace)
                || version.contains('='))
        {
            return Err(self.err(
                format!("{key}.version"),
                format!("{version:?} is not a Debian version"),
                "copy the Version line of `apt-cache show`",
            ));
        }
        let sha256 = sha256
            .map(|s| self.sha256(&format!("{key}.sha256"), s))
            .transpose()?;
        if sha256.is_some() && version.is_none() {
            return Err(self.err(
                format!("{key}.sha256"),
                "a checksum without a version",
                "pin the version too (a checksum only names one version's .deb), or drop both and let `cargo xtask lock` pin them",
            ));
        }
        Ok(DebPin {
            name: name.to_owned(),
            version: version.map(str::to_owned),
            sha256,
            include: Vec::new(),
            exclude: Vec::new(),
            dependencies: false,
        })
    }

    fn package_name(&self, key: &str, name: &str) -> Result<(), RecipeError> {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
        if !valid_name {
            return Err(self.err(
                key,
                format!("{name:?} is not a Debian package name"),
                "use the name `apt-cache show` prints",
            ));
        }
        Ok(())
    }

    fn kernel(&self, k: &RawKernel, dir: &Path) -> Result<KernelSource, RecipeError> {
        match (&k.package, &k.path) {
            (Some(package), None) => {
                if k.modules_dir.is_some() {
                    return Err(self.err("kernel.modules_dir", "only for a local kernel", "remove it: a kernel package brings its own modules"));
                }
                Ok(KernelSource::Debian(self.deb("kernel", package, k.version.as_deref(), k.sha256.as_deref())?))
            }
            (None, Some(path)) => {
                if k.version.is_some() {
                    return Err(self.err("kernel.version", "only for a kernel package", "remove it, or use package = … instead of path"));
                }
                let Some(sha) = &k.sha256 else {
                    return Err(self.err("kernel.sha256", "missing for a local kernel", "add sha256 = \"<sha256sum of the file>\""));
                };
                Ok(KernelSource::Local {
                    path: self.src("kernel.path", path, dir)?,
                    sha256: self.sha256("kernel.sha256", sha)?,
                    modules_dir: k.modules_dir.as_deref().map(|m| self.src("kernel.modules_dir", m, dir)).transpose()?,
                })
            }
            _ => Err(self.err(
                "kernel",
                "needs exactly one of `package` (a Debian kernel package) or `path` (a local bzImage)",
                "e.g. package = \"linux-image-6.12.95+deb12-cloud-amd64\"",
            )),
        }
    }

    fn firmware(&self, f: &RawFirmware, dir: &Path) -> Result<FirmwareSource, RecipeError> {
        match (f.source.as_deref(), &f.path) {
            (Some("amdsev"), None) => {
                if f.sha256.is_some() {
                    return Err(self.err(
                        "firmware.sha256",
                        "the AmdSev build is pinned in recipe.lock",
                        "remove sha256",
                    ));
                }
                Ok(FirmwareSource::AmdSev)
            }
            (Some(other), None) => Err(self.err(
                "firmware.source",
                format!("unknown firmware source {other:?}"),
                "use source = \"amdsev\" (built by `cargo xtask ovmf`) or path = \"…\" with sha256",
            )),
            (None, Some(path)) => {
                let Some(sha) = &f.sha256 else {
                    return Err(self.err(
                        "firmware.sha256",
                        "missing for a local firmware",
                        "add sha256 = \"<sha256sum of the file>\"",
                    ));
                };
                Ok(FirmwareSource::Local {
                    path: self.src("firmware.path", path, dir)?,
                    sha256: self.sha256("firmware.sha256", sha)?,
                })
            }
            _ => Err(self.err(
                "firmware",
                "needs exactly one of `source = \"amdsev\"` or `path`",
                "use source = \"amdsev\" unless you bring your own AmdSev OVMF",
            )),
        }
    }

    /// A source path relative to the recipe folder; it must stay inside it so that a recipe
    /// folder is self-contained and reproducible elsewhere.
    fn src(&self, key: &str, s: &str, dir: &Path) -> Result<PathBuf, RecipeError> {
        let p = Path::new(s);
        if s.is_empty()
            || p.is_absolute()
            || p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(self.err(
                key,
                format!("{s:?} must be a relative path inside the recipe folder"),
                "copy the file into recipes/<name>/ and name it relative to recipe.toml",
            ));
        }
        Ok(dir.join(p))
    }

    /// A path inside the image: absolute, normalised, no `.`/`..`, no NUL.
    fn abs_path(&self, key: &str, s: &str) -> Result<String, RecipeError> {
        let bad = !s.starts_with('/')
            || s.contains('\0')
            || s.split('/').skip(1).any(|c| c == "." || c == "..")
            || (s.len() > 1 && (s.ends_with('/') || s.contains("//")));
        if bad {
            return Err(self.err(
                key,
                format!("{s:?} is not a normalised absolute path"),
                "write it like /usr/bin/hello",
            ));
        }
        Ok(s.to_owned())
    }

    fn verity(&self, raw: Option<&RawVerity>, name: &str) -> Result<VeritySpec, RecipeError> {
        fn pick<T: Copy + PartialEq>(
            v: &Validator<'_>,
            key: &str,
            value: Option<&str>,
            default: T,
            all: &[T],
            name: fn(T) -> &'static str,
        ) -> Result<T, RecipeError> {
            let Some(value) = value else {
                return Ok(default);
            };
            verity::from_name(all, name, value).ok_or_else(|| {
                v.err(
                    format!("verity.{key}"),
                    format!("{value:?} is not supported"),
                    format!("use one of: {}", verity::spellings(all, name, default)),
                )
            })
        }
        let block = |key: &str, value: Option<u32>| -> Result<u32, RecipeError> {
            let value = value.unwrap_or(4096);
            if value.is_power_of_two() && (512..=4096).contains(&value) {
                Ok(value)
            } else {
                Err(self.err(
                    format!("verity.{key}"),
                    format!("{value} is not a block size dm-verity accepts"),
                    "use a power of two from 512 to 4096",
                ))
            }
        };
        let get = |f: fn(&RawVerity) -> Option<&str>| raw.and_then(f);
        Ok(VeritySpec {
            filesystem: pick(
                self,
                "filesystem",
                get(|r| r.filesystem.as_deref()),
                RootFilesystem::Squashfs,
                &RootFilesystem::ALL,
                RootFilesystem::name,
            )?,
            hash: pick(
                self,
                "hash",
                get(|r| r.hash.as_deref()),
                HashAlgorithm::Sha256,
                &HashAlgorithm::ALL,
                HashAlgorithm::name,
            )?,
            data_block_size: block("data_block_size", raw.and_then(|r| r.data_block_size))?,
            hash_block_size: block("hash_block_size", raw.and_then(|r| r.hash_block_size))?,
            on_corruption: pick(
                self,
                "on_corruption",
                get(|r| r.on_corruption.as_deref()),
                Corruption::Panic,
                &Corruption::ALL,
                Corruption::name,
            )?,
            check: pick(
                self,
                "check",
                get(|r| r.check.as_deref()),
                BootCheck::Full,
                &BootCheck::ALL,
                BootCheck::name,
            )?,
            seed: raw
                .and_then(|r| r.seed.clone())
                .unwrap_or_else(|| name.to_owned()),
        })
    }

    fn launch(&self, configs: &[LaunchSpec]) -> Result<(), RecipeError> {
        if configs.is_empty() {
            return Err(self.err(
                "launch",
                "no launch configuration",
                "add a [[launch]] table (name, vcpus, vcpu_type, vmm, guest_features, policy, memory_mib)",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in configs.iter().enumerate() {
            let key = |field: &str| format!("launch[{i}].{field}");
            if !seen.insert(c.name.as_str()) {
                return Err(self.err(
                    key("name"),
                    format!("{:?} is used twice", c.name),
                    "give every launch configuration its own name",
                ));
            }
            if c.name.is_empty()
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(self.err(
                    key("name"),
                    format!("{:?} is not a valid name", c.name),
                    "use letters, digits, '-', '_' or '.'",
                ));
            }
            if c.vcpus == 0 || c.vcpus > MAX_VCPUS {
                return Err(self.err(
                    key("vcpus"),
                    format!("{} vCPUs", c.vcpus),
                    format!("use 1 to {MAX_VCPUS}"),
                ));
            }
            // Bit 17 is reserved and must be 1; the PSP refuses a launch without it.
            if c.policy & (1 << 17) == 0 {
                return Err(self.err(
                    key("policy"),
                    format!("{:#x} has reserved bit 17 clear", c.policy),
                    "set bit 17, e.g. policy = 0x30000",
                ));
            }
            if c.policy & (1 << 19) != 0 {
                return Err(self.err(
                    key("policy"),
                    format!(
                        "{:#x} allows DEBUG (bit 19): the host could read and change guest memory",
                        c.policy
                    ),
                    "clear bit 19 (e.g. 0x30000); a debug guest's attestation proves nothing",
                ));
            }
            if c.memory_mib < 256 {
                return Err(self.err(
                    key("memory_mib"),
                    format!("{} MiB is too little for OVMF and Linux", c.memory_mib),
                    "use at least 256",
                ));
            }
        }
        Ok(())
    }
}
