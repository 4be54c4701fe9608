//! The guest's secrets logic without a boot: its real port transport over a socket pair, the
//! host's real relay loop (`snpkit_qemu::finish_with`) and HTTP relay, the real broker
//! in-process, and reports from the emulated PSP's signer. Hostile hosts and brokers are played
//! by relays that change what passes, and by tiny TCP servers that answer slowly or hugely.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use snpkit_attest::emulated::{ReportFields, TestChain, emulated_report};
use snpkit_qemu::channel::{ChannelError, GuestChannel, finish_with};
use snpkit_qemu::{HttpRelay, Relay};
use snpkit_wire::frame::Finished;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const POLICY: u64 = 0x30000;
const GOOD: [u8; 48] = [0x11; 48];
const OTHER: [u8; 48] = [0x22; 48];
const TOKEN: &str = "default/secret-hello/token";

fn chain() -> &'static TestChain {
    TestChain::cached().expect("the emulated PSP's test chain")
}

/// The real broker on loopback, serving a random token to guests measured `GOOD`.
struct Broker {
    _dir: tempfile::TempDir,
    _broker: snpkit_broker::Broker,
    _server: snpkit_broker::Server,
    runtime: tokio::runtime::Runtime,
    url: String,
    token: Vec<u8>,
}

impl Broker {
    fn start() -> Broker {
        let _ = chain();
        let dir = tempfile::tempdir().unwrap();
        let expected = dir.path().join("expected.json");
        let e = snpkit_bundle::Expected {
            schema: snpkit_bundle::EXPECTED_SCHEMA,
            recipe: "secret-hello".into(),
            inputs: vec![],
            configs: vec![snpkit_bundle::ExpectedConfig {
                launch: snpkit_bundle::LaunchSpec {
                    name: "hello-1".into(),
                    vcpus: 1,
                    vcpu_type: "EPYC-v4".into(),
                    vmm: "qemu".into(),
                    guest_features: 1,
                    policy: POLICY,
                    memory_mib: 512,
                    host_data: None,
                },
                measurement: GOOD.iter().map(|b| format!("{b:02x}")).collect(),
            }],
        };
        std::fs::write(&expected, serde_json::to_vec(&e).unwrap()).unwrap();
        let mut token = vec![0u8; 40];
        getrandom::fill(&mut token).unwrap();
        let file = dir.path().join("resources").join(TOKEN);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &token).unwrap();
        let broker = snpkit_broker::Broker::new(snpkit_broker::Config {
            resources: dir.path().join("resources"),
            reference: expected,
            policy: None,
            rules: None,
            allow_emulated: true,
            test_chain_dir: None,
            endorsers: snpkit_broker::Endorsers::CacheOnly,
            limits: snpkit_broker::Limits::default(),
            audit: snpkit_broker::AuditTo::Writer(Box::new(std::io::sink())),
            tls: None,
        })
        .expect("the broker starts");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime
            .block_on(broker.serve("127.0.0.1:0".parse().unwrap()))
            .expect("the broker listens");
        let url = format!("http://{}", server.local_addr);
        Broker {
            _dir: dir,
            _broker: broker,
            _server: server,
            runtime,
            url,
            token,
        }
    }

    fn relay(&self) -> HttpRelay {
        HttpRelay::new(&self.url).unwrap()
    }
}

/// Reports from the emulated PSP's signer for a guest measured `measurement`.
fn reporter(measurement: [u8; 48]) -> impl FnMut(&[u8; 64]) -> Result<Evidence> {
    move |data| {
        let c = chain();
        let report = emulated_report(c, &ReportFields::new(measurement, *data, POLICY));
        Ok(Evidence {
            report: Box::new(report),
            certs: snpkit_attest::emulated::certificate_table(c),
        })
    }
}

fn spec(name: &str, resource: &str) -> init::Secret {
    init::Secret {
        name: name.into(),
        resource: resource.into(),
        path: format!("/run/secrets/{name}"),
        mode: 0o440,
    }
}

/// What a run of the guest's fetch against a host relay loop gave on both sides.
struct Ran {
    guest: Result<Vec<Secret>>,
    host: Result<Finished, ChannelError>,
    took: Duration,
}

impl Ran {
    fn error(&self) -> String {
        match &self.guest {
            Ok(_) => panic!("the guest got its secrets"),
            Err(e) => format!("{e:#}"),
        }
    }
}

/// The guest's `fetch_all` over a socket pair to the host's relay loop, which relays to `relay`.
/// The guest ends as `/init` does: Finished when it has every secret, its error otherwise.
fn run(
    secrets: &[init::Secret],
    measurement: [u8; 48],
    relay: impl Relay + 'static,
    guest_timeout: Duration,
) -> Ran {
    let (guest_end, host_end) = UnixStream::pair().unwrap();
    let host = std::thread::spawn(move || {
        let mut relay = relay;
        let mut channel =
            GuestChannel::from_stream(host_end, Instant::now() + Duration::from_secs(120)).unwrap();
        finish_with(&mut channel, &mut |_| {}, Some(&mut relay))
    });
    guest_end.set_nonblocking(true).unwrap();
    let mut port = TimedPort::from_file(File::from(OwnedFd::from(guest_end)), WRITE_TIMEOUT);
    let started = Instant::now();
    let mut reporter = reporter(measurement);
    let guest = {
        let mut transport = PortTransport {
            port: &mut port,
            timeout: guest_timeout,
        };
        fetch_all(secrets, &mut transport, &mut reporter)
    };
    let took = started.elapsed();
    let last = match &guest {
        Ok(_) => Message::Finished(Finished::Exited(0)),
        Err(e) => Message::Error(ErrorMessage(format!("{e:#}").chars().take(4000).collect())),
    };
    port.allow(WRITE_TIMEOUT);
    frame::write_message(&mut port, &last).unwrap();
    drop(port);
    Ran {
        guest,
        host: host.join().unwrap(),
        took,
    }
}

/// A relay that hands each exchange to the broker's and lets `tamper` change it on the way.
fn tampering(
    inner: HttpRelay,
    mut tamper: impl FnMut(
        &mut RelayRequest,
        &mut dyn FnMut(&RelayRequest) -> Result<RelayResponse, String>,
    ) -> Result<RelayResponse, String>
    + Send
    + 'static,
) -> impl Relay {
    let mut inner = inner;
    move |request: &RelayRequest| {
        let mut request = request.clone();
        let mut forward = |r: &RelayRequest| inner.exchange(r);
        tamper(&mut request, &mut forward)
    }
}

#[test]
fn the_secret_is_released_through_the_relay_and_written_with_its_mode() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("relay.bin");
    let relay = broker.relay().capture_to(&capture).unwrap();
    let ran = run(&[spec("token", TOKEN)], GOOD, relay, RELAY_TIMEOUT);
    let secrets = ran.guest.expect("the attested guest gets its secret");
    assert_eq!(ran.host.unwrap(), Finished::Exited(0));
    assert_eq!(secrets[0].expose(), &broker.token[..]);
    assert_eq!(format!("{:?}", secrets[0]), "Secret(40 bytes, redacted)");

    // What the host saw: auth, attest, resource both ways, and never the token.
    let mut seen = Vec::new();
    File::open(&capture)
        .unwrap()
        .read_to_end(&mut seen)
        .unwrap();
    let mut frames = &seen[..];
    let mut kinds = Vec::new();
    while let Ok(m) = frame::read_message(&mut frames) {
        kinds.push(m.kind());
    }
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    assert!(
        !seen.windows(broker.token.len()).any(|w| w == broker.token),
        "the host saw the token"
    );

    let root = tempfile::tempdir().unwrap();
    write(root.path(), &spec("token", TOKEN), &secrets[0]).unwrap();
    let file = root.path().join("run/secrets/token");
    assert_eq!(std::fs::read(&file).unwrap(), broker.token);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o440
    );
    // Never over an existing file.
    let err = write(root.path(), &spec("token", TOKEN), &secrets[0]).unwrap_err();
    assert!(format!("{err:#}").contains("creating"), "{err:#}");
    drop(broker.runtime);
}

#[test]
fn another_measurement_gets_nothing_and_the_broker_says_why() {
    let broker = Broker::start();
    let ran = run(
        &[spec("token", TOKEN)],
        OTHER,
        broker.relay(),
        RELAY_TIMEOUT,
    );
    let err = ran.error();
    assert!(
        err.starts_with(
            "secret 'token' (default/secret-hello/token): the broker refused the evidence (401"
        ),
        "{err}"
    );
    // The host's loop ends with the guest's own words.
    match ran.host {
        Err(ChannelError::Guest { message }) => assert!(message.contains("refused the evidence")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_resource_is_named() {
    let broker = Broker::start();
    let ran = run(
        &[
            spec("token", TOKEN),
            spec("other", "default/secret-hello/none"),
        ],
        GOOD,
        broker.relay(),
        RELAY_TIMEOUT,
    );
    let err = ran.error();
    assert!(
        err.contains("secret 'other' (default/secret-hello/none): the broker refused the resource request (404"),
        "{err}"
    );
}

#[test]
fn a_jwe_with_one_flipped_byte_is_refused_by_the_guest() {
    let broker = Broker::start();
    let relay = tampering(broker.relay(), |request, forward| {
        let mut response = forward(request)?;
        if request.path.starts_with("/kbs/v0/resource/") {
            // One base64url character of the ciphertext, changed to another: a different byte.
            let text = String::from_utf8(response.body.clone()).unwrap();
            let at = text.find("\"ciphertext\":\"").unwrap() + 14;
            let c = response.body[at];
            response.body[at] = if c == b'A' { b'B' } else { b'A' };
        }
        Ok(response)
    });
    let ran = run(&[spec("token", TOKEN)], GOOD, relay, RELAY_TIMEOUT);
    let err = ran.error();
    assert!(
        err.contains("the broker's sealed resource does not open with this boot's key"),
        "{err}"
    );
}

#[test]
fn replayed_evidence_and_a_reused_challenge_are_refused() {
    // The host keeps the first session's evidence and sends it again in the second handshake.
    let broker = Broker::start();
    let kept: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let relay = tampering(broker.relay(), move |request, forward| {
        if request.path == "/kbs/v0/attest" {
            let mut kept = kept.lock().unwrap();
            match kept.as_ref() {
                None => *kept = Some(request.body.clone()),
                Some(first) => request.body = first.clone(),
            }
        }
        forward(request)
    });
    let two = [spec("token", TOKEN), spec("again", TOKEN)];
    let err = run(&two, GOOD, relay, RELAY_TIMEOUT).error();
    assert!(
        err.contains(
            "secret 'again' (default/secret-hello/token): the broker refused the evidence (401"
        ),
        "{err}"
    );

    // The host answers the second auth with the first session's challenge and cookie: the guest
    // binds a nonce the broker has already taken.
    let broker = Broker::start();
    let kept: Arc<Mutex<Option<RelayResponse>>> = Arc::default();
    let relay = tampering(broker.relay(), move |request, forward| {
        if request.path == "/kbs/v0/auth" {
            let mut kept = kept.lock().unwrap();
            if let Some(first) = kept.as_ref() {
                return Ok(first.clone());
            }
            let response = forward(request)?;
            *kept = Some(response.clone());
            return Ok(response);
        }
        forward(request)
    });
    let err = run(&two, GOOD, relay, RELAY_TIMEOUT).error();
    assert!(
        err.contains(
            "secret 'again' (default/secret-hello/token): the broker refused the evidence (401"
        ) && err.contains("already used"),
        "{err}"
    );
}

/// A TCP "broker" that answers every connection with `answer` (after `delay`).
fn fake_broker(answer: Vec<u8>, delay: Duration) -> String {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(&answer);
            });
        }
    });
    url
}

#[test]
fn down_slow_and_huge_brokers_are_bounded() {
    // Down: nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ran = run(
        &[spec("token", TOKEN)],
        GOOD,
        HttpRelay::new(&format!("http://127.0.0.1:{port}")).unwrap(),
        RELAY_TIMEOUT,
    );
    let err = ran.error();
    assert!(
        err.contains("the host could not relay POST /kbs/v0/auth: the broker at http://127.0.0.1:")
            && err.contains("could not be reached"),
        "{err}"
    );

    // Slow: answers after a minute; the relay's limit is a second.
    let url = fake_broker(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
        Duration::from_secs(60),
    );
    let relay = HttpRelay::new(&url)
        .unwrap()
        .with_timeout(Duration::from_secs(1));
    let ran = run(&[spec("token", TOKEN)], GOOD, relay, RELAY_TIMEOUT);
    let err = ran.error();
    assert!(
        err.contains("did not answer POST /kbs/v0/auth within 1s"),
        "{err}"
    );
    assert!(ran.took < Duration::from_secs(10), "{:?}", ran.took);

    // Huge: a 1 MiB body is refused whole by the host, not cut to fit.
    let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n".to_vec();
    answer.resize(answer.len() + (1 << 20), b'x');
    let url = fake_broker(answer, Duration::ZERO);
    let ran = run(
        &[spec("token", TOKEN)],
        GOOD,
        HttpRelay::new(&url).unwrap(),
        RELAY_TIMEOUT,
    );
    let err = ran.error();
    assert!(
        err.contains("is larger than the 61428 bytes one channel frame carries"),
        "{err}"
    );
}

#[test]
fn a_host_that_never_answers_ends_the_fetch_at_the_deadline() {
    let relay = |_: &RelayRequest| -> Result<RelayResponse, String> {
        std::thread::sleep(Duration::from_secs(5));
        Err("too late".into())
    };
    let ran = run(
        &[spec("token", TOKEN)],
        GOOD,
        relay,
        Duration::from_millis(500),
    );
    let err = ran.error();
    assert!(
        err.contains("waiting for the broker's answer to POST /kbs/v0/auth")
            && err.contains("did not answer in time"),
        "{err}"
    );
    assert!(ran.took < Duration::from_secs(3), "{:?}", ran.took);
}

fn answer(status: u16, cookie: &[&str], body: &[u8]) -> RelayResponse {
    RelayResponse {
        status,
        set_cookie: cookie.iter().map(|c| c.to_string()).collect(),
        content_type: "application/json".into(),
        body: body.to_vec(),
    }
}

#[test]
fn hostile_answers_to_auth_are_refused_with_their_reason() {
    let challenge = br#"{"nonce":"bm9uY2U=","extra-params":""}"#;
    let cookie = ["kbs-session-id=abc; Path=/kbs"];
    for (reply, words) in [
        (answer(200, &[], challenge), "sets no kbs-session-id cookie"),
        (answer(200, &cookie, b"<html>"), "the broker's answer to auth"),
        (
            answer(200, &cookie, &vec![b' '; message::MAX_CHALLENGE_LEN + 1]),
            "more than the 16384 the protocol allows",
        ),
        (
            answer(401, &[], br#"{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"no\u001b[2J"}"#),
            "the broker refused auth (401 PolicyDeny): no?[2J",
        ),
        (answer(502, &[], b"Bad Gateway"), "HTTP status 502 and no KBS error information"),
    ] {
        let reply = reply.clone();
        let relay = move |_: &RelayRequest| -> Result<RelayResponse, String> { Ok(reply.clone()) };
        let err = run(&[spec("token", TOKEN)], GOOD, relay, RELAY_TIMEOUT).error();
        assert!(err.contains(words), "{words}: {err}");
    }
    // A token answer that is not one.
    let relay = move |r: &RelayRequest| -> Result<RelayResponse, String> {
        Ok(match r.path.as_str() {
            "/kbs/v0/auth" => answer(200, &cookie, challenge),
            _ => answer(200, &[], b"{\"token\":1}"),
        })
    };
    let err = run(&[spec("token", TOKEN)], GOOD, relay, RELAY_TIMEOUT).error();
    assert!(err.contains("the broker's answer to attest"), "{err}");
}

#[test]
fn a_host_that_sends_another_message_is_refused() {
    let (guest_end, mut host_end) = UnixStream::pair().unwrap();
    let host = std::thread::spawn(move || {
        let _ = frame::read_message(&mut host_end);
        frame::write_message(&mut host_end, &Message::Nonce(frame::Nonce([0; 32]))).unwrap();
        // A frame that lies about its length comes next; the guest must have stopped already.
        let _ = frame::read_message(&mut host_end);
    });
    guest_end.set_nonblocking(true).unwrap();
    let mut port = TimedPort::from_file(File::from(OwnedFd::from(guest_end)), WRITE_TIMEOUT);
    let mut transport = PortTransport::new(&mut port);
    let err = fetch(
        &mut transport,
        &mut reporter(GOOD),
        &ResourcePath::parse(TOKEN).unwrap(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("the host sent Nonce where the broker's answer to POST /kbs/v0/auth was due"),
        "{err:#}"
    );
    drop(port);
    host.join().unwrap();
}

#[test]
fn secret_files_stay_below_run_secrets() {
    let root = tempfile::tempdir().unwrap();
    let secret = Secret::new(b"x".to_vec());
    for (path, mode, words) in [
        ("/etc/shadow", 0o400, "not a file below /run/secrets"),
        ("/run/secrets", 0o400, "not a file below /run/secrets"),
        ("/run/secrets/", 0o400, "not a file below /run/secrets"),
        ("/run/secrets/../x", 0o400, "not a file below /run/secrets"),
        ("/run/secretsx/a", 0o400, "not a file below /run/secrets"),
        ("/run/secrets/a", 0o4755, "bits other than permissions"),
    ] {
        let s = init::Secret {
            name: "t".into(),
            resource: TOKEN.into(),
            path: path.into(),
            mode,
        };
        let err = format!("{:#}", write(root.path(), &s, &secret).unwrap_err());
        assert!(err.contains(words), "{path}: {err}");
    }
    let nested = init::Secret {
        name: "t".into(),
        resource: TOKEN.into(),
        path: "/run/secrets/tls/key.pem".into(),
        mode: 0o400,
    };
    write(root.path(), &nested, &secret).unwrap();
    assert_eq!(
        std::fs::read(root.path().join("run/secrets/tls/key.pem")).unwrap(),
        b"x"
    );
}
