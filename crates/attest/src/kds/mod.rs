//! Client for AMD's Key Distribution Service (KDS): VCEKs, certificate chains and CRLs, with an
//! on-disk cache and an offline mode.
//!
//! URL forms (AMD's "VCEK/VLEK certificate" specifications; the same as snpguest and go-sev-guest):
//! - `{base}/vcek/v1/{Product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..` — `hwid` is the
//!   report's CHIP_ID in hex; on Turin only its first 8 bytes, and `fmcSPL=` is added.
//! - `{base}/{vcek|vlek}/v1/{Product}/cert_chain` — PEM, ASK (or ASVK) then ARK.
//! - `{base}/{vcek|vlek}/v1/{Product}/crl` — DER CRL signed by the ARK.
//!
//! The cache lives in `kds/` of snpkit's cache folder ([`snpkit_cache::root`]), keyed by the URL path. Only answers that
//! decode as what was asked for are cached, so garbage from a broken server never sticks. VCEKs never
//! change for one chip and TCB; CRLs are re-fetched once past their nextUpdate.
//!
//! Everything the KDS (or a cache file) says is outside input: bodies are capped
//! ([`MAX_CERT_BODY`], [`MAX_CRL_BODY`]) before they are read into memory, a request that gets no
//! answer ends after the timeout with "did not answer", connection and body-read errors, 5xx and 429
//! are retried with a doubling pause, and a `Retry-After` is honoured up to
//! [`KdsConfig::max_retry_after`] (a server asking for longer is not waited for).

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

/// Largest body accepted for a VCEK or a certificate chain (AMD's are under 2 KiB and 4 KiB).
pub const MAX_CERT_BODY: u64 = 64 * 1024;
/// Largest CRL accepted (AMD's are about 1 KiB; room for many entries).
pub const MAX_CRL_BODY: u64 = 1024 * 1024;

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
    /// The longest `Retry-After` honoured; a server asking for more ends the attempts.
    pub max_retry_after: Duration,
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
            max_retry_after: Duration::from_secs(20),
        })
    }
}

/// `kds/` under snpkit's cache folder (see [`snpkit_cache::root`]), shared with the builder.
pub fn default_cache_dir() -> Option<PathBuf> {
    snpkit_cache::root().map(|root| root.join("kds"))
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
    #[error(
        "offline, and the cached {what} ({path}) is unusable ({reason}); run once without --offline to fetch it again"
    )]
    CacheUnusable {
        what: String,
        path: PathBuf,
        reason: String,
    },
    #[error("KDS {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("KDS {url} did not answer within {} s", secs(*.after))]
    Timeout { url: String, after: Duration },
    #[error("KDS {url} answered more than {max} bytes, too much for {what}")]
    TooBig { url: String, what: String, max: u64 },
    #[error(
        "KDS {url} answered HTTP {status} and asks to retry after {} s, longer than the {} s snpkit waits: try again later",
        secs(*.wait), secs(*.max)
    )]
    RetryTooLate {
        url: String,
        status: u16,
        wait: Duration,
        max: Duration,
    },
    #[error("KDS {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("KDS {url} answered something that is not {what}: {reason}")]
    Garbage {
        url: String,
        what: String,
        reason: String,
    },
    #[error("KDS cache: cannot {action} {path}")]
    Cache {
        /// What was being done: "read", "write", "create the folder".
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cache folder: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
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
        self.get(&path, &what, MAX_CERT_BODY, None, |bytes| {
            Cert::decode("VCEK", bytes)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// ASK (or ASVK) then ARK, PEM, as the KDS serves them.
    pub fn cert_chain(&self, product: Product, kind: KeyKind) -> Result<Vec<u8>, KdsError> {
        let path = format!("/{}/v1/{}/cert_chain", kind.path(), product.kds_name());
        let what = format!("the {product} {} cert_chain", kind.path());
        self.get(
            &path,
            &what,
            MAX_CERT_BODY,
            None,
            |bytes| match Cert::decode_bundle("cert_chain", bytes) {
                Ok(v) if v.len() == 2 => Ok(()),
                Ok(v) => Err(format!("{} certificates, expected 2", v.len())),
                Err(e) => Err(e.to_string()),
            },
        )
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
        self.get(&path, &what, MAX_CRL_BODY, Some(&fresh), |bytes| {
            Crl::decode(bytes).map(|_| ()).map_err(|e| e.to_string())
        })
    }

    fn get(
        &self,
        path: &str,
        what: &str,
        max: u64,
        still_good: Option<&Freshness<'_>>,
        validate: impl Fn(&[u8]) -> Result<(), String>,
    ) -> Result<Vec<u8>, KdsError> {
        let cache_file = cache::file_for(&self.cfg.cache_dir, path);
        // Why the cached copy, if any, was not used: said when offline leaves nothing else.
        let unusable = match cache::read(&cache_file, max)? {
            cache::Cached::Missing => None,
            cache::Cached::TooBig(size) => Some(format!("{size} bytes, more than {max}")),
            cache::Cached::Bytes(bytes) => match validate(&bytes) {
                // Offline, a stale CRL is still returned: the verifier then fails it as stale, by name.
                Ok(()) if self.cfg.offline || still_good.is_none_or(|f| f(&bytes)) => {
                    return Ok(bytes);
                }
                Ok(()) => None,
                Err(reason) => Some(reason),
            },
        };
        let Some(client) = &self.client else {
            return Err(match unusable {
                Some(reason) => KdsError::CacheUnusable {
                    what: what.into(),
                    path: cache_file,
                    reason,
                },
                None => KdsError::NotCached {
                    what: what.into(),
                    path: cache_file,
                },
            });
        };
        let url = format!("{}{path}", self.cfg.base_url.trim_end_matches('/'));
        let bytes = self.fetch(client, &url, what, max)?;
        validate(&bytes).map_err(|reason| KdsError::Garbage {
            url: url.clone(),
            what: what.into(),
            reason,
        })?;
        cache::write(&cache_file, &bytes)?;
        Ok(bytes)
    }

    fn fetch(
        &self,
        client: &reqwest::blocking::Client,
        url: &str,
        what: &str,
        max: u64,
    ) -> Result<Vec<u8>, KdsError> {
        let mut delay = self.cfg.backoff;
        let mut attempt = 0;
        loop {
            // (the error, the pause the server asked for)
            let (failure, asked) = match client.get(url).send() {
                Ok(resp) if resp.status().is_success() => {
                    match self.read_body(resp, url, what, max) {
                        Ok(bytes) => return Ok(bytes),
                        // Asking again brings the same oversized answer.
                        Err(err @ KdsError::TooBig { .. }) => return Err(err),
                        Err(err) => (err, None),
                    }
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
                    let asked = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry_after(v, OffsetDateTime::now_utc()));
                    if let Some(wait) = asked.filter(|w| *w > self.cfg.max_retry_after) {
                        return Err(KdsError::RetryTooLate {
                            url: url.into(),
                            status: status.as_u16(),
                            wait,
                            max: self.cfg.max_retry_after,
                        });
                    }
                    (err, asked)
                }
                Err(e) => (self.transport_error(url, e), None),
            };
            if attempt >= self.cfg.retries {
                return Err(failure);
            }
            let pause = asked.map_or(delay, |a| a.max(delay));
            tracing::info!("KDS: {failure}; retrying in {pause:?}");
            std::thread::sleep(pause);
            delay *= 2;
            attempt += 1;
        }
    }

    /// The body, refused once it passes `max` bytes (a lying or absent Content-Length included).
    fn read_body(
        &self,
        resp: reqwest::blocking::Response,
        url: &str,
        what: &str,
        max: u64,
    ) -> Result<Vec<u8>, KdsError> {
        use std::io::Read;
        let too_big = || KdsError::TooBig {
            url: url.into(),
            what: what.into(),
            max,
        };
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        resp.take(max + 1)
            .read_to_end(&mut body)
            .map_err(|e| self.body_error(url, e))?;
        if body.len() as u64 > max {
            return Err(too_big());
        }
        Ok(body)
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> KdsError {
        // The message names the URL already: reqwest's own would say it again.
        self.failure(url, e.is_timeout(), || crate::error_text(&e.without_url()))
    }

    fn body_error(&self, url: &str, e: std::io::Error) -> KdsError {
        match e.downcast::<reqwest::Error>() {
            Ok(r) => self.transport_error(url, r),
            Err(e) => self.failure(url, e.kind() == std::io::ErrorKind::TimedOut, || {
                format!("reading the answer: {}", crate::error_text(&e))
            }),
        }
    }

    /// A request that got no usable answer: out of time, or failed for `reason`.
    fn failure(&self, url: &str, timed_out: bool, reason: impl FnOnce() -> String) -> KdsError {
        let url = url.into();
        if timed_out {
            KdsError::Timeout {
                url,
                after: self.cfg.timeout,
            }
        } else {
            KdsError::Http {
                url,
                reason: reason(),
            }
        }
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): seconds, or an HTTP date (then the time until it).
fn retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    Some(Duration::try_from(when - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = datetime!(2026-07-01 12:00 UTC);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Wed, 01 Jul 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past means now.
        assert_eq!(
            retry_after("Wed, 01 Jul 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }
}
