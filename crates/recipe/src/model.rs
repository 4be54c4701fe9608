//! The checked recipe. Every `Recipe` value has passed validation: paths are normalised, pins are
//! well-formed, the entry point and launch configurations make sense, and the cmdline template
//! compiles. Later stages rely on that instead of checking again.

use crate::cmdline;
use crate::raw::{RawFirmware, RawKernel, RawRecipe, RawVerity};
use crate::verity::{self, BootCheck, Corruption, HashAlgorithm, RootFilesystem};
use crate::{LaunchConfig, LaunchProblem, RecipeError, Sha256Sum};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File name of a recipe inside its folder.
pub const RECIPE_FILE: &str = "recipe.toml";

/// Launch configurations have at most this many vCPUs: the SNP ABI's VMSA count limit that
/// sev-snp-measure and QEMU accept.
const MAX_VCPUS: u32 = 512;

/// The recipe's pinned default for SOURCE_DATE_EPOCH when it names none: 2025-01-01T00:00:00Z.
const DEFAULT_EPOCH: i64 = 1_735_689_600;

#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The folder holding `recipe.toml`; relative `src` paths are resolved against it.
    pub dir: PathBuf,
    /// The recipe file itself, for error messages.
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub layout: Layout,
    /// Timestamp for every file in the image unless `SOURCE_DATE_EPOCH` overrides it.
    pub source_date_epoch: i64,
    /// Refuse command-line options that open a door into the guest (see [`cmdline`]).
    pub hardened: bool,
    pub kernel: KernelSource,
    pub firmware: FirmwareSource,
    /// The kernel command line as a minijinja template.
    pub cmdline: String,
    /// Kernel module names (as `modprobe` spells them) to ship; dependencies are added.
    pub modules: Vec<String>,
    pub packages: Vec<DebPin>,
    pub files: Vec<FileSpec>,
    pub directories: Vec<DirSpec>,
    pub archives: Vec<ArchiveSpec>,
    pub symlinks: Vec<SymlinkSpec>,
    pub entry: EntrySpec,
    /// Values for the cmdline template, under `vars.`.
    pub vars: BTreeMap<String, toml::Value>,
    pub launch: Vec<LaunchConfig>,
}

/// How the appliance is laid out, and so what the measurement covers directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Everything in the initramfs, which the hashes table binds.
    Initramfs,
    /// A small initramfs plus a read-only root filesystem whose dm-verity root hash is on the
    /// measured command line.
    Verity(VeritySpec),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeritySpec {
    pub filesystem: RootFilesystem,
    pub hash: HashAlgorithm,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub on_corruption: Corruption,
    pub check: BootCheck,
    /// Seed for the salt and UUID, so that they are reproducible (defaults to the recipe name).
    pub seed: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// A Debian kernel package, fetched with `apt-get download`.
    Debian(DebPin),
    /// A kernel image on disk (bzImage), with an optional `lib/modules/<release>` tree.
    Local {
        path: PathBuf,
        sha256: Sha256Sum,
        modules_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareSource {
    /// The AmdSev OVMF, built by `cargo xtask ovmf` from the Debian edk2 source pinned in the lock.
    AmdSev,
    /// An OVMF file on disk.
    Local { path: PathBuf, sha256: Sha256Sum },
}

/// A Debian package. Without `version` (and `sha256`), `cargo xtask lock` pins the candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPin {
    pub name: String,
    pub version: Option<String>,
    pub sha256: Option<Sha256Sum>,
    /// Paths (absolute, as inside the package) to take; empty means everything.
    pub include: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub src: PathBuf,
    pub dst: String,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSpec {
    pub src: PathBuf,
    pub dst: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    pub src: PathBuf,
    pub dst: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkSpec {
    pub path: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl Recipe {
    /// Loads `recipes/<name>/recipe.toml` under `recipes_dir`.
    pub fn load_named(recipes_dir: &Path, name: &str) -> Result<Recipe, RecipeError> {
        let file = recipes_dir.join(name).join(RECIPE_FILE);
        // Anything there is read (and refused by kind if it is no regular file); only nothing at
        // all is "no recipe".
        if std::fs::symlink_metadata(&file).is_err() {
            return Err(RecipeError::NotFound {
                name: name.to_owned(),
                path: file,
            });
        }
        Recipe::load(&file)
    }

    pub fn load(file: &Path) -> Result<Recipe, RecipeError> {
        let text =
            snpkit_fsguard::read_string(file, "recipe.toml", crate::sources::MAX_RECIPE_FILE)?;
        Recipe::parse(&text, file)
    }

    /// Parses and validates recipe text; `file` is where it came from (for messages and for
    /// resolving relative paths), it is not read.
    pub fn parse(text: &str, file: &Path) -> Result<Recipe, RecipeError> {
        let raw: RawRecipe = toml::from_str(text).map_err(|e| RecipeError::Syntax {
            path: file.to_owned(),
            message: e.to_string(),
        })?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let v = Validator { file };

        let name = v.name(&raw.name)?;
        let layout = match raw.layout.as_deref().unwrap_or("initramfs") {
            "initramfs" => {
                if raw.verity.is_some() {
                    return Err(v.err(
                        "verity",
                        "a [verity] table in an initramfs recipe",
                        "set layout = \"verity\" or remove [verity]",
                    ));
                }
                Layout::Initramfs
            }
            "verity" => Layout::Verity(v.verity(raw.verity.as_ref(), &name)?),
            other => {
                return Err(v.err(
                    "layout",
                    format!("unknown layout {other:?}"),
                    "use \"initramfs\" (everything in the measured initrd) or \"verity\" (dm-verity root)",
                ));
            }
        };
        let source_date_epoch = raw.source_date_epoch.unwrap_or(DEFAULT_EPOCH);
        if source_date_epoch < 0 {
            return Err(v.err(
                "source_date_epoch",
                "negative timestamp",
                "use seconds since 1970-01-01 UTC",
            ));
        }
        let kernel = v.kernel(&raw.kernel, &dir)?;
        let firmware = v.firmware(&raw.firmware, &dir)?;
        let hardened = raw.hardened.unwrap_or(true);
        cmdline::check_template(&raw.cmdline, file)?;

        for (i, m) in raw.modules.iter().enumerate() {
            if m.is_empty() || m.contains('/') || m.ends_with(".ko") {
                return Err(v.err(
                    format!("modules[{i}]"),
                    format!("{m:?} is not a module name"),
                    "write the name modprobe uses, e.g. \"sev-guest\"",
                ));
            }
        }
        let packages = raw
            .packages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let key = format!("packages[{i}]");
                let pin = v.deb(&key, &p.name, p.version.as_deref(), p.sha256.as_deref())?;
                let include = p
                    .include
                    .iter()
                    .enumerate()
                    .map(|(j, s)| v.abs_path(&format!("{key}.include[{j}]"), s))
                    .collect::<Result<_, _>>()?;
                Ok(DebPin { include, ..pin })
            })
            .collect::<Result<Vec<_>, RecipeError>>()?;
        let files = raw
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mode = f.mode.unwrap_or(0o644);
                if mode > 0o7777 {
                    return Err(v.err(
                        format!("files[{i}].mode"),
                        format!("{mode:#o} is not a permission mode"),
                        "write an octal mode such as 0o755",
                    ));
                }
                Ok(FileSpec {
                    src: v.src(&format!("files[{i}].src"), &f.src, &dir)?,
                    dst: v.abs_path(&format!("files[{i}].dst"), &f.dst)?,
                    mode,
                })
            })
            .collect::<Result<Vec<_>, RecipeError>>()?;
        let directories = raw
            .directories
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Ok(DirSpec {
                    src: v.src(&format!("directories[{i}].src"), &d.src, &dir)?,
                    dst: v.abs_path(&format!("directories[{i}].dst"), &d.dst)?,
                })
            })
            .collect::<Result<Vec<_>, RecipeError>>()?;
        let archives = raw
            .archives
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Ok(ArchiveSpec {
                    src: v.src(&format!("archives[{i}].src"), &a.src, &dir)?,
                    dst: v.abs_path(&format!("archives[{i}].dst"), &a.dst)?,
                })
            })
            .collect::<Result<Vec<_>, RecipeError>>()?;
        let symlinks = raw
            .symlinks
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if s.target.is_empty() || s.target.contains('\0') {
                    return Err(v.err(
                        format!("symlinks[{i}].target"),
                        "empty or contains NUL",
                        "give the link's target path",
                    ));
                }
                Ok(SymlinkSpec {
                    path: v.abs_path(&format!("symlinks[{i}].path"), &s.path)?,
                    target: s.target.clone(),
                })
            })
            .collect::<Result<Vec<_>, RecipeError>>()?;
        let entry = v.entry(&raw.entry)?;
        v.launch(&raw.launch)?;

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
        })
    }

    /// Checks that every local file and folder the recipe names exists, is of the kind wanted and
    /// lies inside the recipe folder (every symlink followed), naming the key of the first one that
    /// does not (before anything else complains about a stale lock). See [`crate::sources`].
    pub fn check_sources(&self) -> Result<(), RecipeError> {
        use crate::sources::Source;
        let mut wanted = Vec::new();
        let mut add = |key: String, path, folder| wanted.push(Source { key, path, folder });
        for (i, f) in self.files.iter().enumerate() {
            add(format!("files[{i}].src"), &f.src, false);
        }
        for (i, a) in self.archives.iter().enumerate() {
            add(format!("archives[{i}].src"), &a.src, false);
        }
        for (i, d) in self.directories.iter().enumerate() {
            add(format!("directories[{i}].src"), &d.src, true);
        }
        if let KernelSource::Local {
            path, modules_dir, ..
        } = &self.kernel
        {
            add("kernel.path".into(), path, false);
            if let Some(m) = modules_dir {
                add("kernel.modules_dir".into(), m, true);
            }
        }
        if let FirmwareSource::Local { path, .. } = &self.firmware {
            add("firmware.path".into(), path, false);
        }
        crate::sources::check(&self.dir, &self.file, &wanted)
    }

    /// Runs a check that needs knowledge this crate does not have (the CPU models, VMMs and
    /// guest features the measurement knows) on every launch configuration; a problem becomes an
    /// error naming recipe.toml, `launch[i].<field>` and the fix.
    pub fn check_launch(
        &self,
        check: &dyn Fn(&LaunchConfig) -> Result<(), LaunchProblem>,
    ) -> Result<(), RecipeError> {
        for (i, c) in self.launch.iter().enumerate() {
            check(c).map_err(|p| {
                let key = if p.field.is_empty() {
                    format!("launch[{i}]")
                } else {
                    format!("launch[{i}].{}", p.field)
                };
                RecipeError::invalid(
                    &self.file,
                    key,
                    format!("launch configuration {:?}: {}", c.name, p.problem),
                    p.fix,
                )
            })?;
        }
        Ok(())
    }

    /// The launch configuration called `name`, or an error listing the ones there are.
    pub fn launch_config(&self, name: &str) -> Result<&LaunchConfig, RecipeError> {
        self.launch.iter().find(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.launch.iter().map(|c| c.name.as_str()).collect();
            RecipeError::invalid(
                &self.file,
                "launch",
                format!("no launch configuration named {name:?}"),
                format!("choose one of: {}", names.join(", ")),
            )
        })
    }
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

    fn name(&self, name: &str) -> Result<String, RecipeError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && !name.starts_with('-');
        if !ok {
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
        value.parse().map_err(|e: crate::sha256::BadSha256| {
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
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
        if !valid_name {
            return Err(self.err(
                format!("{key}.name"),
                format!("{name:?} is not a Debian package name"),
                "use the name `apt-cache show` prints",
            ));
        }
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
        })
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

    fn entry(&self, e: &crate::raw::RawEntry) -> Result<EntrySpec, RecipeError> {
        let Some(first) = e.argv.first() else {
            return Err(self.err(
                "entry.argv",
                "empty",
                "name the appliance's program, e.g. argv = [\"/usr/bin/hello\"]",
            ));
        };
        self.abs_path("entry.argv[0]", first)?;
        if let Some(k) = e
            .env
            .keys()
            .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        {
            return Err(self.err(
                format!("entry.env.{k}"),
                "not a valid variable name",
                "use NAME = \"value\"",
            ));
        }
        Ok(EntrySpec {
            argv: e.argv.clone(),
            env: e.env.clone(),
        })
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

    fn launch(&self, configs: &[LaunchConfig]) -> Result<(), RecipeError> {
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
