//! AMD's private X.509 extensions on VCEK and VLEK certificates (VCEK specification, AMD #57230,
//! section 3): the TCB components the key was derived for, the chip's hwID, the product name.

use super::{Cert, CertError};
use const_oid::ObjectIdentifier;
use der::Decode;
use der::asn1::Ia5StringRef;
use serde::Serialize;

pub const OID_STRUCT_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
pub const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
pub const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
pub const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
pub const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
pub const OID_SPL_4: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.4");
pub const OID_SPL_5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.5");
pub const OID_SPL_6: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.6");
pub const OID_SPL_7: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.7");
pub const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
pub const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
pub const OID_HWID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
pub const OID_CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");

/// What a VCEK or VLEK certifies about the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VekExtensions {
    pub struct_version: Option<u8>,
    pub product_name: Option<String>,
    pub bl_spl: Option<u8>,
    pub tee_spl: Option<u8>,
    pub snp_spl: Option<u8>,
    pub ucode_spl: Option<u8>,
    pub fmc_spl: Option<u8>,
    /// The chip id, as raw bytes (64, or 8 on Turin): AMD does not wrap it in an OCTET STRING.
    #[serde(with = "hex_opt")]
    pub hw_id: Option<Vec<u8>>,
    /// The cloud provider a VLEK was issued to.
    pub csp_id: Option<String>,
}

mod hex_opt {
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
}

fn int_u8(what: &str, name: &str, value: &[u8]) -> Result<u8, CertError> {
    u8::from_der(value).map_err(|e| CertError::Extension {
        what: what.into(),
        reason: format!("{name} is not an INTEGER from 0 to 255 ({e})"),
    })
}

fn ia5(what: &str, name: &str, value: &[u8]) -> Result<String, CertError> {
    Ia5StringRef::from_der(value)
        .map(|s| s.as_str().to_string())
        .map_err(|e| CertError::Extension {
            what: what.into(),
            reason: format!("{name} is not an IA5String ({e})"),
        })
}

/// Read AMD's extensions. Duplicates and malformed values are errors: a certificate saying two things
/// about one TCB component cannot be judged.
pub fn vek_extensions(cert: &Cert) -> Result<VekExtensions, CertError> {
    let what = cert.label();
    let mut out = VekExtensions::default();
    let mut seen = std::collections::BTreeSet::new();
    for ext in cert.x509().tbs_certificate.extensions.iter().flatten() {
        let oid = ext.extn_id;
        let v = ext.extn_value.as_bytes();
        let known = [
            OID_STRUCT_VERSION,
            OID_PRODUCT_NAME,
            OID_BL_SPL,
            OID_TEE_SPL,
            OID_SNP_SPL,
            OID_UCODE_SPL,
            OID_FMC_SPL,
            OID_HWID,
            OID_CSP_ID,
        ];
        if known.contains(&oid) && !seen.insert(oid) {
            return Err(CertError::Extension {
                what,
                reason: format!("extension {oid} appears twice"),
            });
        }
        match oid {
            o if o == OID_STRUCT_VERSION => {
                out.struct_version = Some(int_u8(&what, "structVersion", v)?)
            }
            o if o == OID_PRODUCT_NAME => out.product_name = Some(ia5(&what, "productName", v)?),
            o if o == OID_BL_SPL => out.bl_spl = Some(int_u8(&what, "blSPL", v)?),
            o if o == OID_TEE_SPL => out.tee_spl = Some(int_u8(&what, "teeSPL", v)?),
            o if o == OID_SNP_SPL => out.snp_spl = Some(int_u8(&what, "snpSPL", v)?),
            o if o == OID_UCODE_SPL => out.ucode_spl = Some(int_u8(&what, "ucodeSPL", v)?),
            o if o == OID_FMC_SPL => out.fmc_spl = Some(int_u8(&what, "fmcSPL", v)?),
            o if o == OID_HWID => out.hw_id = Some(v.to_vec()),
            o if o == OID_CSP_ID => out.csp_id = Some(ia5(&what, "cspID", v)?),
            _ => {}
        }
    }
    Ok(out)
}
