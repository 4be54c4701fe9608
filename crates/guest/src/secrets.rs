//! Step 5 of `/init` (issue 11): the recipe's `[[secrets]]`, released by a key broker only to
//! this attested guest, written to a tmpfs at `/run/secrets` in the appliance's root.
//!
//! For each secret, the KBS handshake runs through snpkit-kbs's attester steps, carried by the
//! host's relay on the attest port ([`PortTransport`]): `auth` → the broker's challenge and
//! session cookie → a fresh P-256 key → REPORT_DATA = the binding of nonce and key → a report from
//! the same provider the guest attested with → `attest` → `GET resource` → a JWE that only that
//! key opens.
//!
//! The host carries every byte and is trusted with none: each reply is bounded by the relay
//! frame and again by the protocol's limit for that message, read within a deadline, and parsed
//! strictly; a status other than 200 is a refusal whose words (the broker's ErrorInformation
//! detail) end the boot; a JWE changed on the way does not open (AES-GCM), and one sealed to
//! another key neither. Any failure stops the boot before the entry point. The plaintext lives in
//! a [`Secret`] (wiped when dropped) and in its tmpfs file; it is never printed, and nothing here
//! says more of it than its length.

use crate::console::say;
use crate::timed::TimedPort;
use anyhow::{Context, Result, anyhow, bail};
use nix::mount::{MsFlags, mount};
use snpkit_kbs::attester::{self, Session};
use snpkit_kbs::evidence::CertKind;
use snpkit_kbs::message::{self, MessageError};
use snpkit_kbs::{ResourcePath, Secret, TeeKey};
use snpkit_wire::certs::{CertEntry, GUID_ARK, GUID_ASK, GUID_CRL, GUID_VCEK, GUID_VLEK};
use snpkit_wire::frame::{
    self, ErrorMessage, Message, Method, REPORT_LEN, ReadError, RelayRequest, RelayResponse,
};
use snpkit_wire::init;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The tmpfs every secret is written to (the recipe checks paths are under it; so do we).
pub const SECRETS_DIR: &str = "/run/secrets";
/// Largest secret the guest accepts: a TLS key or a disk key fits many times over, and its JWE
/// still fits in one relay frame.
pub const MAX_SECRET_LEN: usize = 32 * 1024;
/// How long the host may take to bring back the broker's answer (its own limit per exchange is
/// 30 s, plus connecting).
const RELAY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the host may take to read our request.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP exchange with the broker, however it is carried.
pub trait Transport {
    fn exchange(&mut self, request: RelayRequest) -> Result<RelayResponse>;
}

/// The host's relay on the attest port.
pub struct PortTransport<'a> {
    pub port: &'a mut TimedPort,
    pub timeout: Duration,
}

impl<'a> PortTransport<'a> {
    pub fn new(port: &'a mut TimedPort) -> PortTransport<'a> {
        PortTransport {
            port,
            timeout: RELAY_TIMEOUT,
        }
    }
}

impl Transport for PortTransport<'_> {
    fn exchange(&mut self, request: RelayRequest) -> Result<RelayResponse> {
        let what = format!("{} {}", request.method.as_str(), request.path);
        self.port.allow(WRITE_TIMEOUT);
        frame::write_message(self.port, &Message::RelayRequest(request))
            .with_context(|| format!("asking the host to relay {what}"))?;
        self.port.allow(self.timeout);
        match frame::read_message(self.port) {
            Ok(Message::RelayResponse(response)) => Ok(response),
            Ok(Message::Error(ErrorMessage(why))) => {
                bail!("the host could not relay {what}: {why}")
            }
            Ok(other) => bail!(
                "the host sent {:?} where the broker's answer to {what} was due",
                other.kind()
            ),
            Err(ReadError::Frame(e)) => {
                Err(e).with_context(|| format!("refusing the host's answer to {what}"))
            }
            Err(e) => Err(e).with_context(|| format!("waiting for the broker's answer to {what}")),
        }
    }
}

/// A report bound to REPORT_DATA, and the certificates the provider gave with it.
pub struct Evidence {
    pub report: Box<[u8; REPORT_LEN]>,
    pub certs: Vec<CertEntry>,
}

/// Where reports come from: the provider the guest attested with.
pub trait Reporter {
    fn report(&mut self, report_data: &[u8; 64]) -> Result<Evidence>;
}

impl<F: FnMut(&[u8; 64]) -> Result<Evidence>> Reporter for F {
    fn report(&mut self, report_data: &[u8; 64]) -> Result<Evidence> {
        self(report_data)
    }
}

/// More reports after the attest step, for the key broker: from a provider probed again (a
/// configfs-tsm entry is removed after each report), which must be the one the guest attested
/// with.
pub struct Again {
    found: crate::provider::Found,
}

/// How long the emulated PSP's port may take to be found again.
const PSP_PORT_WAIT: Duration = Duration::from_secs(5);

impl Again {
    pub fn probe(attested_with: snpkit_wire::frame::Provider) -> Result<Again> {
        let found = crate::provider::probe(std::path::Path::new("/"), PSP_PORT_WAIT)?;
        if found.provider() != attested_with {
            anyhow::bail!(
                "the report provider is now {}, but the guest attested with {}",
                found.provider().name(),
                attested_with.name()
            );
        }
        Ok(Again { found })
    }
}

impl Reporter for Again {
    fn report(&mut self, report_data: &[u8; 64]) -> Result<Evidence> {
        let fetched = crate::report::fetch(&self.found, report_data)?;
        Ok(Evidence {
            report: fetched.report,
            certs: fetched.certs,
        })
    }
}

/// A fresh P-256 key from the kernel's random source (an error, not a panic, when it fails).
fn fresh_key() -> Result<TeeKey> {
    for _ in 0..8 {
        let mut scalar = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut scalar[..])
            .map_err(|e| anyhow!("reading the kernel's random number generator: {e}"))?;
        // All but a 2^-32 share of 32-byte strings are valid scalars.
        if let Some(key) = TeeKey::from_scalar(&scalar) {
            return Ok(key);
        }
    }
    bail!("the random number generator gave no valid P-256 scalar in 8 tries")
}

fn cert_kind(entry: &CertEntry) -> Option<CertKind> {
    Some(match entry.guid {
        g if g == GUID_ARK => CertKind::Ark,
        g if g == GUID_ASK => CertKind::Ask,
        g if g == GUID_VCEK => CertKind::Vcek,
        g if g == GUID_VLEK => CertKind::Vlek,
        g if g == GUID_CRL => CertKind::Crl,
        _ => return None,
    })
}

/// The broker's answer, if it is a success; otherwise its refusal in words.
fn accepted<'a>(response: &'a RelayResponse, step: &str, max: usize) -> Result<&'a [u8]> {
    if response.status == 200 {
        if response.body.len() > max {
            bail!(
                "the broker's answer to {step} is {} bytes, more than the {max} the protocol allows",
                response.body.len()
            );
        }
        return Ok(&response.body);
    }
    // A refusal's body is printed, so it is bounded and taken only as ErrorInformation.
    match message::parse_error(&response.body) {
        Some(info) => bail!(
            "the broker refused {step} ({} {}): {}",
            response.status,
            info.kind(),
            printable(&info.detail)
        ),
        None => bail!(
            "the broker refused {step} with HTTP status {} and no KBS error information",
            response.status
        ),
    }
}

/// Text from the broker (or the host) made safe for one console line: control characters become
/// `?` and it is cut to 512 characters.
fn printable(text: &str) -> String {
    text.chars()
        .take(512)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn protocol(step: &str) -> impl FnOnce(MessageError) -> anyhow::Error + '_ {
    move |e| anyhow::Error::new(e).context(format!("the broker's answer to {step}"))
}

/// Runs the whole handshake for one resource and opens the secret.
pub fn fetch(
    transport: &mut dyn Transport,
    reporter: &mut dyn Reporter,
    resource: &ResourcePath,
) -> Result<Secret> {
    let auth = transport.exchange(RelayRequest {
        method: Method::Post,
        path: message::PATH_AUTH.into(),
        cookie: None,
        body: attester::auth_body(),
    })?;
    let body = accepted(&auth, "auth", message::MAX_CHALLENGE_LEN)?;
    let challenge = message::parse_challenge(body).map_err(protocol("auth"))?;
    let session_id = attester::session_cookie(auth.set_cookie.iter().map(String::as_str))
        .map_err(protocol("auth"))?;
    let cookie = attester::cookie_header(&session_id);
    let session = Session::with_key(&challenge, fresh_key()?);

    let evidence = reporter
        .report(&session.report_data())
        .context("getting a report bound to the broker's nonce")?;
    let certs: Vec<(CertKind, &[u8])> = evidence
        .certs
        .iter()
        .filter_map(|c| Some((cert_kind(c)?, c.data.as_slice())))
        .collect();
    let body = session
        .attestation_body(&evidence.report, &certs)
        .context("encoding the evidence for the broker")?;
    let attest = transport.exchange(RelayRequest {
        method: Method::Post,
        path: message::PATH_ATTEST.into(),
        cookie: Some(cookie.clone()),
        body,
    })?;
    let token = accepted(&attest, "the evidence", message::MAX_TOKEN_LEN)?;
    session.read_token(token).map_err(protocol("attest"))?;

    let reply = transport.exchange(RelayRequest {
        method: Method::Get,
        path: resource.url_path(),
        cookie: Some(cookie),
        body: Vec::new(),
    })?;
    let jwe = accepted(
        &reply,
        "the resource request",
        snpkit_kbs::jwe::max_jwe_len(MAX_SECRET_LEN),
    )?;
    let secret = session
        .open(jwe, MAX_SECRET_LEN)
        .context("the broker's sealed resource does not open with this boot's key")?;
    if secret.is_empty() {
        bail!("the broker released an empty secret");
    }
    Ok(secret)
}

/// Where a secret's file goes under `root` (the appliance's root as mounted now): its absolute
/// path, checked to lie below [`SECRETS_DIR`] without `.` or `..`.
fn file_under(root: &Path, path: &str) -> Result<PathBuf> {
    let rest = path
        .strip_prefix(SECRETS_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| !r.is_empty() && r.split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
        .ok_or_else(|| {
            anyhow!("the path {path:?} is not a file below {SECRETS_DIR} without '.' or '..'")
        })?;
    Ok(root.join(SECRETS_DIR.trim_start_matches('/')).join(rest))
}

/// Writes one secret: a new file (never one that exists), its mode exactly as configured.
pub fn write(root: &Path, spec: &init::Secret, secret: &Secret) -> Result<()> {
    if spec.mode > 0o777 {
        bail!("mode {:#o} has bits other than permissions", spec.mode);
    }
    let file = file_under(root, &spec.path)?;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .with_context(|| format!("creating {}", file.display()))?;
    out.write_all(secret.expose())
        .with_context(|| format!("writing {}", file.display()))?;
    out.set_permissions(std::fs::Permissions::from_mode(spec.mode))
        .with_context(|| format!("setting the mode of {}", file.display()))?;
    Ok(())
}

/// Mounts the tmpfs for the secrets: RAM only, nothing executable, listable by root only.
fn mount_tmpfs() -> Result<()> {
    std::fs::create_dir_all(SECRETS_DIR).with_context(|| format!("creating {SECRETS_DIR}"))?;
    mount(
        Some("tmpfs"),
        SECRETS_DIR,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0711,size=4m"),
    )
    .with_context(|| format!("mounting a tmpfs on {SECRETS_DIR}"))
}

/// Runs the handshake for every secret of the init config; all of them or an error.
pub fn fetch_all(
    secrets: &[init::Secret],
    transport: &mut dyn Transport,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Secret>> {
    let mut fetched = Vec::with_capacity(secrets.len());
    for spec in secrets {
        let resource = ResourcePath::parse(&spec.resource)
            .with_context(|| format!("secret '{}': the init config's resource", spec.name))?;
        file_under(Path::new("/"), &spec.path)
            .with_context(|| format!("secret '{}'", spec.name))?;
        let secret = fetch(transport, reporter, &resource)
            .with_context(|| format!("secret '{}' ({resource})", spec.name))?;
        say!(
            "secret '{}': {} bytes released by the broker",
            spec.name,
            secret.len()
        );
        fetched.push(secret);
    }
    Ok(fetched)
}

/// Fetches every secret and writes it to the tmpfs on `/run/secrets`, which moves with `/run`
/// into the appliance's root (`appliance_root`, as mounted now) at the switch. Nothing is
/// written unless every secret arrived.
pub fn provide(
    secrets: &[init::Secret],
    appliance_root: &Path,
    transport: &mut dyn Transport,
    reporter: &mut dyn Reporter,
) -> Result<()> {
    if secrets.is_empty() {
        return Ok(());
    }
    if !appliance_root.join("run").is_dir() {
        bail!(
            "the appliance's root has no /run directory, so it would not see {SECRETS_DIR}; add one to the image"
        );
    }
    let fetched = fetch_all(secrets, transport, reporter)?;
    mount_tmpfs()?;
    for (spec, secret) in secrets.iter().zip(&fetched) {
        write(Path::new("/"), spec, secret).with_context(|| format!("secret '{}'", spec.name))?;
    }
    say!("{} secret(s) written to {SECRETS_DIR}", secrets.len());
    Ok(())
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
