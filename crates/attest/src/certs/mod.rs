//! AMD's X.509 certificates (ARK, ASK, ASVK, VCEK, VLEK) and CRLs: decoding and signatures.
//!
//! Signatures are checked over the `tbsCertificate` bytes exactly as received, never over a
//! re-encoding of the parsed structure (the `sev` crate re-encodes). Parsing is `x509-cert`'s; the
//! RSA-PSS and ECDSA maths are RustCrypto's `rsa` and `p384`.

pub mod amd_ext;
pub mod crl;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, ID_MGF_1, ID_RSASSA_PSS, ID_SHA_384, SECP_384_R_1};
use der::{Decode, Encode, Reader, SliceReader};
use rsa::signature::Verifier;
use sha2::{Digest, Sha256, Sha384};
use std::fmt;
use time::OffsetDateTime;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// Why a certificate or CRL could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("{what}: not a certificate in PEM or DER ({reason})")]
    Decode { what: String, reason: String },
    #[error("{what}: PEM holds {found} certificates where one was expected")]
    PemCount { what: String, found: usize },
    #[error(
        "{what}: signature algorithm {found} is not RSASSA-PSS (AMD signs its certificates with RSASSA-PSS)"
    )]
    SignatureAlgorithm { what: String, found: String },
    #[error("{what}: RSASSA-PSS parameters {found} are not SHA-384, MGF1-SHA-384, salt 48")]
    PssParams { what: String, found: String },
    #[error("{what}: outer signature algorithm differs from the one inside tbsCertificate")]
    AlgorithmMismatch { what: String },
    #[error("{what}: issuer key is not an RSA key ({reason})")]
    IssuerKey { what: String, reason: String },
    #[error("{what}: signature does not verify with {issuer}'s key")]
    BadSignature { what: String, issuer: String },
    #[error("{what}: public key is not ECDSA P-384 ({reason})")]
    NotP384 { what: String, reason: String },
    #[error("{what}: {reason}")]
    Extension { what: String, reason: String },
}

/// A certificate with the exact bytes it came in.
#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    tbs: std::ops::Range<usize>,
    cert: x509_cert::Certificate,
}

impl fmt::Debug for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cert({} sha256:{})",
            self.subject_cn().unwrap_or_default(),
            self.fingerprint_hex()
        )
    }
}

/// Where the PEM text starts, if the input is PEM. As openssl does, text before the first BEGIN
/// line is allowed (`openssl x509 -text` output, a comment); DER always opens with a SEQUENCE
/// tag (0x30), so such input is never taken for PEM.
fn pem_start(bytes: &[u8]) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if bytes.first() == Some(&0x30) {
        return None;
    }
    bytes.windows(BEGIN.len()).position(|w| w == BEGIN)
}

/// Every `CERTIFICATE` (or `X509 CRL`) block of a PEM text, as DER. Text before, between and after
/// the blocks is ignored, as openssl ignores it.
pub fn pem_blocks(what: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let Some(start) = pem_start(bytes) else {
        return Ok(Vec::new());
    };
    let text = std::str::from_utf8(&bytes[start..]).map_err(|_| CertError::Decode {
        what: what.into(),
        reason: "PEM text is not UTF-8".into(),
    })?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let end_marker = block.find("-----END ").ok_or_else(|| CertError::Decode {
            what: what.into(),
            reason: "PEM block without END line".into(),
        })?;
        let after = &block[end_marker + 9..];
        let close = after.find("-----").ok_or_else(|| CertError::Decode {
            what: what.into(),
            reason: "unterminated PEM END line".into(),
        })?;
        let whole = &block[..end_marker + 9 + close + 5];
        let (label, der) = pem_rfc7468_decode(whole).map_err(|e| CertError::Decode {
            what: what.into(),
            reason: format!("bad PEM: {e}"),
        })?;
        if label == "CERTIFICATE" || label == "X509 CRL" {
            out.push(der);
        }
        rest = &block[end_marker + 9 + close + 5..];
    }
    Ok(out)
}

fn pem_rfc7468_decode(block: &str) -> Result<(String, Vec<u8>), der::pem::Error> {
    let (label, der) = der::pem::decode_vec(block.as_bytes())?;
    Ok((label.to_string(), der))
}

/// The DER of a one-certificate (or one-CRL) input in PEM or DER.
pub fn to_der(what: &str, bytes: &[u8]) -> Result<Vec<u8>, CertError> {
    if pem_start(bytes).is_some() {
        let mut blocks = pem_blocks(what, bytes)?;
        if blocks.len() != 1 {
            return Err(CertError::PemCount {
                what: what.into(),
                found: blocks.len(),
            });
        }
        Ok(blocks.remove(0))
    } else {
        Ok(bytes.to_vec())
    }
}

impl Cert {
    /// Decode one certificate from PEM or DER.
    pub fn decode(what: &str, bytes: &[u8]) -> Result<Cert, CertError> {
        Cert::from_der(what, to_der(what, bytes)?)
    }

    /// Decode every certificate of a PEM bundle (KDS `cert_chain`: ASK then ARK).
    pub fn decode_bundle(what: &str, bytes: &[u8]) -> Result<Vec<Cert>, CertError> {
        pem_blocks(what, bytes)?
            .into_iter()
            .map(|der| Cert::from_der(what, der))
            .collect()
    }

    pub fn from_der(what: &str, der: Vec<u8>) -> Result<Cert, CertError> {
        let (cert, tbs) = decode_signed(what, &der, |c: &x509_cert::Certificate| {
            (&c.signature_algorithm, &c.tbs_certificate.signature)
        })?;
        Ok(Cert { der, tbs, cert })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.cert
    }

    pub fn tbs_bytes(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint())
    }

    pub fn subject_cn(&self) -> Option<String> {
        common_name(&self.cert.tbs_certificate.subject)
    }

    pub fn issuer_cn(&self) -> Option<String> {
        common_name(&self.cert.tbs_certificate.issuer)
    }

    /// A name for messages: the subject CN, or "certificate without CN".
    pub fn label(&self) -> String {
        self.subject_cn()
            .unwrap_or_else(|| "certificate without CN".into())
    }

    pub fn not_before(&self) -> OffsetDateTime {
        x509_time(&self.cert.tbs_certificate.validity.not_before)
    }

    pub fn not_after(&self) -> OffsetDateTime {
        x509_time(&self.cert.tbs_certificate.validity.not_after)
    }

    pub fn serial_hex(&self) -> String {
        hex::encode(self.cert.tbs_certificate.serial_number.as_bytes())
    }

    /// BasicConstraints CA and (if present) KeyUsage keyCertSign: may this certificate sign others?
    pub fn is_ca(&self) -> bool {
        let tbs = &self.cert.tbs_certificate;
        let ca = matches!(tbs.get::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca);
        let ku_ok = match tbs.get::<KeyUsage>() {
            Ok(Some((_, ku))) => ku.key_cert_sign(),
            Ok(None) => true,
            Err(_) => false,
        };
        ca && ku_ok
    }

    /// Extensions marked critical that we do not understand (RFC 5280 §4.2: refuse the certificate).
    pub fn unknown_critical_extensions(&self) -> Vec<String> {
        use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE};
        self.cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|e| {
                e.critical && e.extn_id != ID_CE_BASIC_CONSTRAINTS && e.extn_id != ID_CE_KEY_USAGE
            })
            .map(|e| e.extn_id.to_string())
            .collect()
    }

    /// Check that `issuer`'s RSA key signed this certificate with RSASSA-PSS/SHA-384/MGF1-SHA-384/salt 48.
    pub fn verify_signed_by(&self, issuer: &Cert) -> Result<(), CertError> {
        let what = self.label();
        check_pss_alg(&what, &self.cert.signature_algorithm)?;
        let signature = self
            .cert
            .signature
            .as_bytes()
            .ok_or_else(|| CertError::BadSignature {
                what: what.clone(),
                issuer: issuer.label(),
            })?;
        verify_pss(&what, issuer, self.tbs_bytes(), signature)
    }

    /// The ECDSA P-384 key of a VCEK or VLEK.
    pub fn p384_key(&self) -> Result<p384::ecdsa::VerifyingKey, CertError> {
        let what = self.label();
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(CertError::NotP384 {
                what,
                reason: format!("key algorithm {}", oid_name(&spki.algorithm.oid)),
            });
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if curve != Some(SECP_384_R_1) {
            return Err(CertError::NotP384 {
                what,
                reason: "curve is not secp384r1".into(),
            });
        }
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| CertError::NotP384 {
                what: what.clone(),
                reason: "key bits not byte-aligned".into(),
            })?;
        p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| CertError::NotP384 {
            what,
            reason: "not a point on P-384".into(),
        })
    }
}

/// RSASSA-PSS verification shared by certificates and CRLs.
pub(crate) fn verify_pss(
    what: &str,
    issuer: &Cert,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CertError> {
    use rsa::pkcs8::DecodePublicKey;
    let spki_der = issuer
        .cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| CertError::IssuerKey {
            what: what.into(),
            reason: e.to_string(),
        })?;
    let key =
        rsa::RsaPublicKey::from_public_key_der(&spki_der).map_err(|e| CertError::IssuerKey {
            what: what.into(),
            reason: e.to_string(),
        })?;
    let key = rsa::pss::VerifyingKey::<Sha384>::new(key);
    let sig = rsa::pss::Signature::try_from(signature).map_err(|_| CertError::BadSignature {
        what: what.into(),
        issuer: issuer.label(),
    })?;
    key.verify(message, &sig)
        .map_err(|_| CertError::BadSignature {
            what: what.into(),
            issuer: issuer.label(),
        })
}

pub(crate) fn check_pss_alg(
    what: &str,
    alg: &spki::AlgorithmIdentifierOwned,
) -> Result<(), CertError> {
    if alg.oid != ID_RSASSA_PSS {
        return Err(CertError::SignatureAlgorithm {
            what: what.into(),
            found: oid_name(&alg.oid),
        });
    }
    let params_err = |found: String| CertError::PssParams {
        what: what.into(),
        found,
    };
    let any = alg
        .parameters
        .as_ref()
        .ok_or_else(|| params_err("absent".into()))?;
    let der = any.to_der().map_err(|e| params_err(e.to_string()))?;
    let params = rsa::pkcs1::RsaPssParams::from_der(&der).map_err(|e| params_err(e.to_string()))?;
    let mgf_hash = params.mask_gen.parameters.map(|h| h.oid);
    if params.hash.oid != ID_SHA_384
        || params.mask_gen.oid != ID_MGF_1
        || mgf_hash != Some(ID_SHA_384)
        || params.salt_len != 48
        || params.trailer_field != rsa::pkcs1::TrailerField::BC
    {
        return Err(params_err(format!(
            "hash {}, mgf {} with {}, salt {}",
            oid_name(&params.hash.oid),
            oid_name(&params.mask_gen.oid),
            mgf_hash
                .map(|o| oid_name(&o))
                .unwrap_or_else(|| "no hash".into()),
            params.salt_len
        )));
    }
    Ok(())
}

/// Decodes a signed X.509 structure (a certificate or a CRL) and the byte range of its signed
/// part; the outer signature algorithm must be the one inside (`algorithms` gives both).
pub(crate) fn decode_signed<T: der::DecodeOwned>(
    what: &str,
    der: &[u8],
    algorithms: fn(&T) -> (&AlgorithmIdentifierOwned, &AlgorithmIdentifierOwned),
) -> Result<(T, std::ops::Range<usize>), CertError> {
    let decode_err = |e: der::Error| CertError::Decode {
        what: what.into(),
        reason: e.to_string(),
    };
    let signed = T::from_der(der).map_err(decode_err)?;
    let tbs = tbs_range(der).map_err(decode_err)?;
    let (outer, inner) = algorithms(&signed);
    if outer != inner {
        return Err(CertError::AlgorithmMismatch { what: what.into() });
    }
    Ok((signed, tbs))
}

/// Byte range of the first element (tbsCertificate / tbsCertList) inside the outer SEQUENCE.
pub(crate) fn tbs_range(der: &[u8]) -> der::Result<std::ops::Range<usize>> {
    let mut reader = SliceReader::new(der)?;
    let outer = der::Header::decode(&mut reader)?;
    outer.tag.assert_eq(der::Tag::Sequence)?;
    let start: usize = reader.position().try_into()?;
    let tbs = reader.tlv_bytes()?;
    Ok(start..start + tbs.len())
}

pub(crate) fn x509_time(t: &x509_cert::time::Time) -> OffsetDateTime {
    let secs = t.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    use const_oid::db::rfc4519::CN;
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == CN {
                let value = &atv.value;
                if let Ok(s) = value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
                    return Some(s.as_str().to_string());
                }
                if let Ok(s) = value.decode_as::<der::asn1::PrintableStringRef<'_>>() {
                    return Some(s.as_str().to_string());
                }
                if let Ok(s) = value.decode_as::<der::asn1::Ia5StringRef<'_>>() {
                    return Some(s.as_str().to_string());
                }
            }
        }
    }
    None
}

pub(crate) fn oid_name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map(|n| n.to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// Hash for the report signature (SNP ABI: SHA-384 over bytes 0x000–0x29F).
pub fn sha384(bytes: &[u8]) -> [u8; 48] {
    Sha384::digest(bytes).into()
}

#[cfg(test)]
mod tests;
