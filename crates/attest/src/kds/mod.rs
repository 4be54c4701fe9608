//! Client for AMD's Key Distribution Service (KDS): VCEKs, certificate chains and CRLs, with an
//! on-disk cache and an offline mode.
//!
//! URL forms (AMD's "VCEK/VLEK certificate" specifications; the same as snpguest and go-sev-guest):
//! - `{base}/vcek/v1/{Product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` — `hwid` is the
//!   report's CHIP_ID in hex; on Turin only its first 8 bytes, and `fmcSPL=` is added.
//! - `{base}/{vcek|vlek}/v1/{Product}/cert_chain` — PEM, ASK (or ASVK) then ARK.
//! - `{base}/{vcek|vlek}/v1/{Product}/crl` — DER CRL signed by the ARK.
//!
//! The cache lives under `$XDG_CACHE_HOME/snpkit/kds/`, keyed by the URL path. Only answers that
//! decode as what was asked for are cached, so garbage from a broken server never sticks. VCEKs never
//! change for one chip and TCB; CRLs are re-fetched once past their nextUpdate.

pub mod cache;

use crate::certs::Cert;
use crate::certs::crl::Crl;
use crate::product::Product;
use crate::report::Tcb;
use std::path::PathBuf;
use std::time::Duration;
use time::OffsetDateTime;

/// AMD's public KDS.
pub const AMD_KDS: &str = "https://kdsintf.amd.com";

#[derive(Debug, Clone)]
pub struct KdsConfig {
    /// Base URL without a trailing slash (tests point it at a loopback server).
    pub base_url: String,
    /// `…/snpkit/kds`
    pub cache_dir: PathBuf,
    /// Use only the cache; name what is missing.
    pub offline: bool,
    pub timeout: Duration,
    /// Extra attempts after the first, for connection errors, 5xx and 429.
    pub retries: u32,
    /// Pause before the first retry; doubled each time.
    pub backoff: Duration,
}

impl KdsConfig {
    /// AMD's KDS, the default cache folder, 10 s timeout, 3 retries.
    pub fn amd(offline: bool) -> Result<KdsConfig, KdsError> {
        Ok(KdsConfig {
            base_url: AMD_KDS.into(),
            cache_dir: default_cache_dir().ok_or(KdsError::NoCacheDir)?,
            offline,
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(500),
        })
    }
}

/// `kds/` under snpkit's cache folder (see [`crate::cache_root`]).
pub fn default_cache_dir() -> Option<PathBuf> {
    crate::cache_root().map(|root| root.join("kds"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Vcek,
    Vlek,
}

impl KeyKind {
    fn path(self) -> &'static str {
        match self {
            KeyKind::Vcek => "vcek",
            KeyKind::Vlek => "vlek",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KdsError {
    #[error(
        "offline, and {what} is not in the cache ({path}); run once without --offline to fetch it"
    )]
    NotCached { what: String, path: PathBuf },
    #[error("KDS {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("KDS {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("KDS {url} answered something that is not {what}: {reason}")]
    Garbage {
        url: String,
        what: String,
        reason: String,
    },
    #[error("cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cache folder: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Whether a cached answer may still be used (CRLs expire).
type Freshness<'a> = dyn Fn(&[u8]) -> bool + 'a;

/// A KDS client: one connection pool, one cache.
pub struct Kds {
    cfg: KdsConfig,
    client: Option<reqwest::blocking::Client>,
}

impl std::fmt::Debug for Kds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Kds({}, offline={})",
            self.cfg.base_url, self.cfg.offline
        )
    }
}

/// The VCEK path for a chip and TCB (without the base URL).
pub fn vcek_path(product: Product, chip_id: &[u8], tcb: &Tcb) -> String {
    let hwid = hex::encode(chip_id);
    let mut query = String::new();
    if let Some(fmc) = tcb.fmc {
        query.push_str(&format!("fmcSPL={fmc}&"));
    }
    query.push_str(&format!(
        "blSPL={}&teeSPL={}&snpSPL={}&ucodeSPL={}",
        tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    ));
    format!("/vcek/v1/{}/{hwid}?{query}", product.kds_name())
}

impl Kds {
    pub fn new(cfg: KdsConfig) -> Result<Kds, KdsError> {
        let client = if cfg.offline {
            None
        } else {
            Some(
                reqwest::blocking::Client::builder()
                    .timeout(cfg.timeout)
                    .connect_timeout(cfg.timeout)
                    .user_agent(concat!("snpkit/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| KdsError::Client(e.to_string()))?,
            )
        };
        Ok(Kds { cfg, client })
    }

    pub fn config(&self) -> &KdsConfig {
        &self.cfg
    }

    /// The VCEK for a chip at a reported TCB, as DER. `chip_id` is the report's CHIP_ID as the
    /// product uses it (64 bytes, or the first 8 on Turin: see `Report::chip_id_for`).
    pub fn vcek(&self, product: Product, chip_id: &[u8], tcb: &Tcb) -> Result<Vec<u8>, KdsError> {
        let path = vcek_path(product, chip_id, tcb);
        let what = format!(
            "the {product} VCEK for chip {}… at {tcb}",
            hex::encode(&chip_id[..chip_id.len().min(8)])
        );
        self.get(&path, &what, None, |bytes| {
            Cert::decode("VCEK", bytes)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// ASK (or ASVK) then ARK, PEM, as the KDS serves them.
    pub fn cert_chain(&self, product: Product, kind: KeyKind) -> Result<Vec<u8>, KdsError> {
        let path = format!("/{}/v1/{}/cert_chain", kind.path(), product.kds_name());
        let what = format!("the {product} {} cert_chain", kind.path());
        self.get(&path, &what, None, |bytes| {
            match Cert::decode_bundle("cert_chain", bytes) {
                Ok(v) if v.len() == 2 => Ok(()),
                Ok(v) => Err(format!("{} certificates, expected 2", v.len())),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    /// The ARK-signed CRL, DER. A cached CRL past its nextUpdate (at `now`) is fetched again.
    pub fn crl(
        &self,
        product: Product,
        kind: KeyKind,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, KdsError> {
        let path = format!("/{}/v1/{}/crl", kind.path(), product.kds_name());
        let what = format!("the {product} {} CRL", kind.path());
        let fresh = move |bytes: &[u8]| {
            Crl::decode(bytes).is_ok_and(|c| c.next_update().is_none_or(|n| now <= n))
        };
        self.get(&path, &what, Some(&fresh), |bytes| {
            Crl::decode(bytes).map(|_| ()).map_err(|e| e.to_string())
        })
    }

    fn get(
        &self,
        path: &str,
        what: &str,
        still_good: Option<&Freshness<'_>>,
        validate: impl Fn(&[u8]) -> Result<(), String>,
    ) -> Result<Vec<u8>, KdsError> {
        let cache_file = cache::file_for(&self.cfg.cache_dir, path);
        if let Some(bytes) = cache::read(&cache_file)? {
            // Offline, a stale CRL is still returned: the verifier then fails it as stale, by name.
            if validate(&bytes).is_ok()
                && (self.cfg.offline || still_good.is_none_or(|f| f(&bytes)))
            {
                return Ok(bytes);
            }
        }
        let Some(client) = &self.client else {
            return Err(KdsError::NotCached {
                what: what.into(),
                path: cache_file,
            });
        };
        let url = format!("{}{path}", self.cfg.base_url.trim_end_matches('/'));
        let bytes = self.fetch(client, &url)?;
        validate(&bytes).map_err(|reason| KdsError::Garbage {
            url: url.clone(),
            what: what.into(),
            reason,
        })?;
        cache::write(&cache_file, &bytes)?;
        Ok(bytes)
    }

    fn fetch(&self, client: &reqwest::blocking::Client, url: &str) -> Result<Vec<u8>, KdsError> {
        let mut delay = self.cfg.backoff;
        let mut attempt = 0;
        loop {
            let result = client.get(url).send();
            let retryable = match result {
                Ok(resp) if resp.status().is_success() => {
                    return resp
                        .bytes()
                        .map(|b| b.to_vec())
                        .map_err(|e| KdsError::Http {
                            url: url.into(),
                            reason: e.to_string(),
                        });
                }
                Ok(resp) => {
                    let status = resp.status();
                    let err = KdsError::Status {
                        url: url.into(),
                        status: status.as_u16(),
                    };
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        return Err(err);
                    }
                    err
                }
                Err(e) => KdsError::Http {
                    url: url.into(),
                    reason: error_chain(&e),
                },
            };
            if attempt >= self.cfg.retries {
                return Err(retryable);
            }
            tracing::info!("KDS: {retryable}; retrying in {delay:?}");
            std::thread::sleep(delay);
            delay *= 2;
            attempt += 1;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
