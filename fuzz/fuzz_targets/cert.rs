//! Arbitrary bytes as a certificate (PEM or DER) or CRL: decode, read AMD's extensions, check a
//! signature against the Milan ASK and ARK. Must hold: no panic, no hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snpkit_attest::Product;
use snpkit_attest::certs::Cert;
use snpkit_attest::certs::amd_ext::vek_extensions;
use snpkit_attest::certs::crl::Crl;

fuzz_target!(|data: &[u8]| {
    let Ok(roots) = snpkit_attest::roots::builtin(Product::Milan) else {
        return;
    };
    if let Ok(c) = Cert::decode("fuzz", data) {
        let _ = vek_extensions(&c);
        let _ = c.p384_key();
        let _ = (
            c.subject_cn(),
            c.issuer_cn(),
            c.not_before(),
            c.not_after(),
            c.is_ca(),
        );
        let _ = c.unknown_critical_extensions();
        let _ = c.verify_signed_by(&roots.ask);
    }
    let _ = Cert::decode_bundle("fuzz", data);
    if let Ok(crl) = Crl::decode(data) {
        let _ = (
            crl.issuer_cn(),
            crl.this_update(),
            crl.next_update(),
            crl.revoked_count(),
        );
        let _ = crl.verify_signed_by(&roots.ark);
        let _ = crl.revokes(&roots.ask);
    }
});
