//! The KDS client against hostile servers on loopback, one row per behaviour: servers that stall
//! or trickle (the deadline covers the whole request), redirect, or answer well-formed lies (a
//! certificate of the wrong kind or chip or TCB, a CRL or chain of someone else). Every row must
//! end in a named error within its bound, ask once, and leave nothing in the cache. Then the
//! cache: a lie planted there is removed with a note and costs one fetch, never later runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use snpkit_attest::kds::{Kds, KdsConfig, KdsError, KeyKind, cache, vcek_path};
use snpkit_attest::{Product, report};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::macros::datetime;

/// How the fake KDS answers one path.
#[derive(Clone)]
enum Behaviour {
    Full(u16, Vec<u8>),
    /// Status, extra header lines, body.
    Headers(u16, Vec<String>, Vec<u8>),
    /// 200 promising `total` bytes, then one byte every `every`.
    Trickle {
        total: usize,
        every: Duration,
    },
    /// 200 promising 2000 bytes, then nothing.
    StallAfterHeaders,
    /// Reads the request and never answers.
    StallBeforeHeaders,
    /// 200 with no length, then `size` bytes as fast as it can.
    Flood {
        size: usize,
    },
}

struct Server {
    base: String,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn asked(&self, path: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

fn answer(mut stream: TcpStream, behaviour: Behaviour) {
    let head = |status: u16, len: Option<usize>, extra: &[String]| {
        let mut h = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        if let Some(n) = len {
            h.push_str(&format!("Content-Length: {n}\r\n"));
        }
        for e in extra {
            h.push_str(&format!("{e}\r\n"));
        }
        h.push_str("\r\n");
        h
    };
    // Long enough for any deadline under test, short enough to let the test process end.
    let linger = || std::thread::sleep(Duration::from_secs(20));
    let _ = match behaviour {
        Behaviour::Full(status, body) => stream
            .write_all(head(status, Some(body.len()), &[]).as_bytes())
            .and_then(|()| stream.write_all(&body)),
        Behaviour::Headers(status, extra, body) => stream
            .write_all(head(status, Some(body.len()), &extra).as_bytes())
            .and_then(|()| stream.write_all(&body)),
        Behaviour::Trickle { total, every } => {
            let _ = stream.write_all(head(200, Some(total), &[]).as_bytes());
            for _ in 0..total {
                if stream.write_all(&[0x30]).is_err() {
                    break;
                }
                std::thread::sleep(every);
            }
            Ok(())
        }
        Behaviour::StallAfterHeaders => {
            let _ = stream.write_all(head(200, Some(2000), &[]).as_bytes());
            linger();
            Ok(())
        }
        Behaviour::StallBeforeHeaders => {
            linger();
            Ok(())
        }
        Behaviour::Flood { size } => stream
            .write_all(head(200, None, &[]).as_bytes())
            .and_then(|()| stream.write_all(&vec![0x30; size])),
    };
}

fn serve(paths: HashMap<String, Behaviour>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            seen.lock().unwrap().push(path.clone());
            let behaviour = paths
                .get(&path)
                .cloned()
                .unwrap_or(Behaviour::Full(404, b"not found".to_vec()));
            // Each connection on its own thread: a stalled one must not hold the others.
            std::thread::spawn(move || answer(stream, behaviour));
        }
    });
    Server { base, asked }
}

const DEADLINE: Duration = Duration::from_secs(1);

fn config(base: &str, cache: &std::path::Path, offline: bool) -> KdsConfig {
    KdsConfig {
        base_url: base.into(),
        cache_dir: cache.to_path_buf(),
        offline,
        timeout: DEADLINE,
        retries: 2,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
    }
}

/// The Milan chip, TCB and VCEK of go-sev-guest's report.
struct Subject {
    chip: Vec<u8>,
    tcb: report::Tcb,
    vcek: Vec<u8>,
    path: String,
}

fn subject() -> Subject {
    let g = genuine("go-sev-guest milan v2");
    let r = report::parse(&g.report_bytes()).unwrap();
    let chip = r.chip_id_for(Product::Milan).to_vec();
    let tcb = r.tcb(r.reported_tcb, Product::Milan);
    let path = vcek_path(Product::Milan, &chip, &tcb);
    Subject {
        chip,
        tcb,
        vcek: read(g.vek),
        path,
    }
}

type Call = fn(&Kds, &Subject) -> Result<Vec<u8>, KdsError>;

fn vcek(kds: &Kds, s: &Subject) -> Result<Vec<u8>, KdsError> {
    kds.vcek(Product::Milan, &s.chip, &s.tcb)
}

fn vcek_next_tcb(kds: &Kds, s: &Subject) -> Result<Vec<u8>, KdsError> {
    let mut tcb = s.tcb;
    tcb.bootloader += 1;
    kds.vcek(Product::Milan, &s.chip, &tcb)
}

fn crl(kds: &Kds, _: &Subject) -> Result<Vec<u8>, KdsError> {
    kds.crl(
        Product::Milan,
        KeyKind::Vcek,
        datetime!(2026-07-01 00:00 UTC),
    )
}

fn chain(kds: &Kds, _: &Subject) -> Result<Vec<u8>, KdsError> {
    kds.cert_chain(Product::Milan, KeyKind::Vcek)
}

const CRL_PATH: &str = "/vcek/v1/Milan/crl";
const CHAIN_PATH: &str = "/vcek/v1/Milan/cert_chain";

#[test]
fn hostile_kds_rows() {
    let s = subject();
    let milan = snpkit_attest::roots::builtin(Product::Milan).unwrap();
    let test_chain = snpkit_attest::emulated::TestChain::cached().expect("test chain");
    let mut next_tcb = s.tcb;
    next_tcb.bootloader += 1;
    let next_tcb_path = vcek_path(Product::Milan, &s.chip, &next_tcb);
    // AMD's chain, PEM, with its two certificates swapped.
    let ark_then_ask = {
        let pem = String::from_utf8(read("virtee-sev/tests/certs_data/cert_chain_milan")).unwrap();
        let end = "-----END CERTIFICATE-----";
        let mut blocks: Vec<String> = pem
            .split_inclusive(end)
            .filter(|b| b.contains(end))
            .map(|b| format!("{}\n", b.trim()))
            .collect();
        assert_eq!(blocks.len(), 2);
        blocks.swap(0, 1);
        blocks.concat().into_bytes()
    };
    // (name, path served, behaviour, call, error words, the most time it may take)
    type Row<'a> = (&'a str, String, Behaviour, Call, &'a [&'a str], Duration);
    let rows: Vec<Row<'_>> = vec![
        (
            "trickles a byte every 200 ms",
            s.path.clone(),
            Behaviour::Trickle {
                total: 1500,
                every: Duration::from_millis(200),
            },
            vcek,
            &["did not answer within 1 s", "whole body"],
            DEADLINE * 2,
        ),
        (
            "headers, then silence",
            s.path.clone(),
            Behaviour::StallAfterHeaders,
            vcek,
            &["did not answer within 1 s"],
            DEADLINE * 2,
        ),
        (
            "accepts and never answers",
            CRL_PATH.into(),
            Behaviour::StallBeforeHeaders,
            crl,
            &["did not answer within 1 s"],
            DEADLINE * 2,
        ),
        (
            "redirects elsewhere",
            s.path.clone(),
            Behaviour::Headers(
                302,
                vec!["Location: http://198.51.100.7/vcek".into()],
                vec![],
            ),
            vcek,
            &["redirect to http://198.51.100.7/vcek", "does not follow"],
            DEADLINE,
        ),
        (
            "the ASK as the VCEK",
            s.path.clone(),
            Behaviour::Full(200, milan.ask.der().to_vec()),
            vcek,
            &["not a VCEK (SEV-VCEK)"],
            DEADLINE,
        ),
        (
            "another Milan chip's VCEK",
            s.path.clone(),
            Behaviour::Full(200, read(genuine("virtee milan v2").vek)),
            vcek,
            &["the VCEK of chip"],
            DEADLINE,
        ),
        (
            "a Turin VCEK as the Milan one",
            s.path.clone(),
            Behaviour::Full(200, read("virtee-sev/tests/certs_data/vcek_turin.der")),
            vcek,
            &["not signed by AMD's Milan ASK"],
            DEADLINE,
        ),
        (
            "the VCEK of another TCB",
            next_tcb_path,
            Behaviour::Full(200, s.vcek.clone()),
            vcek_next_tcb,
            &["blSPL=", "not for blSPL="],
            DEADLINE,
        ),
        (
            "the emulated PSP's test VCEK",
            s.path.clone(),
            Behaviour::Full(200, test_chain.vcek.der().to_vec()),
            vcek,
            &["not signed by AMD's Milan ASK"],
            DEADLINE,
        ),
        (
            "a CRL signed by the test chain's ARK",
            CRL_PATH.into(),
            Behaviour::Full(200, test_chain.crl.clone()),
            crl,
            &["not by AMD's Milan ARK"],
            DEADLINE,
        ),
        (
            "the Turin chain as the Milan one",
            CHAIN_PATH.into(),
            Behaviour::Full(200, read("virtee-sev/tests/certs_data/cert_chain_turin")),
            chain,
            &["not AMD's pinned Milan ASK"],
            DEADLINE,
        ),
        (
            "the chain in the wrong order",
            CHAIN_PATH.into(),
            Behaviour::Full(200, ark_then_ask),
            chain,
            &["not AMD's pinned Milan ASK"],
            DEADLINE,
        ),
        (
            "floods 50 MiB without a length",
            s.path.clone(),
            Behaviour::Flood { size: 50 << 20 },
            vcek,
            &["more than 65536 bytes"],
            DEADLINE * 2,
        ),
        (
            "an HTML page with 200",
            CRL_PATH.into(),
            Behaviour::Full(200, b"<html>maintenance</html>".to_vec()),
            crl,
            &["not the Milan vcek CRL"],
            DEADLINE,
        ),
    ];
    let mut failures = Vec::new();
    for (name, path, behaviour, call, words, bound) in rows {
        let server = serve(HashMap::from([(path.clone(), behaviour)]));
        let dir = tempfile::tempdir().unwrap();
        let kds = Kds::new(config(&server.base, dir.path(), false)).unwrap();
        let started = Instant::now();
        let result = call(&kds, &s);
        let took = started.elapsed();
        let text = match &result {
            Ok(_) => {
                failures.push(format!("{name}: accepted"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        for w in words {
            if !text.contains(w) {
                failures.push(format!("{name}: {text:?} lacks {w:?}"));
            }
        }
        if took > bound {
            failures.push(format!("{name}: took {took:?}, more than {bound:?}"));
        }
        if server.asked(&path) != 1 {
            failures.push(format!(
                "{name}: asked {} times (a deadline, a lie or a redirect is not retried)",
                server.asked(&path)
            ));
        }
        if cache::file_for(dir.path(), &path).exists() {
            failures.push(format!("{name}: cached"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_lie_in_the_cache_is_removed_and_costs_one_fetch() {
    let s = subject();
    let milan = snpkit_attest::roots::builtin(Product::Milan).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = cache::file_for(dir.path(), &s.path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // Planted: the ASK where the VCEK belongs.
    std::fs::write(&file, milan.ask.der()).unwrap();
    let offline = Kds::new(config("http://127.0.0.1:9", dir.path(), true)).unwrap();
    let err = vcek(&offline, &s).expect_err("a lie is not used");
    assert!(matches!(err, KdsError::CacheUnusable { .. }), "{err}");
    assert!(err.to_string().contains("not a VCEK"), "{err}");
    assert!(
        !file.exists(),
        "removed, so later runs are not stuck with it"
    );
    let err = vcek(&offline, &s).expect_err("nothing cached now");
    assert!(matches!(err, KdsError::NotCached { .. }), "{err}");
    // Online, one fetch replaces it; offline works again after that.
    let server = serve(HashMap::from([(
        s.path.clone(),
        Behaviour::Full(200, s.vcek.clone()),
    )]));
    let online = Kds::new(config(&server.base, dir.path(), false)).unwrap();
    assert_eq!(vcek(&online, &s).unwrap(), s.vcek);
    assert_eq!(vcek(&offline, &s).unwrap(), s.vcek);
    assert_eq!(server.asked(&s.path), 1);

    // A CRL signed by someone else in the cache, online: fetched again and replaced.
    let test_chain = snpkit_attest::emulated::TestChain::cached().expect("test chain");
    let crl_file = cache::file_for(dir.path(), CRL_PATH);
    std::fs::create_dir_all(crl_file.parent().unwrap()).unwrap();
    std::fs::write(&crl_file, &test_chain.crl).unwrap();
    let genuine_crl = read(MILAN_CRL);
    let server = serve(HashMap::from([(
        CRL_PATH.to_string(),
        Behaviour::Full(200, genuine_crl.clone()),
    )]));
    let online = Kds::new(config(&server.base, dir.path(), false)).unwrap();
    assert_eq!(crl(&online, &s).unwrap(), genuine_crl);
    assert_eq!(std::fs::read(&crl_file).unwrap(), genuine_crl);
}

#[test]
fn a_fifo_in_the_cache_neither_hangs_nor_sticks() {
    let s = subject();
    let dir = tempfile::tempdir().unwrap();
    let file = cache::file_for(dir.path(), &s.path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .unwrap();
    assert!(made.success());
    let offline = Kds::new(config("http://127.0.0.1:9", dir.path(), true)).unwrap();
    let started = Instant::now();
    let err = vcek(&offline, &s).expect_err("a FIFO is no certificate");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("FIFO"), "{err}");
    assert!(!file.exists(), "removed");
}
