//! Our messages against the field's own types: the `sev` crate's serde form of a report (what
//! Trustee's SNP verifier deserializes) and the `kbs-types` crate (what Trustee's KBS and the
//! guest-components client (de)serialize). Neither is our code, so agreement means interop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use snpkit_attest::emulated::{ReportFields, TestChain, emulated_report};
use snpkit_kbs::attester::Session;
use snpkit_kbs::evidence::{self, CertKind, SnpEvidence};
use snpkit_kbs::{TeeKey, jwe, message};

fn chain() -> &'static TestChain {
    TestChain::cached().expect("test chain (generated once into the XDG cache)")
}

fn genuine_report() -> [u8; 1184] {
    let launch = ReportFields::new([0x5A; 48], [0xC3; 64], 0x30000);
    emulated_report(chain(), &launch)
}

#[test]
fn our_evidence_json_is_sevs_serde_form_of_the_same_report() {
    let raw = genuine_report();
    let ours = evidence::encode(&raw, &[]).expect("encodes");
    let theirs = AttestationReport::from_bytes(&raw).expect("sev parses the emulated report");
    // Byte-identical JSON text, field order included.
    assert_eq!(
        serde_json::to_string(&ours.attestation_report).unwrap(),
        serde_json::to_string(&theirs).unwrap()
    );
}

#[test]
fn sev_reads_our_json_back_into_the_signed_bytes() {
    let raw = genuine_report();
    let ours = evidence::encode(&raw, &[]).expect("encodes");
    let text = serde_json::to_string(&ours.attestation_report).unwrap();
    let theirs: AttestationReport = serde_json::from_str(&text).expect("sev deserializes ours");
    let bytes = theirs.to_bytes().expect("sev re-encodes");
    assert_eq!(bytes.as_ref(), &raw[..]);
}

#[test]
fn we_read_sevs_json_of_reports_of_other_products_and_versions() {
    // A Turin (family 0x1a) version 5 report and a Genoa version 3 one, made by editing the
    // genuine bytes; sev writes the JSON, we must return exactly the bytes sev would sign over.
    for (family, model, version) in [(0x1Au8, 0x02u8, 5u32), (0x19, 0x11, 3)] {
        let mut raw = genuine_report();
        raw[0..4].copy_from_slice(&version.to_le_bytes());
        raw[0x188] = family;
        raw[0x189] = model;
        if family == 0x1A {
            // Turin's TCB layout: fmc, bootloader, tee, snp, reserved ×3, microcode.
            for at in [0x38, 0x180, 0x1E0, 0x1F0] {
                raw[at..at + 8].copy_from_slice(&[3, 4, 0, 24, 0, 0, 0, 219]);
            }
            raw[0x1F8..0x208].copy_from_slice(&[0x11; 16]);
        }
        let theirs = AttestationReport::from_bytes(&raw).expect("sev parses");
        let text = serde_json::to_string(&theirs).unwrap();
        let fields: evidence::ReportFields =
            serde_json::from_str(&text).expect("we parse sev's JSON");
        let back = evidence::report_bytes(&fields).expect("re-encodes");
        assert_eq!(&back[..], &raw[..], "family {family:#x} v{version}");
        assert_eq!(
            serde_json::to_string(
                &evidence::encode(&raw, &[])
                    .expect("encodes")
                    .attestation_report
            )
            .unwrap(),
            text
        );
    }
}

#[test]
fn the_certificate_table_is_sevs_cert_table_entry() {
    use sev::firmware::host::{CertTableEntry, CertType};
    let c = chain();
    let raw = genuine_report();
    let certs: [(CertKind, &[u8]); 3] = [
        (CertKind::Ark, c.roots.ark.der()),
        (CertKind::Ask, c.roots.ask.der()),
        (CertKind::Vcek, c.vcek.der()),
    ];
    let ours = evidence::encode(&raw, &certs).expect("encodes");
    let theirs: Vec<CertTableEntry> = vec![
        CertTableEntry {
            cert_type: CertType::ARK,
            data: c.roots.ark.der().to_vec(),
        },
        CertTableEntry {
            cert_type: CertType::ASK,
            data: c.roots.ask.der().to_vec(),
        },
        CertTableEntry {
            cert_type: CertType::VCEK,
            data: c.vcek.der().to_vec(),
        },
    ];
    assert_eq!(
        serde_json::to_string(&ours.cert_chain).unwrap(),
        serde_json::to_string(&Some(theirs.clone())).unwrap()
    );
    // And sev's OTHER entries (a GUID) are skipped on the way in, as Trustee skips them.
    let mut with_other = theirs;
    with_other.push(CertTableEntry {
        cert_type: CertType::OTHER(sev_uuid()),
        data: vec![1, 2, 3],
    });
    let text = format!(
        r#"{{"attestation_report":{},"cert_chain":{}}}"#,
        serde_json::to_string(&ours.attestation_report).unwrap(),
        serde_json::to_string(&with_other).unwrap()
    );
    let parsed: SnpEvidence = serde_json::from_str(&text).expect("parses");
    let decoded = evidence::decode(&parsed).expect("decodes");
    assert_eq!(decoded.certs.len(), 3);
    assert_eq!(&decoded.report[..], &raw[..]);
}

fn sev_uuid() -> uuid::Uuid {
    uuid::Uuid::from_bytes([0x42; 16])
}

#[test]
fn kbs_types_reads_what_the_guest_sends_and_we_read_what_it_writes() {
    let challenge_text = serde_json::to_vec(&kbs_types::Challenge {
        nonce: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        extra_params: serde_json::Value::String(String::new()),
    })
    .unwrap();
    let challenge =
        message::parse_challenge(&challenge_text).expect("we read kbs-types' challenge");

    let request: kbs_types::Request = serde_json::from_slice(&snpkit_kbs::attester::auth_body())
        .expect("kbs-types reads our request");
    assert_eq!(request.tee, kbs_types::Tee::Snp);
    assert_eq!(request.version, "0.4.0");

    let session = Session::start(&challenge);
    let mut raw = genuine_report();
    raw[0x50..0x90].copy_from_slice(&session.report_data());
    let body = session.attestation_body(&raw, &[]).expect("encodes");
    let theirs: kbs_types::Attestation =
        serde_json::from_slice(&body).expect("kbs-types reads our attestation");
    assert_eq!(theirs.runtime_data.nonce, challenge.nonce);
    assert_eq!(theirs.tee_evidence.additional_evidence, "");
    match &theirs.runtime_data.tee_pubkey {
        kbs_types::TeePubKey::EC { crv, alg, x, y } => {
            assert_eq!((crv.as_str(), alg.as_str()), ("P-256", "ECDH-ES+A256KW"));
            assert_eq!(
                (x.as_str(), y.as_str()),
                (
                    session.key().public_jwk().x(),
                    session.key().public_jwk().y()
                )
            );
        }
        other => panic!("not an EC key: {other:?}"),
    }
    // What Trustee's KBS hashes for the primary evidence: its own JSON of the parsed key, the
    // nonce and the additional evidence, canonicalized (kbs/src/attestation/backend.rs).
    let trustee_runtime = serde_json::json!({
        "tee-pubkey": theirs.runtime_data.tee_pubkey,
        "nonce": challenge.nonce,
        "additional-evidence": theirs.tee_evidence.additional_evidence,
    });
    let trustee_bytes = serde_json_canonicalizer::to_vec(&trustee_runtime).unwrap();
    let digest = <sha2::Sha384 as sha2::Digest>::digest(&trustee_bytes);
    assert_eq!(&session.report_data()[..48], digest.as_slice());
    // And the SNP evidence is what Trustee's verifier deserializes with sev.
    let snp: serde_json::Value = theirs.tee_evidence.primary_evidence;
    let report: AttestationReport =
        serde_json::from_value(snp["attestation_report"].clone()).expect("sev reads the evidence");
    assert_eq!(report.to_bytes().unwrap().as_ref(), &raw[..]);
}

#[test]
fn kbs_types_reads_our_jwe_and_we_read_its_serialization() {
    let key = TeeKey::generate();
    let sealed = jwe::seal(key.public_jwk(), b"secret").expect("seals");
    let theirs: kbs_types::Response =
        serde_json::from_slice(&sealed).expect("kbs-types reads our JWE");
    assert_eq!(theirs.protected.alg, "ECDH-ES+A256KW");
    assert_eq!(theirs.protected.enc, "A256GCM");
    assert!(theirs.protected.other_fields.contains_key("epk"));
    assert_eq!(theirs.aad, None);
    // kbs-types writes it again (as Trustee's KBS writes its replies); the AAD is computed from
    // its re-serialized header, which must be the very bytes we sent.
    let again = serde_json::to_vec(&theirs).unwrap();
    assert_eq!(again, sealed);
    assert_eq!(
        jwe::open(&key, &again, 1024).expect("opens").expose(),
        b"secret"
    );
}
