//! Keys derived by the PSP (MSG_KEY_REQ): `/dev/sev-guest`'s SNP_GET_DERIVED_KEY on SNP hardware,
//! the emulated PSP's port under emulation.
//!
//! Which one is decided by the report provider's probe (`provider.rs`), never by anything the host
//! says: configfs-tsm or `/dev/sev-guest` found means the kernel knows it runs in an SNP guest, and
//! then the key comes from `/dev/sev-guest` (configfs-tsm has no path for keys) or not at all. Only
//! a guest with neither asks the emulated port — and there the host holds the chip secret, as it
//! holds everything of an emulated launch.

use crate::ioctl;
use crate::provider::Found;
use crate::timed::TimedPort;
use anyhow::{Context, Result, bail};
use snpkit_wire::frame::{self, Message, RawKeyRequest};
use snpkit_wire::keyreq::{DerivedKey, KeyRequest, KeyResponse, KeyStatus};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the emulated PSP may take to answer.
const PSP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where derived keys come from on this machine.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyProvider {
    SevGuest { device: PathBuf },
    EmulatedPsp { port: PathBuf },
}

impl KeyProvider {
    /// The key provider that goes with the report provider `found` (under `root`, `/` in the guest).
    pub fn for_report_provider(found: &Found, root: &Path) -> Result<KeyProvider> {
        match found {
            Found::ConfigfsTsm { .. } | Found::SevGuest { .. } => {
                let device = root.join("dev/sev-guest");
                if !device.exists() {
                    bail!(
                        "this is an SNP guest (configfs-tsm has a sev_guest provider) but {} is missing: \
                         derived keys need the sev-guest module's device",
                        device.display()
                    );
                }
                Ok(KeyProvider::SevGuest { device })
            }
            Found::EmulatedPsp { port } => Ok(KeyProvider::EmulatedPsp { port: port.clone() }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            KeyProvider::SevGuest { .. } => "/dev/sev-guest",
            KeyProvider::EmulatedPsp { .. } => "EMULATED PSP (test chip secret, not hardware)",
        }
    }

    /// The PSP's key for `request`; a refusal is an error naming the PSP's status.
    pub fn derive(&self, request: &KeyRequest) -> Result<DerivedKey> {
        let response = match self {
            KeyProvider::SevGuest { device } => {
                let dev = std::fs::File::open(device)
                    .with_context(|| format!("opening {}", device.display()))?;
                ioctl::get_derived_key(&dev, request)?
            }
            KeyProvider::EmulatedPsp { port } => ask_emulated_psp(port, request)?,
        };
        match response {
            KeyResponse::Key(key) => Ok(key),
            KeyResponse::Refused(status) => bail!(
                "the PSP refused MSG_KEY_REQ ({} for VMPL {}, TCB {:#018x}) with status {status}{}",
                request.fields,
                request.vmpl,
                request.tcb_version,
                if status == KeyStatus::INVALID_PARAM {
                    ": a field is out of range (a TCB above the platform's committed TCB, a VMPL below this guest's)"
                } else {
                    ""
                }
            ),
        }
    }
}

fn ask_emulated_psp(port: &Path, request: &KeyRequest) -> Result<KeyResponse> {
    let mut port = TimedPort::open(port, PSP_TIMEOUT)?;
    frame::write_message(
        &mut port,
        &Message::KeyRequest(RawKeyRequest::from(request)),
    )
    .context("sending MSG_KEY_REQ to the emulated PSP")?;
    match frame::read_message(&mut port).context("reading the emulated PSP's MSG_KEY_RSP")? {
        Message::KeyResponse(response) => Ok(response),
        Message::Error(e) => bail!("the emulated PSP gave up: {}", e.0),
        other => bail!(
            "the emulated PSP sent {:?} instead of a key response",
            other.kind()
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn real_providers_never_fall_back_to_the_emulated_port() {
        let tmp = tempfile::tempdir().unwrap();
        let tsm = Found::ConfigfsTsm {
            entry: tmp.path().join("entry"),
        };
        // SNP guest without /dev/sev-guest: an error, not the emulated port.
        let err = KeyProvider::for_report_provider(&tsm, tmp.path()).unwrap_err();
        assert!(err.to_string().contains("dev/sev-guest"), "{err}");
        std::fs::create_dir_all(tmp.path().join("dev")).unwrap();
        std::fs::write(tmp.path().join("dev/sev-guest"), "").unwrap();
        let device = tmp.path().join("dev/sev-guest");
        for found in [
            tsm,
            Found::SevGuest {
                device: device.clone(),
            },
        ] {
            assert_eq!(
                KeyProvider::for_report_provider(&found, tmp.path()).unwrap(),
                KeyProvider::SevGuest {
                    device: device.clone()
                }
            );
        }
        let port = tmp.path().join("dev/vport1p2");
        assert_eq!(
            KeyProvider::for_report_provider(
                &Found::EmulatedPsp { port: port.clone() },
                tmp.path()
            )
            .unwrap(),
            KeyProvider::EmulatedPsp { port }
        );
    }
}
