//! The audit log: one JSON line per decision (a challenge issued or refused, an attestation
//! passed or refused, a resource released or refused), to a file (appended) or stderr.
//!
//! A line never holds a secret, a session cookie (only a hash prefix of it, to follow one session
//! through its lines) or a private key. Emulated evidence is marked on every line that concerns
//! it: `"emulated": true` and `"evidence": "EMULATED — NOT HARDWARE-BACKED"`. A resource is
//! released only after its line was written: a broker that cannot record stops releasing.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// What one line records. Absent fields are left out of the JSON.
#[derive(Debug, Default, Serialize)]
pub struct Event {
    /// RFC 3339, UTC.
    pub time: String,
    /// `auth`, `attest` or `resource`.
    pub event: &'static str,
    /// `allow` or `deny`.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// First 16 hex digits of SHA-256 of the session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulated: Option<bool>,
    /// `EMULATED — NOT HARDWARE-BACKED` or `hardware`, when evidence is concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
    /// How an attested guest's measurement was accepted: `reference`, or `signature (rule …)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Size of a released resource (never its content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_ms: Option<f64>,
}

/// How to mark evidence in a line.
pub fn evidence_mark(emulated: bool) -> &'static str {
    if emulated {
        snpkit_attest::EMULATED_BANNER
    } else {
        "hardware"
    }
}

/// A cookie as it appears in the log.
pub fn session_tag(cookie: &str) -> String {
    hex::encode(&Sha256::digest(cookie.as_bytes())[..8])
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub struct Audit {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Audit")
    }
}

impl Audit {
    pub fn stderr() -> Audit {
        Audit::to(Box::new(std::io::stderr()))
    }

    /// Append to a file, creating it (mode 0600: lines name sessions and resources).
    pub fn file(path: &Path) -> std::io::Result<Audit> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Audit::to(Box::new(f)))
    }

    pub fn to(sink: Box<dyn Write + Send>) -> Audit {
        Audit {
            sink: Mutex::new(sink),
        }
    }

    /// Write one line and flush it.
    pub fn record(&self, mut event: Event) -> std::io::Result<()> {
        if event.time.is_empty() {
            event.time = now_rfc3339();
        }
        let mut line = serde_json::to_vec(&event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        sink.write_all(&line)?;
        sink.flush()
    }
}

/// An in-memory sink for tests: every line written, shared.
#[derive(Debug, Clone, Default)]
pub struct MemorySink(pub std::sync::Arc<Mutex<Vec<u8>>>);

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MemorySink {
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_line_per_event_without_empty_fields() {
        let sink = MemorySink::default();
        let audit = Audit::to(Box::new(sink.clone()));
        audit
            .record(Event {
                event: "attest",
                decision: "deny",
                emulated: Some(true),
                evidence: Some(evidence_mark(true)),
                session: Some(session_tag("cookie")),
                ..Event::default()
            })
            .expect("writes");
        audit
            .record(Event {
                event: "auth",
                decision: "allow",
                ..Event::default()
            })
            .expect("writes");
        let lines = sink.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["evidence"], "EMULATED — NOT HARDWARE-BACKED");
        assert_eq!(lines[0]["session"].as_str().expect("tag").len(), 16);
        assert!(lines[1].get("reason").is_none());
        assert!(lines[1]["time"].as_str().expect("time").ends_with('Z'));
    }

    #[test]
    fn an_unwritable_sink_is_an_error() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let audit = Audit::to(Box::new(Broken));
        assert!(audit.record(Event::default()).is_err());
    }
}
