//! Frames as bytes: the header check, strict decoding of every payload, encoding, and reading
//! and writing whole frames on a stream (see the layout table in [`super`]).

use super::relay::{self, Method, RelayError, RelayRequest, RelayResponse};
use super::{
    AppLog, EncodeError, ErrorMessage, Evidence, FRAME_VERSION, Finished, FrameError, HEADER_LEN,
    Hello, Kind, LogStream, MAGIC, MAX_APPLOG_CHUNK, MAX_ERROR_LEN, MAX_PAYLOAD_LEN, MAX_VMPL,
    Message, Nonce, PUBLIC_KEY_LEN, Provider, REPORT_LEN, RawKeyRequest, ReadError, ReportRequest,
    ReportResponse, WriteError,
};
use crate::certs::{CertEntry, Guid, MAX_CERT_ENTRIES};
use crate::keyreq::{KEY_REQUEST_LEN, KEY_RESPONSE_LEN, KeyResponse};
use crate::stream::read_full;
use std::io::{Read, Write};

/// The fields of a frame header, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub payload_len: usize,
}

/// Checks a frame header.
pub fn parse_header(bytes: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&bytes[0..4]);
    if magic != MAGIC {
        return Err(FrameError::BadMagic { found: magic });
    }
    if bytes[4] != FRAME_VERSION {
        return Err(FrameError::UnsupportedVersion { found: bytes[4] });
    }
    let kind = Kind::from_byte(bytes[5]).ok_or(FrameError::UnknownKind { found: bytes[5] })?;
    let reserved = u16::from_le_bytes([bytes[6], bytes[7]]);
    if reserved != 0 {
        return Err(FrameError::ReservedNotZero { found: reserved });
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if len as u64 > MAX_PAYLOAD_LEN as u64 {
        return Err(FrameError::TooLong {
            len: u64::from(len),
        });
    }
    Ok(Header {
        kind,
        payload_len: len as usize,
    })
}

/// Decodes exactly one whole frame.
pub fn decode(frame: &[u8]) -> Result<Message, FrameError> {
    let Some(header) = frame.first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            found: frame.len(),
        });
    };
    let header = parse_header(header)?;
    let payload = &frame[HEADER_LEN..];
    if payload.len() < header.payload_len {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN + header.payload_len,
            found: frame.len(),
        });
    }
    if payload.len() > header.payload_len {
        return Err(FrameError::TrailingBytes {
            kind: header.kind,
            extra: payload.len() - header.payload_len,
        });
    }
    decode_payload(header.kind, payload)
}

/// Decodes the payload of a frame whose header said `kind`.
pub fn decode_payload(kind: Kind, payload: &[u8]) -> Result<Message, FrameError> {
    let mut r = Cursor {
        kind,
        rest: payload,
    };
    let message = match kind {
        Kind::Hello => {
            r.exact_len(2)?;
            let protocol = r.u8()?;
            let provider = r.u8()?;
            let provider = Provider::from_byte(provider)
                .ok_or(FrameError::UnknownProvider { found: provider })?;
            Message::Hello(Hello { protocol, provider })
        }
        Kind::Nonce => {
            Message::Nonce(Nonce::from_slice(payload).map_err(FrameError::WrongNonceLength)?)
        }
        Kind::Evidence => {
            let report = r.report()?;
            let public_key = r.array::<PUBLIC_KEY_LEN>()?;
            let certs = r.certs()?;
            r.finish()?;
            Message::Evidence(Evidence {
                report,
                public_key,
                certs,
            })
        }
        Kind::Error => {
            if payload.len() > MAX_ERROR_LEN {
                return Err(FrameError::ErrorTooLong {
                    found: payload.len(),
                });
            }
            let text = std::str::from_utf8(payload).map_err(|_| FrameError::ErrorNotUtf8)?;
            Message::Error(ErrorMessage(text.to_owned()))
        }
        Kind::Finished => {
            r.exact_len(5)?;
            let how = r.u8()?;
            let value = r.u32()? as i32;
            Message::Finished(match how {
                1 => Finished::Exited(value),
                2 => Finished::Signaled(value),
                found => return Err(FrameError::UnknownEnding { found }),
            })
        }
        Kind::Stop => {
            r.exact_len(0)?;
            Message::Stop
        }
        Kind::AppLog => {
            let stream = r.u8()?;
            let stream = LogStream::from_byte(stream)
                .ok_or(FrameError::UnknownLogStream { found: stream })?;
            if r.rest.is_empty() || r.rest.len() > MAX_APPLOG_CHUNK {
                return Err(FrameError::AppLogSize {
                    found: r.rest.len(),
                });
            }
            Message::AppLog(AppLog {
                stream,
                bytes: r.rest.to_vec(),
            })
        }
        Kind::RelayRequest => {
            let method = r.u8()?;
            let method =
                Method::from_byte(method).ok_or(FrameError::Relay(RelayError::UnknownMethod {
                    found: method,
                }))?;
            let path = r.text16("path")?;
            let cookie = r.text16("cookie")?;
            let body = r.bytes32()?;
            r.finish()?;
            let request = RelayRequest {
                method,
                path,
                cookie: (!cookie.is_empty()).then_some(cookie),
                body,
            };
            request.check().map_err(FrameError::Relay)?;
            Message::RelayRequest(request)
        }
        Kind::RelayResponse => {
            let status = r.u16()?;
            let count = usize::from(r.u8()?);
            if count > relay::MAX_SET_COOKIES {
                return Err(FrameError::Relay(RelayError::TooManyCookies {
                    found: count,
                }));
            }
            let mut set_cookie = Vec::with_capacity(count);
            for _ in 0..count {
                set_cookie.push(r.text16("Set-Cookie")?);
            }
            let content_type = r.text16("content type")?;
            let body = r.bytes32()?;
            r.finish()?;
            let response = RelayResponse {
                status,
                set_cookie,
                content_type,
                body,
            };
            response.check().map_err(FrameError::Relay)?;
            Message::RelayResponse(response)
        }
        Kind::ReportRequest => {
            r.exact_len(68)?;
            let report_data = r.array::<64>()?;
            let vmpl = r.u32()?;
            if vmpl > MAX_VMPL {
                return Err(FrameError::VmplOutOfRange { found: vmpl });
            }
            Message::ReportRequest(ReportRequest { report_data, vmpl })
        }
        Kind::ReportResponse => {
            let report = r.report()?;
            let certs = r.certs()?;
            r.finish()?;
            Message::ReportResponse(ReportResponse { report, certs })
        }
        Kind::KeyRequest => {
            r.exact_len(KEY_REQUEST_LEN)?;
            Message::KeyRequest(RawKeyRequest(r.array()?))
        }
        Kind::KeyResponse => {
            r.exact_len(KEY_RESPONSE_LEN)?;
            Message::KeyResponse(KeyResponse::decode(payload).map_err(FrameError::BadKeyResponse)?)
        }
    };
    Ok(message)
}

struct Cursor<'a> {
    kind: Kind,
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn exact_len(&self, expected: usize) -> Result<(), FrameError> {
        if self.rest.len() != expected {
            return Err(FrameError::WrongPayloadLength {
                kind: self.kind,
                expected,
                found: self.rest.len(),
            });
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(FrameError::Truncated {
                needed: n,
                found: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// `len: u16` and that many bytes of text (bounded before anything is copied).
    fn text16(&mut self, field: &'static str) -> Result<String, FrameError> {
        let len = usize::from(self.u16()?);
        if len > relay::MAX_HEADER_VALUE_LEN {
            return Err(FrameError::Relay(RelayError::FieldTooLong { field, len }));
        }
        relay::text(self.take(len)?, field)
    }

    /// `len: u32` and that many bytes (the payload is bounded, so `take` bounds the length).
    fn bytes32(&mut self) -> Result<Vec<u8>, FrameError> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn report(&mut self) -> Result<Box<[u8; REPORT_LEN]>, FrameError> {
        let mut report = Box::new([0u8; REPORT_LEN]);
        report.copy_from_slice(self.take(REPORT_LEN)?);
        Ok(report)
    }

    /// `count: u16`, then per certificate `guid[16]`, `len: u32`, `data[len]`.
    fn certs(&mut self) -> Result<Vec<CertEntry>, FrameError> {
        let kind = self.kind;
        let count = usize::from(self.u16()?);
        if count > MAX_CERT_ENTRIES {
            return Err(FrameError::TooManyCerts { kind, found: count });
        }
        let mut certs: Vec<CertEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let guid = Guid(self.array()?);
            // The whole payload is in memory and bounded, so take() bounds the length.
            let len = self.u32()? as usize;
            let data = self.take(len)?.to_vec();
            if data.is_empty() {
                return Err(FrameError::EmptyCert { kind, guid });
            }
            if certs.iter().any(|c| c.guid == guid) {
                return Err(FrameError::DuplicateCert { kind, guid });
            }
            certs.push(CertEntry { guid, data });
        }
        Ok(certs)
    }

    fn finish(&self) -> Result<(), FrameError> {
        if !self.rest.is_empty() {
            return Err(FrameError::TrailingBytes {
                kind: self.kind,
                extra: self.rest.len(),
            });
        }
        Ok(())
    }
}

fn put_certs(out: &mut Vec<u8>, kind: Kind, certs: &[CertEntry]) -> Result<(), EncodeError> {
    if certs.len() > MAX_CERT_ENTRIES {
        return Err(EncodeError::TooManyCerts {
            kind,
            found: certs.len(),
        });
    }
    out.extend_from_slice(&(certs.len() as u16).to_le_bytes());
    for cert in certs {
        let len = u32::try_from(cert.data.len()).map_err(|_| EncodeError::TooLong {
            kind,
            len: cert.data.len(),
        })?;
        out.extend_from_slice(&cert.guid.0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&cert.data);
    }
    Ok(())
}

/// Encodes a message as one frame.
pub fn encode(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let kind = message.kind();
    let mut payload = Vec::new();
    match message {
        Message::Hello(h) => {
            payload.push(h.protocol);
            payload.push(h.provider as u8);
        }
        Message::Nonce(n) => payload.extend_from_slice(&n.0),
        Message::Evidence(e) => {
            payload.extend_from_slice(&e.report[..]);
            payload.extend_from_slice(&e.public_key);
            put_certs(&mut payload, kind, &e.certs)?;
        }
        Message::Error(ErrorMessage(text)) => {
            if text.len() > MAX_ERROR_LEN {
                return Err(EncodeError::ErrorTooLong { found: text.len() });
            }
            payload.extend_from_slice(text.as_bytes());
        }
        Message::Finished(end) => {
            let (how, value) = match *end {
                Finished::Exited(code) => (1u8, code),
                Finished::Signaled(signal) => (2u8, signal),
            };
            payload.push(how);
            payload.extend_from_slice(&value.to_le_bytes());
        }
        Message::Stop => {}
        Message::AppLog(log) => {
            if log.bytes.is_empty() || log.bytes.len() > MAX_APPLOG_CHUNK {
                return Err(EncodeError::AppLogSize {
                    found: log.bytes.len(),
                });
            }
            payload.push(log.stream as u8);
            payload.extend_from_slice(&log.bytes);
        }
        Message::RelayRequest(r) => {
            r.check().map_err(EncodeError::Relay)?;
            payload.push(r.method as u8);
            relay::put_text16(&mut payload, &r.path);
            relay::put_text16(&mut payload, r.cookie.as_deref().unwrap_or_default());
            relay::put_bytes32(&mut payload, &r.body);
        }
        Message::RelayResponse(r) => {
            r.check().map_err(EncodeError::Relay)?;
            payload.extend_from_slice(&r.status.to_le_bytes());
            payload.push(r.set_cookie.len() as u8);
            for value in &r.set_cookie {
                relay::put_text16(&mut payload, value);
            }
            relay::put_text16(&mut payload, &r.content_type);
            relay::put_bytes32(&mut payload, &r.body);
        }
        Message::ReportRequest(r) => {
            payload.extend_from_slice(&r.report_data);
            payload.extend_from_slice(&r.vmpl.to_le_bytes());
        }
        Message::ReportResponse(r) => {
            payload.extend_from_slice(&r.report[..]);
            put_certs(&mut payload, kind, &r.certs)?;
        }
        Message::KeyRequest(r) => payload.extend_from_slice(&r.0),
        Message::KeyResponse(r) => payload.extend_from_slice(&r.encode()),
    }
    encode_raw(kind, &payload)
}

/// Frames an arbitrary payload under `kind` without checking it: for peers that must send what
/// the typed messages cannot express (tests of the other side's refusals).
pub fn encode_raw(kind: Kind, payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(EncodeError::TooLong {
            kind,
            len: payload.len(),
        });
    }
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&MAGIC);
    frame.push(FRAME_VERSION);
    frame.push(kind as u8);
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// Reads exactly one frame from a stream. Allocates at most [`MAX_PAYLOAD_LEN`] bytes, and only
/// after the header has been checked.
pub fn read_message(reader: &mut impl Read) -> Result<Message, ReadError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(reader, &mut header).map_err(ReadError::Io)?;
    if got == 0 {
        return Err(ReadError::Closed);
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            found: got,
        }
        .into());
    }
    let header_fields = parse_header(&header)?;
    let mut payload = vec![0u8; header_fields.payload_len];
    let got = read_full(reader, &mut payload).map_err(ReadError::Io)?;
    if got < payload.len() {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN + payload.len(),
            found: HEADER_LEN + got,
        }
        .into());
    }
    Ok(decode_payload(header_fields.kind, &payload)?)
}

/// Writes one message as one frame and flushes.
pub fn write_message(writer: &mut impl Write, message: &Message) -> Result<(), WriteError> {
    let frame = encode(message)?;
    writer.write_all(&frame).map_err(WriteError::Io)?;
    writer.flush().map_err(WriteError::Io)
}
