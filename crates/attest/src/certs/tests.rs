#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::amd_ext::vek_extensions;
use super::*;

use snpkit_testkit::vectors::read as vector;

#[test]
fn turin_vcek_has_fmc_and_an_8_byte_hwid() {
    let c =
        Cert::decode("vcek", &vector("project-oak-oak/derived/turin_oc.vcek.der")).expect("vcek");
    let x = vek_extensions(&c).expect("extensions");
    assert_eq!(x.struct_version, Some(1));
    assert_eq!(x.product_name.as_deref(), Some("Turin"));
    assert_eq!(
        (x.fmc_spl, x.bl_spl, x.tee_spl, x.snp_spl, x.ucode_spl),
        (Some(0), Some(1), Some(0), Some(2), Some(71))
    );
    assert_eq!(
        x.hw_id.as_deref().map(hex::encode).as_deref(),
        Some("3b42092f69c656d3")
    );
    assert_eq!(c.serial_hex(), "00");
}

#[test]
fn vlek_names_its_provider_and_no_chip() {
    let c = Cert::decode(
        "vlek",
        &vector("confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek.der"),
    )
    .expect("vlek");
    let x = vek_extensions(&c).expect("extensions");
    assert_eq!(x.csp_id.as_deref(), Some("CN=cc-us-east-2.amazonaws.com"));
    assert_eq!(x.hw_id, None);
    assert_eq!(c.subject_cn().as_deref(), Some("SEV-VLEK"));
}

#[test]
fn trustees_deliberately_broken_vceks_do_not_pass_as_good_ones() {
    // Upstream only requires these to *parse*; whatever we make of them, they must not carry the
    // 64-byte hwID of the good VCEK in a form we would accept.
    let good = Cert::decode(
        "vcek",
        &vector("confidential-containers-trustee/deps/verifier/test_data/snp/test-vcek.der"),
    )
    .expect("good");
    let good_hw = vek_extensions(&good).expect("ext").hw_id.expect("hwid");
    assert_eq!(good_hw.len(), 64);
    for rel in ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"] {
        let bytes = vector(&format!(
            "confidential-containers-trustee/deps/verifier/test_data/snp/{rel}"
        ));
        if let Ok(c) = Cert::decode(rel, &bytes) {
            let milan = crate::roots::builtin(crate::Product::Milan).expect("roots");
            let signed = c.verify_signed_by(&milan.ask).is_ok();
            let ext = vek_extensions(&c);
            assert!(
                !signed
                    || ext.is_err()
                    || ext
                        .as_ref()
                        .is_ok_and(|x| x.hw_id.as_deref() != Some(&good_hw[..])),
                "{rel}"
            );
        }
    }
}

#[test]
fn pem_bundles_and_single_certs() {
    let chain = Cert::decode_bundle(
        "cert_chain",
        &vector("virtee-sev/tests/certs_data/cert_chain_milan"),
    )
    .expect("bundle");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].subject_cn().as_deref(), Some("SEV-Milan"));
    assert_eq!(chain[1].subject_cn().as_deref(), Some("ARK-Milan"));
    let err = Cert::decode(
        "cert_chain",
        &vector("virtee-sev/tests/certs_data/cert_chain_milan"),
    )
    .expect_err("two certs");
    assert!(matches!(err, CertError::PemCount { found: 2, .. }), "{err}");
    assert!(Cert::decode("x", b"").is_err());
    assert!(Cert::decode("x", &[0x30, 0x82, 0xFF, 0xFF]).is_err());
}

#[test]
fn a_flipped_vcek_byte_breaks_the_chain() {
    // virtee/sev's milan_chain_invalid: buf[40] ^= 0xff must fail.
    let mut der = vector("virtee-sev/tests/certs_data/vcek_milan.der");
    der[40] ^= 0xFF;
    let milan = crate::roots::builtin(crate::Product::Milan).expect("roots");
    if let Ok(c) = Cert::from_der("vcek", der) {
        assert!(c.verify_signed_by(&milan.ask).is_err());
    }
}

#[test]
fn pem_after_leading_text_is_pem_as_openssl_reads_it() {
    let der = vector("project-oak-oak/derived/cb.vcek.der");
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der).expect("pem");
    // What `openssl x509 -text` writes: a dump, then the PEM block.
    let text = format!(
        "Certificate:\n    Data:\n        Version: 3 (0x2)\n        Serial Number: 0 (0x0)\n{pem}"
    );
    let c = Cert::decode("vcek", text.as_bytes()).expect("leading text is skipped");
    assert_eq!(c.der(), &der[..]);
    let bundle = Cert::decode_bundle("chain", format!("# a comment\n{pem}{pem}").as_bytes())
        .expect("bundle after text");
    assert_eq!(bundle.len(), 2);
    // Text without any BEGIN line is neither PEM nor DER.
    assert!(matches!(
        Cert::decode("vcek", b"Certificate:\n  no PEM here\n"),
        Err(CertError::Decode { .. })
    ));
    // DER is never mistaken for PEM, whatever it holds.
    assert_eq!(Cert::decode("vcek", &der).expect("der").der(), &der[..]);
}
