//! The protocol end to end against the real server on loopback: auth → attest → resource with
//! evidence from the emulated PSP's signer, and each way it must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use common::*;
use snpkit_broker::Limits;
use snpkit_kbs::jwe::JweError;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_with_the_reference_measurement_gets_its_secret() {
    let f = Fixture::start(Setup::default()).await;
    let c = f.client.auth().await.expect("challenge");
    assert_eq!(c.challenge.nonce.len(), 44, "32 bytes, standard base64");
    let token = f
        .client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .expect("attests");
    // The token's claims say what was verified, EMULATED included.
    let claims: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(
        claims["snpkit"]["evidence"],
        "EMULATED — NOT HARDWARE-BACKED"
    );
    assert_eq!(claims["snpkit"]["configs"], serde_json::json!(["hello-1"]));
    assert_eq!(
        claims["tee-pubkey"],
        serde_json::to_value(c.session.key().public_jwk()).unwrap()
    );

    let resp = f
        .client
        .http()
        .get(f.client.url(&Fixture::token_name().url_path()))
        .header("cookie", format!("kbs-session-id={}", c.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["snpkit-evidence"],
        "EMULATED - NOT HARDWARE-BACKED"
    );
    let jwe = resp.bytes().await.unwrap();
    let secret = c.session.open(&jwe, 4096).expect("the guest opens it");
    assert_eq!(secret.expose(), &f.token[..]);
    // Fetching again within the session works; the JWE is fresh each time.
    let again = f
        .client
        .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
        .await
        .unwrap();
    assert_ne!(&again[..], &jwe[..]);

    let lines = f.audit.lines();
    let kinds: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["event"].as_str().unwrap(),
                l["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("auth", "allow"),
            ("attest", "allow"),
            ("resource", "allow"),
            ("resource", "allow")
        ]
    );
    assert_eq!(lines[1]["evidence"], "EMULATED — NOT HARDWARE-BACKED");
    assert_eq!(lines[1]["emulated"], true);
    assert_eq!(lines[1]["measurement"], hex::encode(GOOD));
    assert_eq!(lines[2]["bytes"], f.token.len());
    assert_eq!(lines[2]["resource"], TOKEN_PATH);
    // Neither the secret nor the cookie is ever written to the log.
    let text = f.audit_text();
    assert!(!text.contains(&hex::encode(&f.token)));
    assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode(&f.token)));
    assert!(!text.contains(&c.cookie));
    let stats = f.broker.stats();
    assert_eq!((stats.attestations, stats.releases), (1, 2));
    assert!(stats.verify > Duration::ZERO && stats.verify < stats.handler);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_measurement_gets_nothing() {
    let f = Fixture::start(Setup::default()).await;
    let c = f.client.auth().await.unwrap();
    let err = f
        .client
        .attest(&c.cookie, evidence_with(&c.session, OTHER, POLICY).unwrap())
        .await
        .expect_err("refused");
    assert_eq!(err.status(), Some(401));
    assert!(err.detail().contains("measurement"), "{}", err.detail());
    // The failed session is gone: its cookie fetches nothing.
    let err = f
        .client
        .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
        .await
        .expect_err("no session");
    assert_eq!(err.status(), Some(401));
    let attest = &f.audit.lines()[1];
    assert_eq!(attest["decision"], "deny");
    assert_eq!(attest["measurement"], hex::encode(OTHER));
    assert!(
        attest["failed_checks"]
            .as_array()
            .unwrap()
            .contains(&"measurement".into())
    );
    // A launch policy other than the reference's is refused too.
    let c = f.client.auth().await.unwrap();
    let err = f
        .client
        .attest(
            &c.cookie,
            evidence_with(&c.session, GOOD, 0x30001 | 0x30000).unwrap(),
        )
        .await;
    assert!(
        err.expect_err("other policy")
            .detail()
            .contains("policy.launch")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_replayed_from_an_earlier_session_is_refused() {
    let f = Fixture::start(Setup::default()).await;
    let first = f.client.auth().await.unwrap();
    let body = evidence(&first.session).unwrap();
    f.client
        .attest(&first.cookie, body.clone())
        .await
        .expect("the first session attests");

    // As sent: another session's nonce in runtime-data.
    let second = f.client.auth().await.unwrap();
    let err = f
        .client
        .attest(&second.cookie, body.clone())
        .await
        .expect_err("replay refused");
    assert!(
        err.detail().contains("not this session's nonce"),
        "{}",
        err.detail()
    );

    // Edited to carry the new nonce: the signed REPORT_DATA no longer matches.
    let third = f.client.auth().await.unwrap();
    let mut edited: serde_json::Value = serde_json::from_slice(&body).unwrap();
    edited["runtime-data"]["nonce"] = third.challenge.nonce.clone().into();
    let err = f
        .client
        .attest(&third.cookie, serde_json::to_vec(&edited).unwrap())
        .await
        .expect_err("edited replay refused");
    assert!(err.detail().contains("report_data"), "{}", err.detail());

    // A relay that swaps in its own key with the genuine report: REPORT_DATA again.
    let fourth = f.client.auth().await.unwrap();
    let mut swapped: serde_json::Value =
        serde_json::from_slice(&evidence(&fourth.session).unwrap()).unwrap();
    swapped["runtime-data"]["tee-pubkey"] =
        serde_json::to_value(snpkit_kbs::TeeKey::generate().public_jwk()).unwrap();
    let err = f
        .client
        .attest(&fourth.cookie, serde_json::to_vec(&swapped).unwrap())
        .await;
    assert!(
        err.expect_err("key swap refused")
            .detail()
            .contains("report_data")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_answers_one_attestation() {
    let f = Fixture::start(Setup::default()).await;
    let c = f.client.auth().await.unwrap();
    let body = evidence(&c.session).unwrap();
    f.client
        .attest(&c.cookie, body.clone())
        .await
        .expect("first");
    let err = f
        .client
        .attest(&c.cookie, body)
        .await
        .expect_err("reused nonce");
    assert!(err.detail().contains("already used"), "{}", err.detail());
    // A failed first attempt spends the nonce too.
    let c = f.client.auth().await.unwrap();
    f.client
        .attest(&c.cookie, b"{}".to_vec())
        .await
        .expect_err("malformed");
    let err = f
        .client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .expect_err("spent");
    assert!(
        err.detail().contains("no session has this cookie"),
        "{}",
        err.detail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_nonce_is_refused() {
    let f = Fixture::start(Setup {
        limits: Limits {
            nonce_ttl: Duration::from_millis(300),
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    let c = f.client.auth().await.unwrap();
    let body = evidence(&c.session).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = f.client.attest(&c.cookie, body).await.expect_err("expired");
    assert_eq!(err.status(), Some(401));
    assert!(err.detail().contains("expired"), "{}", err.detail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attested_session_expires() {
    let f = Fixture::start(Setup {
        limits: Limits {
            session_ttl: Duration::from_millis(300),
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    let c = f.client.auth().await.unwrap();
    f.client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = f
        .client
        .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
        .await
        .expect_err("expired");
    assert!(err.detail().contains("expired"), "{}", err.detail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_missing_and_unattested_cookies_are_refused() {
    let f = Fixture::start(Setup::default()).await;
    let c = f.client.auth().await.unwrap();
    let err = f
        .client
        .attest("0".repeat(64).as_str(), evidence(&c.session).unwrap())
        .await
        .expect_err("wrong cookie");
    assert_eq!(err.status(), Some(401));
    assert!(err.detail().contains("no session has this cookie"));
    // The right session was not touched by that: it still attests.
    f.client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .expect("right cookie");
    let name = Fixture::token_name();
    let err = f
        .client
        .resource_jwe("1".repeat(64).as_str(), &name, 4096)
        .await
        .expect_err("wrong cookie");
    assert_eq!(err.status(), Some(401));
    let only_challenged = f.client.auth().await.unwrap();
    let err = f
        .client
        .resource_jwe(&only_challenged.cookie, &name, 4096)
        .await
        .expect_err("not attested");
    assert!(
        err.detail().contains("has not attested"),
        "{}",
        err.detail()
    );
    let resp = f
        .client
        .http()
        .get(f.client.url(&name.url_path()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_jwe_byte_is_refused_by_the_guest() {
    let f = Fixture::start(Setup::default()).await;
    let c = f.client.auth().await.unwrap();
    f.client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .unwrap();
    let jwe = f
        .client
        .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&jwe).unwrap();
    for member in ["protected", "encrypted_key", "iv", "ciphertext", "tag"] {
        let mut raw = B64URL.decode(v[member].as_str().unwrap()).unwrap();
        raw[0] ^= 0x80;
        let mut bad = v.clone();
        bad[member] = B64URL.encode(&raw).into();
        let err = c
            .session
            .open(&serde_json::to_vec(&bad).unwrap(), 4096)
            .expect_err(member);
        assert!(
            matches!(
                err,
                JweError::Decrypt
                    | JweError::Unwrap
                    | JweError::Header(_)
                    | JweError::Base64 { .. }
            ),
            "{member}: {err}"
        );
    }
    // And a byte flipped in the text as relayed.
    let mut text = jwe.to_vec();
    let i = text.len() / 2;
    text[i] ^= 0x01;
    assert!(c.session.open(&text, 4096).is_err());
    assert_eq!(c.session.open(&jwe, 4096).unwrap().expose(), &f.token[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_resources_and_links_out_of_the_folder_are_refused() {
    let f = Fixture::start(Setup::default()).await;
    std::os::unix::fs::symlink(
        f.dir.path().join("expected.json"),
        f.resources().join("default/secret-hello/out"),
    )
    .unwrap();
    let c = f.client.auth().await.unwrap();
    f.client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .unwrap();
    let missing = snpkit_kbs::ResourcePath::parse("default/secret-hello/none").unwrap();
    let err = f
        .client
        .resource_jwe(&c.cookie, &missing, 4096)
        .await
        .expect_err("missing");
    assert_eq!(err.status(), Some(404));
    let out = snpkit_kbs::ResourcePath::parse("default/secret-hello/out").unwrap();
    let err = f
        .client
        .resource_jwe(&c.cookie, &out, 4096)
        .await
        .expect_err("escapes");
    assert_eq!(err.status(), Some(403));
    assert!(err.detail().contains("leads out"), "{}", err.detail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_release_a_resource_only_to_the_configs_they_name() {
    let f = Fixture::start(Setup {
        configs: vec![("hello-1", GOOD), ("other", OTHER)],
        rules: Some(format!(
            "[[resource]]\npath = \"{TOKEN_PATH}\"\nconfigs = [\"hello-1\"]\n"
        )),
        ..Setup::default()
    })
    .await;
    let name = Fixture::token_name();
    let secret = f
        .client
        .fetch(&name, 4096, evidence)
        .await
        .expect("hello-1 gets it");
    assert_eq!(secret.expose(), &f.token[..]);
    // "other" is a reference config, so it attests, but no rule gives it the token.
    let c = f.client.auth().await.unwrap();
    f.client
        .attest(&c.cookie, evidence_with(&c.session, OTHER, POLICY).unwrap())
        .await
        .expect("other attests");
    let err = f
        .client
        .resource_jwe(&c.cookie, &name, 4096)
        .await
        .expect_err("withheld");
    assert_eq!(err.status(), Some(403));
    assert!(err.detail().contains("no rule"), "{}", err.detail());
    let last = f.audit.lines().pop().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["decision"].as_str()),
        (Some("resource"), Some("deny"))
    );
    assert_eq!(last["configs"], serde_json::json!(["other"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulated_evidence_is_refused_unless_allowed() {
    let f = Fixture::start(Setup {
        allow_emulated: false,
        ..Setup::default()
    })
    .await;
    let c = f.client.auth().await.unwrap();
    let err = f
        .client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .expect_err("emulated refused");
    assert_eq!(err.status(), Some(401));
    assert!(err.detail().contains("emulated"), "{}", err.detail());
    let line = &f.audit.lines()[1];
    assert_eq!(line["evidence"], "EMULATED — NOT HARDWARE-BACKED");
    assert_eq!(line["decision"], "deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_table_refuses_new_challenges() {
    let f = Fixture::start(Setup {
        limits: Limits {
            max_sessions: 3,
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    for _ in 0..3 {
        f.client.auth().await.expect("room");
    }
    let err = f.client.auth().await.expect_err("full");
    assert_eq!(err.status(), Some(503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guests_each_get_the_secret_sealed_to_their_own_key() {
    let f = Fixture::start(Setup::default()).await;
    let name = Fixture::token_name();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = f.client.clone();
            let name = name.clone();
            tokio::spawn(async move {
                client
                    .fetch(&name, 4096, evidence)
                    .await
                    .map(|s| s.expose().to_vec())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().expect("fetched"), f.token);
    }
    let stats = f.broker.stats();
    assert_eq!(stats.attestations, 16);
    // One chip: its VCEK's and its CRL's signatures were verified once and remembered.
    assert_eq!(stats.signatures_remembered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_serves_over_tls_with_a_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs (apt-get install openssl)");
        assert!(status.success(), "openssl {args:?}");
    };
    // A test CA and a server certificate it issues for 127.0.0.1, as an operator would have.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=snpkit test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.path().join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    let _ = &ca_key;
    let _ = chain();
    write_expected(&dir.path().join("expected.json"), &[("hello-1", GOOD)]);
    let res = dir.path().join("res");
    std::fs::create_dir_all(res.join("default/secret-hello")).unwrap();
    std::fs::write(res.join(TOKEN_PATH), b"over tls").unwrap();
    let broker = snpkit_broker::Broker::new(snpkit_broker::Config {
        resources: res,
        reference: dir.path().join("expected.json"),
        policy: None,
        rules: None,
        allow_emulated: true,
        test_chain_dir: None,
        endorsers: snpkit_broker::Endorsers::CacheOnly,
        limits: Limits::default(),
        audit: snpkit_broker::AuditTo::Writer(Box::new(std::io::sink())),
        tls: Some(snpkit_broker::TlsFiles {
            cert: cert.clone(),
            key,
        }),
    })
    .unwrap();
    let server = broker.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let client =
        snpkit_broker::client::KbsClient::with(http, &format!("https://{}", server.local_addr));
    let secret = client
        .fetch(&Fixture::token_name(), 4096, evidence)
        .await
        .expect("over TLS");
    assert_eq!(secret.expose(), b"over tls");
    // Plain HTTP to the TLS port gets no answer.
    let plain = raw(
        server.local_addr,
        &request("POST", "/kbs/v0/auth", None, b"{}"),
    )
    .await;
    assert!(plain.as_ref().is_none_or(|(s, _)| *s >= 400), "{plain:?}");
}
