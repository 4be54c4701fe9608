//! Debian packages through the machine's own apt: `apt-cache` to resolve a name and version to a
//! pinned `.deb`, `apt-get download` to fetch it. No archive address appears here; whatever the
//! machine's sources list says is used, and the SHA-256 pin decides whether the bytes are right.

use crate::process::{describe, run};
use crate::{Cache, InputError, Progress};
use snpkit_bundle::Sha256Sum;
use snpkit_recipe::LockedDeb;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The architecture we build x86-64 SNP guests for.
const ARCH: &str = "amd64";

/// Resolves a package to the exact `.deb` apt would fetch: the pinned `version` if given (it must
/// still be in the archive), else apt's candidate. `recipe` names the recipe asking, for the
/// command in error messages.
pub fn resolve(name: &str, version: Option<&str>, recipe: &str) -> Result<LockedDeb, InputError> {
    resolve_stanza(name, version, recipe).map(|p| p.deb)
}

/// A resolved package with the relationship fields of that exact version, which the dependency
/// resolver starts from (the pinned version may not be the index's candidate).
#[derive(Debug, Clone)]
pub struct Pinned {
    pub deb: LockedDeb,
    pub pre_depends: String,
    pub depends: String,
    pub provides: String,
}

/// [`resolve`], keeping the version's `Pre-Depends`, `Depends` and `Provides`.
pub fn resolve_stanza(
    name: &str,
    version: Option<&str>,
    recipe: &str,
) -> Result<Pinned, InputError> {
    let version = match version {
        Some(v) => v.to_owned(),
        None => candidate(name)?,
    };
    let stanzas = show(name)?;
    let stanza = stanzas.iter().find(|s| {
        field(s, "Version") == Some(version.as_str())
            && matches!(field(s, "Architecture"), Some(ARCH | "all"))
    });
    let Some(stanza) = stanza else {
        let mut available: Vec<&str> = stanzas.iter().filter_map(|s| field(s, "Version")).collect();
        available.dedup();
        return Err(InputError::VersionGone {
            name: name.to_owned(),
            version,
            available: if available.is_empty() {
                "nothing".into()
            } else {
                available.join(", ")
            },
            recipe: recipe.to_owned(),
        });
    };
    let bad = |detail: &str| InputError::CommandFailed {
        command: format!("apt-cache show {name}"),
        detail: format!("version {version}: {detail}"),
    };
    let filename = field(stanza, "Filename").ok_or_else(|| bad("no Filename field"))?;
    let sha256: Sha256Sum = field(stanza, "SHA256")
        .ok_or_else(|| bad("no SHA256 field"))?
        .parse()
        .map_err(|_| bad("bad SHA256 field"))?;
    let size = field(stanza, "Size")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no Size field"))?;
    let text = |key: &str| field(stanza, key).unwrap_or_default().to_owned();
    Ok(Pinned {
        pre_depends: text("Pre-Depends"),
        depends: text("Depends"),
        provides: text("Provides"),
        deb: LockedDeb {
            name: name.to_owned(),
            version,
            filename: filename.rsplit('/').next().unwrap_or(filename).to_owned(),
            sha256,
            size,
            pulled_by: None,
            maintainer_scripts: Vec::new(),
        },
    })
}

/// `apt-cache <args>`; without apt, the error says how to get Debian packages another way.
fn apt_cache(args: &[&str]) -> Result<std::process::Output, InputError> {
    run(
        Command::new("apt-cache").args(args),
        "apt",
        "resolve Debian packages",
    )
    .map_err(|e| match e {
        InputError::ToolMissing { tool, .. } => InputError::AptUnavailable {
            tool,
            detail: "not found".into(),
        },
        other => other,
    })
}

fn candidate(name: &str) -> Result<String, InputError> {
    let out = apt_cache(&["policy", name])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let candidate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(str::trim);
    match candidate {
        Some("(none)") | None => Err(InputError::PackageUnknown {
            name: name.to_owned(),
        }),
        Some(v) => Ok(v.to_owned()),
    }
}

/// All stanzas `apt-cache show` prints for a package (one per version and architecture).
fn show(name: &str) -> Result<Vec<String>, InputError> {
    // Every version, not just the candidate: pinned versions may be older, and when a pin has
    // gone the error lists what is available.
    let out = apt_cache(&["show", name])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let stanzas: Vec<String> = text
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if !out.status.success() || stanzas.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No packages found")
            || stderr.contains("Unable to locate")
            || stanzas.is_empty()
        {
            return Err(InputError::PackageUnknown {
                name: name.to_owned(),
            });
        }
        return Err(InputError::CommandFailed {
            command: format!("apt-cache show {name}"),
            detail: stderr.trim().to_owned(),
        });
    }
    Ok(stanzas)
}

/// The value of a `Key: value` line in a control stanza.
fn field<'a>(stanza: &'a str, key: &str) -> Option<&'a str> {
    stanza
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

/// The pinned `.deb`'s bytes, from the cache or downloaded with `apt-get download` and checked.
/// `recipe` names the recipe whose lock pins it, for the command in error messages.
pub fn fetch(
    deb: &LockedDeb,
    cache: &Cache,
    progress: &dyn Progress,
    recipe: &str,
) -> Result<Vec<u8>, InputError> {
    if let Some(bytes) = cache.get(&deb.sha256)? {
        return Ok(bytes);
    }
    progress.set_message(&format!(
        "downloading {} {} with apt-get",
        deb.name, deb.version
    ));
    progress.set_total(deb.size);
    let tmp_root = cache.dir("tmp")?;
    let tmp = tempfile::tempdir_in(&tmp_root)
        .map_err(InputError::io("create a temporary folder in", &tmp_root))?;
    allow_apt_sandbox(tmp.path());
    let mut cmd = Command::new("apt-get");
    cmd.args(["download", "-q"])
        .arg(format!("{}={}", deb.name, deb.version))
        .current_dir(tmp.path());
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| InputError::AptUnavailable {
        tool: "apt-get".into(),
        detail: e.to_string(),
    })?;
    // apt-get shows no progress when its output is not a terminal: watch the file grow instead.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {
                progress.set_position(dir_size(tmp.path()));
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(InputError::CommandFailed {
                    command: describe(&cmd),
                    detail: e.to_string(),
                });
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    if !status.success() {
        if version_gone(&stderr) {
            let mut available: Vec<String> = show(&deb.name)
                .map(|s| {
                    s.iter()
                        .filter_map(|s| field(s, "Version").map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            available.dedup();
            return Err(InputError::VersionGone {
                name: deb.name.clone(),
                version: deb.version.clone(),
                available: if available.is_empty() {
                    "nothing".into()
                } else {
                    available.join(", ")
                },
                recipe: recipe.to_owned(),
            });
        }
        return Err(InputError::CommandFailed {
            command: describe(&cmd),
            detail: stderr.trim().to_owned(),
        });
    }
    let file = std::fs::read_dir(tmp.path())
        .map_err(InputError::io("list", tmp.path()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| InputError::CommandFailed {
            command: describe(&cmd),
            detail: "no .deb was written".into(),
        })?;
    // The lock pins the size: a download larger than that is the wrong file, however large.
    let bytes = snpkit_fsguard::read(&file, "the downloaded package", deb.size)?;
    progress.set_position(bytes.len() as u64);
    cache.put(
        &bytes,
        &deb.sha256,
        &format!("{} {} ({})", deb.name, deb.version, deb.filename),
        &format!(
            "the archive now serves different bytes under the pinned version; if that is expected, run \
             `cargo xtask lock {recipe}` and review the change"
        ),
    )?;
    Ok(bytes)
}

/// Whether `apt-get download` failed because the archive does not have the pinned version: the
/// index no longer lists it ("Can't find a source…"), or lists it while the archive has already
/// dropped the file (HTTP "404  Not Found", in whatever case apt's method prints it).
fn version_gone(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    [
        "can't find a source",
        "unable to locate",
        "404  not found",
        "404 not found",
        "not found",
    ]
    .iter()
    .any(|needle| s.contains(needle))
}

/// apt drops privileges to `_apt` while downloading; let it write into our temp folder so it
/// does not fall back to an unsandboxed download with a warning.
fn allow_apt_sandbox(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_reads_control_lines() {
        let stanza =
            "Package: x\nVersion: 1.0-1\nSHA256: ab\nFilename: pool/main/x/x_1.0-1_amd64.deb";
        assert_eq!(field(stanza, "Version"), Some("1.0-1"));
        assert_eq!(field(stanza, "SHA256"), Some("ab"));
        assert_eq!(field(stanza, "Size"), None);
        // A key must match whole: "Version" must not match "Version-Extra".
        assert_eq!(field("Version-Extra: 2", "Version"), None);
    }

    #[test]
    fn a_version_the_archive_has_dropped_is_recognised() {
        // apt-get download's messages, verbatim apart from the (invented) mirror address.
        let gone = [
            "E: Can't find a source to download version '1:0.1-1' of 'busybox-static:amd64'",
            "E: Failed to fetch http://mirror.example/debian/pool/main/b/busybox/busybox-static_1.35.0-4_amd64.deb  404  Not Found [IP: 192.0.2.1 80]",
            "Err:1 http://mirror.example/debian bookworm/main amd64 busybox-static amd64 1:1.35.0-4\n  404  Not Found",
            "E: Unable to locate package snpkit-none",
        ];
        for msg in gone {
            assert!(version_gone(msg), "{msg}");
        }
        let other = [
            "E: Could not resolve 'mirror.example'",
            "E: Failed to fetch http://mirror.example/x.deb  503  Service Unavailable [IP: 192.0.2.1 80]",
            "W: Download is performed unsandboxed as root",
        ];
        for msg in other {
            assert!(!version_gone(msg), "{msg}");
        }
    }
}
