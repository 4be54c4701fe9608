//! AMD's certificate revocation lists: one per product and key kind, signed by the ARK, listing
//! revoked ASKs/ASVKs by serial number. The verifier looks up the VCEK/VLEK's serial too, so a
//! CRL that names the end-entity certificate is honoured as well.

use super::{Cert, CertError, check_pss_alg, decode_signed, verify_pss, x509_time};
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct Crl {
    der: Vec<u8>,
    tbs: std::ops::Range<usize>,
    crl: x509_cert::crl::CertificateList,
}

impl Crl {
    /// Decode a CRL from PEM (`X509 CRL`) or DER, as the KDS serves it.
    pub fn decode(bytes: &[u8]) -> Result<Crl, CertError> {
        let what = "CRL";
        let der = super::to_der(what, bytes)?;
        let (crl, tbs) = decode_signed(what, &der, |c: &x509_cert::crl::CertificateList| {
            (&c.signature_algorithm, &c.tbs_cert_list.signature)
        })?;
        Ok(Crl { der, tbs, crl })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn issuer(&self) -> &x509_cert::name::Name {
        &self.crl.tbs_cert_list.issuer
    }

    pub fn issuer_cn(&self) -> Option<String> {
        super::common_name(&self.crl.tbs_cert_list.issuer)
    }

    pub fn this_update(&self) -> OffsetDateTime {
        x509_time(&self.crl.tbs_cert_list.this_update)
    }

    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.crl.tbs_cert_list.next_update.as_ref().map(x509_time)
    }

    /// The CRL must be signed by the ARK (RSASSA-PSS, like the certificates).
    pub fn verify_signed_by(&self, ark: &Cert) -> Result<(), CertError> {
        check_pss_alg("CRL", &self.crl.signature_algorithm)?;
        let sig = self
            .crl
            .signature
            .as_bytes()
            .ok_or_else(|| CertError::BadSignature {
                what: "CRL".into(),
                issuer: ark.label(),
            })?;
        verify_pss("CRL", ark, &self.der[self.tbs.clone()], sig)
    }

    /// Does this CRL list the certificate's serial number?
    pub fn revokes(&self, cert: &Cert) -> bool {
        let serial = cert.x509().tbs_certificate.serial_number.as_bytes();
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .any(|r| r.serial_number.as_bytes() == serial)
    }

    pub fn revoked_count(&self) -> usize {
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .as_ref()
            .map_or(0, Vec::len)
    }
}
