//! Hostile input, as a table: raw HTTP on a fresh connection (no client-side URL normalisation),
//! the status the broker must answer and a word its reason must contain. Every row that needs a
//! session gets its own (a challenged one, or an attested one), since a failed attempt spends it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use snpkit_broker::Limits;
use std::time::Duration;

#[derive(Clone, Copy)]
enum Needs {
    Nothing,
    /// A challenged session; the body is built from its attester session, then mutated.
    Challenge(fn(&mut serde_json::Value)),
    /// A challenged session; the body is sent as given.
    ChallengeRaw,
    /// An attested session.
    Attested,
}

struct Row {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: &'static [u8],
    needs: Needs,
    status: u16,
    says: &'static str,
}

const fn row(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: &'static [u8],
    needs: Needs,
    status: u16,
    says: &'static str,
) -> Row {
    Row {
        name,
        method,
        path,
        body,
        needs,
        status,
        says,
    }
}

const AUTH: &str = "/kbs/v0/auth";
const ATTEST: &str = "/kbs/v0/attest";

fn long_path() -> &'static str {
    Box::leak(format!("/kbs/v0/resource/default/secret-hello/{}", "x".repeat(256)).into_boxed_str())
}

fn rows() -> Vec<Row> {
    use Needs::*;
    vec![
        // auth
        row(
            "auth: not JSON",
            "POST",
            AUTH,
            b"\x00\xffnot json",
            Nothing,
            401,
            "not the JSON",
        ),
        row(
            "auth: unknown member",
            "POST",
            AUTH,
            br#"{"version":"0.4.0","tee":"snp","extra-params":{},"x":1}"#,
            Nothing,
            401,
            "unknown field",
        ),
        row(
            "auth: stale version from the protocol document",
            "POST",
            AUTH,
            br#"{"version":"0.1.1","tee":"snp","extra-params":""}"#,
            Nothing,
            401,
            "0.4.0",
        ),
        row(
            "auth: another TEE",
            "POST",
            AUTH,
            br#"{"version":"0.4.0","tee":"tdx","extra-params":""}"#,
            Nothing,
            401,
            "snp",
        ),
        row(
            "auth: no extra-params",
            "POST",
            AUTH,
            br#"{"version":"0.4.0","tee":"snp"}"#,
            Nothing,
            401,
            "extra-params",
        ),
        row("auth: GET", "GET", AUTH, b"", Nothing, 405, ""),
        // attest: cookies
        row(
            "attest: no cookie",
            "POST",
            ATTEST,
            b"{}",
            Nothing,
            401,
            "no kbs-session-id cookie",
        ),
        // attest: bodies (each spends its own fresh session)
        row(
            "attest: not JSON",
            "POST",
            ATTEST,
            b"[[[[",
            ChallengeRaw,
            401,
            "not the JSON",
        ),
        row(
            "attest: empty object",
            "POST",
            ATTEST,
            b"{}",
            ChallengeRaw,
            401,
            "missing field",
        ),
        row(
            "attest: RSA key",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["runtime-data"]["tee-pubkey"] =
                    serde_json::json!({"kty":"RSA","alg":"RSA-OAEP-256","n":"AQAB","e":"AQAB"})
            }),
            401,
            "RSA",
        ),
        row(
            "attest: key off the curve",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["runtime-data"]["tee-pubkey"]["y"] =
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()
            }),
            401,
            "not a point",
        ),
        row(
            "attest: unknown member",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| v["extra"] = 1.into()),
            401,
            "unknown field",
        ),
        row(
            "attest: unknown report field",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["attestation_report"]["x"] = 1.into()
            }),
            401,
            "unknown field",
        ),
        row(
            "attest: short measurement",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["attestation_report"]["measurement"] =
                    serde_json::Value::from(vec![0u8; 47])
            }),
            401,
            "47",
        ),
        row(
            "attest: byte out of range",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["attestation_report"]["report_data"][0] =
                    300.into()
            }),
            401,
            "300",
        ),
        row(
            "attest: report version 9",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["attestation_report"]["version"] = 9.into()
            }),
            401,
            "version 9",
        ),
        row(
            "attest: FMC on a Milan",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["attestation_report"]["reported_tcb"]["fmc"] =
                    1.into()
            }),
            401,
            "FMC",
        ),
        row(
            "attest: two VCEKs",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                let vcek = v["tee-evidence"]["primary_evidence"]["cert_chain"][2].clone();
                v["tee-evidence"]["primary_evidence"]["cert_chain"]
                    .as_array_mut()
                    .unwrap()
                    .push(vcek);
            }),
            401,
            "two VCEK",
        ),
        row(
            "attest: seventeen certificates",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["cert_chain"] =
                    serde_json::Value::Array(vec![
                        serde_json::json!({"cert_type":"Empty","data":[]});
                        17
                    ])
            }),
            401,
            "17 entries",
        ),
        row(
            "attest: a forged VCEK",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["cert_chain"][2]["data"][200] = 0.into()
            }),
            401,
            "chain",
        ),
        row(
            "attest: signature bit flipped",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                let b =
                    v["tee-evidence"]["primary_evidence"]["attestation_report"]["signature"]["r"]
                        [0]
                    .as_u64()
                    .unwrap();
                v["tee-evidence"]["primary_evidence"]["attestation_report"]["signature"]["r"][0] =
                    (b ^ 1).into();
            }),
            401,
            "report.signature",
        ),
        row(
            "attest: additional evidence",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| v["tee-evidence"]["additional_evidence"] = "{\"tdx\":{}}".into()),
            401,
            "additional evidence",
        ),
        row(
            "attest: init-data",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| v["init-data"] = serde_json::json!({"format":"toml","body":"x"})),
            401,
            "init-data",
        ),
        row(
            "attest: another nonce",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| v["runtime-data"]["nonce"] = "AAAA".into()),
            401,
            "not this session's nonce",
        ),
        row(
            "attest: empty nonce",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| v["runtime-data"]["nonce"] = "".into()),
            401,
            "nonce is 0 bytes",
        ),
        row(
            "attest: no certificates",
            "POST",
            ATTEST,
            b"",
            Challenge(|v| {
                v["tee-evidence"]["primary_evidence"]["cert_chain"] = serde_json::Value::Null
            }),
            401,
            "chain.vek",
        ),
        // resource paths (an attested session, so only the path is wrong)
        row(
            "resource: encoded slashes",
            "GET",
            "/kbs/v0/resource/..%2F..%2Fetc/passwd/x",
            b"",
            Attested,
            404,
            "'/'",
        ),
        row(
            "resource: encoded dot-dot",
            "GET",
            "/kbs/v0/resource/%2e%2e/secret-hello/token",
            b"",
            Attested,
            404,
            "which names no file",
        ),
        row(
            "resource: dot-dot",
            "GET",
            "/kbs/v0/resource/default/../token",
            b"",
            Attested,
            404,
            "which names no file",
        ),
        row(
            "resource: dot",
            "GET",
            "/kbs/v0/resource/default/./token",
            b"",
            Attested,
            404,
            "which names no file",
        ),
        row(
            "resource: empty component",
            "GET",
            "/kbs/v0/resource/default//token",
            b"",
            Attested,
            404,
            "empty",
        ),
        row(
            "resource: NUL",
            "GET",
            "/kbs/v0/resource/default/secret-hello/token%00",
            b"",
            Attested,
            404,
            "NUL",
        ),
        row(
            "resource: newline",
            "GET",
            "/kbs/v0/resource/default/secret-hello/tok%0aen",
            b"",
            Attested,
            404,
            "control",
        ),
        row(
            "resource: bad UTF-8",
            "GET",
            "/kbs/v0/resource/default/secret-hello/%ff",
            b"",
            Attested,
            404,
            "UTF-8",
        ),
        row(
            "resource: four components",
            "GET",
            "/kbs/v0/resource/a/b/c/d",
            b"",
            Attested,
            404,
            "4 components",
        ),
        row(
            "resource: two components",
            "GET",
            "/kbs/v0/resource/a/b",
            b"",
            Attested,
            404,
            "2 components",
        ),
        row(
            "resource: too long",
            "GET",
            long_path(),
            b"",
            Attested,
            404,
            "more than 255",
        ),
        row(
            "resource: a directory",
            "GET",
            "/kbs/v0/resource/default/secret-hello/..%2f",
            b"",
            Attested,
            404,
            "'/'",
        ),
        row(
            "resource: no cookie",
            "GET",
            "/kbs/v0/resource/default/secret-hello/token",
            b"",
            Nothing,
            401,
            "no kbs-session-id cookie",
        ),
        row(
            "resource: challenged only",
            "GET",
            "/kbs/v0/resource/default/secret-hello/token",
            b"",
            ChallengeRaw,
            401,
            "has not attested",
        ),
        row(
            "resource: POST",
            "POST",
            "/kbs/v0/resource/default/secret-hello/token",
            b"x",
            Attested,
            405,
            "",
        ),
        // elsewhere
        row(
            "unknown endpoint",
            "GET",
            "/kbs/v0/attestation-policy",
            b"",
            Nothing,
            404,
            "no endpoint",
        ),
        row("root", "GET", "/", b"", Nothing, 404, "no endpoint"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_the_right_refusal() {
    let f = Fixture::start(Setup::default()).await;
    let mut failures = Vec::new();
    for r in rows() {
        let (cookie, body) = match r.needs {
            Needs::Nothing => (None, r.body.to_vec()),
            Needs::ChallengeRaw => (Some(f.client.auth().await.unwrap().cookie), r.body.to_vec()),
            Needs::Challenge(mutate) => {
                let c = f.client.auth().await.unwrap();
                let mut v: serde_json::Value =
                    serde_json::from_slice(&evidence(&c.session).unwrap()).unwrap();
                mutate(&mut v);
                (Some(c.cookie), serde_json::to_vec(&v).unwrap())
            }
            Needs::Attested => {
                let c = f.client.auth().await.unwrap();
                f.client
                    .attest(&c.cookie, evidence(&c.session).unwrap())
                    .await
                    .unwrap();
                (Some(c.cookie), r.body.to_vec())
            }
        };
        let got = raw(
            f.addr(),
            &request(r.method, r.path, cookie.as_deref(), &body),
        )
        .await;
        match got {
            Some((status, text)) if status == r.status && text.contains(r.says) => {}
            other => failures.push(format!(
                "{}: want {} saying {:?}, got {other:?}",
                r.name, r.status, r.says
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The secret never left: no resource line allowed anything.
    assert!(
        f.audit
            .lines()
            .iter()
            .all(|l| l["event"] != "resource" || l["decision"] == "deny")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_slow_bodies_are_bounded() {
    let f = Fixture::start(Setup {
        limits: Limits {
            request_timeout: Duration::from_millis(800),
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A declared length over the limit is refused before a byte of body is read.
    let head = "POST /kbs/v0/attest HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: kbs-session-id=abc\r\nContent-Length: 104857600\r\n\r\n";
    let (status, text) = raw(f.addr(), head.as_bytes()).await.expect("an answer");
    assert!(status == 401 || status == 413, "{status} {text}");
    let c = f.client.auth().await.unwrap();
    let head = format!(
        "POST /kbs/v0/attest HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: kbs-session-id={}\r\nContent-Length: 104857600\r\n\r\n",
        c.cookie
    );
    let (status, text) = raw(f.addr(), head.as_bytes()).await.expect("an answer");
    assert_eq!(status, 413, "{text}");
    // A chunked body that never ends keeps growing past the limit: refused once it passes.
    let c = f.client.auth().await.unwrap();
    let mut s = tokio::net::TcpStream::connect(f.addr()).await.unwrap();
    let head = format!(
        "POST /kbs/v0/attest HTTP/1.1\r\nHost: x\r\nCookie: kbs-session-id={}\r\nTransfer-Encoding: chunked\r\n\r\n",
        c.cookie
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut status = None;
    for _ in 0..64 {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(5), s.read(&mut buf)).await
            && n > 0
        {
            status = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    let status = match status {
        Some(s) => s,
        None => {
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
            String::from_utf8_lossy(&rest).into_owned()
        }
    };
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // A body that trickles in too slowly is cut off at the deadline.
    let c = f.client.auth().await.unwrap();
    let mut s = tokio::net::TcpStream::connect(f.addr()).await.unwrap();
    let head = format!(
        "POST /kbs/v0/attest HTTP/1.1\r\nHost: x\r\nCookie: kbs-session-id={}\r\nContent-Length: 1000\r\n\r\n{{",
        c.cookie
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let started = std::time::Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Headers that never end are cut off too.
    let mut s = tokio::net::TcpStream::connect(f.addr()).await.unwrap();
    s.write_all(b"POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    assert!(
        done.is_ok(),
        "the connection was not closed at the header deadline"
    );
    // Header floods are refused by the HTTP layer.
    let flood = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let got = raw(f.addr(), flood.as_bytes()).await;
    assert!(
        got.as_ref().is_none_or(|(s, _)| *s == 431 || *s == 400),
        "{got:?}"
    );
}
