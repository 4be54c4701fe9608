//! The host's side of the channel: the attestation conversation on `org.snpkit.attest` and the
//! emulated PSP's port. The guest may be hostile: every read has the run's deadline, every frame
//! is bounded by `snpkit_wire`'s limit, and anything off-protocol ends the conversation with an
//! error that says what arrived.

use crate::relay::Relay;
use snpkit_wire::frame::{
    self, AppLog, ErrorMessage, Evidence, FRAME_VERSION, Finished, FrameError, Hello, Kind,
    MAX_ERROR_LEN, Message, Nonce, RawKeyRequest, ReadError, ReportRequest, ReportResponse,
    WriteError,
};
use snpkit_wire::keyreq::KeyResponse;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("the guest sent no answer by the deadline while the host waited for {waiting_for}")]
    Timeout { waiting_for: &'static str },
    #[error("the guest closed the channel while the host waited for {waiting_for}")]
    Closed { waiting_for: &'static str },
    #[error("the guest sent a malformed frame where {waiting_for} was due")]
    Malformed {
        waiting_for: &'static str,
        source: FrameError,
    },
    #[error("the guest sent {found:?} where {expected} was due")]
    Unexpected { expected: &'static str, found: Kind },
    #[error("the guest speaks channel protocol {found}; this host speaks {FRAME_VERSION}")]
    Protocol { found: u8 },
    #[error("the guest gave up: {message}")]
    Guest { message: String },
    #[error("channel I/O failed while the host waited for {waiting_for}")]
    Io {
        waiting_for: &'static str,
        source: io::Error,
    },
    #[error("sending {what} to the guest")]
    Send {
        what: &'static str,
        source: WriteError,
    },
    #[error("QEMU exited ({status}) before connecting the channel:\n{stderr}")]
    QemuExited { status: ExitStatus, stderr: String },
    #[error("the {port} channel was already taken")]
    AlreadyTaken { port: &'static str },
}

/// One accepted port connection. Reads end at the run's deadline; receiving any byte marks the
/// guest as started (for [`crate::Outcome::KernelNeverStarted`]).
pub struct GuestChannel {
    stream: UnixStream,
    deadline: Instant,
    guest_spoke: Arc<AtomicBool>,
}

impl GuestChannel {
    pub(crate) fn new(
        stream: UnixStream,
        deadline: Instant,
        guest_spoke: Arc<AtomicBool>,
    ) -> Result<GuestChannel, ChannelError> {
        stream
            .set_nonblocking(false)
            .map_err(|source| ChannelError::Io {
                waiting_for: "the connection",
                source,
            })?;
        Ok(GuestChannel {
            stream,
            deadline,
            guest_spoke,
        })
    }

    /// A channel over any connected stream (tests, or a guest reached another way).
    pub fn from_stream(
        stream: UnixStream,
        deadline: Instant,
    ) -> Result<GuestChannel, ChannelError> {
        GuestChannel::new(stream, deadline, Arc::new(AtomicBool::new(false)))
    }

    fn receive(&mut self, waiting_for: &'static str) -> Result<Message, ChannelError> {
        match frame::read_message(self) {
            Ok(message) => Ok(message),
            Err(ReadError::Closed) => Err(ChannelError::Closed { waiting_for }),
            Err(ReadError::Frame(source)) => Err(ChannelError::Malformed {
                waiting_for,
                source,
            }),
            Err(ReadError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                Err(ChannelError::Timeout { waiting_for })
            }
            Err(ReadError::Io(source)) => Err(ChannelError::Io {
                waiting_for,
                source,
            }),
        }
    }

    fn send(&mut self, what: &'static str, message: &Message) -> Result<(), ChannelError> {
        frame::write_message(self, message).map_err(|source| ChannelError::Send { what, source })
    }
}

impl Read for GuestChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        self.stream.set_read_timeout(Some(left))?;
        let n = self.stream.read(buf)?;
        if n > 0 {
            self.guest_spoke.store(true, Ordering::SeqCst);
        }
        Ok(n)
    }
}

impl Write for GuestChannel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// What the guest sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// The guest's own account of its provider: for logs only, never for a verdict.
    pub hello: Hello,
    pub evidence: Evidence,
}

/// Runs the host's half of the attestation conversation: Hello, then our nonce, then Evidence.
pub fn attest(channel: &mut GuestChannel, nonce: &Nonce) -> Result<Attested, ChannelError> {
    let hello = match channel.receive("the guest's Hello")? {
        Message::Hello(hello) if hello.protocol == FRAME_VERSION => hello,
        Message::Hello(hello) => {
            let message = format!("this host speaks channel protocol {FRAME_VERSION} only");
            let _ = channel.send("an error", &Message::Error(ErrorMessage(message)));
            return Err(ChannelError::Protocol {
                found: hello.protocol,
            });
        }
        Message::Error(ErrorMessage(message)) => return Err(ChannelError::Guest { message }),
        other => {
            return Err(ChannelError::Unexpected {
                expected: "Hello",
                found: other.kind(),
            });
        }
    };
    channel.send("the nonce", &Message::Nonce(*nonce))?;
    match channel.receive("the guest's evidence")? {
        Message::Evidence(evidence) => Ok(Attested { hello, evidence }),
        Message::Error(ErrorMessage(message)) => Err(ChannelError::Guest { message }),
        other => Err(ChannelError::Unexpected {
            expected: "Evidence",
            found: other.kind(),
        }),
    }
}

/// Waits for the guest's last word once it has attested: how the entry point ended. A guest that
/// reboots, panics or powers off without it closes the channel instead, which is an error here,
/// whatever QEMU's exit status says. Dropping the channel afterwards is the guest's signal that
/// the message arrived (it waits for that hang-up before powering off).
pub fn finish(channel: &mut GuestChannel) -> Result<Finished, ChannelError> {
    finish_with(channel, &mut |_| {}, None)
}

/// As [`finish`], handing each `AppLog` frame that comes first (the entry point's output while it
/// runs) to `log`, and relaying the guest's key-broker requests through `relay` meanwhile (one
/// [`RelayResponse`] per request, or an error message saying why there is none). Without a relay,
/// each request is answered with an error naming `--kbs`.
pub fn finish_with(
    channel: &mut GuestChannel,
    log: &mut dyn FnMut(&AppLog),
    mut relay: Option<&mut dyn Relay>,
) -> Result<Finished, ChannelError> {
    loop {
        match channel.receive("the guest's final status")? {
            Message::AppLog(frame) => log(&frame),
            Message::Finished(end) => return Ok(end),
            Message::Error(ErrorMessage(message)) => return Err(ChannelError::Guest { message }),
            Message::RelayRequest(request) => {
                let answer = match relay.as_deref_mut() {
                    Some(relay) => relay.exchange(&request),
                    None => Err(format!(
                        "the guest asked to reach a key broker ({} {}), but this boot was given none: pass --kbs URL",
                        request.method.as_str(),
                        request.path
                    )),
                };
                let message = match answer {
                    Ok(response) => Message::RelayResponse(response),
                    Err(why) => Message::Error(ErrorMessage(clip(why))),
                };
                channel.send("the broker's answer", &message)?;
            }
            other => {
                return Err(ChannelError::Unexpected {
                    expected: "Finished",
                    found: other.kind(),
                });
            }
        }
    }
}

/// Sends the guest [`Message::Stop`] on a second handle of the attest connection, so it can be
/// sent while another thread waits in [`finish_with`].
pub struct Stopper {
    stream: UnixStream,
}

impl Stopper {
    /// Asks the guest to stop its appliance (SIGTERM, a grace period, SIGKILL) and power off.
    pub fn stop(mut self) -> Result<(), ChannelError> {
        frame::write_message(&mut self.stream, &Message::Stop).map_err(|source| {
            ChannelError::Send {
                what: "Stop",
                source,
            }
        })
    }
}

impl GuestChannel {
    /// A [`Stopper`] on this connection.
    pub fn stopper(&self) -> Result<Stopper, ChannelError> {
        let stream = self.stream.try_clone().map_err(|source| ChannelError::Io {
            waiting_for: "a second handle of the channel",
            source,
        })?;
        stream
            .set_write_timeout(Some(std::time::Duration::from_secs(10)))
            .map_err(|source| ChannelError::Io {
                waiting_for: "a second handle of the channel",
                source,
            })?;
        Ok(Stopper { stream })
    }
}

/// An error text cut to what an error frame carries.
fn clip(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// What the guest asks the emulated PSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PspRequest {
    /// SNP_GET_REPORT.
    Report(ReportRequest),
    /// MSG_KEY_REQ, its 32 bytes as the guest sent them (the handler judges them, as a PSP does).
    Key(RawKeyRequest),
}

/// The emulated PSP's answer to a [`PspRequest`] of the same kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PspAnswer {
    Report(ReportResponse),
    /// MSG_KEY_RSP: a key or an ABI status.
    Key(KeyResponse),
}

/// Answers the guest's report and key requests on the emulated PSP port in a thread until the
/// guest (or QEMU) closes it; returns how many requests were served. `handler` signs and derives;
/// an `Err` from it is sent to the guest as an error message, and so is an answer of the wrong
/// kind (a handler's mistake, named as such).
pub fn serve_emulated_psp<F>(
    mut channel: GuestChannel,
    mut handler: F,
) -> JoinHandle<Result<u32, ChannelError>>
where
    F: FnMut(PspRequest) -> Result<PspAnswer, String> + Send + 'static,
{
    std::thread::spawn(move || {
        let mut served = 0;
        loop {
            let request = match channel.receive("a report or key request") {
                Ok(Message::ReportRequest(request)) => PspRequest::Report(request),
                Ok(Message::KeyRequest(request)) => PspRequest::Key(request),
                Ok(other) => {
                    return Err(ChannelError::Unexpected {
                        expected: "ReportRequest or KeyRequest",
                        found: other.kind(),
                    });
                }
                Err(ChannelError::Closed { .. }) => return Ok(served),
                Err(e) => return Err(e),
            };
            let wanted = match request {
                PspRequest::Report(_) => "a report",
                PspRequest::Key(_) => "a key response",
            };
            let answer = match (&request, handler(request.clone())) {
                (PspRequest::Report(_), Ok(PspAnswer::Report(r))) => Message::ReportResponse(r),
                (PspRequest::Key(_), Ok(PspAnswer::Key(k))) => Message::KeyResponse(k),
                (_, Ok(_)) => Message::Error(ErrorMessage(format!(
                    "the emulated PSP answered with the wrong kind of message where {wanted} was due"
                ))),
                (_, Err(message)) => Message::Error(ErrorMessage(message)),
            };
            channel.send(wanted, &answer)?;
            served += 1;
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use snpkit_wire::frame::{Provider, REPORT_LEN};
    use std::time::Duration;

    fn pair(timeout: Duration) -> (GuestChannel, UnixStream) {
        let (host, guest) = UnixStream::pair().unwrap();
        (
            GuestChannel::from_stream(host, Instant::now() + timeout).unwrap(),
            guest,
        )
    }

    fn hello() -> Message {
        Message::Hello(Hello {
            protocol: FRAME_VERSION,
            provider: Provider::EmulatedPsp,
        })
    }

    #[test]
    fn a_well_behaved_guest_is_attested() {
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        let t = std::thread::spawn(move || {
            frame::write_message(&mut guest, &hello()).unwrap();
            let Message::Nonce(n) = frame::read_message(&mut guest).unwrap() else {
                panic!("no nonce")
            };
            let e = Evidence {
                report: Box::new([n.0[0]; REPORT_LEN]),
                public_key: [1; 32],
                certs: vec![],
            };
            frame::write_message(&mut guest, &Message::Evidence(e)).unwrap();
        });
        let got = attest(&mut host, &Nonce([42; 32])).unwrap();
        t.join().unwrap();
        assert_eq!(got.hello.provider, Provider::EmulatedPsp);
        assert_eq!(got.evidence.report[0], 42);
    }

    #[test]
    fn the_final_status_is_read_and_its_absence_is_an_error() {
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        frame::write_message(&mut guest, &Message::Finished(Finished::Exited(3))).unwrap();
        assert_eq!(finish(&mut host).unwrap(), Finished::Exited(3));

        // A guest that rebooted after attesting: the channel just closes.
        let (mut host, guest) = pair(Duration::from_secs(10));
        drop(guest);
        let err = finish(&mut host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the guest closed the channel while the host waited for the guest's final status"
        );

        let (mut host, mut guest) = pair(Duration::from_secs(10));
        let text = "dm-verity: the root filesystem does not match the measured root hash";
        frame::write_message(&mut guest, &Message::Error(ErrorMessage(text.into()))).unwrap();
        assert!(
            matches!(finish(&mut host), Err(ChannelError::Guest { message }) if message == text)
        );

        let (mut host, mut guest) = pair(Duration::from_secs(10));
        frame::write_message(&mut guest, &hello()).unwrap();
        assert!(matches!(
            finish(&mut host),
            Err(ChannelError::Unexpected {
                expected: "Finished",
                found: Kind::Hello
            })
        ));
    }

    #[test]
    fn app_logs_come_before_the_final_status_and_stop_reaches_the_guest() {
        use snpkit_wire::frame::LogStream;
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        let stopper = host.stopper().unwrap();
        for text in ["one\n", "two\n"] {
            let log = Message::AppLog(AppLog {
                stream: LogStream::Stdout,
                bytes: text.as_bytes().to_vec(),
            });
            frame::write_message(&mut guest, &log).unwrap();
        }
        frame::write_message(&mut guest, &Message::Finished(Finished::Signaled(15))).unwrap();
        let mut got = Vec::new();
        let end = finish_with(&mut host, &mut |l| got.extend_from_slice(&l.bytes), None).unwrap();
        assert_eq!(
            (end, &got[..]),
            (Finished::Signaled(15), &b"one\ntwo\n"[..])
        );
        stopper.stop().unwrap();
        assert_eq!(frame::read_message(&mut guest).unwrap(), Message::Stop);

        // A garbage AppLog (unknown stream) is a malformed frame, not a log line.
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        guest
            .write_all(&frame::encode_raw(Kind::AppLog, &[9, b'x']).unwrap())
            .unwrap();
        assert!(matches!(
            finish_with(&mut host, &mut |_| {}, None),
            Err(ChannelError::Malformed {
                source: FrameError::UnknownLogStream { found: 9 },
                ..
            })
        ));
        // Neither may a guest send Stop: that is the host's word.
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        frame::write_message(&mut guest, &Message::Stop).unwrap();
        assert!(matches!(
            finish(&mut host),
            Err(ChannelError::Unexpected {
                found: Kind::Stop,
                ..
            })
        ));
    }

    #[test]
    fn garbage_is_a_malformed_frame() {
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        guest.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let err = attest(&mut host, &Nonce([0; 32])).unwrap_err();
        assert!(
            matches!(
                err,
                ChannelError::Malformed {
                    source: FrameError::BadMagic { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_flood_is_refused_from_its_header() {
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        let mut header = frame::encode(&hello()).unwrap()[..12].to_vec();
        header[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let t = std::thread::spawn(move || {
            let _ = guest.write_all(&header);
            // Keep pushing; the host must not wait for (or buffer) any of it.
            let junk = vec![0u8; 1 << 16];
            while guest.write_all(&junk).is_ok() {}
        });
        let err = attest(&mut host, &Nonce([0; 32])).unwrap_err();
        assert!(
            matches!(
                err,
                ChannelError::Malformed {
                    source: FrameError::TooLong { .. },
                    ..
                }
            ),
            "{err}"
        );
        drop(host);
        t.join().unwrap();
    }

    #[test]
    fn a_silent_guest_times_out() {
        let (mut host, _guest) = pair(Duration::from_millis(200));
        let start = Instant::now();
        let err = attest(&mut host, &Nonce([0; 32])).unwrap_err();
        assert!(
            matches!(
                err,
                ChannelError::Timeout {
                    waiting_for: "the guest's Hello"
                }
            ),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn guest_errors_and_wrong_messages_are_reported() {
        let (mut host, mut guest) = pair(Duration::from_secs(10));
        frame::write_message(
            &mut guest,
            &Message::Error(ErrorMessage("no provider".into())),
        )
        .unwrap();
        let err = attest(&mut host, &Nonce([0; 32])).unwrap_err();
        assert_eq!(err.to_string(), "the guest gave up: no provider");

        let (mut host, mut guest) = pair(Duration::from_secs(10));
        frame::write_message(&mut guest, &hello()).unwrap();
        frame::write_message(&mut guest, &hello()).unwrap();
        let err = attest(&mut host, &Nonce([0; 32])).unwrap_err();
        assert!(matches!(
            err,
            ChannelError::Unexpected {
                expected: "Evidence",
                found: Kind::Hello
            }
        ));

        let (mut host, mut guest) = pair(Duration::from_secs(10));
        let mut h = frame::encode(&hello()).unwrap();
        h[12] = 9;
        guest.write_all(&h).unwrap();
        assert!(matches!(
            attest(&mut host, &Nonce([0; 32])),
            Err(ChannelError::Protocol { found: 9 })
        ));

        let (mut host, guest) = pair(Duration::from_secs(10));
        drop(guest);
        assert!(matches!(
            attest(&mut host, &Nonce([0; 32])),
            Err(ChannelError::Closed { .. })
        ));
    }

    #[test]
    fn emulated_psp_serves_until_closed() {
        let (host, mut guest) = pair(Duration::from_secs(10));
        let server = serve_emulated_psp(host, |req| match req {
            PspRequest::Report(req) if req.vmpl == 0 => Ok(PspAnswer::Report(ReportResponse {
                report: Box::new([req.report_data[0]; REPORT_LEN]),
                certs: vec![],
            })),
            PspRequest::Report(_) => Err("VMPL 0 only".into()),
            // A wrong kind of answer, to see it named.
            PspRequest::Key(_) => Ok(PspAnswer::Report(ReportResponse {
                report: Box::new([0; REPORT_LEN]),
                certs: vec![],
            })),
        });
        for (data, vmpl) in [(5u8, 0), (6, 1)] {
            let req = Message::ReportRequest(ReportRequest {
                report_data: [data; 64],
                vmpl,
            });
            frame::write_message(&mut guest, &req).unwrap();
            match frame::read_message(&mut guest).unwrap() {
                Message::ReportResponse(r) => assert_eq!(r.report[0], 5),
                Message::Error(e) => assert_eq!(e.0, "VMPL 0 only"),
                other => panic!("{other:?}"),
            }
        }
        let key = Message::KeyRequest(RawKeyRequest([0; 32]));
        frame::write_message(&mut guest, &key).unwrap();
        match frame::read_message(&mut guest).unwrap() {
            Message::Error(e) => assert!(e.0.contains("wrong kind"), "{}", e.0),
            other => panic!("{other:?}"),
        }
        drop(guest);
        assert_eq!(server.join().unwrap().unwrap(), 3);
    }

    #[test]
    fn emulated_psp_answers_key_requests_with_the_abi_response() {
        use snpkit_wire::keyreq::{DerivedKey, KeyStatus};
        let (host, mut guest) = pair(Duration::from_secs(10));
        let server = serve_emulated_psp(host, |req| match req {
            PspRequest::Key(raw) if raw.0[0] == 2 => {
                Ok(PspAnswer::Key(KeyResponse::Key(DerivedKey([7; 32]))))
            }
            PspRequest::Key(_) => Ok(PspAnswer::Key(KeyResponse::Refused(
                KeyStatus::INVALID_PARAM,
            ))),
            PspRequest::Report(_) => Err("no reports here".into()),
        });
        let mut request = [0u8; 32];
        request[0] = 2;
        for (first, want) in [
            (2u8, KeyResponse::Key(DerivedKey([7; 32]))),
            (0xff, KeyResponse::Refused(KeyStatus::INVALID_PARAM)),
        ] {
            request[0] = first;
            frame::write_message(&mut guest, &Message::KeyRequest(RawKeyRequest(request))).unwrap();
            assert_eq!(
                frame::read_message(&mut guest).unwrap(),
                Message::KeyResponse(want)
            );
        }
        drop(guest);
        assert_eq!(server.join().unwrap().unwrap(), 2);
    }
}
