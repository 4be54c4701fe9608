//! configfs-tsm reports (`Documentation/ABI/testing/configfs-tsm`): make an entry under
//! `/sys/kernel/config/tsm/report`, write REPORT_DATA to `inblob`, read the report from `outblob`
//! and the certificates from `auxblob`. `generation` counts writes to the entry; reading it before
//! and after tells whether someone else wrote between our write and our read.

use snpkit_wire::frame::REPORT_LEN;
use std::io;
use std::path::{Path, PathBuf};

/// Where configfs-tsm lives, below the guest's root.
pub const REPORT_DIR: &str = "sys/kernel/config/tsm/report";
/// Our entry's name. PID 1 is its only user; a leftover from an earlier attempt is reused.
pub const ENTRY_NAME: &str = "snpkit-init";
/// The provider name of AMD SEV-SNP guests.
pub const SEV_PROVIDER: &str = "sev_guest";

#[derive(Debug, thiserror::Error)]
pub enum TsmError {
    #[error("{path}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "configfs-tsm's provider is {found:?}; this /init speaks only {SEV_PROVIDER:?} (AMD SEV-SNP)"
    )]
    WrongProvider { found: String },
    #[error("configfs-tsm's outblob is {found} bytes, expected a {REPORT_LEN}-byte SNP report")]
    ReportSize { found: usize },
    #[error(
        "configfs-tsm entry was written by someone else meanwhile (generation {before} → {after})"
    )]
    Raced { before: String, after: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TsmError + '_ {
    move |source| TsmError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the entry's `provider` attribute says.
#[derive(Debug, PartialEq, Eq)]
pub enum ProviderState {
    /// A provider named this is registered.
    Named(String),
    /// configfs-tsm is there but no provider registered (the kernel answers ENXIO, or nothing).
    NoProvider,
}

fn is_enxio(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::errno::Errno::ENXIO as i32)
}

/// Creates (or reuses) our entry and reads its provider.
pub fn open_entry(report_dir: &Path) -> Result<(PathBuf, ProviderState), TsmError> {
    let entry = report_dir.join(ENTRY_NAME);
    match std::fs::create_dir(&entry) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        // Linux 6.12 refuses the entry itself when no provider is registered (seen under TCG
        // with tsm.ko loaded and no SNP).
        Err(e) if is_enxio(&e) => return Ok((entry, ProviderState::NoProvider)),
        Err(e) => return Err(io_err(&entry)(e)),
    }
    let provider_path = entry.join("provider");
    let state = match std::fs::read_to_string(&provider_path) {
        Ok(text) if text.trim().is_empty() => ProviderState::NoProvider,
        Ok(text) => ProviderState::Named(text.trim().to_owned()),
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENXIO as i32) => {
            ProviderState::NoProvider
        }
        Err(e) => return Err(io_err(&provider_path)(e)),
    };
    Ok((entry, state))
}

/// Removes our entry. configfs entries vanish with their attributes; failure only leaves it behind.
pub fn close_entry(entry: &Path) {
    let _ = std::fs::remove_dir(entry);
}

fn read_attr(entry: &Path, name: &str) -> Result<Vec<u8>, TsmError> {
    let path = entry.join(name);
    std::fs::read(&path).map_err(io_err(&path))
}

/// Asks for a report in an entry whose provider is sev_guest.
pub fn get_report(
    entry: &Path,
    report_data: &[u8; 64],
) -> Result<(Box<[u8; REPORT_LEN]>, Vec<u8>), TsmError> {
    let inblob = entry.join("inblob");
    std::fs::write(&inblob, report_data).map_err(io_err(&inblob))?;
    let before = read_attr(entry, "generation")?;
    let outblob = read_attr(entry, "outblob")?;
    // No certificates is a valid answer (the host supplied none); the kernel then has an empty auxblob.
    let auxblob = match std::fs::read(entry.join("auxblob")) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(&entry.join("auxblob"))(e)),
    };
    let after = read_attr(entry, "generation")?;
    if before != after {
        return Err(TsmError::Raced {
            before: String::from_utf8_lossy(&before).trim().to_owned(),
            after: String::from_utf8_lossy(&after).trim().to_owned(),
        });
    }
    let report: [u8; REPORT_LEN] =
        outblob
            .as_slice()
            .try_into()
            .map_err(|_| TsmError::ReportSize {
                found: outblob.len(),
            })?;
    Ok((Box::new(report), auxblob))
}
