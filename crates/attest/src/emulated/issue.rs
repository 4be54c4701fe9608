//! Making the test chain's certificates: RSA-PSS/SHA-384 signed ARK and ASK, and P-384 VEKs
//! with AMD's extensions (TCB, hwID, productName), under names the caller picks.

use super::error::{EmulatedError, gen_err};
use crate::certs::amd_ext::*;
use crate::product::Product;
use crate::verifier::EMULATED_MARK;
use der::asn1::{BitString, GeneralizedTime, Ia5StringRef, OctetString, UtcTime};
use der::{Decode, Encode};
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use sha2::Sha384;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

/// The platform the test VCEK is issued for: a Milan B0 at a recent TCB.
pub const TEST_PRODUCT: Product = Product::Milan;
pub const TEST_TCB: (u8, u8, u8, u8) = (4, 0, 24, 219); // bootloader, tee, snp, microcode
pub(super) const ORG: &str = "O=snpkit EMULATED test chain - not AMD,OU=snpkit";

pub(super) fn x509_time(t: SystemTime) -> Result<Time, EmulatedError> {
    // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after, as AMD's certificates do.
    let since = t.duration_since(SystemTime::UNIX_EPOCH).map_err(gen_err)?;
    match UtcTime::from_unix_duration(since) {
        Ok(u) => Ok(Time::UtcTime(u)),
        Err(_) => Ok(Time::GeneralTime(
            GeneralizedTime::from_unix_duration(since).map_err(gen_err)?,
        )),
    }
}

pub(super) fn pss_sign(key: &rsa::RsaPrivateKey, msg: &[u8]) -> Result<Vec<u8>, EmulatedError> {
    let signer = rsa::pss::BlindedSigningKey::<Sha384>::new(key.clone());
    Ok(signer
        .try_sign_with_rng(&mut OsRng, msg)
        .map_err(gen_err)?
        .to_vec())
}

fn ext(
    oid: const_oid::ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, EmulatedError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(gen_err)?,
    })
}

fn ca_extensions() -> Result<Vec<Extension>, EmulatedError> {
    use const_oid::AssociatedOid;
    let bc = BasicConstraints {
        ca: true,
        path_len_constraint: None,
    };
    let ku = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    Ok(vec![
        ext(BasicConstraints::OID, true, bc.to_der().map_err(gen_err)?)?,
        ext(KeyUsage::OID, true, ku.to_der().map_err(gen_err)?)?,
    ])
}

fn spki_of(der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, EmulatedError> {
    SubjectPublicKeyInfoOwned::from_der(der).map_err(gen_err)
}

pub(super) fn name(text: &str) -> Result<Name, EmulatedError> {
    Name::from_str(text).map_err(gen_err)
}

fn sign_cert(
    issuer_key: &rsa::RsaPrivateKey,
    issuer: &Name,
    subject: &Name,
    serial: &[u8],
    years: u64,
    spki: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Result<Vec<u8>, EmulatedError> {
    let alg = rsa::pss::get_default_pss_signature_algo_id::<Sha384>().map_err(gen_err)?;
    let now = SystemTime::now();
    let start = now - Duration::from_secs(86_400);
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(serial).map_err(gen_err)?,
        signature: alg.clone(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: x509_time(start)?,
            not_after: x509_time(now + Duration::from_secs(years * 365 * 86_400))?,
        },
        subject: subject.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(gen_err)?;
    let sig = pss_sign(issuer_key, &tbs_der)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&sig).map_err(gen_err)?,
    };
    cert.to_der().map_err(gen_err)
}

/// What a VEK issued by the test ASK says (for tests that need a VEK that lies in one way).
#[derive(Debug, Clone)]
pub struct VekSpec {
    /// `SEV-VCEK` or `SEV-VLEK`.
    pub common_name: String,
    pub product_name: String,
    /// (fmc, bootloader, tee, snp, microcode)
    pub tcb: (Option<u8>, u8, u8, u8, u8),
    pub hw_id: Option<Vec<u8>>,
    /// Mark it as a CA (a VEK must not be one).
    pub ca: bool,
    /// Add an unknown critical extension (must be refused).
    pub extra_critical: bool,
    /// Name this issuer CN instead of the ASK's (still signed with the ASK's key).
    pub issuer_cn: Option<String>,
}

pub(super) fn issue(
    ask_key: &rsa::RsaPrivateKey,
    ask_name: &Name,
    org: &str,
    key: &p384::ecdsa::SigningKey,
    spec: &VekSpec,
) -> Result<Vec<u8>, EmulatedError> {
    let int = |v: u8| v.to_der().map_err(gen_err);
    let (fmc, bl, tee, snp, ucode) = spec.tcb;
    let mut exts = vec![
        ext(OID_STRUCT_VERSION, false, int(u8::from(fmc.is_some()))?)?,
        ext(
            OID_PRODUCT_NAME,
            false,
            Ia5StringRef::new(&spec.product_name)
                .map_err(gen_err)?
                .to_der()
                .map_err(gen_err)?,
        )?,
    ];
    if let Some(fmc) = fmc {
        exts.push(ext(OID_FMC_SPL, false, int(fmc)?)?);
    }
    exts.extend([
        ext(OID_BL_SPL, false, int(bl)?)?,
        ext(OID_TEE_SPL, false, int(tee)?)?,
        ext(OID_SPL_4, false, int(0)?)?,
        ext(OID_SPL_5, false, int(0)?)?,
        ext(OID_SPL_6, false, int(0)?)?,
        ext(OID_SPL_7, false, int(0)?)?,
        ext(OID_SNP_SPL, false, int(snp)?)?,
        ext(OID_UCODE_SPL, false, int(ucode)?)?,
    ]);
    if let Some(hw) = &spec.hw_id {
        // AMD puts the raw chip id in the extension value, not a nested OCTET STRING.
        exts.push(ext(OID_HWID, false, hw.clone())?);
    }
    if spec.ca {
        exts.extend(ca_extensions()?);
    }
    if spec.extra_critical {
        let oid = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.99");
        exts.push(ext(oid, true, vec![0x05, 0x00])?);
    }
    let public = key.verifying_key().to_public_key_der().map_err(gen_err)?;
    let subject = name(&format!("CN={},{org}", spec.common_name))?;
    sign_cert(
        ask_key,
        ask_name,
        &subject,
        &[0x00],
        7,
        spki_of(public.as_bytes())?,
        exts,
    )
}

/// The common names and the rest of the subject of a chain.
#[derive(Debug, Clone)]
pub struct ChainNames {
    pub ark: String,
    pub ask: String,
    pub vcek: String,
    /// Attributes after the CN, RFC 4514 (`O=…,OU=…`).
    pub org: String,
}

impl ChainNames {
    /// The emulated PSP's names: every CA says `snpkit-EMULATED`, the organisation says "not AMD".
    pub fn emulated() -> ChainNames {
        ChainNames {
            ark: format!("ARK-{EMULATED_MARK}"),
            ask: format!("SEV-{EMULATED_MARK}"),
            vcek: "SEV-VCEK".into(),
            org: ORG.into(),
        }
    }

    /// AMD's own names for `product`, as a forger would copy them.
    pub fn amd_lookalike(product: Product) -> ChainNames {
        let p = product.kds_name();
        ChainNames {
            ark: format!("ARK-{p}"),
            ask: format!("SEV-{p}"),
            vcek: "SEV-VCEK".into(),
            org: "OU=Engineering,C=US,L=Santa Clara,ST=CA,O=Advanced Micro Devices".into(),
        }
    }
}

pub(super) struct Generated {
    pub(super) ark: Vec<u8>,
    pub(super) ask: Vec<u8>,
    pub(super) vcek: Vec<u8>,
    pub(super) ark_key: rsa::RsaPrivateKey,
    pub(super) ask_key: rsa::RsaPrivateKey,
    pub(super) vcek_key: p384::ecdsa::SigningKey,
}

pub(super) fn generate(names: &ChainNames, rsa_bits: usize) -> Result<Generated, EmulatedError> {
    let org = &names.org;
    let ark_name = name(&format!("CN={},{org}", names.ark))?;
    let ask_name = name(&format!("CN={},{org}", names.ask))?;

    let ark_key = rsa::RsaPrivateKey::new(&mut OsRng, rsa_bits).map_err(gen_err)?;
    let ask_key = rsa::RsaPrivateKey::new(&mut OsRng, rsa_bits).map_err(gen_err)?;
    let vcek_key = p384::ecdsa::SigningKey::random(&mut OsRng);

    let rsa_spki = |k: &rsa::RsaPrivateKey| -> Result<SubjectPublicKeyInfoOwned, EmulatedError> {
        spki_of(
            k.to_public_key()
                .to_public_key_der()
                .map_err(gen_err)?
                .as_bytes(),
        )
    };
    let ark = sign_cert(
        &ark_key,
        &ark_name,
        &ark_name,
        &[0x01, 0x00, 0x00],
        25,
        rsa_spki(&ark_key)?,
        ca_extensions()?,
    )?;
    let ask = sign_cert(
        &ark_key,
        &ark_name,
        &ask_name,
        &[0x01, 0x00, 0x01],
        25,
        rsa_spki(&ask_key)?,
        ca_extensions()?,
    )?;

    let mut chip_id = [0u8; 64];
    OsRng.fill_bytes(&mut chip_id);
    let (bl, tee, snp, ucode) = TEST_TCB;
    let vcek = issue(
        &ask_key,
        &ask_name,
        org,
        &vcek_key,
        &VekSpec {
            common_name: names.vcek.clone(),
            product_name: "Milan-B0".into(),
            tcb: (None, bl, tee, snp, ucode),
            hw_id: Some(chip_id.to_vec()),
            ca: false,
            extra_critical: false,
            issuer_cn: None,
        },
    )?;
    Ok(Generated {
        ark,
        ask,
        vcek,
        ark_key,
        ask_key,
        vcek_key,
    })
}
