//! Independent implementations as oracles: Python's `jwcrypto` (JWE, both directions) and
//! `rfc8785` (canonical JSON), pinned in the venv that `cargo xtask oracles` installs.
//!
//! Needs `SNPKIT_JOSE_PYTHON` (set by `cargo xtask test`; `cargo xtask oracles` installs the venv
//! and prints its interpreter's path).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use snpkit_kbs::{EcPublicJwk, TeeKey, canonical, jwe};
use std::io::Write;
use std::process::{Command, Stdio};

/// One helper for every direction: reads a JSON request on stdin, writes a JSON answer.
const HELPER: &str = r#"
import base64, json, sys
import rfc8785
from jwcrypto import jwk, jwe

req = json.load(sys.stdin)
mode = req["mode"]
if mode == "keygen":
    k = jwk.JWK.generate(kty="EC", crv="P-256")
    out = {"private": json.loads(k.export()), "public": json.loads(k.export_public())}
elif mode == "decrypt":
    k = jwk.JWK(**req["private"])
    out = []
    for text in req["jwes"]:
        t = jwe.JWE()
        t.deserialize(text, key=k)
        out.append({"payload": base64.b64encode(t.payload).decode(),
                    "header": json.loads(t.objects["protected"])})
elif mode == "encrypt":
    k = jwk.JWK(**req["public"])
    out = []
    for p in req["payloads"]:
        prot = json.dumps({"alg": "ECDH-ES+A256KW", "enc": "A256GCM"})
        t = jwe.JWE(base64.b64decode(p), protected=prot)
        t.add_recipient(k)
        out.append({"compact": t.serialize(compact=True)})
    t = jwe.JWE(b"flattened by jwcrypto", protected=json.dumps({"alg": "ECDH-ES+A256KW", "enc": "A256GCM"}))
    t.add_recipient(k)
    out.append({"json": t.serialize(compact=False)})
elif mode == "jcs":
    out = [base64.b64encode(rfc8785.dumps(json.loads(t))).decode() for t in req["texts"]]
json.dump(out, sys.stdout)
"#;

fn python() -> String {
    let p = std::env::var("SNPKIT_JOSE_PYTHON").unwrap_or_default();
    assert!(
        !p.is_empty() && std::path::Path::new(&p).is_file(),
        "the JOSE oracles are not installed (SNPKIT_JOSE_PYTHON={p:?}): run `cargo xtask oracles` and set \
         SNPKIT_JOSE_PYTHON to the python it prints (`cargo xtask test` does both)"
    );
    p
}

fn oracle(request: serde_json::Value) -> serde_json::Value {
    let mut child = Command::new(python())
        .args(["-c", HELPER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&request).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle answers JSON")
}

fn payloads() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"a database password".to_vec(),
        (0..=255u8).collect(),
        (0..100_000u32).map(|i| (i * 7 + 3) as u8).collect(),
    ]
}

#[test]
fn jwcrypto_opens_what_the_broker_seals() {
    let keys = oracle(serde_json::json!({"mode": "keygen"}));
    // jwcrypto's public JWK has no `alg`; the guest's does (ECDH-ES+A256KW).
    let mut public = keys["public"].as_object().unwrap().clone();
    public.insert("alg".into(), "ECDH-ES+A256KW".into());
    let members: Vec<(String, serde_json::Value)> = public.into_iter().collect();
    let recipient = EcPublicJwk::from_members(&members).expect("a P-256 JWK");
    // jwcrypto takes an empty plaintext for a failed decryption (`if not self.plaintext`), so
    // the empty secret is left to our own round-trip tests here.
    let secrets: Vec<Vec<u8>> = payloads().into_iter().filter(|p| !p.is_empty()).collect();
    let sealed: Vec<String> = secrets
        .iter()
        .map(|p| String::from_utf8(jwe::seal(&recipient, p).expect("seals")).unwrap())
        .collect();
    let opened = oracle(serde_json::json!({
        "mode": "decrypt", "private": keys["private"], "jwes": sealed,
    }));
    assert_eq!(opened.as_array().unwrap().len(), secrets.len());
    for (p, o) in secrets.iter().zip(opened.as_array().unwrap()) {
        assert_eq!(&B64.decode(o["payload"].as_str().unwrap()).unwrap(), p);
        assert_eq!(o["header"]["alg"], "ECDH-ES+A256KW");
        assert_eq!(o["header"]["enc"], "A256GCM");
        assert_eq!(o["header"]["epk"]["crv"], "P-256");
    }
}

#[test]
fn we_open_what_jwcrypto_seals_to_the_guest_key() {
    let key = TeeKey::generate();
    let public = serde_json::to_value(key.public_jwk()).unwrap();
    let sealed = oracle(serde_json::json!({
        "mode": "encrypt", "public": public,
        "payloads": payloads().iter().map(|p| B64.encode(p)).collect::<Vec<_>>(),
    }));
    let sealed = sealed.as_array().unwrap();
    for (p, s) in payloads().iter().zip(sealed) {
        // jwcrypto writes `epk` into the protected header only in its compact form; its five
        // parts laid out as flattened JSON are the JWE Trustee sends, byte for byte of what is
        // authenticated.
        let parts: Vec<&str> = s["compact"].as_str().unwrap().split('.').collect();
        let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
            panic!("not five parts");
        };
        let flattened = serde_json::json!({
            "protected": protected, "encrypted_key": encrypted_key, "iv": iv,
            "ciphertext": ciphertext, "tag": tag,
        });
        let opened = jwe::open(&key, &serde_json::to_vec(&flattened).unwrap(), 1 << 20)
            .expect("opens jwcrypto's JWE");
        assert_eq!(opened.expose(), &p[..]);
    }
    // jwcrypto's own flattened form puts `epk` in an unprotected per-recipient `header`, which
    // Trustee never sends: refused by name rather than half-understood.
    let flattened = sealed.last().unwrap()["json"].as_str().unwrap();
    let err = jwe::open(&key, flattened.as_bytes(), 1 << 20).expect_err("refused");
    assert!(err.to_string().contains("\"header\""), "{err}");
}

#[test]
fn canonical_json_is_byte_equal_to_rfc8785() {
    let texts = [
        // Keys ordered by UTF-16 code units: U+FFFF sorts after the surrogates of U+1F600 and
        // U+10000, the opposite of code point order.
        r#"{"\uffff":3,"\ud83d\ude00":2,"\u20ac":1,"a":4,"\u00e9":5,"\ud800\udc00":6,"":0,"A":7,"aa":8}"#,
        "{\"\u{1F600}\":\"raw emoji\",\"\u{10000}\":1,\"\u{FFFF}\":2}",
        // Escapes: control characters as \u00XX except the short forms; DEL, U+2028 and '/' raw.
        r#"["\u0000\u0001\u001f\u007f\u2028\u2029\"\\\/\b\f\n\r\t", "\ud83d\ude00", "é€"]"#,
        // Numbers in their ECMAScript forms.
        "[1e21, 1e20, 1E+2, -0, -0.0, 0.0, 5e-324, 2e-323, 1e-7, 1e-6, 0.000001, 0.1, 4.35, 123456789.125, 1.7976931348623157e308, 9007199254740991, -9007199254740991, 1.5e300, 333333333.33333329, 1.2345678901234568e20]",
        r#"{"b":[{"z":null,"y":true}],"a":{"c":false,"b":[],"a":{}},"n":[-1,0,1]}"#,
        r#"{"tee-pubkey":{"y":"Y_-","x":"X","kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW"},"nonce":"n+/=","additional-evidence":""}"#,
        "{}",
        "[]",
        r#""""#,
    ];
    let theirs = oracle(serde_json::json!({"mode": "jcs", "texts": texts}));
    for (text, t) in texts.iter().zip(theirs.as_array().unwrap()) {
        let want = B64.decode(t.as_str().unwrap()).unwrap();
        let ours = canonical::canonicalize_text(text).expect("canonical");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&want),
            "input {text}"
        );
        assert_eq!(ours, want, "input {text}");
    }
}
