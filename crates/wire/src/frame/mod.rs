//! Channel frames between the guest's `/init` and the host, on the virtio-serial ports
//! `org.snpkit.attest` (host ⇄ guest protocol) and `org.snpkit.emulated-psp` (the emulated PSP).
//!
//! A frame is a 12-byte header and a payload:
//!
//! | offset | size | field                                          |
//! |-------:|-----:|------------------------------------------------|
//! | 0      | 4    | magic `SNPK`                                   |
//! | 4      | 1    | frame version, [`FRAME_VERSION`]               |
//! | 5      | 1    | message kind ([`Kind`])                        |
//! | 6      | 2    | reserved, zero                                 |
//! | 8      | 4    | payload length, little-endian, ≤ [`MAX_PAYLOAD_LEN`] |
//!
//! Payloads are fixed layouts, little-endian, with no optional parts; see each message type. The peer
//! on the other end is an adversary (the host for the guest, a compromised guest for the host), so
//! decoding is strict: every length is checked before anything is allocated, and a wrong magic,
//! version, kind, reserved field, size or trailing byte is a typed error.
//!
//! Conversation on `org.snpkit.attest`: guest → [`Hello`], host → [`Nonce`], guest → [`Evidence`],
//! and once the appliance's entry point has ended, guest → [`Finished`]; or [`ErrorMessage`] from
//! either side, after which the sender stops. `Finished` is the host's only evidence that the
//! entry point ran to its end: a guest that reboots (dm-verity's `restart_on_corruption`), panics
//! or powers off early never sends it, and QEMU's exit status cannot tell those apart. On
//! `org.snpkit.emulated-psp`: guest → [`ReportRequest`], host → [`ReportResponse`] or [`ErrorMessage`].

use crate::binding::NONCE_LEN;
use crate::certs::{CertEntry, Guid, MAX_CERT_ENTRIES};
use std::io::{self, Read, Write};

/// Name of the virtio-serial port for the attestation conversation.
pub const ATTEST_PORT: &str = "org.snpkit.attest";
/// Name of the virtio-serial port of the emulated PSP (emulated launches only).
pub const EMULATED_PSP_PORT: &str = "org.snpkit.emulated-psp";

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"SNPK";
/// Version of the frame layout and of the conversation (2: [`Finished`] ends every run).
pub const FRAME_VERSION: u8 = 2;
/// Header size in bytes.
pub const HEADER_LEN: usize = 12;
/// Largest frame, header included: a report (1184 bytes) and a full AMD chain (ARK, ASK, VCEK, CRL,
/// a few KiB each) fit several times over; the kernel caps the certificate buffer at 16 KiB.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Largest payload.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - HEADER_LEN;
/// Size of an SEV-SNP attestation report (SNP ABI spec, ATTESTATION_REPORT).
pub const REPORT_LEN: usize = 1184;
/// Size of the guest's X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Largest error message, in bytes of UTF-8.
pub const MAX_ERROR_LEN: usize = 4096;
/// Highest VMPL an SNP guest can ask a report for.
pub const MAX_VMPL: u32 = 3;

/// What kind of message a frame carries (header byte 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hello = 1,
    Nonce = 2,
    Evidence = 3,
    Error = 4,
    Finished = 5,
    ReportRequest = 16,
    ReportResponse = 17,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Nonce,
            3 => Kind::Evidence,
            4 => Kind::Error,
            5 => Kind::Finished,
            16 => Kind::ReportRequest,
            17 => Kind::ReportResponse,
            _ => return None,
        })
    }
}

/// Where the guest's report comes from. Named in [`Hello`] for people reading logs; the verifier
/// never trusts it (the report's signature chain says who signed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `/sys/kernel/config/tsm/report` with the sev_guest provider (AMD's PSP).
    ConfigfsTsm = 1,
    /// `/dev/sev-guest` ioctls (AMD's PSP).
    SevGuest = 2,
    /// The host's emulated PSP on [`EMULATED_PSP_PORT`]: test keys, never hardware.
    EmulatedPsp = 3,
}

impl Provider {
    fn from_byte(b: u8) -> Option<Provider> {
        Some(match b {
            1 => Provider::ConfigfsTsm,
            2 => Provider::SevGuest,
            3 => Provider::EmulatedPsp,
            _ => return None,
        })
    }

    /// Short human name (`configfs-tsm`, `sev-guest`, `EMULATED PSP`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::ConfigfsTsm => "configfs-tsm",
            Provider::SevGuest => "/dev/sev-guest",
            Provider::EmulatedPsp => "EMULATED PSP (test keys, not hardware)",
        }
    }
}

/// Guest → host, first on the attest port. Payload: `protocol: u8`, `provider: u8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The guest's [`FRAME_VERSION`]; the host refuses a version it does not speak.
    pub protocol: u8,
    pub provider: Provider,
}

/// Host → guest: the fresh nonce to bind into REPORT_DATA. Payload: exactly 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_LEN]);

/// A nonce of the wrong size, refused on both sides.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("nonce is {found} bytes; a nonce is exactly {NONCE_LEN} bytes")]
pub struct NonceLengthError {
    pub found: usize,
}

impl Nonce {
    pub fn from_slice(bytes: &[u8]) -> Result<Nonce, NonceLengthError> {
        let array: [u8; NONCE_LEN] = bytes
            .try_into()
            .map_err(|_| NonceLengthError { found: bytes.len() })?;
        Ok(Nonce(array))
    }
}

/// Guest → host: the report and what the verifier needs beside it.
/// Payload: `report[1184]`, `public_key[32]`, certificate list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub report: Box<[u8; REPORT_LEN]>,
    /// The guest's ephemeral X25519 public key, bound into REPORT_DATA.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Certificates as the provider returned them (possibly none).
    pub certs: Vec<CertEntry>,
}

/// Either side: why the sender gave up. Payload: UTF-8 text, at most [`MAX_ERROR_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage(pub String);

/// Guest → host, last on the attest port: how the appliance's entry point ended.
/// Payload: `how: u8` (1 = exited, 2 = killed by a signal), `value: i32` (the exit status or the
/// signal number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Exited(i32),
    Signaled(i32),
}

impl Finished {
    /// The only ending a run passes with.
    pub fn is_success(self) -> bool {
        self == Finished::Exited(0)
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finished::Exited(code) => write!(f, "exited with status {code}"),
            Finished::Signaled(signal) => write!(f, "was killed by signal {signal}"),
        }
    }
}

/// Guest → emulated PSP: the SNP_GET_REPORT request. Payload: `report_data[64]`, `vmpl: u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRequest {
    pub report_data: [u8; 64],
    pub vmpl: u32,
}

/// Emulated PSP → guest. Payload: `report[1184]`, certificate list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportResponse {
    pub report: Box<[u8; REPORT_LEN]>,
    pub certs: Vec<CertEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Nonce(Nonce),
    Evidence(Evidence),
    Error(ErrorMessage),
    Finished(Finished),
    ReportRequest(ReportRequest),
    ReportResponse(ReportResponse),
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::Hello(_) => Kind::Hello,
            Message::Nonce(_) => Kind::Nonce,
            Message::Evidence(_) => Kind::Evidence,
            Message::Error(_) => Kind::Error,
            Message::Finished(_) => Kind::Finished,
            Message::ReportRequest(_) => Kind::ReportRequest,
            Message::ReportResponse(_) => Kind::ReportResponse,
        }
    }
}

/// A frame that is not what the protocol allows.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error(
        "frame starts with {found:02x?}, not the magic \"SNPK\": the peer does not speak the snpkit channel protocol"
    )]
    BadMagic { found: [u8; 4] },
    #[error("frame version {found}, but this side speaks version {FRAME_VERSION} only")]
    UnsupportedVersion { found: u8 },
    #[error("frame kind {found} is not a known message")]
    UnknownKind { found: u8 },
    #[error("frame header's reserved field is {found:#06x}, must be zero")]
    ReservedNotZero { found: u16 },
    #[error("frame announces a {len}-byte payload; the limit is {MAX_PAYLOAD_LEN} bytes")]
    TooLong { len: u64 },
    #[error("frame is truncated: {needed} bytes needed, {found} present")]
    Truncated { needed: usize, found: usize },
    #[error("{kind:?} payload is {found} bytes, expected {expected}")]
    WrongPayloadLength {
        kind: Kind,
        expected: usize,
        found: usize,
    },
    #[error("{kind:?} payload has {extra} bytes after its last field")]
    TrailingBytes { kind: Kind, extra: usize },
    #[error("the host's {0}")]
    WrongNonceLength(NonceLengthError),
    #[error("Hello names report provider {found}, which is not a known provider")]
    UnknownProvider { found: u8 },
    #[error("report request for VMPL {found}; VMPLs are 0..={MAX_VMPL}")]
    VmplOutOfRange { found: u32 },
    #[error(
        "Finished says the entry point ended in way {found}; 1 (exited) and 2 (signal) are known"
    )]
    UnknownEnding { found: u8 },
    #[error("error message is not UTF-8")]
    ErrorNotUtf8,
    #[error("error message is {found} bytes; the limit is {MAX_ERROR_LEN}")]
    ErrorTooLong { found: usize },
    #[error("{kind:?} lists {found} certificates; the limit is {MAX_CERT_ENTRIES}")]
    TooManyCerts { kind: Kind, found: usize },
    #[error("{kind:?} lists certificate {guid} twice")]
    DuplicateCert { kind: Kind, guid: Guid },
    #[error("{kind:?} lists an empty certificate {guid}")]
    EmptyCert { kind: Kind, guid: Guid },
}

/// Why a message could not be read from a stream.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the peer closed the channel before sending a frame")]
    Closed,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("reading the channel failed")]
    Io(#[source] io::Error),
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("{kind:?} would be a {len}-byte payload; the limit is {MAX_PAYLOAD_LEN} bytes")]
    TooLong { kind: Kind, len: usize },
    #[error("error message is {found} bytes; the limit is {MAX_ERROR_LEN}")]
    ErrorTooLong { found: usize },
    #[error("{kind:?} carries {found} certificates; the limit is {MAX_CERT_ENTRIES}")]
    TooManyCerts { kind: Kind, found: usize },
}

/// Why a message could not be written to a stream.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("writing the channel failed")]
    Io(#[source] io::Error),
}

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
        Message::ReportRequest(r) => {
            payload.extend_from_slice(&r.report_data);
            payload.extend_from_slice(&r.vmpl.to_le_bytes());
        }
        Message::ReportResponse(r) => {
            payload.extend_from_slice(&r.report[..]);
            put_certs(&mut payload, kind, &r.certs)?;
        }
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
    let got = read_full(reader, &mut header)?;
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
    let got = read_full(reader, &mut payload)?;
    if got < payload.len() {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN + payload.len(),
            found: HEADER_LEN + got,
        }
        .into());
    }
    Ok(decode_payload(header_fields.kind, &payload)?)
}

/// Like `read_exact`, but says how much arrived before end of file.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, ReadError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(filled)
}

/// Writes one message as one frame and flushes.
pub fn write_message(writer: &mut impl Write, message: &Message) -> Result<(), WriteError> {
    let frame = encode(message)?;
    writer.write_all(&frame).map_err(WriteError::Io)?;
    writer.flush().map_err(WriteError::Io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::certs::{GUID_ASK, GUID_VCEK};

    fn report(fill: u8) -> Box<[u8; REPORT_LEN]> {
        Box::new([fill; REPORT_LEN])
    }

    fn samples() -> Vec<Message> {
        vec![
            Message::Hello(Hello {
                protocol: FRAME_VERSION,
                provider: Provider::EmulatedPsp,
            }),
            Message::Nonce(Nonce([9; 32])),
            Message::Evidence(Evidence {
                report: report(1),
                public_key: [2; 32],
                certs: vec![
                    CertEntry {
                        guid: GUID_VCEK,
                        data: vec![3; 1400],
                    },
                    CertEntry {
                        guid: GUID_ASK,
                        data: vec![4; 1700],
                    },
                ],
            }),
            Message::Evidence(Evidence {
                report: report(5),
                public_key: [6; 32],
                certs: vec![],
            }),
            Message::Error(ErrorMessage("no provider: …".into())),
            Message::Finished(Finished::Exited(0)),
            Message::Finished(Finished::Exited(-1)),
            Message::Finished(Finished::Signaled(9)),
            Message::ReportRequest(ReportRequest {
                report_data: [7; 64],
                vmpl: 0,
            }),
            Message::ReportResponse(ReportResponse {
                report: report(8),
                certs: vec![CertEntry {
                    guid: GUID_VCEK,
                    data: vec![1],
                }],
            }),
        ]
    }

    #[test]
    fn every_message_round_trips_through_bytes_and_streams() {
        for message in samples() {
            let frame = encode(&message).unwrap();
            assert_eq!(decode(&frame).unwrap(), message);
            let mut stream = Vec::new();
            write_message(&mut stream, &message).unwrap();
            assert_eq!(stream, frame);
            assert_eq!(read_message(&mut &stream[..]).unwrap(), message);
        }
    }

    #[test]
    fn header_layout_is_fixed() {
        let frame = encode(&Message::Nonce(Nonce([0xab; 32]))).unwrap();
        assert_eq!(
            &frame[..12],
            &[b'S', b'N', b'P', b'K', 2, 2, 0, 0, 32, 0, 0, 0]
        );
        assert_eq!(frame.len(), 44);
    }

    #[test]
    fn finished_layout_and_success() {
        let frame = encode(&Message::Finished(Finished::Signaled(9))).unwrap();
        assert_eq!(&frame[5..12], &[5, 0, 0, 5, 0, 0, 0]);
        assert_eq!(&frame[12..], &[2, 9, 0, 0, 0]);
        let frame = encode(&Message::Finished(Finished::Exited(-2))).unwrap();
        assert_eq!(&frame[12..], &[1, 0xfe, 0xff, 0xff, 0xff]);
        assert!(Finished::Exited(0).is_success());
        for other in [
            Finished::Exited(1),
            Finished::Exited(-1),
            Finished::Signaled(0),
        ] {
            assert!(!other.is_success(), "{other}");
        }
        assert_eq!(Finished::Exited(3).to_string(), "exited with status 3");
    }

    fn nonce_frame() -> Vec<u8> {
        encode(&Message::Nonce(Nonce([1; 32]))).unwrap()
    }

    #[test]
    fn wrong_magic_version_kind_reserved_are_refused() {
        let mut f = nonce_frame();
        f[0] = b'X';
        assert_eq!(decode(&f), Err(FrameError::BadMagic { found: *b"XNPK" }));
        let mut f = nonce_frame();
        f[4] = 1;
        assert_eq!(decode(&f), Err(FrameError::UnsupportedVersion { found: 1 }));
        let mut f = nonce_frame();
        f[5] = 99;
        assert_eq!(decode(&f), Err(FrameError::UnknownKind { found: 99 }));
        let mut f = nonce_frame();
        f[7] = 1;
        assert_eq!(
            decode(&f),
            Err(FrameError::ReservedNotZero { found: 0x100 })
        );
    }

    #[test]
    fn over_long_frames_are_refused_before_reading_the_payload() {
        let mut f = nonce_frame();
        f[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&f),
            Err(FrameError::TooLong {
                len: u64::from(u32::MAX)
            })
        );
        // A stream that announces 4 GiB and then never ends: refused from the header alone.
        let mut endless = f[..12].chain(io::repeat(0));
        assert!(matches!(
            read_message(&mut endless),
            Err(ReadError::Frame(FrameError::TooLong { .. }))
        ));
        let exactly_max = encode_raw(Kind::Error, &vec![b'a'; MAX_PAYLOAD_LEN]).unwrap();
        assert_eq!(
            decode(&exactly_max),
            Err(FrameError::ErrorTooLong {
                found: MAX_PAYLOAD_LEN
            })
        );
        assert!(matches!(
            encode_raw(Kind::Error, &vec![0; MAX_PAYLOAD_LEN + 1]),
            Err(EncodeError::TooLong { .. })
        ));
    }

    #[test]
    fn truncated_and_trailing_bytes_are_refused() {
        let f = nonce_frame();
        assert_eq!(
            decode(&f[..5]),
            Err(FrameError::Truncated {
                needed: 12,
                found: 5
            })
        );
        assert_eq!(
            decode(&f[..40]),
            Err(FrameError::Truncated {
                needed: 44,
                found: 40
            })
        );
        let mut long = f.clone();
        long.push(0);
        assert_eq!(
            decode(&long),
            Err(FrameError::TrailingBytes {
                kind: Kind::Nonce,
                extra: 1
            })
        );
        assert!(matches!(
            read_message(&mut &f[..40]),
            Err(ReadError::Frame(FrameError::Truncated { .. }))
        ));
        assert!(matches!(
            read_message(&mut &f[..3]),
            Err(ReadError::Frame(FrameError::Truncated { .. }))
        ));
        assert!(matches!(read_message(&mut &[][..]), Err(ReadError::Closed)));

        // Payload-level trailing bytes: a valid Evidence followed by one more byte under a matching length.
        let e = &samples()[3];
        let frame = encode(e).unwrap();
        let mut payload = frame[HEADER_LEN..].to_vec();
        payload.push(0);
        let f = encode_raw(Kind::Evidence, &payload).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::TrailingBytes {
                kind: Kind::Evidence,
                extra: 1
            })
        );
    }

    #[test]
    fn wrong_sized_nonce_is_refused() {
        for len in [0, 31, 33, 64] {
            let f = encode_raw(Kind::Nonce, &vec![0; len]).unwrap();
            assert_eq!(
                decode(&f),
                Err(FrameError::WrongNonceLength(NonceLengthError {
                    found: len
                }))
            );
        }
        assert_eq!(
            Nonce::from_slice(&[0; 16]),
            Err(NonceLengthError { found: 16 })
        );
        let message = FrameError::WrongNonceLength(NonceLengthError { found: 31 }).to_string();
        assert_eq!(
            message,
            "the host's nonce is 31 bytes; a nonce is exactly 32 bytes"
        );
    }

    #[test]
    fn payload_fields_are_checked() {
        let f = encode_raw(Kind::Hello, &[1, 9]).unwrap();
        assert_eq!(decode(&f), Err(FrameError::UnknownProvider { found: 9 }));
        let f = encode_raw(Kind::Hello, &[1, 1, 0]).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::WrongPayloadLength {
                kind: Kind::Hello,
                expected: 2,
                found: 3
            })
        );
        let mut req = vec![0u8; 64];
        req.extend_from_slice(&4u32.to_le_bytes());
        let f = encode_raw(Kind::ReportRequest, &req).unwrap();
        assert_eq!(decode(&f), Err(FrameError::VmplOutOfRange { found: 4 }));
        let f = encode_raw(Kind::Finished, &[3, 0, 0, 0, 0]).unwrap();
        assert_eq!(decode(&f), Err(FrameError::UnknownEnding { found: 3 }));
        let f = encode_raw(Kind::Finished, &[1, 0, 0, 0]).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::WrongPayloadLength {
                kind: Kind::Finished,
                expected: 5,
                found: 4
            })
        );
        let f = encode_raw(Kind::Error, &[0xff, 0xfe]).unwrap();
        assert_eq!(decode(&f), Err(FrameError::ErrorNotUtf8));
        let f = encode_raw(Kind::Evidence, &[0; 100]).unwrap();
        assert!(matches!(decode(&f), Err(FrameError::Truncated { .. })));
    }

    fn evidence_payload(certs: &[(Guid, &[u8])], count: u16) -> Vec<u8> {
        let mut p = vec![0u8; REPORT_LEN + PUBLIC_KEY_LEN];
        p.extend_from_slice(&count.to_le_bytes());
        for (guid, data) in certs {
            p.extend_from_slice(&guid.0);
            p.extend_from_slice(&(data.len() as u32).to_le_bytes());
            p.extend_from_slice(data);
        }
        p
    }

    #[test]
    fn certificate_lists_are_checked() {
        let f = encode_raw(Kind::Evidence, &evidence_payload(&[], 17)).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::TooManyCerts {
                kind: Kind::Evidence,
                found: 17
            })
        );
        let p = evidence_payload(&[(GUID_VCEK, b"a"), (GUID_VCEK, b"b")], 2);
        let f = encode_raw(Kind::Evidence, &p).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::DuplicateCert {
                kind: Kind::Evidence,
                guid: GUID_VCEK
            })
        );
        let p = evidence_payload(&[(GUID_VCEK, b"")], 1);
        let f = encode_raw(Kind::Evidence, &p).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::EmptyCert {
                kind: Kind::Evidence,
                guid: GUID_VCEK
            })
        );
        // A certificate length that runs past the payload.
        let mut p = evidence_payload(&[(GUID_VCEK, b"abc")], 1);
        let at = REPORT_LEN + PUBLIC_KEY_LEN + 2 + 16;
        p[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let f = encode_raw(Kind::Evidence, &p).unwrap();
        assert!(matches!(decode(&f), Err(FrameError::Truncated { .. })));
        // Encoding refuses what decoding would refuse.
        let many: Vec<_> = (0..17u8)
            .map(|i| CertEntry {
                guid: Guid([i; 16]),
                data: vec![1],
            })
            .collect();
        let e = Message::Evidence(Evidence {
            report: report(0),
            public_key: [0; 32],
            certs: many,
        });
        assert_eq!(
            encode(&e),
            Err(EncodeError::TooManyCerts {
                kind: Kind::Evidence,
                found: 17
            })
        );
    }

    /// xorshift64*: deterministic, no dependency, good enough to spray bytes.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn random_bytes_never_panic() {
        let valid: Vec<Vec<u8>> = samples().iter().map(|m| encode(m).unwrap()).collect();
        for seed in 1..5000u64 {
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            // Half the inputs are mutated valid frames (so decoding gets past the header), half noise.
            let mut bytes = if seed % 2 == 0 {
                valid[(seed as usize / 2) % valid.len()].clone()
            } else {
                let len = (next(&mut state) % 2048) as usize;
                (0..len).map(|_| next(&mut state) as u8).collect()
            };
            if seed % 2 == 0 {
                for _ in 0..1 + next(&mut state) % 8 {
                    let at = (next(&mut state) as usize) % bytes.len();
                    bytes[at] = next(&mut state) as u8;
                }
                let cut = (next(&mut state) as usize) % (bytes.len() + 1);
                if seed % 3 == 0 {
                    bytes.truncate(cut);
                }
            }
            let from_slice = decode(&bytes);
            let from_stream = read_message(&mut &bytes[..]);
            // A frame the slice decoder accepts is accepted the same by the stream reader.
            if let Ok(m) = &from_slice {
                assert_eq!(from_stream.as_ref().ok(), Some(m));
                assert_eq!(encode(m).unwrap(), bytes, "accepted frames are canonical");
            }
        }
    }
}
