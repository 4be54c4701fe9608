//! Relay frames: the guest's HTTP exchanges with a key broker, carried over the attest port by
//! a host that sees every byte and is trusted with none of them (issue 11).
//!
//! [`RelayRequest`] (guest → host, kind 8) payload:
//!
//! | field        | layout                                                     |
//! |--------------|------------------------------------------------------------|
//! | method       | `u8`: 1 = GET, 2 = POST                                    |
//! | path         | `len: u16`, ASCII, under [`RELAY_PATH_PREFIX`]             |
//! | cookie       | `len: u16`, the `Cookie` header's value (0 = none)         |
//! | body         | `len: u32`, bytes                                          |
//!
//! [`RelayResponse`] (host → guest, kind 9) payload:
//!
//! | field        | layout                                                     |
//! |--------------|------------------------------------------------------------|
//! | status       | `u16`, an HTTP status (100..=599)                          |
//! | set-cookie   | `count: u8` (≤ [`MAX_SET_COOKIES`]), each `len: u16`, ASCII |
//! | content-type | `len: u16`, ASCII (0 = none)                               |
//! | body         | `len: u32`, bytes                                          |
//!
//! Text fields are bounded ([`MAX_HEADER_VALUE_LEN`]) and printable ASCII, so nothing either side
//! relays can split an HTTP header; the path's checks (no `.`/`..` segment, also once
//! percent-decoded, only unreserved characters and `%XX`) keep a guest from steering the host's
//! HTTP client outside the broker's `/kbs/v0/` tree. With the other fields at their limits, a
//! body of up to [`MAX_RELAY_BODY_LEN`] bytes always fits in one frame; a longer one is refused
//! when encoding (the host names it, rather than cutting a JWE short).

use super::{FrameError, MAX_PAYLOAD_LEN};

/// Every relayed request's path starts with this.
pub const RELAY_PATH_PREFIX: &str = "/kbs/v0/";
/// Longest path, cookie, `Set-Cookie` value and content type.
pub const MAX_HEADER_VALUE_LEN: usize = 512;
/// Most `Set-Cookie` values a response carries.
pub const MAX_SET_COOKIES: usize = 4;
/// Room the fields other than the body take at most (rounded up).
const MAX_FIELDS_LEN: usize = 4096;
/// Longest body either relay frame carries.
pub const MAX_RELAY_BODY_LEN: usize = MAX_PAYLOAD_LEN - MAX_FIELDS_LEN;

/// The HTTP methods the KBS protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get = 1,
    Post = 2,
}

impl Method {
    pub fn from_byte(b: u8) -> Option<Method> {
        match b {
            1 => Some(Method::Get),
            2 => Some(Method::Post),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Guest → host: one HTTP request for the broker.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayRequest {
    pub method: Method,
    /// Under [`RELAY_PATH_PREFIX`]; see [`check_path`].
    pub path: String,
    /// The `Cookie` header's value, if any.
    pub cookie: Option<String>,
    pub body: Vec<u8>,
}

/// Host → guest: the broker's answer to the last [`RelayRequest`].
#[derive(Clone, PartialEq, Eq)]
pub struct RelayResponse {
    pub status: u16,
    /// The `Set-Cookie` header values, in order.
    pub set_cookie: Vec<String>,
    /// The `Content-Type` header's value (empty when there was none).
    pub content_type: String,
    pub body: Vec<u8>,
}

// Bodies carry evidence and ciphertext: a Debug print shows their size, not their bytes.
impl std::fmt::Debug for RelayRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RelayRequest({} {}, cookie {}, {} body bytes)",
            self.method.as_str(),
            self.path,
            if self.cookie.is_some() { "set" } else { "none" },
            self.body.len()
        )
    }
}

impl std::fmt::Debug for RelayResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RelayResponse({}, {} cookies, {:?}, {} body bytes)",
            self.status,
            self.set_cookie.len(),
            self.content_type,
            self.body.len()
        )
    }
}

/// What is wrong with a relay frame's fields.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RelayError {
    #[error("relay method {found} is not GET (1) or POST (2)")]
    UnknownMethod { found: u8 },
    #[error("relay path {path:?} {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("relayed {field} is {len} bytes; the limit is {MAX_HEADER_VALUE_LEN}")]
    FieldTooLong { field: &'static str, len: usize },
    #[error("relayed {field} holds a byte that is not printable ASCII")]
    NotPrintable { field: &'static str },
    #[error("relayed response carries {found} Set-Cookie values; the limit is {MAX_SET_COOKIES}")]
    TooManyCookies { found: usize },
    #[error("a relayed cookie is empty; send none instead")]
    EmptyCookie,
    #[error("relayed HTTP status {found} is not in 100..=599")]
    BadStatus { found: u16 },
    #[error("relayed body is {len} bytes; one frame carries at most {MAX_RELAY_BODY_LEN}")]
    BodyTooLong { len: usize },
}

fn printable(field: &'static str, value: &str) -> Result<(), RelayError> {
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(RelayError::FieldTooLong {
            field,
            len: value.len(),
        });
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(RelayError::NotPrintable { field });
    }
    Ok(())
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A path the host may ask the broker for: under [`RELAY_PATH_PREFIX`], at most
/// [`MAX_HEADER_VALUE_LEN`] bytes of unreserved characters, `/` and `%XX`, with no empty, `.`
/// or `..` segment and no `/`, `\`, `.`-only or control character hidden in a percent escape.
pub fn check_path(path: &str) -> Result<(), RelayError> {
    let bad = |reason| RelayError::BadPath {
        path: path.chars().take(80).collect(),
        reason,
    };
    if path.len() > MAX_HEADER_VALUE_LEN {
        return Err(RelayError::FieldTooLong {
            field: "path",
            len: path.len(),
        });
    }
    let Some(rest) = path.strip_prefix(RELAY_PATH_PREFIX) else {
        return Err(bad("is not under /kbs/v0/"));
    };
    for segment in rest.split('/') {
        let bytes = segment.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'%' {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex_digit),
                    bytes.get(i + 2).copied().and_then(hex_digit),
                ) else {
                    return Err(bad("has a % not followed by two hex digits"));
                };
                let d = hi << 4 | lo;
                if d < 0x20 || d == 0x7f || d == b'/' || d == b'\\' {
                    return Err(bad(
                        "hides a slash, backslash or control character in a percent escape",
                    ));
                }
                decoded.push(d);
                i += 3;
            } else if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                decoded.push(b);
                i += 1;
            } else {
                return Err(bad(
                    "holds a character other than letters, digits, -._~, / and %XX",
                ));
            }
        }
        if decoded.is_empty() {
            return Err(bad("has an empty segment"));
        }
        if decoded == b"." || decoded == b".." {
            return Err(bad("has a . or .. segment"));
        }
    }
    Ok(())
}

impl RelayRequest {
    /// Checks every field (both when encoding and when decoding).
    pub fn check(&self) -> Result<(), RelayError> {
        check_path(&self.path)?;
        if let Some(cookie) = &self.cookie {
            if cookie.is_empty() {
                // On the wire, an empty cookie is no cookie: say None.
                return Err(RelayError::EmptyCookie);
            }
            printable("cookie", cookie)?;
        }
        if self.body.len() > MAX_RELAY_BODY_LEN {
            return Err(RelayError::BodyTooLong {
                len: self.body.len(),
            });
        }
        Ok(())
    }
}

impl RelayResponse {
    /// Checks every field (both when encoding and when decoding).
    pub fn check(&self) -> Result<(), RelayError> {
        if !(100..=599).contains(&self.status) {
            return Err(RelayError::BadStatus { found: self.status });
        }
        if self.set_cookie.len() > MAX_SET_COOKIES {
            return Err(RelayError::TooManyCookies {
                found: self.set_cookie.len(),
            });
        }
        for value in &self.set_cookie {
            printable("Set-Cookie", value)?;
        }
        printable("content type", &self.content_type)?;
        if self.body.len() > MAX_RELAY_BODY_LEN {
            return Err(RelayError::BodyTooLong {
                len: self.body.len(),
            });
        }
        Ok(())
    }
}

/// Appends `len: u16` and the text (checked by the caller).
pub(super) fn put_text16(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Appends `len: u32` and the bytes (checked by the caller).
pub(super) fn put_bytes32(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A text field's bytes as a string (printable ASCII is checked by `check`).
pub(super) fn text(bytes: &[u8], field: &'static str) -> Result<String, FrameError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| FrameError::Relay(RelayError::NotPrintable { field }))
}
