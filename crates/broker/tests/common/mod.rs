//! A broker on loopback with a reference written by the real `expected.json` writer, a resources
//! folder with a random token, an in-memory audit log, and evidence from the emulated PSP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use snpkit_attest::emulated::{ReportFields, TestChain, emulated_report};
use snpkit_broker::audit::MemorySink;
use snpkit_broker::client::{ClientError, KbsClient};
use snpkit_broker::{AuditTo, Broker, Config, Endorsers, Limits, Server};
use snpkit_kbs::ResourcePath;
use snpkit_kbs::attester::Session;
use snpkit_kbs::evidence::CertKind;
use std::path::{Path, PathBuf};

pub const POLICY: u64 = 0x30000;
pub const GOOD: [u8; 48] = [0x11; 48];
pub const OTHER: [u8; 48] = [0x22; 48];
pub const TOKEN_PATH: &str = "default/secret-hello/token";

pub fn chain() -> &'static TestChain {
    TestChain::cached().expect("test chain (generated once into the XDG cache)")
}

/// The emulated PSP's answer to the broker's challenge: a report binding the session's nonce and
/// key, signed by the test VCEK, with the test chain's certificates.
pub fn evidence_with(
    session: &Session,
    measurement: [u8; 48],
    policy: u64,
) -> Result<Vec<u8>, ClientError> {
    evidence_fields(session, |f| {
        f.measurement = measurement;
        f.policy = policy;
    })
}

/// Evidence whose report fields `edit` sets (from the reference measurement and policy, bound to
/// the session): an ID-block identity, for example, as the emulated PSP fills it.
pub fn evidence_fields(
    session: &Session,
    edit: impl FnOnce(&mut ReportFields),
) -> Result<Vec<u8>, ClientError> {
    let c = chain();
    let mut fields = ReportFields::new(GOOD, session.report_data(), POLICY);
    edit(&mut fields);
    let report = emulated_report(c, &fields);
    let certs: [(CertKind, &[u8]); 3] = [
        (CertKind::Ark, c.roots.ark.der()),
        (CertKind::Ask, c.roots.ask.der()),
        (CertKind::Vcek, c.vcek.der()),
    ];
    Ok(session.attestation_body(&report, &certs)?)
}

pub fn evidence(session: &Session) -> Result<Vec<u8>, ClientError> {
    evidence_with(session, GOOD, POLICY)
}

pub fn write_expected(path: &Path, configs: &[(&str, [u8; 48])]) {
    use snpkit_bundle::{EXPECTED_SCHEMA, Expected, ExpectedConfig, LaunchSpec};
    let e = Expected {
        schema: EXPECTED_SCHEMA,
        recipe: "secret-hello".into(),
        inputs: vec![],
        configs: configs
            .iter()
            .map(|(name, m)| ExpectedConfig {
                launch: LaunchSpec {
                    name: (*name).into(),
                    vcpus: 1,
                    vcpu_type: "EPYC-v4".into(),
                    vmm: "qemu".into(),
                    guest_features: 1,
                    policy: POLICY,
                    memory_mib: 512,
                    host_data: None,
                },
                measurement: hex::encode(m),
            })
            .collect(),
    };
    std::fs::write(path, serde_json::to_vec_pretty(&e).unwrap()).unwrap();
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub broker: Broker,
    pub server: Option<Server>,
    pub client: KbsClient,
    pub audit: MemorySink,
    pub token: Vec<u8>,
}

pub struct Setup {
    pub configs: Vec<(&'static str, [u8; 48])>,
    pub rules: Option<String>,
    /// Files written into the fixture's folder before the broker starts (`rules.toml` is there,
    /// so key files it names go here; resources go under `resources/`).
    pub files: Vec<(String, Vec<u8>)>,
    pub allow_emulated: bool,
    pub limits: Limits,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            configs: vec![("hello-1", GOOD)],
            rules: None,
            files: Vec::new(),
            allow_emulated: true,
            limits: Limits::default(),
        }
    }
}

pub fn random_token() -> Vec<u8> {
    use rand_core::RngCore;
    let mut t = vec![0u8; 48];
    rand_core::OsRng.fill_bytes(&mut t);
    t
}

impl Fixture {
    pub async fn start(setup: Setup) -> Fixture {
        let _ = chain();
        let dir = tempfile::tempdir().unwrap();
        let expected = dir.path().join("expected.json");
        write_expected(&expected, &setup.configs);
        let resources = dir.path().join("resources");
        let token = random_token();
        let tok = resources.join(TOKEN_PATH);
        std::fs::create_dir_all(tok.parent().unwrap()).unwrap();
        std::fs::write(&tok, &token).unwrap();
        for (name, bytes) in &setup.files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        }
        let rules = setup.rules.as_ref().map(|text| {
            let p = dir.path().join("rules.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        let audit = MemorySink::default();
        let broker = Broker::new(Config {
            resources,
            reference: expected,
            policy: None,
            rules,
            allow_emulated: setup.allow_emulated,
            test_chain_dir: None,
            endorsers: Endorsers::CacheOnly,
            limits: setup.limits,
            audit: AuditTo::Writer(Box::new(audit.clone())),
            tls: None,
        })
        .expect("broker starts");
        let server = broker
            .serve("127.0.0.1:0".parse().unwrap())
            .await
            .expect("listens");
        let client = KbsClient::new(&format!("http://{}", server.local_addr)).unwrap();
        Fixture {
            dir,
            broker,
            server: Some(server),
            client,
            audit,
            token,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().local_addr
    }

    pub fn resources(&self) -> PathBuf {
        self.dir.path().join("resources")
    }

    pub fn token_name() -> ResourcePath {
        ResourcePath::parse(TOKEN_PATH).unwrap()
    }

    /// Audit lines as text, for "the secret appears nowhere" checks.
    pub fn audit_text(&self) -> String {
        String::from_utf8_lossy(&self.audit.0.lock().unwrap()).into_owned()
    }
}

/// One raw HTTP/1.1 exchange on a fresh connection (no URL normalisation, no client checks):
/// `(status, body)`, or `None` when the server closed without an answer.
pub async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(request).await.ok()?;
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    if read.is_err() || buf.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// A raw request with `Connection: close`.
pub fn request(method: &str, path: &str, cookie: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        r.push_str(&format!("Cookie: kbs-session-id={c}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
