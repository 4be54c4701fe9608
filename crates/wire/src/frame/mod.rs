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
//! then, while the entry point runs, guest → [`AppLog`] (its stdout and stderr, any number) and
//! host → [`Message::Stop`] (end the appliance: SIGTERM, a grace period, SIGKILL),
//! and once the appliance's entry point has ended, guest → [`Finished`]; or [`ErrorMessage`] from
//! either side, after which the sender stops. `Finished` is the host's only evidence that the
//! entry point ran to its end: a guest that reboots (dm-verity's `restart_on_corruption`), panics
//! or powers off early never sends it, and QEMU's exit status cannot tell those apart. On
//! `org.snpkit.emulated-psp`: guest → [`ReportRequest`], host → [`ReportResponse`] or [`ErrorMessage`];
//! guest → [`RawKeyRequest`] (MSG_KEY_REQ), host → [`KeyResponse`] (MSG_KEY_RSP) or [`ErrorMessage`].
//!
//! Between `Evidence` and `Finished`, a guest whose image asks for secrets sends
//! [`RelayRequest`]s, each answered by one [`RelayResponse`] (or an [`ErrorMessage`] saying why
//! the host could not relay it: no broker given, broker down, slow or too large); see [`relay`].

mod codec;
pub mod relay;
#[cfg(test)]
mod tests;

pub use relay::{Method, RelayError, RelayRequest, RelayResponse};

pub use codec::{
    Header, decode, decode_payload, encode, encode_raw, parse_header, read_message, write_message,
};

use crate::binding::NONCE_LEN;
use crate::certs::{CertEntry, Guid, MAX_CERT_ENTRIES};
use crate::keyreq::{KEY_REQUEST_LEN, KeyRequest, KeyRequestError, KeyResponse, KeyResponseError};
use std::io;

/// Name of the virtio-serial port for the attestation conversation.
pub const ATTEST_PORT: &str = "org.snpkit.attest";
/// Name of the virtio-serial port of the emulated PSP (emulated launches only).
pub const EMULATED_PSP_PORT: &str = "org.snpkit.emulated-psp";

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"SNPK";
/// Version of the frame layout and of the conversation (2: [`Finished`] ends every run; 3: the
/// emulated PSP answers MSG_KEY_REQ).
pub const FRAME_VERSION: u8 = 3;
/// Header size in bytes.
pub const HEADER_LEN: usize = 12;
/// Largest frame, header included: a report (1184 bytes) and a full AMD chain (ARK, ASK, VCEK, CRL,
/// a few KiB each) fit several times over; the kernel caps the certificate buffer at 16 KiB.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Largest payload.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - HEADER_LEN;
/// Size of an SEV-SNP attestation report, which [`Evidence`] carries whole.
pub use crate::report::REPORT_LEN;
/// Size of the guest's X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Largest error message, in bytes of UTF-8.
pub const MAX_ERROR_LEN: usize = 4096;
/// Highest VMPL an SNP guest can ask a report for.
pub const MAX_VMPL: u32 = 3;
/// Most bytes of appliance output in one [`AppLog`] frame. Well under the frame limit, so that a
/// chatty appliance's frames interleave finely with `Finished` and a host reads each in one go.
pub const MAX_APPLOG_CHUNK: usize = 16 * 1024;

/// What kind of message a frame carries (header byte 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hello = 1,
    Nonce = 2,
    Evidence = 3,
    Error = 4,
    Finished = 5,
    Stop = 6,
    AppLog = 7,
    RelayRequest = 8,
    RelayResponse = 9,
    ReportRequest = 16,
    ReportResponse = 17,
    KeyRequest = 18,
    KeyResponse = 19,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Nonce,
            3 => Kind::Evidence,
            4 => Kind::Error,
            5 => Kind::Finished,
            6 => Kind::Stop,
            7 => Kind::AppLog,
            8 => Kind::RelayRequest,
            9 => Kind::RelayResponse,
            16 => Kind::ReportRequest,
            17 => Kind::ReportResponse,
            18 => Kind::KeyRequest,
            19 => Kind::KeyResponse,
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

/// Which of the entry point's outputs an [`AppLog`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout = 1,
    Stderr = 2,
}

impl LogStream {
    fn from_byte(b: u8) -> Option<LogStream> {
        Some(match b {
            1 => LogStream::Stdout,
            2 => LogStream::Stderr,
            _ => return None,
        })
    }

    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// Guest → host while the entry point runs: bytes it wrote, as they came (not lines, not
/// necessarily UTF-8). Payload: `stream: u8` (1 stdout, 2 stderr), then 1 to
/// [`MAX_APPLOG_CHUNK`] bytes. The host treats them as the appliance's, i.e. hostile text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLog {
    pub stream: LogStream,
    pub bytes: Vec<u8>,
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

/// Guest → emulated PSP: MSG_KEY_REQ. Payload: exactly the 32 bytes of the ABI structure
/// ([`crate::keyreq`]), carried as they are: judging them is the PSP's part, as on hardware, which
/// answers a malformed request with STATUS = INVALID_PARAM rather than dropping the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawKeyRequest(pub [u8; KEY_REQUEST_LEN]);

impl RawKeyRequest {
    /// The ABI's strict decoding of the carried bytes.
    pub fn decode(&self) -> Result<KeyRequest, KeyRequestError> {
        KeyRequest::decode(&self.0)
    }
}

impl From<&KeyRequest> for RawKeyRequest {
    fn from(request: &KeyRequest) -> RawKeyRequest {
        RawKeyRequest(request.encode())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Nonce(Nonce),
    Evidence(Evidence),
    Error(ErrorMessage),
    Finished(Finished),
    /// Host → guest: stop the appliance and power off cleanly. Payload: empty.
    Stop,
    AppLog(AppLog),
    RelayRequest(RelayRequest),
    RelayResponse(RelayResponse),
    ReportRequest(ReportRequest),
    ReportResponse(ReportResponse),
    KeyRequest(RawKeyRequest),
    /// Emulated PSP → guest: MSG_KEY_RSP. Payload: exactly the 64 bytes, strictly decoded.
    KeyResponse(KeyResponse),
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::Hello(_) => Kind::Hello,
            Message::Nonce(_) => Kind::Nonce,
            Message::Evidence(_) => Kind::Evidence,
            Message::Error(_) => Kind::Error,
            Message::Finished(_) => Kind::Finished,
            Message::Stop => Kind::Stop,
            Message::AppLog(_) => Kind::AppLog,
            Message::RelayRequest(_) => Kind::RelayRequest,
            Message::RelayResponse(_) => Kind::RelayResponse,
            Message::ReportRequest(_) => Kind::ReportRequest,
            Message::ReportResponse(_) => Kind::ReportResponse,
            Message::KeyRequest(_) => Kind::KeyRequest,
            Message::KeyResponse(_) => Kind::KeyResponse,
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
    #[error("the emulated PSP's key response is malformed")]
    BadKeyResponse(#[source] KeyResponseError),
    #[error("AppLog names output stream {found}; 1 (stdout) and 2 (stderr) are known")]
    UnknownLogStream { found: u8 },
    #[error("AppLog carries {found} bytes; a chunk is 1 to {MAX_APPLOG_CHUNK} bytes")]
    AppLogSize { found: usize },
    #[error(transparent)]
    Relay(RelayError),
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
    #[error("AppLog would carry {found} bytes; a chunk is 1 to {MAX_APPLOG_CHUNK} bytes")]
    AppLogSize { found: usize },
    #[error(transparent)]
    Relay(RelayError),
}

/// Why a message could not be written to a stream.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("writing the channel failed")]
    Io(#[source] io::Error),
}
