//! The KDS client against a KDS of our own on loopback: URL forms, cache, offline mode, retries,
//! garbage and outages. Nothing here reaches the internet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use snpkit_attest::gather::complete_from_kds;
use snpkit_attest::kds::{Kds, KdsConfig, KdsError, KeyKind};
use snpkit_attest::{CrlInput, Endorsements, Product};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::macros::datetime;

/// One answer of the fake KDS.
#[derive(Clone)]
enum Answer {
    /// Status and body, with an honest Content-Length.
    Full(u16, Vec<u8>),
    /// Status, extra header lines and body.
    WithHeaders(u16, Vec<String>, Vec<u8>),
    /// 200 promising `len` bytes, then sending only `body` and closing: a broken body read.
    Truncated { len: usize, body: Vec<u8> },
    /// 200 with a body and no Content-Length (ends when the connection closes).
    Unsized(Vec<u8>),
}

type Responses = HashMap<String, Vec<Answer>>;

fn ok(status: u16, body: Vec<u8>) -> Vec<Answer> {
    vec![Answer::Full(status, body)]
}

/// A loopback HTTP/1.1 server answering each path from a queue of answers; the last answer
/// repeats. Unknown paths get 404. It records every path asked for and stops with the test process.
struct FakeKds {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
}

fn serve(responses: Responses) -> FakeKds {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let responses = Arc::new(Mutex::new(responses));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            seen2.lock().unwrap().push(path.clone());
            let answer = {
                let mut r = responses.lock().unwrap();
                match r.get_mut(&path) {
                    Some(q) if q.len() > 1 => q.remove(0),
                    Some(q) => q[0].clone(),
                    None => Answer::Full(404, b"not found".to_vec()),
                }
            };
            let (head, body) = match answer {
                Answer::Full(status, body) => (
                    format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len()),
                    body,
                ),
                Answer::WithHeaders(status, headers, body) => (
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{}",
                        body.len(),
                        headers
                            .iter()
                            .map(|h| format!("{h}\r\n"))
                            .collect::<String>()
                    ),
                    body,
                ),
                Answer::Truncated { len, body } => {
                    (format!("HTTP/1.1 200 X\r\nContent-Length: {len}\r\n"), body)
                }
                Answer::Unsized(body) => ("HTTP/1.1 200 X\r\n".to_string(), body),
            };
            let _ = stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    FakeKds { base, seen }
}

fn config(base: &str, cache: &std::path::Path, offline: bool) -> KdsConfig {
    KdsConfig {
        base_url: base.into(),
        cache_dir: cache.to_path_buf(),
        offline,
        timeout: Duration::from_secs(5),
        retries: 2,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(3),
    }
}

const TURIN_URL: &str =
    "/vcek/v1/Turin/3b42092f69c656d3?fmcSPL=0&blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71";
const MILAN_URL: &str = "/vcek/v1/Milan/3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68";

fn no_certs() -> Endorsements {
    Endorsements::default()
}

#[test]
fn turin_vcek_is_fetched_by_8_byte_chip_id_with_fmc_then_served_from_cache() {
    let g = genuine("oak turin v5");
    let kds = serve(HashMap::from([(
        TURIN_URL.to_string(),
        ok(200, read(g.vek)),
    )]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let mut e = no_certs();
    complete_from_kds(&g.report_bytes(), &mut e, None, &online, g.now);
    assert_eq!(
        e.vcek.as_deref(),
        Some(&read(g.vek)[..]),
        "{:?}",
        e.vek_problem
    );
    // The oak endorsement comment gives this URL (query order aside).
    assert!(kds.seen.lock().unwrap().contains(&TURIN_URL.to_string()));
    let strict = snpkit_attest::Policy {
        require_crl: true,
        ..g.policy()
    };
    let v = g.verify_changed(|i| {
        i.endorsements = e.clone();
        i.policy = strict.clone();
    });
    assert_fails_on(
        &v,
        "chain.crl",
        "the fake KDS has no CRL: a failed fetch fails closed",
    );
    // No Turin CRL is vendored: this report's policy opts out, and then the VCEK alone passes.
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert!(v.passed, "{}", v.to_table(false));
    assert_eq!(v.check("chain.crl").unwrap().found, "skipped by policy");

    // Offline now: the same VCEK from the cache, no request.
    let before = kds.seen.lock().unwrap().len();
    let offline = Kds::new(config("http://127.0.0.1:9", cache.path(), true)).unwrap();
    let mut e = no_certs();
    complete_from_kds(&g.report_bytes(), &mut e, None, &offline, g.now);
    assert!(e.vcek.is_some(), "{:?}", e.vek_problem);
    assert_eq!(kds.seen.lock().unwrap().len(), before);
}

#[test]
fn milan_vcek_url_uses_the_full_chip_id() {
    let g = genuine("go-sev-guest milan v2");
    let kds = serve(HashMap::from([(
        MILAN_URL.to_string(),
        ok(200, read(g.vek)),
    )]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let mut e = no_certs();
    complete_from_kds(
        &g.report_bytes(),
        &mut e,
        Some(Product::Milan),
        &online,
        g.now,
    );
    assert!(e.vcek.is_some(), "{:?}", e.vek_problem);
    assert_eq!(kds.seen.lock().unwrap()[0], MILAN_URL);
}

#[test]
fn offline_with_an_empty_cache_names_what_is_missing() {
    let g = genuine("oak cb");
    let cache = tempfile::tempdir().unwrap();
    let offline = Kds::new(config("http://127.0.0.1:9", cache.path(), true)).unwrap();
    let mut e = no_certs();
    complete_from_kds(&g.report_bytes(), &mut e, None, &offline, g.now);
    let problem = e.vek_problem.clone().expect("a reason");
    assert!(
        problem.contains("offline") && problem.contains("Milan VCEK"),
        "{problem}"
    );
    assert!(matches!(e.crl, CrlInput::NotAtHand(_)), "{:?}", e.crl);
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek", "offline, not cached");
    assert!(v.check("chain.vek").unwrap().detail.contains("--offline"));
}

#[test]
fn kds_down_fails_the_verdict_with_the_reason() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let g = genuine("oak cb");
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(
        &format!("http://127.0.0.1:{port}"),
        cache.path(),
        false,
    ))
    .unwrap();
    let mut e = no_certs();
    complete_from_kds(&g.report_bytes(), &mut e, None, &online, g.now);
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek", "KDS down");
    assert!(
        v.check("chain.vek")
            .unwrap()
            .detail
            .contains(&format!("127.0.0.1:{port}"))
    );
    assert_fails_on(&v, "chain.crl", "KDS down: CRL fetch failed");
}

#[test]
fn garbage_is_an_error_and_never_cached() {
    let g = genuine("go-sev-guest milan v2");
    let kds = serve(HashMap::from([
        (
            MILAN_URL.to_string(),
            ok(200, b"<html>rate limited</html>".to_vec()),
        ),
        (
            "/vcek/v1/Milan/crl".to_string(),
            ok(200, vec![0x30, 0x03, 0x02, 0x01, 0x00]),
        ),
    ]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let err = online.vcek(
        Product::Milan,
        &[0; 1],
        &snpkit_attest::report::Tcb::decode(0, Product::Milan.tcb_layout()),
    );
    assert!(
        matches!(err, Err(KdsError::Status { status: 404, .. })),
        "{err:?}"
    );
    let mut e = no_certs();
    complete_from_kds(
        &g.report_bytes(),
        &mut e,
        Some(Product::Milan),
        &online,
        g.now,
    );
    assert!(e.vcek.is_none());
    assert!(
        e.vek_problem
            .as_deref()
            .unwrap_or("")
            .contains("not the Milan VCEK"),
        "{:?}",
        e.vek_problem
    );
    assert!(
        matches!(&e.crl, CrlInput::Failed(why) if why.contains("CRL")),
        "{:?}",
        e.crl
    );
    let offline = Kds::new(config(&kds.base, cache.path(), true)).unwrap();
    let mut e = no_certs();
    complete_from_kds(
        &g.report_bytes(),
        &mut e,
        Some(Product::Milan),
        &offline,
        g.now,
    );
    assert!(e.vcek.is_none(), "garbage must not be cached");
}

#[test]
fn retries_server_errors_and_rate_limits_but_not_404() {
    let g = genuine("go-sev-guest milan v2");
    let kds = serve(HashMap::from([(
        MILAN_URL.to_string(),
        vec![
            Answer::Full(503, b"busy".to_vec()),
            Answer::Full(429, b"slow down".to_vec()),
            Answer::Full(200, read(g.vek)),
        ],
    )]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let tcb = snpkit_attest::report::Tcb::decode(0x4405000000000002, Product::Milan.tcb_layout());
    let chip = hex::decode("3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d").unwrap();
    let der = online
        .vcek(Product::Milan, &chip, &tcb)
        .expect("third attempt succeeds");
    assert_eq!(der, read(g.vek));
    assert_eq!(
        kds.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == MILAN_URL)
            .count(),
        3
    );

    let kds = serve(HashMap::from([(MILAN_URL.to_string(), ok(500, vec![]))]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let err = online
        .vcek(Product::Milan, &chip, &tcb)
        .expect_err("always 500");
    assert!(matches!(err, KdsError::Status { status: 500, .. }), "{err}");
    assert_eq!(
        kds.seen.lock().unwrap().len(),
        3,
        "1 try + 2 retries, then give up"
    );
}

#[test]
fn crl_and_cert_chain_from_the_kds() {
    let crl = read(
        "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der",
    );
    let chain = read("virtee-sev/tests/certs_data/cert_chain_milan");
    let vlek_chain = read("google-go-sev-guest/verify/testdata/milanvlek.testcer");
    let kds = serve(HashMap::from([
        ("/vcek/v1/Milan/crl".to_string(), ok(200, crl.clone())),
        (
            "/vcek/v1/Milan/cert_chain".to_string(),
            ok(200, chain.clone()),
        ),
        (
            "/vlek/v1/Milan/cert_chain".to_string(),
            ok(200, vlek_chain.clone()),
        ),
    ]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let inside = datetime!(2026-07-01 00:00 UTC);
    assert_eq!(
        online.crl(Product::Milan, KeyKind::Vcek, inside).unwrap(),
        crl
    );
    let pem = online.cert_chain(Product::Milan, KeyKind::Vcek).unwrap();
    let certs = snpkit_attest::certs::Cert::decode_bundle("chain", &pem).unwrap();
    let roots = snpkit_attest::roots::builtin(Product::Milan).unwrap();
    assert_eq!(certs[0].fingerprint(), roots.ask.fingerprint());
    assert_eq!(certs[1].fingerprint(), roots.ark.fingerprint());
    let pem = online.cert_chain(Product::Milan, KeyKind::Vlek).unwrap();
    let certs = snpkit_attest::certs::Cert::decode_bundle("chain", &pem).unwrap();
    assert_eq!(
        Some(certs[0].fingerprint()),
        roots.asvk.as_ref().map(|a| a.fingerprint())
    );

    // A cached CRL past its nextUpdate is fetched again when online.
    let n = kds.seen.lock().unwrap().len();
    online.crl(Product::Milan, KeyKind::Vcek, inside).unwrap();
    assert_eq!(kds.seen.lock().unwrap().len(), n, "fresh: from the cache");
    online
        .crl(
            Product::Milan,
            KeyKind::Vcek,
            datetime!(2026-09-01 00:00 UTC),
        )
        .unwrap();
    assert_eq!(
        kds.seen.lock().unwrap().len(),
        n + 1,
        "stale: fetched again"
    );

    // And a fetched CRL takes part in the verdict.
    let g = genuine("virtee milan v2");
    let mut e = g.endorsements();
    complete_from_kds(&g.report_bytes(), &mut e, None, &online, inside);
    assert!(matches!(e.crl, CrlInput::Given(_)));
    let v = g.verify_changed(|i| {
        i.endorsements = e.clone();
        i.now = inside;
    });
    assert!(v.passed, "{}", v.to_table(false));
}

#[test]
fn vlek_and_masked_chip_ids_are_not_fetched() {
    let g = genuine("trustee AWS VLEK v3");
    let cache = tempfile::tempdir().unwrap();
    let offline = Kds::new(config("http://127.0.0.1:9", cache.path(), true)).unwrap();
    let mut e = no_certs();
    complete_from_kds(&g.report_bytes(), &mut e, None, &offline, g.now);
    assert!(
        e.vek_problem.as_deref().unwrap_or("").contains("VLEK"),
        "{:?}",
        e.vek_problem
    );
}

#[test]
fn the_emulated_chain_never_asks_the_kds() {
    let chain = snpkit_attest::emulated::TestChain::cached().expect("test chain");
    let l = snpkit_attest::emulated::ReportFields::new([1; 48], [2; 64], 0x30000);
    let report = snpkit_attest::emulated::emulated_report(chain, &l);
    let kds = serve(HashMap::new());
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let mut e = Endorsements {
        ark: Some(chain.roots.ark.der().to_vec()),
        ask: Some(chain.roots.ask.der().to_vec()),
        vcek: Some(chain.vcek.der().to_vec()),
        ..Endorsements::default()
    };
    complete_from_kds(
        &report,
        &mut e,
        None,
        &online,
        time::OffsetDateTime::now_utc(),
    );
    assert!(kds.seen.lock().unwrap().is_empty());
    assert!(
        matches!(&e.crl, CrlInput::NotAtHand(why) if why.contains("emulated")),
        "{:?}",
        e.crl
    );
}

const CHIP: &str = "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d";

fn milan_vcek(kds: &Kds) -> Result<Vec<u8>, KdsError> {
    let tcb = snpkit_attest::report::Tcb::decode(0x4405000000000002, Product::Milan.tcb_layout());
    kds.vcek(Product::Milan, &hex::decode(CHIP).unwrap(), &tcb)
}

fn asked(kds: &FakeKds, path: &str) -> usize {
    kds.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|p| *p == path)
        .count()
}

#[test]
fn a_kds_that_never_answers_ends_in_a_clear_failing_verdict() {
    // Accepts every connection and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(50) {
            held.push(stream);
        }
    });
    let g = genuine("oak cb");
    let cache = tempfile::tempdir().unwrap();
    let cfg = KdsConfig {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..config(&base, cache.path(), false)
    };
    let kds = Kds::new(cfg).unwrap();
    let started = std::time::Instant::now();
    let mut e = no_certs();
    complete_from_kds(&g.report_bytes(), &mut e, None, &kds, g.now);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );
    let v = g.verify_changed(|i| i.endorsements = e.clone());
    assert_fails_on(&v, "chain.vek", "silent KDS");
    assert_fails_on(&v, "chain.crl", "silent KDS");
    let detail = &v.check("chain.vek").unwrap().detail;
    assert!(detail.contains("did not answer within 0.3 s"), "{detail}");
    assert!(detail.contains(&base), "{detail}");
    assert!(
        v.check("chain.crl")
            .unwrap()
            .detail
            .contains("did not answer"),
        "{}",
        v.to_table(false)
    );
}

#[test]
fn oversized_answers_are_refused_before_they_are_read_and_not_retried() {
    let g = genuine("go-sev-guest milan v2");
    let big = vec![0x30; 100 * 1024];
    for answer in [Answer::Full(200, big.clone()), Answer::Unsized(big.clone())] {
        let kds = serve(HashMap::from([(MILAN_URL.to_string(), vec![answer])]));
        let cache = tempfile::tempdir().unwrap();
        let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
        let err = milan_vcek(&online).expect_err("100 KiB is no certificate");
        assert!(matches!(err, KdsError::TooBig { max: 65536, .. }), "{err}");
        assert!(err.to_string().contains("more than 65536 bytes"), "{err}");
        assert_eq!(
            asked(&kds, MILAN_URL),
            1,
            "the same answer would come again"
        );
        assert!(
            !snpkit_attest::kds::cache::file_for(cache.path(), MILAN_URL).exists(),
            "nothing cached"
        );
    }
    // A CRL may be bigger than a certificate, up to 1 MiB.
    let crl_url = "/vcek/v1/Milan/crl";
    let kds = serve(HashMap::from([(
        crl_url.to_string(),
        ok(200, vec![0x30; 2 * 1024 * 1024]),
    )]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let err = online
        .crl(Product::Milan, KeyKind::Vcek, g.now)
        .expect_err("2 MiB");
    assert!(
        matches!(err, KdsError::TooBig { max: 1_048_576, .. }),
        "{err}"
    );
}

#[test]
fn a_broken_body_is_retried() {
    let g = genuine("go-sev-guest milan v2");
    let vcek = read(g.vek);
    let kds = serve(HashMap::from([(
        MILAN_URL.to_string(),
        vec![
            Answer::Truncated {
                len: vcek.len(),
                body: vcek[..100].to_vec(),
            },
            Answer::Full(200, vcek.clone()),
        ],
    )]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    assert_eq!(milan_vcek(&online).expect("second attempt"), vcek);
    assert_eq!(asked(&kds, MILAN_URL), 2);
}

#[test]
fn retry_after_is_honoured_within_a_bound() {
    let g = genuine("go-sev-guest milan v2");
    let vcek = read(g.vek);
    let kds = serve(HashMap::from([(
        MILAN_URL.to_string(),
        vec![
            Answer::WithHeaders(503, vec!["Retry-After: 1".into()], b"busy".to_vec()),
            Answer::Full(200, vcek.clone()),
        ],
    )]));
    let cache = tempfile::tempdir().unwrap();
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(milan_vcek(&online).expect("after the pause"), vcek);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}, the server asked for 1 s (backoff alone is 10 ms)",
        started.elapsed()
    );

    // Asked to come back in an hour (bound: 3 s): no waiting, a clear error.
    let kds = serve(HashMap::from([(
        MILAN_URL.to_string(),
        vec![Answer::WithHeaders(
            429,
            vec!["Retry-After: 3600".into()],
            b"slow down".to_vec(),
        )],
    )]));
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    let _ = std::fs::remove_dir_all(cache.path().join("vcek"));
    let started = std::time::Instant::now();
    let err = milan_vcek(&online).expect_err("too long to wait");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, KdsError::RetryTooLate { status: 429, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("3600 s"), "{err}");
    assert_eq!(asked(&kds, MILAN_URL), 1);
}

#[test]
fn an_oversized_cache_file_is_not_read() {
    let g = genuine("go-sev-guest milan v2");
    let cache = tempfile::tempdir().unwrap();
    let file = snpkit_attest::kds::cache::file_for(cache.path(), MILAN_URL);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, vec![0x30; 200 * 1024]).unwrap();
    let offline = Kds::new(config("http://127.0.0.1:9", cache.path(), true)).unwrap();
    let err = milan_vcek(&offline).expect_err("unusable cache");
    assert!(matches!(err, KdsError::CacheUnusable { .. }), "{err}");
    assert!(err.to_string().contains("204800 bytes"), "{err}");
    // Online, the KDS's answer replaces it.
    let kds = serve(HashMap::from([(
        MILAN_URL.to_string(),
        ok(200, read(g.vek)),
    )]));
    let online = Kds::new(config(&kds.base, cache.path(), false)).unwrap();
    assert_eq!(milan_vcek(&online).expect("fetched"), read(g.vek));
    assert_eq!(std::fs::read(&file).unwrap(), read(g.vek));
}
