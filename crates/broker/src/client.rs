//! A KBS client over HTTP for the tests and the benchmark: snpkit-kbs's attester steps carried by
//! reqwest. (The guest runs the same steps over the host's relay instead.)
//!
//! Evidence comes from a closure, so callers choose its source: the emulated PSP's signer in tests
//! and the benchmark, and, on hardware, the PSP.

use reqwest::header::{COOKIE, SET_COOKIE};
use snpkit_kbs::attester::{self, Session};
use snpkit_kbs::message::{self, Challenge, ErrorInformation};
use snpkit_kbs::{ResourcePath, Secret};
use std::time::Duration;

/// What went wrong, from the client's side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP request to the broker failed")]
    Http(#[from] reqwest::Error),
    #[error("the broker refused with {status}: {detail}")]
    Refused {
        status: u16,
        kind: String,
        detail: String,
    },
    #[error("the broker's reply is not usable")]
    Message(#[from] message::MessageError),
    #[error("the evidence cannot be sent")]
    Evidence(#[from] snpkit_kbs::evidence::EvidenceError),
    #[error("the secret does not open")]
    Jwe(#[from] snpkit_kbs::jwe::JweError),
}

impl ClientError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            ClientError::Refused { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }
}

/// One broker, one connection pool.
#[derive(Debug, Clone)]
pub struct KbsClient {
    http: reqwest::Client,
    base: String,
}

/// A challenge in hand: the session cookie, the challenge and the attester's session.
#[derive(Debug)]
pub struct Challenged {
    pub cookie: String,
    pub challenge: Challenge,
    pub session: Session,
}

async fn checked(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ClientError> {
    let status = resp.status();
    let body = read_bounded(resp, max).await?;
    if status.is_success() {
        return Ok(body);
    }
    let info = message::parse_error(&body)
        .unwrap_or_else(|| ErrorInformation::new("?", String::from_utf8_lossy(&body)));
    Err(ClientError::Refused {
        status: status.as_u16(),
        kind: info.kind().to_owned(),
        detail: info.detail,
    })
}

async fn read_bounded(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(ClientError::Message(message::MessageError::TooLarge {
                what: "reply",
                len: body.len() + chunk.len(),
                max,
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl KbsClient {
    /// `base` like `http://127.0.0.1:8080`.
    pub fn new(base: &str) -> Result<KbsClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(KbsClient::with(http, base))
    }

    pub fn with(http: reqwest::Client, base: &str) -> KbsClient {
        KbsClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /kbs/v0/auth`.
    pub async fn auth(&self) -> Result<Challenged, ClientError> {
        let resp = self
            .http
            .post(self.url(message::PATH_AUTH))
            .header("content-type", "application/json")
            .body(attester::auth_body())
            .send()
            .await?;
        let cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let body = checked(resp, message::MAX_CHALLENGE_LEN).await?;
        let cookie = attester::session_cookie(cookies.iter().map(String::as_str))?;
        let challenge = message::parse_challenge(&body)?;
        let session = Session::start(&challenge);
        Ok(Challenged {
            cookie,
            challenge,
            session,
        })
    }

    /// `POST /kbs/v0/attest` with a prepared body.
    pub async fn attest(&self, cookie: &str, body: Vec<u8>) -> Result<String, ClientError> {
        let resp = self
            .http
            .post(self.url(message::PATH_ATTEST))
            .header("content-type", "application/json")
            .header(COOKIE, attester::cookie_header(cookie))
            .body(body)
            .send()
            .await?;
        let body = checked(resp, message::MAX_TOKEN_LEN).await?;
        Ok(message::parse_token(&body)?.token)
    }

    /// `GET /kbs/v0/resource/…`: the JWE as sent.
    pub async fn resource_jwe(
        &self,
        cookie: &str,
        name: &ResourcePath,
        max_secret: usize,
    ) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .http
            .get(self.url(&name.url_path()))
            .header(COOKIE, attester::cookie_header(cookie))
            .send()
            .await?;
        checked(resp, snpkit_kbs::jwe::max_jwe_len(max_secret)).await
    }

    /// The whole handshake for one resource; `evidence` turns the attester's session into the
    /// `attest` body (it signs a report whose REPORT_DATA is `session.report_data()`).
    pub async fn fetch(
        &self,
        name: &ResourcePath,
        max_secret: usize,
        evidence: impl FnOnce(&Session) -> Result<Vec<u8>, ClientError>,
    ) -> Result<Secret, ClientError> {
        let c = self.auth().await?;
        let body = evidence(&c.session)?;
        self.attest(&c.cookie, body).await?;
        let jwe = self.resource_jwe(&c.cookie, name, max_secret).await?;
        Ok(c.session.open(&jwe, max_secret)?)
    }
}
