//! Seeds for the KBS fuzz targets (fuzz/fuzz_targets/kbs_*.rs), made with snpkit-kbs around a
//! genuine report and VCEK from the vectors: each seed is a message a guest or broker receives.

use snpkit_kbs::attester::{self, Session};
use snpkit_kbs::evidence::CertKind;
use snpkit_kbs::{ResourcePath, TeeKey, jwe, message};

/// The key fuzz/fuzz_targets/kbs_jwe.rs opens with.
const SCALAR: [u8; 32] = [7; 32];
const NONCE: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

type Seeds = Vec<(String, Vec<u8>)>;

fn key() -> anyhow::Result<TeeKey> {
    TeeKey::from_scalar(&SCALAR).ok_or_else(|| anyhow::anyhow!("the fuzz key's scalar is invalid"))
}

fn challenge() -> anyhow::Result<message::Challenge> {
    Ok(message::parse_challenge(
        format!(r#"{{"nonce":"{NONCE}","extra-params":""}}"#).as_bytes(),
    )?)
}

/// `(max_len, seeds)` for a `kbs_*` target; `None` for another name.
pub fn target(name: &str, report: &[u8], vcek: &[u8]) -> anyhow::Result<Option<(usize, Seeds)>> {
    let key = key()?;
    let jwk = serde_json::to_vec(key.public_jwk())?;
    let t = match name {
        "kbs_jwe" => {
            let mut seeds: Seeds = Vec::new();
            for (n, p) in [("empty", &b""[..]), ("token", b"a token"), ("binary", &[0xA5; 300][..])] {
                seeds.push((n.into(), jwe::seal(key.public_jwk(), p)?));
            }
            (8192, seeds)
        }
        "kbs_challenge" => (
            4096,
            vec![
                ("trustee".into(), format!(r#"{{"nonce":"{NONCE}","extra-params":""}}"#).into_bytes()),
                ("object".into(), format!(r#"{{"nonce":"{NONCE}","extra-params":{{"selected-hash-algorithm":"sha384"}}}}"#).into_bytes()),
                ("cookie".into(), b"kbs-session-id=0123abcd; Path=/kbs; Max-Age=60; HttpOnly\nother=1".to_vec()),
                ("token".into(), br#"{"token":"a.b.c"}"#.to_vec()),
                ("error".into(), br#"{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"no"}"#.to_vec()),
            ],
        ),
        "kbs_attestation" => {
            let report: [u8; 1184] = report
                .try_into()
                .map_err(|_| anyhow::anyhow!("the seed report is not 1184 bytes"))?;
            let session = Session::with_key(&challenge()?, key);
            let with_vcek = session.attestation_body(&report, &[(CertKind::Vcek, vcek)])?;
            let bare = session.attestation_body(&report, &[])?;
            (32 * 1024, vec![("with-vcek".into(), with_vcek), ("bare".into(), bare)])
        }
        "kbs_runtime_data" => (
            4096,
            vec![
                ("runtime-data".into(), format!(r#"{{"nonce":"{NONCE}","tee-pubkey":{}}}"#, String::from_utf8_lossy(&jwk)).into_bytes()),
                ("jwk".into(), jwk),
                ("jcs".into(), br#"{"\uffff":[1e21,-0,5e-324],"\ud83d\ude00":"\u0000\u2028","a":{"b":null}}"#.to_vec()),
            ],
        ),
        "kbs_request" => (
            4096,
            vec![
                ("auth".into(), attester::auth_body()),
                ("guest-components".into(), br#"{"version":"0.4.0","tee":"snp","extra-params":{"supported-hash-algorithms":["sha384","sha512"]}}"#.to_vec()),
                ("path".into(), ResourcePath::parse("default/secret-hello/token")?.url_path().trim_start_matches("/kbs/v0/resource/").as_bytes().to_vec()),
                ("encoded".into(), b"a%20b/%C3%BC/x%25y".to_vec()),
            ],
        ),
        _ => return Ok(None),
    };
    Ok(Some(t))
}
