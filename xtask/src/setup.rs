//! `cargo xtask setup`: the system packages and apt suites snpkit needs, installed when run as root.
//!
//! snpkit takes its kernel from bookworm-backports and its edk2 source from trixie. The apt entries
//! for those reuse the URI of the machine's own Debian entry, so no archive host is written here.
//! As another user, setup only checks and prints the one command to run as root.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
pub struct Args {
    /// Only check; never install (exit non-zero and print what is missing).
    #[arg(long)]
    pub check: bool,
}

/// Packages from the machine's default suites, with why we need them.
const PACKAGES: &[(&str, &str)] = &[
    ("cryptsetup-bin", "veritysetup, the dm-verity oracle"),
    ("erofs-utils", "mkfs.erofs for read-only root filesystems"),
    ("squashfs-tools", "mksquashfs (oracle for squashfs images)"),
    ("cpio", "reading initramfs images back in tests"),
    ("build-essential", "compiling OVMF"),
    ("nasm", "compiling OVMF"),
    ("acpica-tools", "iasl, compiling OVMF"),
    ("uuid-dev", "compiling edk2 BaseTools"),
    ("python3", "edk2 build and the sev-snp-measure oracle"),
    ("python3-venv", "installing the sev-snp-measure oracle"),
    ("patch", "applying Debian's edk2 patches"),
    ("xz-utils", "Debian source tarballs"),
    ("openssl", "the hashing floor in benchmarks"),
    (
        "faketime",
        "the reproducibility test's different wall clock",
    ),
];

/// Packages taken from bookworm-backports: QEMU 10 has `sev-snp-guest`; bookworm's 7.2 does not.
const BACKPORTS: &[(&str, &str)] = &[(
    "qemu-system-x86",
    "QEMU >= 9.1 for SNP and the emulated launch",
)];

const SOURCES_FILE: &str = "/etc/apt/sources.list.d/snpkit.sources";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    ensure(args.check)?;
    println!("system packages and apt suites: ok");
    Ok(ExitCode::SUCCESS)
}

/// Makes sure everything is installed (installing it as root, unless `check_only`).
pub fn ensure(check_only: bool) -> anyhow::Result<()> {
    let missing_sources = !Path::new(SOURCES_FILE).exists();
    let missing: Vec<&str> = PACKAGES
        .iter()
        .chain(BACKPORTS)
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect();
    if !missing_sources && missing.is_empty() {
        return Ok(());
    }
    let root = nix::unistd::geteuid().is_root();
    if check_only || !root {
        let mut msg = String::from("snpkit needs system packages that are missing:\n");
        for (p, why) in PACKAGES
            .iter()
            .chain(BACKPORTS)
            .filter(|(p, _)| missing.contains(p))
        {
            msg.push_str(&format!("  {p}: {why}\n"));
        }
        if missing_sources {
            msg.push_str(&format!(
                "  apt entries for bookworm-backports and trixie sources ({SOURCES_FILE})\n"
            ));
        }
        msg.push_str(
            "run `sudo cargo xtask setup` (or as root) to add the apt suites and install them",
        );
        bail!(msg);
    }
    if missing_sources {
        write_sources()?;
    }
    apt(&["update", "-q"])?;
    install(PACKAGES, &missing, &[], "")?;
    install(
        BACKPORTS,
        &missing,
        &["-t", "bookworm-backports"],
        " from bookworm-backports",
    )?;
    Ok(())
}

/// Installs the packages of `list` that are `missing`, with the apt options `extra`; `from` ends
/// the message saying what is installed.
fn install(
    list: &[(&str, &str)],
    missing: &[&str],
    extra: &[&str],
    from: &str,
) -> anyhow::Result<()> {
    let wanted: Vec<&str> = list
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| missing.contains(p))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    eprintln!("installing {}{from}", wanted.join(" "));
    let mut a = vec!["install", "-y", "-q", "--no-install-recommends"];
    a.extend(extra);
    a.extend(&wanted);
    apt(&a)
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get (is this Debian or Ubuntu?)")?;
    if !status.success() {
        bail!("apt-get {} failed; see its output above", args.join(" "));
    }
    Ok(())
}

/// The URI and keyring of the machine's own Debian entry.
fn debian_entry() -> anyhow::Result<(String, String)> {
    let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
    if let Ok(text) = std::fs::read_to_string(deb822) {
        for stanza in text.split("\n\n") {
            let field = |k: &str| {
                stanza.lines().find_map(|l| {
                    l.strip_prefix(k)?
                        .strip_prefix(':')
                        .map(|v| v.trim().to_owned())
                })
            };
            let suites = field("Suites").unwrap_or_default();
            if suites.split_whitespace().any(|s| s == "bookworm")
                && let Some(uri) = field("URIs")
            {
                let key = field("Signed-By")
                    .unwrap_or_else(|| "/usr/share/keyrings/debian-archive-keyring.gpg".into());
                return Ok((
                    uri.split_whitespace().next().unwrap_or(&uri).to_owned(),
                    key,
                ));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("deb "))
        {
            let words: Vec<&str> = line
                .split_whitespace()
                .filter(|w| !w.starts_with('['))
                .collect();
            if words.len() >= 3 && words[2] == "bookworm" {
                return Ok((
                    words[1].to_owned(),
                    "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
                ));
            }
        }
    }
    bail!(
        "found no Debian bookworm entry in the apt sources to reuse; snpkit needs Debian's bookworm-backports \
         (kernel, QEMU) and trixie deb-src (edk2): add them for a Debian mirror you trust, then run setup again"
    )
}

fn write_sources() -> anyhow::Result<()> {
    let (uri, key) = debian_entry()?;
    let text = format!(
        "# Written by `cargo xtask setup` for snpkit: the cloud kernel and QEMU 10 from bookworm-backports,\n\
         # the edk2 source (AmdSev OVMF) from trixie. Backports are not upgraded to by default.\n\
         Types: deb\nURIs: {uri}\nSuites: bookworm-backports\nComponents: main\nSigned-By: {key}\n\n\
         Types: deb-src\nURIs: {uri}\nSuites: trixie\nComponents: main\nSigned-By: {key}\n"
    );
    std::fs::write(SOURCES_FILE, text).with_context(|| format!("writing {SOURCES_FILE}"))?;
    eprintln!("added bookworm-backports and trixie (source) to apt: {SOURCES_FILE}");
    Ok(())
}
