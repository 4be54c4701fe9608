//! Which report provider to use, by probing in a fixed order:
//!
//! 1. configfs-tsm with the `sev_guest` provider,
//! 2. `/dev/sev-guest`,
//! 3. the emulated PSP's virtio port.
//!
//! The first that is present is used and a failure there is fatal: there is no falling back to a
//! weaker provider, and nothing unmeasured (the kernel command line beyond what is hashed, fw_cfg,
//! ACPI, anything the host says on the channel) takes part in the choice. The first two exist only
//! when the kernel found itself in an SNP guest (from the SEV_STATUS MSR, which the host cannot
//! forge for an SNP guest), so a host cannot talk a real SNP guest down to the emulated PSP as long
//! as the image loads `tsm`/`sev-guest`. A host that offers the emulated port to an image without
//! them gets only a report signed by test keys, which verifiers refuse unless asked for emulation.

use crate::ports;
use crate::tsm::{self, ProviderState, TsmError};
use snpkit_wire::frame::{EMULATED_PSP_PORT, Provider};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A provider found on this machine, with what it needs to produce a report.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    ConfigfsTsm { entry: PathBuf },
    SevGuest { device: PathBuf },
    EmulatedPsp { port: PathBuf },
}

impl Found {
    pub fn provider(&self) -> Provider {
        match self {
            Found::ConfigfsTsm { .. } => Provider::ConfigfsTsm,
            Found::SevGuest { .. } => Provider::SevGuest,
            Found::EmulatedPsp { .. } => Provider::EmulatedPsp,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probing configfs-tsm")]
    Tsm(#[from] TsmError),
    #[error("looking for the emulated PSP's port")]
    Ports(#[source] io::Error),
    #[error(
        "no report provider: no configfs-tsm sev_guest provider, no /dev/sev-guest, and no '{EMULATED_PSP_PORT}' port. \
         On SNP hardware, put the tsm and sev-guest modules in the image; for an emulated launch, the host must offer the port"
    )]
    NoProvider,
}

/// Probes under `root` (`/` in the guest; a directory tree in tests). `port_wait` is how long the
/// emulated PSP's port may take to be announced once the real providers are known to be absent.
pub fn probe(root: &Path, port_wait: Duration) -> Result<Found, ProbeError> {
    let report_dir = root.join(tsm::REPORT_DIR);
    if report_dir.is_dir() {
        let (entry, state) = tsm::open_entry(&report_dir)?;
        match state {
            ProviderState::Named(name) if name == tsm::SEV_PROVIDER => {
                return Ok(Found::ConfigfsTsm { entry });
            }
            ProviderState::Named(found) => {
                tsm::close_entry(&entry);
                return Err(TsmError::WrongProvider { found }.into());
            }
            ProviderState::NoProvider => tsm::close_entry(&entry),
        }
    }
    let device = root.join("dev/sev-guest");
    if device.exists() {
        return Ok(Found::SevGuest { device });
    }
    match ports::wait_for(root, EMULATED_PSP_PORT, port_wait).map_err(ProbeError::Ports)? {
        Some(port) => Ok(Found::EmulatedPsp { port }),
        None => Err(ProbeError::NoProvider),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::fs;

    /// A directory tree shaped like the guest's /sys, /sys/kernel/config and /dev.
    struct Tree(tempfile::TempDir);

    impl Tree {
        fn new() -> Tree {
            Tree(tempfile::tempdir().unwrap())
        }
        fn root(&self) -> &Path {
            self.0.path()
        }
        fn file(&self, rel: &str, contents: &str) -> &Self {
            let path = self.root().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
            self
        }
        fn tsm(&self, provider: &str) -> &Self {
            self.file(
                &format!("{}/{}/provider", tsm::REPORT_DIR, tsm::ENTRY_NAME),
                provider,
            )
        }
        fn sev_guest(&self) -> &Self {
            self.file("dev/sev-guest", "")
        }
        fn port(&self, dev: &str, name: &str) -> &Self {
            self.file(
                &format!("sys/class/virtio-ports/{dev}/name"),
                &format!("{name}\n"),
            );
            self.file(&format!("dev/{dev}"), "")
        }
        fn probe(&self) -> Result<Found, ProbeError> {
            probe(self.root(), Duration::ZERO)
        }
    }

    #[test]
    fn configfs_tsm_comes_first() {
        let t = Tree::new();
        t.tsm("sev_guest\n")
            .sev_guest()
            .port("vport1p2", EMULATED_PSP_PORT);
        let entry = t.root().join(tsm::REPORT_DIR).join(tsm::ENTRY_NAME);
        assert_eq!(t.probe().unwrap(), Found::ConfigfsTsm { entry });
    }

    #[test]
    fn sev_guest_device_comes_before_the_emulated_port() {
        let t = Tree::new();
        t.sev_guest().port("vport1p2", EMULATED_PSP_PORT);
        assert_eq!(
            t.probe().unwrap(),
            Found::SevGuest {
                device: t.root().join("dev/sev-guest")
            }
        );
    }

    #[test]
    fn configfs_tsm_without_a_provider_is_passed_over() {
        let t = Tree::new();
        t.tsm("").sev_guest();
        assert_eq!(t.probe().unwrap().provider(), Provider::SevGuest);
        let t = Tree::new();
        t.tsm("").port("vport0p1", EMULATED_PSP_PORT);
        assert_eq!(t.probe().unwrap().provider(), Provider::EmulatedPsp);
    }

    #[test]
    fn another_tsm_provider_is_an_error_not_a_fallback() {
        let t = Tree::new();
        t.tsm("tdx_guest\n")
            .sev_guest()
            .port("vport1p2", EMULATED_PSP_PORT);
        let err = t.probe().unwrap_err();
        assert!(
            matches!(err, ProbeError::Tsm(TsmError::WrongProvider { ref found }) if found == "tdx_guest")
        );
    }

    #[test]
    fn emulated_port_is_found_by_name_only() {
        let t = Tree::new();
        t.port("vport1p1", "org.snpkit.attest")
            .port("vport1p2", EMULATED_PSP_PORT);
        assert_eq!(
            t.probe().unwrap(),
            Found::EmulatedPsp {
                port: t.root().join("dev/vport1p2")
            }
        );
        // A port with a similar name is not the emulated PSP.
        let t = Tree::new();
        t.port("vport1p2", "org.snpkit.emulated-psp2");
        assert!(matches!(t.probe(), Err(ProbeError::NoProvider)));
    }

    #[test]
    fn nothing_at_all_is_no_provider() {
        let t = Tree::new();
        let err = t.probe().unwrap_err();
        assert!(matches!(err, ProbeError::NoProvider));
        assert!(err.to_string().contains("sev-guest modules"));
    }

    #[test]
    fn tsm_report_reads_outblob_and_auxblob_in_the_entry() {
        let t = Tree::new();
        let entry = format!("{}/{}", tsm::REPORT_DIR, tsm::ENTRY_NAME);
        t.tsm("sev_guest\n")
            .file(&format!("{entry}/generation"), "2\n")
            .file(&format!("{entry}/auxblob"), "");
        let entry = t.root().join(entry);
        fs::write(entry.join("outblob"), [0x5a; 1184]).unwrap();
        let (report, aux) = tsm::get_report(&entry, &[3; 64]).unwrap();
        assert_eq!(report[..], [0x5a; 1184][..]);
        assert!(aux.is_empty());
        assert_eq!(fs::read(entry.join("inblob")).unwrap(), vec![3; 64]);
        // An outblob of another size is refused.
        fs::write(entry.join("outblob"), [0; 1000]).unwrap();
        assert!(matches!(
            tsm::get_report(&entry, &[3; 64]),
            Err(TsmError::ReportSize { found: 1000 })
        ));
    }
}
