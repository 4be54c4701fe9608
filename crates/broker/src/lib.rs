//! The key broker: a KBS speaking Trustee's protocol 0.4.0 that releases a secret only to a guest
//! whose SEV-SNP evidence passes snpkit-attest's verdict against one image's reference values, or
//! against a release rule's ID-block signer keys (any image our author key signed, by signature).
//!
//! Owns the HTTP server ([`server`]: axum on hyper and tokio; [`listener`]: the bounded accept
//! loop, optional TLS with rustls), sessions and their single-use nonces ([`session`]), the
//! appraisal of evidence ([`appraise`]), the resources folder ([`store`]), the release rules
//! ([`rules`], TOML, their signer keys in [`signer`]), the reference values read from
//! `expected.json` ([`reference`]), the audit log ([`audit`]) and the attestation token
//! ([`token`]). Must not know about QEMU, images beyond `expected.json`, or how a guest reaches it
//! (directly, or through the host's relay): the protocol's bytes come from snpkit-kbs.
//!
//! ```text
//! POST /kbs/v0/auth      Request ─▶ session{nonce, TTL} ─▶ Set-Cookie kbs-session-id, Challenge
//! POST /kbs/v0/attest    cookie ─▶ take nonce (once) ─▶ appraise: nonce = runtime-data.nonce,
//!                        evidence ─▶ report bytes + certs ─▶ verdict(report, endorsements, policy,
//!                        reference config whose measurement matches, REPORT_DATA = binding(nonce,
//!                        key)) ─▶ Attested{key, measurement, configs} ─▶ {"token"}
//!                        (or, in no reference config, a signer rule's verdict passing it by signature)
//! GET  /kbs/v0/resource/<repo>/<type>/<tag>   cookie ─▶ Attested ─▶ rules ─▶ DIR/<repo>/<type>/<tag>
//!                        ─▶ JWE sealed to the attested key
//! ```
//! Refusals are RFC 7807 bodies as Trustee writes them (401 for authentication and attestation,
//! 403 when a rule withholds a resource, 404 for a missing one, 413 for an oversized body).
//! Every decision is one audit line; emulated evidence is refused unless `allow_emulated`, and
//! when allowed it is marked EMULATED in the audit, the token and a response header.

#![forbid(unsafe_code)]

pub mod appraise;
pub mod audit;
pub mod client;
pub mod listener;
pub mod reference;
pub mod rules;
pub mod server;
pub mod session;
pub mod signer;
pub mod stats;
pub mod store;
pub mod token;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use listener::Server;
pub use stats::{Stats, StatsSnapshot};

/// Operational limits. The defaults suit one appliance fleet on one broker; every one is a
/// command-line option of `cargo xtask kbs serve`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a challenge's nonce may be answered.
    pub nonce_ttl: Duration,
    /// How long an attested session may fetch resources.
    pub session_ttl: Duration,
    /// Open sessions at most (challenged or attested).
    pub max_sessions: usize,
    /// Concurrent connections at most; more are closed at once.
    pub max_connections: usize,
    /// Reading one request's headers and body, and a TLS handshake, must finish within this.
    pub request_timeout: Duration,
    /// A connection (keep-alive included) lives at most this long.
    pub connection_lifetime: Duration,
    /// Largest resource file released.
    pub max_resource: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            nonce_ttl: Duration::from_secs(60),
            session_ttl: Duration::from_secs(300),
            max_sessions: 10_000,
            max_connections: 1024,
            request_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(300),
            max_resource: 1024 * 1024,
        }
    }
}

/// Where the broker may look for AMD endorsements the guest did not send (a VCEK, a CRL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endorsers {
    /// AMD's KDS, through snpkit's cache.
    Kds,
    /// snpkit's KDS cache only: no network.
    CacheOnly,
}

/// Where audit lines go.
pub enum AuditTo {
    Stderr,
    File(PathBuf),
    Writer(Box<dyn std::io::Write + Send>),
}

impl std::fmt::Debug for AuditTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditTo::Stderr => f.write_str("stderr"),
            AuditTo::File(p) => write!(f, "{}", p.display()),
            AuditTo::Writer(_) => f.write_str("a writer"),
        }
    }
}

/// A certificate chain and its private key, PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything a broker is started with.
#[derive(Debug)]
pub struct Config {
    /// `DIR` of `DIR/<repo>/<type>/<tag>`.
    pub resources: PathBuf,
    /// The image's `expected.json`.
    pub reference: PathBuf,
    /// A verification policy (snpkit-attest's TOML); else its defaults.
    pub policy: Option<PathBuf>,
    /// Release rules; else every verified guest may have every resource.
    pub rules: Option<PathBuf>,
    /// Accept the emulated PSP's test chain (testing only).
    pub allow_emulated: bool,
    /// Where this machine's emulated test chain is cached (default: snpkit's cache).
    pub test_chain_dir: Option<PathBuf>,
    pub endorsers: Endorsers,
    pub limits: Limits,
    pub audit: AuditTo,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Reference(#[from] reference::ReferenceError),
    #[error(transparent)]
    Rules(#[from] rules::RulesError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot read the policy file {path}")]
    PolicyRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the policy file {path} is not usable")]
    Policy {
        path: PathBuf,
        #[source]
        source: snpkit_attest::policy::PolicyError,
    },
    #[error(
        "allow_emulated was asked for, but this machine has no emulated test chain in {dir} (the first emulated boot makes it)"
    )]
    NoTestChain { dir: PathBuf },
    #[error("the emulated test chain in {} cannot be used", dir.display())]
    BadTestChain {
        dir: PathBuf,
        #[source]
        source: Box<snpkit_attest::emulated::EmulatedError>,
    },
    #[error("no cache folder for the test chain: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("the KDS client cannot start")]
    Kds(#[source] snpkit_attest::kds::KdsError),
    #[error("cannot open the audit log {path}")]
    Audit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {what} {path}")]
    Tls {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Largest policy file read.
const MAX_POLICY_LEN: u64 = 1024 * 1024;

/// A broker, ready to serve: everything it judges by is loaded and checked.
#[derive(Debug, Clone)]
pub struct Broker {
    inner: Arc<server::Inner>,
}

impl Broker {
    pub fn new(config: Config) -> Result<Broker, BrokerError> {
        let reference = reference::ReferenceSet::read(&config.reference)?;
        let policy = match &config.policy {
            None => snpkit_attest::Policy::default(),
            Some(path) => {
                let bytes = store::read_bounded(path, MAX_POLICY_LEN).map_err(|e| {
                    BrokerError::PolicyRead {
                        path: path.clone(),
                        source: match e {
                            store::BoundedRead::Io(e) => e,
                            store::BoundedRead::TooLarge => {
                                std::io::Error::other("more than 1 MiB")
                            }
                        },
                    }
                })?;
                snpkit_attest::Policy::from_toml(&String::from_utf8_lossy(&bytes)).map_err(
                    |source| BrokerError::Policy {
                        path: path.clone(),
                        source,
                    },
                )?
            }
        };
        let rules = match &config.rules {
            Some(path) => {
                let rules = rules::Rules::read(path, &reference)?;
                rules.check_policy(&policy)?;
                Some(rules)
            }
            None => None,
        };
        let store = store::ResourceStore::open(&config.resources, config.limits.max_resource)?;
        let test_chain = if config.allow_emulated {
            let dir = match &config.test_chain_dir {
                Some(d) => d.clone(),
                None => {
                    snpkit_attest::emulated::default_dir().map_err(|_| BrokerError::NoCacheDir)?
                }
            };
            Some(
                snpkit_attest::emulated::TestChain::existing(&dir)
                    .map_err(|source| BrokerError::BadTestChain {
                        dir: dir.clone(),
                        source: Box::new(source),
                    })?
                    .ok_or(BrokerError::NoTestChain { dir })?,
            )
        } else {
            None
        };
        let kds_config =
            snpkit_attest::kds::KdsConfig::amd(config.endorsers == Endorsers::CacheOnly)
                .map_err(BrokerError::Kds)?;
        let kds = snpkit_attest::kds::Kds::new(kds_config).map_err(BrokerError::Kds)?;
        let audit = match config.audit {
            AuditTo::Stderr => audit::Audit::stderr(),
            AuditTo::File(path) => {
                audit::Audit::file(&path).map_err(|source| BrokerError::Audit { path, source })?
            }
            AuditTo::Writer(w) => audit::Audit::to(w),
        };
        let tls = match &config.tls {
            Some(files) => Some(listener::tls_config(files)?),
            None => None,
        };
        let appraiser = appraise::Appraiser {
            reference,
            policy,
            allow_emulated: config.allow_emulated,
            test_chain,
            kds: Some(kds),
            memo: snpkit_attest::SignatureMemo::default(),
        };
        Ok(Broker {
            inner: Arc::new(server::Inner::new(
                appraiser,
                rules,
                store,
                audit,
                config.limits,
                tls,
            )),
        })
    }

    /// Listen on `addr` (port 0 for any free port) and serve until the [`Server`] is shut down.
    pub async fn serve(&self, addr: std::net::SocketAddr) -> Result<Server, BrokerError> {
        listener::serve(self.inner.clone(), addr).await
    }

    pub fn reference(&self) -> &reference::ReferenceSet {
        &self.inner.appraiser.reference
    }

    pub fn rules(&self) -> Option<&rules::Rules> {
        self.inner.rules.as_ref()
    }

    pub fn allows_emulated(&self) -> bool {
        self.inner.appraiser.allow_emulated
    }

    pub fn resources(&self) -> &std::path::Path {
        self.inner.store.root()
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            signatures_remembered: self.inner.appraiser.memo.len(),
            ..self.inner.stats.snapshot()
        }
    }

    pub fn uses_tls(&self) -> bool {
        self.inner.tls.is_some()
    }
}
