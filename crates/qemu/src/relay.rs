//! The host's relay of the guest's key-broker exchanges (`boot --kbs URL`, issue 11): each
//! [`RelayRequest`] the guest sends on the attest port becomes one HTTP request to the broker, and
//! the broker's answer goes back as a [`RelayResponse`].
//!
//! The host is the adversary the protocol is built against: it sees the challenge, the evidence
//! and ciphertext sealed to a key that never leaves the guest, and nothing it could use. What this
//! module guards is the host itself, against a guest (or a broker) that misbehaves: only paths
//! under `/kbs/v0/` are relayed (the frame decoder has checked them; they are checked again
//! before a URL is made), every exchange has a time limit, no more than [`MAX_EXCHANGES`] are
//! relayed per boot, and a reply is read only up to what one frame carries — a larger one is
//! refused by name instead of being cut short.

use snpkit_wire::frame::relay::{
    MAX_HEADER_VALUE_LEN, MAX_RELAY_BODY_LEN, MAX_SET_COOKIES, check_path,
};
use snpkit_wire::frame::{self, Message, Method, RelayRequest, RelayResponse};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Most requests one boot may relay (three per secret; a recipe has a handful).
pub const MAX_EXCHANGES: u32 = 256;
/// How long one exchange with the broker may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to the broker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Carries one guest request to a broker. An `Err` is sent to the guest as an error message
/// (the guest then stops the boot, naming it).
pub trait Relay: Send {
    fn exchange(&mut self, request: &RelayRequest) -> Result<RelayResponse, String>;
}

impl<F> Relay for F
where
    F: FnMut(&RelayRequest) -> Result<RelayResponse, String> + Send,
{
    fn exchange(&mut self, request: &RelayRequest) -> Result<RelayResponse, String> {
        self(request)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(
        "--kbs {url:?} is not an http:// or https:// URL without a path (e.g. http://127.0.0.1:8080)"
    )]
    BadUrl { url: String },
    #[error("setting up the HTTP client for the broker")]
    Client(#[source] reqwest::Error),
    #[error("creating the relay capture {path}")]
    Capture {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The broker named by `--kbs`, reached with reqwest (rustls for `https://`).
pub struct HttpRelay {
    http: reqwest::blocking::Client,
    base: String,
    capture: Option<File>,
    timeout: Duration,
    exchanges: u32,
}

impl HttpRelay {
    /// A relay to `url` (scheme, host and port; no path, query or fragment).
    pub fn new(url: &str) -> Result<HttpRelay, RelayError> {
        let base = url.trim_end_matches('/');
        let bad = || RelayError::BadUrl { url: url.into() };
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(bad)?;
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || !rest.is_ascii() {
            return Err(bad());
        }
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(EXCHANGE_TIMEOUT)
            // The broker's URL is the one given; a redirect elsewhere is not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(RelayError::Client)?;
        Ok(HttpRelay {
            http,
            base: base.to_owned(),
            capture: None,
            timeout: EXCHANGE_TIMEOUT,
            exchanges: 0,
        })
    }

    /// Writes every relayed frame, both ways, to `path` (tests check what the host saw): a new
    /// file, never one that exists (a FIFO there would block the host; a file would be lost).
    pub fn capture_to(mut self, path: &Path) -> Result<HttpRelay, RelayError> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| RelayError::Capture {
                path: path.to_owned(),
                source,
            })?;
        self.capture = Some(file);
        Ok(self)
    }

    /// A shorter limit per exchange (tests of a slow broker).
    pub fn with_timeout(mut self, timeout: Duration) -> HttpRelay {
        self.timeout = timeout;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn capture(&mut self, message: Message) {
        if let Some(file) = &mut self.capture
            && let Ok(bytes) = frame::encode(&message)
        {
            // A capture that cannot be written is a test's problem, not the boot's.
            let _ = file.write_all(&bytes);
        }
    }

    fn send(&self, request: &RelayRequest) -> Result<RelayResponse, String> {
        check_path(&request.path).map_err(|e| e.to_string())?;
        let url = format!("{}{}", self.base, request.path);
        let what = format!("{} {}", request.method.as_str(), request.path);
        let mut builder = match request.method {
            Method::Get => self.http.get(&url),
            Method::Post => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(request.body.clone()),
        };
        builder = builder.timeout(self.timeout);
        if let Some(cookie) = &request.cookie {
            builder = builder.header("cookie", cookie);
        }
        let reply = builder.send().map_err(|e| {
            if e.is_timeout() {
                format!(
                    "the broker at {} did not answer {what} within {:?}",
                    self.base, self.timeout
                )
            } else {
                format!(
                    "the broker at {} could not be reached for {what}: {}",
                    self.base,
                    error_chain(&e)
                )
            }
        })?;
        let status = reply.status().as_u16();
        let mut set_cookie = Vec::new();
        for value in reply.headers().get_all("set-cookie") {
            let value = value
                .to_str()
                .ok()
                .filter(|v| v.len() <= MAX_HEADER_VALUE_LEN)
                .ok_or_else(|| {
                    format!("the broker's reply to {what} sets a cookie the relay cannot carry (not ASCII or over {MAX_HEADER_VALUE_LEN} bytes)")
                })?;
            set_cookie.push(value.to_owned());
        }
        if set_cookie.len() > MAX_SET_COOKIES {
            return Err(format!(
                "the broker's reply to {what} sets {} cookies; the relay carries {MAX_SET_COOKIES}",
                set_cookie.len()
            ));
        }
        let content_type = match reply.headers().get("content-type") {
            None => String::new(),
            Some(v) => v
                .to_str()
                .ok()
                .filter(|v| v.len() <= MAX_HEADER_VALUE_LEN)
                .ok_or_else(|| {
                    format!(
                        "the broker's reply to {what} has a content type the relay cannot carry"
                    )
                })?
                .to_owned(),
        };
        // One byte more than a frame carries tells a reply that is too large from one that fits.
        let mut body = Vec::new();
        reply
            .take(MAX_RELAY_BODY_LEN as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("reading the broker's reply to {what}: {}", error_chain(&e)))?;
        if body.len() > MAX_RELAY_BODY_LEN {
            return Err(format!(
                "the broker's reply to {what} is larger than the {MAX_RELAY_BODY_LEN} bytes one channel frame carries; refusing it whole rather than cutting it short"
            ));
        }
        let response = RelayResponse {
            status,
            set_cookie,
            content_type,
            body,
        };
        response
            .check()
            .map_err(|e| format!("the broker's reply to {what}: {e}"))?;
        Ok(response)
    }
}

impl Relay for HttpRelay {
    fn exchange(&mut self, request: &RelayRequest) -> Result<RelayResponse, String> {
        self.exchanges += 1;
        if self.exchanges > MAX_EXCHANGES {
            return Err(format!(
                "the guest asked for more than {MAX_EXCHANGES} broker exchanges in one boot; the relay stops"
            ));
        }
        self.capture(Message::RelayRequest(request.clone()));
        let answer = self.send(request);
        if let Ok(response) = &answer {
            self.capture(Message::RelayResponse(response.clone()));
        }
        answer
    }
}

/// An error and its sources on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
