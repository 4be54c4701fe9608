//! The AmdSev OVMF, built from the Debian edk2 source package pinned in the lock.
//!
//! Only `OvmfPkg/AmdSev/AmdSevX64.dsc` has the SNP_KERNEL_HASHES section and the blob verifier that
//! refuses a kernel, initrd or cmdline whose hash differs from the table; distributions ship the
//! plain OvmfX64, which binds none of them. So we build it ourselves.
//!
//! Reproducibility: two builds in the same directory are byte-identical, but the build directory
//! leaks into the firmware (edk2 records the absolute path of each module's debug file in its PE/COFF
//! debug directory). We therefore always build in one fixed absolute path derived only from the
//! inputs, `/var/tmp/snpkit-edk2-<key>`, whichever checkout, user or cache directory asks for it,
//! and remove it afterwards; [`crate::workdir`] makes that predictable path safe to use. The result is cached under `ovmf/<key>/OVMF.fd`, where `key` hashes
//! the source pins, the build steps and the versions of the compilers that make the bytes.

use crate::process::{describe, run, tool_version};
use crate::{Cache, InputError, Progress, workdir};
use sha2::{Digest, Sha256};
use snpkit_bundle::Sha256Sum;
use snpkit_recipe::{LockedBlob, LockedFirmware};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian edk2 source snpkit pins by default (trixie's, as of 2026-11).
pub const EDK2_VERSION: &str = "2025.02-8+deb13u1";
const ORIG: (&str, &str, u64) = (
    "edk2_2025.02.orig.tar.xz",
    "b63b6053d6d89c74d9291f9e96fde1584be99e6fb9c169ba9511505129d6b049",
    29_646_336,
);
const DEBIAN: (&str, &str, u64) = (
    "edk2_2025.02-8+deb13u1.debian.tar.xz",
    "e2a7f6fc58640818416a028d6d5e9dfc255697a7cdc60c14566c236df6bd9b08",
    53_652,
);

/// Bumped whenever the build steps below change, so old cache entries are not reused.
const RECIPE_VERSION: &str = "snpkit-ovmf-build-v1";
const DSC: &str = "OvmfPkg/AmdSev/AmdSevX64.dsc";
const OUTPUT: &str = "Build/AmdSev/RELEASE_GCC5/FV/OVMF.fd";

/// The pinned edk2 source: the version and its two tarballs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edk2Source {
    pub version: String,
    pub orig: LockedBlob,
    pub debian: LockedBlob,
}

impl Edk2Source {
    /// The source snpkit pins by default.
    pub fn pinned() -> Edk2Source {
        let blob = |(path, sha, size): (&str, &str, u64)| LockedBlob {
            path: path.to_owned(),
            sha256: sha.parse().unwrap_or(Sha256Sum([0; 32])),
            size,
        };
        Edk2Source {
            version: EDK2_VERSION.to_owned(),
            orig: blob(ORIG),
            debian: blob(DEBIAN),
        }
    }

    /// The source a lock file pins, if its firmware is built from source.
    pub fn from_lock(fw: &LockedFirmware) -> Option<Edk2Source> {
        let version = fw.edk2_version.clone()?;
        let find = |suffix: &str| {
            fw.edk2_sources
                .iter()
                .find(|b| b.path.ends_with(suffix))
                .cloned()
        };
        Some(Edk2Source {
            version,
            orig: find(".orig.tar.xz")?,
            debian: find(".debian.tar.xz")?,
        })
    }
}

/// A built (or cached) firmware.
#[derive(Debug, Clone)]
pub struct BuiltOvmf {
    pub path: PathBuf,
    pub sha256: Sha256Sum,
    pub size: u64,
    /// The cache key (hash of everything that determines the bytes).
    pub key: String,
    /// Whether this call built it (false: it came from the cache).
    pub built: bool,
}

/// The tools the build runs, with the Debian packages that provide them.
const TOOLS: &[(&str, &str)] = &[
    ("gcc", "gcc"),
    ("g++", "g++"),
    ("make", "make"),
    ("nasm", "nasm"),
    ("iasl", "acpica-tools"),
    ("python3", "python3"),
    ("patch", "patch"),
    ("bash", "bash"),
];

fn cache_key(src: &Edk2Source) -> String {
    let mut h = Sha256::new();
    for part in [
        RECIPE_VERSION,
        &src.version,
        &src.orig.sha256.to_hex(),
        &src.debian.sha256.to_hex(),
        DSC,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    // The compilers make the bytes: a different gcc or nasm is a different firmware.
    for (tool, _) in TOOLS.iter().take(5) {
        h.update(tool_version(tool, "--version").as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The cached firmware for `src`, if built before.
pub fn cached(src: &Edk2Source, cache: &Cache) -> Result<Option<BuiltOvmf>, InputError> {
    let key = cache_key(src);
    let path = cache.root().join("ovmf").join(&key).join("OVMF.fd");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(BuiltOvmf {
            sha256: Sha256Sum::of(&bytes),
            size: bytes.len() as u64,
            path,
            key,
            built: false,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(InputError::io("read", path)(e)),
    }
}

/// Returns the AmdSev OVMF for `src`, building it if the cache has none (about 4 minutes on two
/// cores). `rebuild` ignores the cache.
pub fn build(
    src: &Edk2Source,
    cache: &Cache,
    rebuild: bool,
    progress: &dyn Progress,
) -> Result<BuiltOvmf, InputError> {
    if !rebuild && let Some(hit) = cached(src, cache)? {
        return Ok(hit);
    }
    for (tool, package) in TOOLS {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            continue;
        }
        return Err(InputError::ToolMissing {
            tool: (*tool).to_owned(),
            purpose: "build the AmdSev OVMF".into(),
            package: (*package).to_owned(),
        });
    }
    let key = cache_key(src);
    let out_dir = cache.dir(&format!("ovmf/{key}"))?;
    // One lock for every cache on the machine: they all build in the same folder.
    let work = workdir::build_dir(&key);
    let uid = workdir::our_uid();
    progress.set_message("waiting for another OVMF build of the same source");
    let _guard = workdir::lock(&workdir::lock_path(&work), uid)?;
    if !rebuild && let Some(hit) = cached(src, cache)? {
        return Ok(hit);
    }

    let (orig, debian) = fetch_sources(src, cache, progress)?;
    let log = out_dir.join("build.log");
    workdir::prepare(&work, uid)?;
    let result = build_in(&work, &orig, &debian, &log, progress);
    let _ = std::fs::remove_dir_all(&work);
    let bytes = result?;

    let path = out_dir.join("OVMF.fd");
    let tmp = out_dir.join("OVMF.fd.tmp");
    std::fs::write(&tmp, &bytes).map_err(InputError::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(InputError::io("rename into place", &path))?;
    Ok(BuiltOvmf {
        sha256: Sha256Sum::of(&bytes),
        size: bytes.len() as u64,
        path,
        key,
        built: true,
    })
}

/// The two tarballs, from the cache or through `apt-get source --download-only`.
fn fetch_sources(
    src: &Edk2Source,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<(Vec<u8>, Vec<u8>), InputError> {
    if let (Some(o), Some(d)) = (cache.get(&src.orig.sha256)?, cache.get(&src.debian.sha256)?) {
        return Ok((o, d));
    }
    progress.set_message(&format!(
        "downloading edk2 {} source with apt-get source",
        src.version
    ));
    let tmp_root = cache.dir("tmp")?;
    let tmp = tempfile::tempdir_in(&tmp_root)
        .map_err(InputError::io("create a temporary folder in", &tmp_root))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777));
    }
    let mut cmd = Command::new("apt-get");
    cmd.args(["source", "--download-only", "-q"])
        .arg(format!("edk2={}", src.version))
        .current_dir(tmp.path());
    let out = run(&mut cmd, "apt", "download the edk2 source").map_err(|e| match e {
        InputError::ToolMissing { tool, .. } => InputError::AptUnavailable {
            tool,
            detail: "not found".into(),
        },
        other => other,
    })?;
    // The archive may answer 404 for the .dsc while both tarballs arrive; the pins decide.
    let read = |blob: &LockedBlob| -> Result<Vec<u8>, InputError> {
        let p = tmp.path().join(&blob.path);
        match std::fs::read(&p) {
            Ok(bytes) => Ok(bytes),
            Err(_) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let hint = if stderr.contains("deb-src") {
                    "apt has no source suites: run `cargo xtask setup` (as root) to add trixie's deb-src entry"
                } else if stderr.contains("Can not find version")
                    || stderr.contains("Unable to find a source")
                {
                    "that edk2 version has left the archive: pin an available one (`apt-cache showsrc edk2`) and run `cargo xtask lock`"
                } else {
                    "see apt's message above"
                };
                Err(InputError::CommandFailed {
                    command: describe(&cmd),
                    detail: format!(
                        "{} did not arrive ({hint}); apt said: {}",
                        blob.path,
                        stderr.trim()
                    ),
                })
            }
        }
    };
    let fix = "the archive serves different bytes for the pinned edk2 version; run `cargo xtask lock` to re-pin and review";
    let orig = read(&src.orig)?;
    cache.put(&orig, &src.orig.sha256, &src.orig.path, fix)?;
    let debian = read(&src.debian)?;
    cache.put(&debian, &src.debian.sha256, &src.debian.path, fix)?;
    Ok((orig, debian))
}

fn build_in(
    work: &Path,
    orig: &[u8],
    debian: &[u8],
    log: &Path,
    progress: &dyn Progress,
) -> Result<Vec<u8>, InputError> {
    progress.set_message("unpacking edk2 source");
    unpack_tar_xz(orig, work, 1).map_err(|e| InputError::CommandFailed {
        command: "unpack edk2 orig tarball".into(),
        detail: e,
    })?;
    unpack_tar_xz(debian, work, 0).map_err(|e| InputError::CommandFailed {
        command: "unpack edk2 debian tarball".into(),
        detail: e,
    })?;

    let log_file = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(InputError::io("open the log", log))
    };
    std::fs::write(log, b"").map_err(InputError::io("write the log", log))?;
    let step = |name: &str, cmd: &mut Command| -> Result<(), InputError> {
        progress.set_message(name);
        let out = log_file()?;
        let err = log_file()?;
        cmd.current_dir(work)
            .stdout(out)
            .stderr(err)
            .env("LC_ALL", "C")
            .env("TZ", "UTC");
        let status = cmd.status().map_err(|e| InputError::CommandFailed {
            command: describe(cmd),
            detail: e.to_string(),
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(InputError::OvmfBuild {
                step: name.to_owned(),
                log: log.to_owned(),
                tail: tail(log, 25),
            })
        }
    };

    let series_path = work.join("debian/patches/series");
    let series =
        std::fs::read_to_string(&series_path).map_err(InputError::io("read", &series_path))?;
    for patch in series
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
    {
        let name = patch.split_whitespace().next().unwrap_or(patch);
        step(
            &format!("applying debian patch {name}"),
            Command::new("patch")
                .args(["-p1", "-s", "-i"])
                .arg(work.join("debian/patches").join(name)),
        )?;
    }
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .to_string();
    step(
        "building edk2 BaseTools",
        Command::new("make").args(["-C", "BaseTools", "-j", &jobs]),
    )?;
    // We boot the kernel directly; AmdSevX64 only wants grub.efi to embed it.
    let grub = work.join("OvmfPkg/AmdSev/Grub/grub.efi");
    std::fs::write(&grub, b"").map_err(InputError::io("write", &grub))?;
    step(
        "building AmdSevX64 OVMF (a few minutes)",
        Command::new("bash").args([
            "-c",
            &format!("set -e; . ./edksetup.sh; build -a X64 -t GCC5 -b RELEASE -p {DSC} -n {jobs}"),
        ]),
    )?;
    let out = work.join(OUTPUT);
    std::fs::read(&out).map_err(InputError::io("read", out))
}

/// Unpacks a .tar.xz into `dest`, dropping `strip` leading path components.
fn unpack_tar_xz(bytes: &[u8], dest: &Path, strip: usize) -> Result<(), String> {
    let mut archive = tar::Archive::new(liblzma::read::XzDecoder::new(bytes));
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let stripped: PathBuf = path.components().skip(strip).collect();
        if stripped.as_os_str().is_empty() {
            continue;
        }
        // Refuse paths that would climb out of `dest` (absolute, `..`).
        if stripped
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!("refused unsafe path {}", path.display()));
        }
        let target = dest.join(&stripped);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        entry
            .unpack(&target)
            .map_err(|e| format!("{}: {e}", stripped.display()))?;
    }
    Ok(())
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
