//! What an answer of the KDS must be, in its role, before it is used or cached.
//!
//! Decoding is not enough: a well-formed certificate of the wrong kind (an ASK served as the VCEK),
//! a VCEK of another chip or TCB, or a CRL signed by someone else would be cached and then fail
//! every later verdict, online and offline, until someone deleted the cache. So every answer is
//! checked against what was asked and against the pinned roots of the product (`roots::builtin`),
//! the same anchors the verdict uses. The verdict still checks everything again; these checks only
//! decide what may be kept.

use super::KeyKind;
use crate::certs::Cert;
use crate::certs::amd_ext::vek_extensions;
use crate::certs::crl::Crl;
use crate::product::Product;
use crate::report::Tcb;
use crate::roots;

/// A VCEK for exactly this chip and TCB, issued and signed by the product's pinned ASK.
pub(crate) fn vcek(
    bytes: &[u8],
    product: Product,
    chip_id: &[u8],
    tcb: &Tcb,
) -> Result<(), String> {
    let cert = Cert::decode("VCEK", bytes).map_err(|e| e.to_string())?;
    let cn = cert.subject_cn().unwrap_or_default();
    if cn != "SEV-VCEK" {
        return Err(format!("a certificate named {cn:?}, not a VCEK (SEV-VCEK)"));
    }
    let roots = roots::builtin(product).map_err(|e| e.to_string())?;
    cert.verify_signed_by(&roots.ask)
        .map_err(|e| format!("not signed by AMD's {product} ASK ({e})"))?;
    if cert.x509().tbs_certificate.issuer != roots.ask.x509().tbs_certificate.subject {
        return Err(format!("issued by another name than AMD's {product} ASK"));
    }
    if cert.is_ca() {
        return Err("a CA certificate, not a VCEK".into());
    }
    let ext = vek_extensions(&cert).map_err(|e| e.to_string())?;
    match &ext.hw_id {
        Some(hw) if hw[..] == *chip_id => {}
        Some(hw) => {
            return Err(format!(
                "the VCEK of chip {}…, not of chip {}…",
                hex::encode(&hw[..hw.len().min(8)]),
                hex::encode(&chip_id[..chip_id.len().min(8)])
            ));
        }
        None => return Err("a VCEK without a hwID extension".into()),
    }
    let mut pairs = vec![
        ("blSPL", ext.bl_spl, tcb.bootloader),
        ("teeSPL", ext.tee_spl, tcb.tee),
        ("snpSPL", ext.snp_spl, tcb.snp),
        ("ucodeSPL", ext.ucode_spl, tcb.microcode),
    ];
    if let Some(fmc) = tcb.fmc {
        pairs.push(("fmcSPL", ext.fmc_spl, fmc));
    }
    if let Some((name, got, want)) = pairs.iter().find(|(_, got, want)| *got != Some(*want)) {
        return Err(format!(
            "the VCEK for {name}={}, not for {name}={want} as asked",
            got.map_or("absent".into(), |g| g.to_string())
        ));
    }
    Ok(())
}

/// The product's pinned intermediate (ASK for VCEKs, ASVK for VLEKs) then its pinned ARK.
pub(crate) fn cert_chain(bytes: &[u8], product: Product, kind: KeyKind) -> Result<(), String> {
    let certs = Cert::decode_bundle("cert_chain", bytes).map_err(|e| e.to_string())?;
    let [intermediate, ark] = certs.as_slice() else {
        return Err(format!("{} certificates, expected 2", certs.len()));
    };
    let roots = roots::builtin(product).map_err(|e| e.to_string())?;
    let (name, pinned) = match kind {
        KeyKind::Vcek => ("ASK", Some(&roots.ask)),
        KeyKind::Vlek => ("ASVK", roots.asvk.as_ref()),
    };
    if pinned.is_none_or(|p| p.fingerprint() != intermediate.fingerprint()) {
        return Err(format!(
            "its first certificate ({}) is not AMD's pinned {product} {name}",
            intermediate.label()
        ));
    }
    if ark.fingerprint() != roots.ark.fingerprint() {
        return Err(format!(
            "its second certificate ({}) is not AMD's pinned {product} ARK",
            ark.label()
        ));
    }
    Ok(())
}

/// A CRL signed by the product's pinned ARK, under its name.
pub(crate) fn crl(bytes: &[u8], product: Product) -> Result<(), String> {
    let crl = Crl::decode(bytes).map_err(|e| e.to_string())?;
    let roots = roots::builtin(product).map_err(|e| e.to_string())?;
    if crl.issuer() != &roots.ark.x509().tbs_certificate.subject {
        return Err(format!(
            "a CRL issued by {:?}, not by AMD's {product} ARK",
            crl.issuer_cn().unwrap_or_default()
        ));
    }
    crl.verify_signed_by(&roots.ark)
        .map_err(|e| format!("a CRL not signed by AMD's {product} ARK ({e})"))
}
