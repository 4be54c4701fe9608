#![allow(clippy::unwrap_used)]
use super::*;
use crate::certs::{GUID_ASK, GUID_VCEK, Guid};
use std::io::Read;

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
        Message::Stop,
        Message::AppLog(AppLog {
            stream: LogStream::Stdout,
            bytes: b"hello\n".to_vec(),
        }),
        Message::AppLog(AppLog {
            stream: LogStream::Stderr,
            bytes: vec![0x1b; MAX_APPLOG_CHUNK],
        }),
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
        // Carried as they are, reserved bits and all: the PSP judges them.
        Message::KeyRequest(RawKeyRequest([0xff; 32])),
        Message::KeyResponse(KeyResponse::Key(crate::keyreq::DerivedKey([9; 32]))),
        Message::KeyResponse(KeyResponse::Refused(
            crate::keyreq::KeyStatus::INVALID_PARAM,
        )),
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
        &[b'S', b'N', b'P', b'K', 3, 2, 0, 0, 32, 0, 0, 0]
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

#[test]
fn key_frames_carry_the_abi_bytes() {
    use crate::keyreq::{FieldSelect, KeySel, KeyStatus, RootKey};
    let request = KeyRequest {
        root: RootKey::Endorsement,
        key_sel: KeySel::Vcek,
        fields: FieldSelect::POLICY | FieldSelect::MEASUREMENT,
        vmpl: 0,
        guest_svn: 0,
        tcb_version: 0,
    };
    let frame = encode(&Message::KeyRequest(RawKeyRequest::from(&request))).unwrap();
    assert_eq!(&frame[4..12], &[3, 18, 0, 0, 32, 0, 0, 0]);
    assert_eq!(&frame[12..], &request.encode());
    let Message::KeyRequest(raw) = decode(&frame).unwrap() else {
        panic!("not a key request")
    };
    assert_eq!(raw.decode().unwrap(), request);

    let frame = encode(&Message::KeyResponse(KeyResponse::Refused(
        KeyStatus::INVALID_PARAM,
    )))
    .unwrap();
    assert_eq!(&frame[4..12], &[3, 19, 0, 0, 64, 0, 0, 0]);
    for len in [31, 33] {
        let f = encode_raw(Kind::KeyRequest, &vec![0; len]).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::WrongPayloadLength {
                kind: Kind::KeyRequest,
                expected: 32,
                found: len
            })
        );
    }
    let f = encode_raw(Kind::KeyResponse, &[0; 63]).unwrap();
    assert!(matches!(
        decode(&f),
        Err(FrameError::WrongPayloadLength { .. })
    ));
    let mut payload = [0u8; 64];
    payload[8] = 1;
    let f = encode_raw(Kind::KeyResponse, &payload).unwrap();
    assert_eq!(
        decode(&f),
        Err(FrameError::BadKeyResponse(KeyResponseError::Reserved))
    );
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

#[test]
fn random_bytes_never_panic() {
    let valid: Vec<Vec<u8>> = samples().iter().map(|m| encode(m).unwrap()).collect();
    for seed in 1..5000u64 {
        let mut rng = snpkit_testkit::rng::SplitMix64::new(seed);
        // Half the inputs are mutated valid frames (so decoding gets past the header), half noise.
        let mut bytes = if seed % 2 == 0 {
            valid[(seed as usize / 2) % valid.len()].clone()
        } else {
            let len = rng.below(2048) as usize;
            rng.bytes(len)
        };
        if seed % 2 == 0 {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next_u64() as u8;
            }
            let cut = rng.below(bytes.len() as u64 + 1) as usize;
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

#[test]
fn stop_and_applog_layouts_and_bounds() {
    assert_eq!(
        encode(&Message::Stop).unwrap(),
        [b'S', b'N', b'P', b'K', 3, 6, 0, 0, 0, 0, 0, 0]
    );
    let log = Message::AppLog(AppLog {
        stream: LogStream::Stderr,
        bytes: b"x".to_vec(),
    });
    assert_eq!(
        encode(&log).unwrap(),
        [b'S', b'N', b'P', b'K', 3, 7, 0, 0, 2, 0, 0, 0, 2, b'x']
    );
    // Stop carries nothing.
    let f = encode_raw(Kind::Stop, &[0]).unwrap();
    assert_eq!(
        decode(&f),
        Err(FrameError::WrongPayloadLength {
            kind: Kind::Stop,
            expected: 0,
            found: 1
        })
    );
    // A stream that is neither stdout nor stderr, no stream at all, no bytes, too many bytes.
    for stream in [0u8, 3, 0xff] {
        let f = encode_raw(Kind::AppLog, &[stream, b'a']).unwrap();
        assert_eq!(
            decode(&f),
            Err(FrameError::UnknownLogStream { found: stream })
        );
    }
    let f = encode_raw(Kind::AppLog, &[]).unwrap();
    assert!(matches!(decode(&f), Err(FrameError::Truncated { .. })));
    let f = encode_raw(Kind::AppLog, &[1]).unwrap();
    assert_eq!(decode(&f), Err(FrameError::AppLogSize { found: 0 }));
    let mut big = vec![1u8];
    big.extend(vec![b'a'; MAX_APPLOG_CHUNK + 1]);
    let f = encode_raw(Kind::AppLog, &big).unwrap();
    assert_eq!(
        decode(&f),
        Err(FrameError::AppLogSize {
            found: MAX_APPLOG_CHUNK + 1
        })
    );
    for n in [0, MAX_APPLOG_CHUNK + 1] {
        let too = Message::AppLog(AppLog {
            stream: LogStream::Stdout,
            bytes: vec![b'a'; n],
        });
        assert_eq!(encode(&too), Err(EncodeError::AppLogSize { found: n }));
    }
}

fn relay_request() -> RelayRequest {
    RelayRequest {
        method: Method::Post,
        path: "/kbs/v0/attest".into(),
        cookie: Some("kbs-session-id=0123-abcd".into()),
        body: br#"{"tee-evidence":{}}"#.to_vec(),
    }
}

fn relay_response() -> RelayResponse {
    RelayResponse {
        status: 200,
        set_cookie: vec!["kbs-session-id=0123-abcd; Path=/kbs; HttpOnly".into()],
        content_type: "application/json".into(),
        body: br#"{"nonce":"bm9uY2U=","extra-params":""}"#.to_vec(),
    }
}

#[test]
fn relay_frames_round_trip_at_their_limits() {
    let mut get = relay_request();
    get.method = Method::Get;
    get.path = "/kbs/v0/resource/default/secret-hello/tok%20en".into();
    get.cookie = None;
    get.body.clear();
    let mut full = relay_response();
    full.set_cookie = vec!["a".repeat(relay::MAX_HEADER_VALUE_LEN); relay::MAX_SET_COOKIES];
    full.content_type = "b".repeat(relay::MAX_HEADER_VALUE_LEN);
    full.body = vec![0xee; relay::MAX_RELAY_BODY_LEN];
    let mut big_request = relay_request();
    big_request.path = format!("/kbs/v0/{}", "c".repeat(relay::MAX_HEADER_VALUE_LEN - 8));
    big_request.cookie = Some("d".repeat(relay::MAX_HEADER_VALUE_LEN));
    big_request.body = vec![1; relay::MAX_RELAY_BODY_LEN];
    for message in [
        Message::RelayRequest(relay_request()),
        Message::RelayRequest(get),
        Message::RelayRequest(big_request),
        Message::RelayResponse(relay_response()),
        Message::RelayResponse(full),
    ] {
        let frame = encode(&message).unwrap();
        assert!(frame.len() <= MAX_FRAME_LEN);
        assert_eq!(decode(&frame).unwrap(), message);
        assert_eq!(read_message(&mut &frame[..]).unwrap(), message);
    }
    let frame = encode(&Message::RelayRequest(relay_request())).unwrap();
    assert_eq!(frame[5], 8);
    assert_eq!(frame[12], 2);
    assert_eq!(&frame[13..15], &14u16.to_le_bytes());
    assert_eq!(&frame[15..29], b"/kbs/v0/attest");
    assert_eq!(
        encode(&Message::RelayResponse(relay_response())).unwrap()[5],
        9
    );
}

#[test]
fn relay_paths_outside_the_broker_tree_are_refused() {
    for (path, says) in [
        ("/kbs/v0/auth", None),
        ("/kbs/v0/resource/a/b/c%2Ed", None),
        ("/kbs/v1/auth", Some("not under /kbs/v0/")),
        ("/admin", Some("not under /kbs/v0/")),
        ("/kbs/v0/../admin", Some(". or .. segment")),
        ("/kbs/v0/%2e%2E/admin", Some(". or .. segment")),
        ("/kbs/v0/./auth", Some(". or .. segment")),
        ("/kbs/v0/a//b", Some("empty segment")),
        ("/kbs/v0/", Some("empty segment")),
        ("/kbs/v0/a%2fb", Some("slash")),
        ("/kbs/v0/a%5Cb", Some("slash")),
        ("/kbs/v0/a%0d%0aHost:x", Some("control")),
        ("/kbs/v0/a%zz", Some("two hex digits")),
        ("/kbs/v0/a%2", Some("two hex digits")),
        ("/kbs/v0/auth?x=1", Some("other than letters")),
        ("/kbs/v0/auth#x", Some("other than letters")),
        ("/kbs/v0/a b", Some("other than letters")),
        ("/kbs/v0/\u{e9}", Some("other than letters")),
    ] {
        let got = relay::check_path(path);
        match says {
            None => assert_eq!(got, Ok(()), "{path}"),
            Some(words) => {
                let err = got.unwrap_err().to_string();
                assert!(err.contains(words), "{path}: {err}");
            }
        }
    }
    let long = format!("/kbs/v0/{}", "a".repeat(600));
    assert!(matches!(
        relay::check_path(&long),
        Err(RelayError::FieldTooLong { field: "path", .. })
    ));
}

#[test]
fn relay_fields_are_checked_on_both_sides() {
    let refused = |m: Message, words: &str| {
        let err = encode(&m).unwrap_err().to_string();
        assert!(err.contains(words), "{err}");
    };
    let mut r = relay_request();
    r.path = "/etc/passwd".into();
    refused(Message::RelayRequest(r), "not under /kbs/v0/");
    let mut r = relay_request();
    r.cookie = Some("a=b\r\nHost: evil".into());
    refused(Message::RelayRequest(r), "not printable ASCII");
    let mut r = relay_request();
    r.cookie = Some(String::new());
    refused(Message::RelayRequest(r), "empty");
    let mut r = relay_request();
    r.body = vec![0; relay::MAX_RELAY_BODY_LEN + 1];
    refused(Message::RelayRequest(r), "one frame carries at most");
    let mut r = relay_response();
    r.status = 700;
    refused(Message::RelayResponse(r), "status 700");
    let mut r = relay_response();
    r.set_cookie = vec!["a=b".into(); 5];
    refused(Message::RelayResponse(r), "5 Set-Cookie values");
    let mut r = relay_response();
    r.content_type = "text/plain\n".into();
    refused(Message::RelayResponse(r), "not printable");
    let mut r = relay_response();
    r.body = vec![0; MAX_PAYLOAD_LEN];
    refused(Message::RelayResponse(r), "one frame carries at most");

    // The same checks on decoding: frames built by hand, as a hostile peer would.
    let mut payload = vec![3u8];
    payload.extend_from_slice(&0u16.to_le_bytes());
    let err = decode(&encode_raw(Kind::RelayRequest, &payload).unwrap()).unwrap_err();
    assert_eq!(
        err,
        FrameError::Relay(RelayError::UnknownMethod { found: 3 })
    );
    let mut payload = vec![1u8];
    payload.extend_from_slice(&11u16.to_le_bytes());
    payload.extend_from_slice(b"/kbs/v1/abc");
    payload.extend_from_slice(&0u16.to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    let err = decode(&encode_raw(Kind::RelayRequest, &payload).unwrap()).unwrap_err();
    assert!(err.to_string().contains("not under /kbs/v0/"), "{err}");
    // A body length past the frame's end is truncation, not an allocation.
    let mut payload = vec![1u8];
    payload.extend_from_slice(&12u16.to_le_bytes());
    payload.extend_from_slice(b"/kbs/v0/auth");
    payload.extend_from_slice(&0u16.to_le_bytes());
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = decode(&encode_raw(Kind::RelayRequest, &payload).unwrap()).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { .. }), "{err}");
    // A text length over the limit is refused before it is read.
    let mut payload = 200u16.to_le_bytes().to_vec();
    payload.push(1);
    payload.extend_from_slice(&600u16.to_le_bytes());
    let err = decode(&encode_raw(Kind::RelayResponse, &payload).unwrap()).unwrap_err();
    assert_eq!(
        err,
        FrameError::Relay(RelayError::FieldTooLong {
            field: "Set-Cookie",
            len: 600
        })
    );
    let mut payload = 200u16.to_le_bytes().to_vec();
    payload.push(9);
    let err = decode(&encode_raw(Kind::RelayResponse, &payload).unwrap()).unwrap_err();
    assert_eq!(
        err,
        FrameError::Relay(RelayError::TooManyCookies { found: 9 })
    );
    // Trailing bytes after the body.
    let mut frame = encode(&Message::RelayResponse(relay_response())).unwrap();
    frame.push(0);
    let len = (frame.len() - HEADER_LEN) as u32;
    frame[8..12].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(
        decode(&frame),
        Err(FrameError::TrailingBytes {
            kind: Kind::RelayResponse,
            extra: 1
        })
    ));
}

#[test]
fn relay_bodies_are_not_printed() {
    let mut r = relay_response();
    r.body = b"TOPSECRET".to_vec();
    let shown = format!("{:?}", Message::RelayResponse(r));
    assert!(!shown.contains("TOPSECRET"), "{shown}");
    assert!(shown.contains("9 body bytes"), "{shown}");
}
