//! The guest's side of the attestation conversation on `org.snpkit.attest`:
//! Hello → (host) Nonce → Evidence, and once the entry point has ended, Finished (or an Error at
//! any point). An ephemeral X25519 key is made for this boot; its public half is bound into
//! REPORT_DATA so a later secret release can be encrypted to this very guest.
//!
//! [`greet`] says Hello as soon as the provider is known, before the root is checked: for a
//! hardened image (no console) it is the host's first sign that the kernel started. [`attest`]
//! reads the nonce and answers with evidence only after the root has been checked and mounted.

use crate::console::say;
use crate::provider::{self, Found};
use crate::report;
use crate::timed::{Hangup, TimedPort};
use anyhow::{Context, Result, anyhow, bail};
use snpkit_wire::binding::report_data;
use snpkit_wire::frame::{
    self, ErrorMessage, Evidence, FRAME_VERSION, Finished, Hello, MAX_ERROR_LEN, Message, Nonce,
    ReadError,
};
use std::path::Path;
use std::time::Duration;
use x25519_dalek::{PublicKey, StaticSecret};

/// How long the host may take to send its nonce.
const NONCE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the host may take to read one of our messages.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the host may take to hang up after our last message.
const HANGUP_WAIT: Duration = Duration::from_secs(10);
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

/// Opens the attest port with the first deadline of the conversation.
pub fn open(port_path: &Path) -> Result<TimedPort> {
    TimedPort::open(port_path, WRITE_TIMEOUT)
}

/// The host has our Hello; its nonce is on the way.
pub struct Greeted {
    found: Found,
}

impl Greeted {
    /// The report provider the guest attests with (and asks again for the broker's reports).
    pub fn provider(&self) -> snpkit_wire::frame::Provider {
        self.found.provider()
    }
}

/// Finds the report provider and says Hello.
pub fn greet(port: &mut TimedPort, root: &Path) -> Result<Greeted> {
    let found = provider::probe(root, PSP_PORT_WAIT)?;
    say!("report provider: {}", found.provider().name());
    let hello = Message::Hello(Hello {
        protocol: FRAME_VERSION,
        provider: found.provider(),
    });
    port.allow(WRITE_TIMEOUT);
    frame::write_message(port, &hello).context("sending Hello to the host")?;
    Ok(Greeted { found })
}

/// Reads the host's nonce and sends the evidence bound to it and to a fresh key.
pub fn attest(port: &mut TimedPort, greeted: Greeted) -> Result<BootKey> {
    let key = boot_key()?;
    converse(port, &greeted.found, &key)?;
    Ok(key)
}

fn converse(port: &mut TimedPort, found: &Found, key: &BootKey) -> Result<()> {
    port.allow(NONCE_TIMEOUT);
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
    port.allow(WRITE_TIMEOUT);
    frame::write_message(port, &evidence).context("sending the evidence to the host")?;
    Ok(())
}

/// Tells the host how the entry point ended: the message a run passes on.
pub fn finished(port: &mut TimedPort, end: Finished) -> Result<()> {
    port.allow(WRITE_TIMEOUT);
    frame::write_message(port, &Message::Finished(end))
        .context("telling the host how the entry point ended")?;
    farewell(port);
    Ok(())
}

/// Tells the host why we stop (best effort: the console line is said anyway).
pub fn report_error(port: &mut TimedPort, err: &anyhow::Error) {
    let mut text = format!("{err:#}");
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    port.allow(WRITE_TIMEOUT);
    match frame::write_message(port, &Message::Error(ErrorMessage(text))) {
        Ok(()) => farewell(port),
        Err(e) => say!("could not tell the host why: {e}"),
    }
}

fn farewell(port: &mut TimedPort) {
    if port.wait_for_hangup(HANGUP_WAIT) == Hangup::TimedOut {
        say!("the host did not hang up within {HANGUP_WAIT:?}; going on");
    }
}
