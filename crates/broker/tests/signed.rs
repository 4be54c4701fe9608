//! Signer rules on loopback: a resource released to "any image signed by our author key, of
//! family F, with SVN ≥ 3" with no measurement pinned, and refused — naming the rule and the
//! check — to another author, another family, a lower SVN and an unsigned launch. The reports
//! carry the identity the emulated PSP fills in at LAUNCH_FINISH (key digests, IDs, SVN,
//! AUTHOR_KEY_EN), signed by the emulated test chain; the key digests are the ones snpkit-idblock
//! computes as the PSP does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use common::*;
use snpkit_attest::emulated::ReportFields;
use snpkit_idblock::SigningKey;
use snpkit_kbs::ResourcePath;

/// A launch digest in no reference config: only a signature can pass it.
const SIGNED: [u8; 48] = [0x33; 48];
const FAMILY: &str = "5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11";
const IMAGE: &str = "00112233445566778899aabbccddeeff";
const SIGNED_PATH: &str = "default/signed/key";
const SIGNED_SECRET: &[u8] = b"released by signature";

fn family() -> [u8; 16] {
    hex::decode(FAMILY.replace('-', ""))
        .unwrap()
        .try_into()
        .unwrap()
}

fn image() -> [u8; 16] {
    hex::decode(IMAGE).unwrap().try_into().unwrap()
}

struct Keys {
    author: SigningKey,
    id: SigningKey,
}

/// What the emulated PSP puts into the report of a launch whose ID block `id` signed and
/// `author` certified.
fn signed_by(f: &mut ReportFields, id: &SigningKey, author: &SigningKey, svn: u32) {
    f.measurement = SIGNED;
    f.id_key_digest = id.public_key().digest();
    f.author_key_digest = author.public_key().digest();
    f.author_key_en = true;
    f.family_id = family();
    f.image_id = image();
    f.guest_svn = svn;
}

/// The token to "any image signed by our author key (a key file), family F, SVN ≥ 3"; a second
/// resource to our ID key given as its digest, with image I.
async fn start(keys: &Keys) -> Fixture {
    let pem = keys.author.public_key().to_spki_pem().unwrap();
    let id_digest = hex::encode(keys.id.public_key().digest());
    Fixture::start(Setup {
        rules: Some(format!(
            r#"
[[resource]]
path = "{TOKEN_PATH}"
author_key = "keys/author.pub.pem"
family_id = "{FAMILY}"
min_guest_svn = 3

[[resource]]
path = "default/signed/*"
id_key_digest = "{id_digest}"
image_id = "{IMAGE}"
"#
        )),
        files: vec![
            ("keys/author.pub.pem".into(), pem.into_bytes()),
            (format!("resources/{SIGNED_PATH}"), SIGNED_SECRET.to_vec()),
        ],
        ..Setup::default()
    })
    .await
}

fn keys() -> Keys {
    Keys {
        author: SigningKey::generate(),
        id: SigningKey::generate(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_signed_by_the_author_key_gets_its_secret_with_no_measurement_pinned() {
    let k = keys();
    let f = start(&k).await;
    assert!(
        !f.broker
            .reference()
            .configs
            .iter()
            .any(|c| c.measurement == SIGNED)
    );
    for svn in [3, 4] {
        let c = f.client.auth().await.unwrap();
        let token = f
            .client
            .attest(
                &c.cookie,
                evidence_fields(&c.session, |r| signed_by(r, &k.id, &k.author, svn)).unwrap(),
            )
            .await
            .expect("passes by signature");
        let claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert_eq!(claims["snpkit"]["measurement"], hex::encode(SIGNED));
        assert_eq!(claims["snpkit"]["configs"], serde_json::json!([]));
        let by = claims["snpkit"]["measured_by"].as_str().unwrap();
        assert!(by.starts_with("signature (rule 1"), "{by}");
        let jwe = f
            .client
            .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
            .await
            .expect("released");
        assert_eq!(c.session.open(&jwe, 4096).unwrap().expose(), &f.token[..]);
        // The ID key's rule (a digest, image I) grants its resource to the same launch.
        let signed = ResourcePath::parse(SIGNED_PATH).unwrap();
        let jwe = f
            .client
            .resource_jwe(&c.cookie, &signed, 4096)
            .await
            .expect("released by the ID key's rule");
        assert_eq!(c.session.open(&jwe, 4096).unwrap().expose(), SIGNED_SECRET);
    }
    let lines = f.audit.lines();
    let attest = lines
        .iter()
        .find(|l| l["event"] == "attest" && l["decision"] == "allow")
        .unwrap();
    assert_eq!(attest["measurement"], hex::encode(SIGNED));
    assert!(
        attest["measured_by"]
            .as_str()
            .unwrap()
            .contains("rule 2 (path \"default/signed/*\")"),
        "{attest}"
    );
    let rules: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "resource")
        .map(|l| l["rule"].as_str().unwrap())
        .collect();
    let token_rule = format!("{TOKEN_PATH} (by signature)");
    assert_eq!(
        rules[..2],
        [token_rule.as_str(), "default/signed/* (by signature)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_reports_that_miss_a_signer_key_are_refused_naming_the_rule() {
    let k = keys();
    let f = start(&k).await;
    let stranger = SigningKey::generate();
    let other_family = [0x42; 16];
    type Edit<'a> = Box<dyn Fn(&mut ReportFields) + 'a>;
    let cases: Vec<(&str, Edit<'_>, &str, String)> = vec![
        (
            "another author key",
            Box::new(|r| signed_by(r, &k.id, &stranger, 3)),
            "author_key_digest",
            hex::encode(stranger.public_key().digest()),
        ),
        (
            "another family",
            Box::new(|r| {
                signed_by(r, &k.id, &k.author, 3);
                r.family_id = other_family;
            }),
            "family_id",
            hex::encode(other_family),
        ),
        (
            "SVN below the minimum",
            Box::new(|r| signed_by(r, &k.id, &k.author, 2)),
            "guest_svn",
            "found 2".into(),
        ),
        (
            "an unsigned launch (zero digests)",
            Box::new(|r| {
                signed_by(r, &k.id, &k.author, 3);
                r.id_key_digest = [0; 48];
                r.author_key_digest = [0; 48];
                r.author_key_en = false;
            }),
            "author_key_digest",
            format!("found {}", "00".repeat(48)),
        ),
    ];
    for (what, edit, check, found) in cases {
        // Rule 2 (our ID key, image I) would admit the launches that keep our ID key: give
        // every case another image, so that each is about rule 1.
        let c = f.client.auth().await.unwrap();
        let err = f
            .client
            .attest(
                &c.cookie,
                evidence_fields(&c.session, |r| {
                    edit(r);
                    r.image_id = [0x77; 16];
                })
                .unwrap(),
            )
            .await
            .expect_err(what);
        assert_eq!(err.status(), Some(401), "{what}");
        let detail = err.detail();
        assert!(
            detail.contains(&format!("rule 1 (path \"{TOKEN_PATH}\"): ")),
            "{what}: {detail}"
        );
        let rule1 = detail
            .split("rule 1 (path")
            .nth(1)
            .and_then(|t| t.split("; rule 2").next())
            .unwrap();
        assert!(rule1.contains(check), "{what}: {detail}");
        assert!(rule1.contains(&found), "{what}: {detail}");
        assert!(
            detail.contains("rule 2 (path \"default/signed/*\")"),
            "{what}: {detail}"
        );
        assert!(
            detail.contains("no signer rule passes it by signature"),
            "{what}"
        );
        let line = f.audit.lines().pop().unwrap();
        assert_eq!(line["event"], "attest");
        assert_eq!(line["decision"], "deny");
        assert!(
            line["failed_checks"]
                .as_array()
                .unwrap()
                .contains(&check.into()),
            "{what}: {line}"
        );
        // Nothing is released to the refused session.
        let err = f
            .client
            .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
            .await
            .expect_err("no session");
        assert_eq!(err.status(), Some(401), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_measured_but_unsigned_guest_is_refused_the_signed_resource() {
    // The reference measurement attests as before; the signer rule still withholds the token.
    let k = keys();
    let f = start(&k).await;
    let c = f.client.auth().await.unwrap();
    f.client
        .attest(&c.cookie, evidence(&c.session).unwrap())
        .await
        .expect("the reference measurement attests");
    let err = f
        .client
        .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
        .await
        .expect_err("withheld");
    assert_eq!(err.status(), Some(403));
    let detail = err.detail();
    assert!(
        detail.contains(&format!("rule 1 (path \"{TOKEN_PATH}\"): ")),
        "{detail}"
    );
    // Every signer key it misses is named (its SVN 0 and family too).
    for missed in [
        format!(
            "author_key_digest: expected {}, found {}",
            hex::encode(k.author.public_key().digest()),
            "00".repeat(48)
        ),
        "guest_svn: expected >= 3, found 0".into(),
        "family_id: expected 5e0d3ab47f5c4b439a330c6b2f0e6d11".into(),
    ] {
        assert!(detail.contains(&missed), "{missed}: {detail}");
    }
    // Signed as well as measured: then it is released, by the reference measurement's report.
    let c = f.client.auth().await.unwrap();
    f.client
        .attest(
            &c.cookie,
            evidence_fields(&c.session, |r| {
                signed_by(r, &k.id, &k.author, 3);
                r.measurement = GOOD;
            })
            .unwrap(),
        )
        .await
        .expect("attests");
    let jwe = f
        .client
        .resource_jwe(&c.cookie, &Fixture::token_name(), 4096)
        .await
        .expect("released");
    assert_eq!(c.session.open(&jwe, 4096).unwrap().expose(), &f.token[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_that_contradicts_a_signer_rule_stops_the_broker() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    write_expected(&dir.path().join("expected.json"), &[("hello-1", GOOD)]);
    std::fs::create_dir_all(dir.path().join("res")).unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        format!("author_key_digest = \"{}\"\n", "ab".repeat(48)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        format!(
            "[[resource]]\npath = \"a/b/c\"\nauthor_key_digest = \"{}\"\n",
            hex::encode(k.author.public_key().digest())
        ),
    )
    .unwrap();
    let err = snpkit_broker::Broker::new(snpkit_broker::Config {
        resources: dir.path().join("res"),
        reference: dir.path().join("expected.json"),
        policy: Some(dir.path().join("policy.toml")),
        rules: Some(dir.path().join("rules.toml")),
        allow_emulated: true,
        test_chain_dir: None,
        endorsers: snpkit_broker::Endorsers::CacheOnly,
        limits: snpkit_broker::Limits::default(),
        audit: snpkit_broker::AuditTo::Writer(Box::new(std::io::sink())),
        tls: None,
    })
    .expect_err("contradiction");
    let msg = snpkit_testkit::errors::chain_text(&err);
    assert!(
        msg.contains("rule 1") && msg.contains("the policy file sets author_key_digest"),
        "{msg}"
    );
}
