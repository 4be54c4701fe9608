//! The guest's side of the attestation conversation on `org.snpkit.attest`:
//! Hello → (host) Nonce → Evidence. An ephemeral X25519 key is made for this boot; its public
//! half is bound into REPORT_DATA so a later secret release can be encrypted to this very guest.

use crate::console::say;
use crate::provider::{self, Found};
use crate::report;
use crate::timed::TimedPort;
use anyhow::{Context, Result, anyhow, bail};
use snpkit_wire::binding::report_data;
use snpkit_wire::frame::{
    self, ErrorMessage, Evidence, FRAME_VERSION, Hello, Message, Nonce, ReadError,
};
use std::path::Path;
use std::time::Duration;
use x25519_dalek::{PublicKey, StaticSecret};

/// How long the host may take to send its nonce.
const NONCE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the emulated PSP's port may take once the real providers are known to be absent.
const PSP_PORT_WAIT: Duration = Duration::from_secs(5);

/// The key pair of this boot. `StaticSecret` only because it is built from bytes we fetched with
/// an error check (x25519-dalek's own `random()` panics when getrandom fails); it is never stored.
pub struct BootKey {
    #[expect(
        dead_code,
        reason = "kept for the secret release that will decrypt with it"
    )]
    pub secret: StaticSecret,
    pub public: PublicKey,
}

pub fn boot_key() -> Result<BootKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow!("reading the kernel's random number generator: {e}"))?;
    let secret = StaticSecret::from(seed);
    let public = PublicKey::from(&secret);
    Ok(BootKey { secret, public })
}

/// Opens the attest port, finds the report provider and runs the conversation. Any failure once
/// the port is open is also sent to the host, so it learns why rather than just seeing EOF.
pub fn attest(port_path: &Path, root: &Path) -> Result<BootKey> {
    let mut port = TimedPort::open(port_path, NONCE_TIMEOUT)?;
    let result = probe_and_converse(&mut port, root);
    if let Err(err) = &result {
        let text: String = format!("{err:#}").chars().take(1000).collect();
        let _ = frame::write_message(&mut port, &Message::Error(ErrorMessage(text)));
    }
    result
}

fn probe_and_converse(port: &mut TimedPort, root: &Path) -> Result<BootKey> {
    let found = provider::probe(root, PSP_PORT_WAIT)?;
    say!("report provider: {}", found.provider().name());
    let key = boot_key()?;
    converse(port, &found, &key)?;
    Ok(key)
}

fn converse(port: &mut TimedPort, found: &Found, key: &BootKey) -> Result<()> {
    let hello = Message::Hello(Hello {
        protocol: FRAME_VERSION,
        provider: found.provider(),
    });
    frame::write_message(port, &hello).context("sending Hello to the host")?;
    let nonce = match frame::read_message(port) {
        Ok(Message::Nonce(Nonce(nonce))) => nonce,
        Ok(Message::Error(e)) => bail!("the host gave up: {}", e.0),
        Ok(other) => bail!("the host sent {:?} where its nonce was due", other.kind()),
        Err(ReadError::Frame(e)) => return Err(e).context("refusing the host's nonce frame"),
        Err(e) => return Err(e).context("waiting for the host's nonce"),
    };
    let public = key.public.to_bytes();
    let data = report_data(&nonce, &public);
    let fetched = report::fetch(found, &data).context("getting the attestation report")?;
    let evidence = Message::Evidence(Evidence {
        report: fetched.report,
        public_key: public,
        certs: fetched.certs,
    });
    frame::write_message(port, &evidence).context("sending the evidence to the host")?;
    Ok(())
}
