//! The endorsement side of a verdict (go-sev-guest's `verify/`): is the report signed by a key
//! that AMD vouches for? The chain ARK → ASK/ASVK → VEK against the pinned roots, the CRL, the
//! validity dates, the signature over the report's bytes as received, and the VEK's extensions
//! (TCB, hwID, product) against what the report says.

use super::inputs::{CrlInput, Endorsements};
use super::memo::SignatureMemo;
use crate::certs::CertError;
use crate::certs::amd_ext::{VekExtensions, vek_extensions};
use crate::certs::crl::Crl;
use crate::certs::{Cert, sha384};
use crate::policy::Policy;
use crate::product::Product;
use crate::report::{Report, SigningKey};
use crate::roots::Roots;
use crate::verdict::Verdict;
use time::OffsetDateTime;

/// What the chain is judged under besides the evidence.
#[derive(Clone, Copy)]
pub(super) struct Terms<'a> {
    pub policy: &'a Policy,
    /// Signatures verified before (see [`SignatureMemo`]).
    pub memo: Option<&'a SignatureMemo>,
    pub now: OffsetDateTime,
}

/// ARK → ASK/ASVK → VEK, validity, CRL. Returns the VEK when it is usable for the signature check.
pub(super) fn chain(
    v: &mut Verdict,
    r: &Report,
    e: &Endorsements,
    roots: &Roots,
    terms: Terms<'_>,
) -> Option<Cert> {
    let Terms { now, .. } = terms;
    let product = roots.product;
    // ARK: whatever the host sent must be the pinned one; we always use the pinned one, whose
    // self-signature `Roots::new` checked.
    match &e.ark {
        None => v.pass(
            "chain.ark",
            roots.ark.label(),
            format!("builtin, sha256 {}", &roots.ark.fingerprint_hex()[..16]),
        ),
        Some(bytes) => match Cert::decode("ark", bytes) {
            Ok(c) if c.fingerprint() == roots.ark.fingerprint() => v.pass(
                "chain.ark",
                roots.ark.label(),
                "given ARK is the pinned one",
            ),
            Ok(c) => v.fail(
                "chain.ark",
                format!(
                    "{} sha256 {}",
                    roots.ark.label(),
                    roots.ark.fingerprint_hex()
                ),
                format!("{} sha256 {}", c.label(), c.fingerprint_hex()),
                format!("the given ARK is not the pinned {product} root"),
            ),
            Err(err) => v.fail(
                "chain.ark",
                roots.ark.label(),
                "undecodable",
                err.to_string(),
            ),
        },
    }

    // Intermediate: ASK for a VCEK, ASVK for a VLEK.
    let (want_kind, intermediate) = match r.signing_key {
        SigningKey::Vlek => ("VLEK", roots.asvk.as_ref()),
        _ => ("VCEK", Some(&roots.ask)),
    };
    let Some(intermediate) = intermediate else {
        v.fail(
            "chain.ask",
            format!("a {want_kind} signing key for {product}"),
            "none",
            "these roots have no ASVK",
        );
        return None;
    };
    let mut ask_ok = true;
    // A pinned intermediate given under the other's name (an ASVK as ask.pem), or one that is not
    // this report's: harmless, since the pinned one is used, but said, never passed over.
    let mut notes = Vec::new();
    let want = if want_kind == "VLEK" { "asvk" } else { "ask" };
    for (name, given) in [("ask", &e.ask), ("asvk", &e.asvk)] {
        let Some(bytes) = given else { continue };
        match Cert::decode(name, bytes) {
            Ok(c) => {
                let is_ask = c.fingerprint() == roots.ask.fingerprint();
                let is_asvk = roots
                    .asvk
                    .as_ref()
                    .is_some_and(|a| a.fingerprint() == c.fingerprint());
                if !is_ask && !is_asvk {
                    ask_ok = false;
                    v.fail(
                        "chain.ask",
                        format!("{product}'s pinned {}", intermediate.label()),
                        format!("{} sha256 {}", c.label(), c.fingerprint_hex()),
                        format!("the given {name} is not one of AMD's {product} signing keys"),
                    );
                    continue;
                }
                let actual = if is_ask { "ask" } else { "asvk" };
                if actual != name {
                    notes.push(format!(
                        "the given {name} is {product}'s {}, not its {}",
                        actual.to_uppercase(),
                        name.to_uppercase()
                    ));
                }
                if actual != want {
                    notes.push(format!(
                        "the given {} is the intermediate of {}s, not of this report's {want_kind}: \
                         ignored, the pinned {} is used",
                        actual.to_uppercase(),
                        if is_ask { "VCEK" } else { "VLEK" },
                        want.to_uppercase()
                    ));
                }
            }
            Err(err) => {
                ask_ok = false;
                v.fail(
                    "chain.ask",
                    intermediate.label(),
                    "undecodable",
                    err.to_string(),
                );
            }
        }
    }
    if ask_ok {
        // Signed by the ARK and a CA: checked once, by `Roots::new`.
        let mut detail = format!("pinned, signed by {}", roots.ark.label());
        for note in &notes {
            detail.push_str("; ");
            detail.push_str(note);
        }
        v.pass("chain.ask", intermediate.label(), detail);
    }

    // VEK
    let (vek_bytes, given_kind) = match r.signing_key {
        SigningKey::Vlek => match (&e.vlek, &e.vcek) {
            (Some(b), _) => (Some(b), "vlek"),
            (None, Some(b)) => (Some(b), "vcek"),
            (None, None) => (None, "vlek"),
        },
        _ => match (&e.vcek, &e.vlek) {
            (Some(b), _) => (Some(b), "vcek"),
            (None, Some(b)) => (Some(b), "vlek"),
            (None, None) => (None, "vcek"),
        },
    };
    let vek = vek_bytes.map(|b| Cert::decode(given_kind, b));

    crl_check(
        v,
        e,
        roots,
        intermediate,
        vek.as_ref().and_then(|c| c.as_ref().ok()),
        terms,
    );

    let vek = match vek {
        None => {
            let why = e
                .vek_problem
                .clone()
                .unwrap_or_else(|| format!("no {want_kind} certificate given"));
            v.fail(
                "chain.vek",
                format!("the {want_kind} that signed the report"),
                "missing",
                why,
            );
            return None;
        }
        Some(Err(err)) => {
            v.fail(
                "chain.vek",
                format!("a {want_kind} certificate"),
                "undecodable",
                err.to_string(),
            );
            return None;
        }
        Some(Ok(c)) => c,
    };
    let cn = vek.subject_cn().unwrap_or_default();
    let kind_ok = match want_kind {
        "VLEK" => cn == "SEV-VLEK",
        _ => cn == "SEV-VCEK",
    };
    if !kind_ok {
        v.fail(
            "chain.vek_kind",
            format!("a {want_kind} certificate (KEY_INFO says {want_kind})"),
            if cn.is_empty() { "no CN".into() } else { cn },
            "the certificate is not of the kind that signed the report",
        );
        return None;
    }
    v.pass(
        "chain.vek_kind",
        cn.clone(),
        format!("KEY_INFO says {want_kind}"),
    );
    let unknown_critical = vek.unknown_critical_extensions();
    let issuer = &vek.x509().tbs_certificate.issuer;
    let intermediate_name = &intermediate.x509().tbs_certificate.subject;
    match signed_by(terms.memo, intermediate, vek.der(), || {
        vek.verify_signed_by(intermediate)
    }) {
        // RFC 5280 §6.1.3: the issuer name must chain too, not only the key; a certificate that
        // names another issuer was not issued under this intermediate, whoever signed it.
        Ok(()) if issuer != intermediate_name => v.fail(
            "chain.vek",
            format!("issued by {}", name_text(intermediate_name)),
            format!("issued by {}", name_text(issuer)),
            "the VEK names another issuer than the intermediate that signed it",
        ),
        Ok(()) if vek.is_ca() => v.fail(
            "chain.vek",
            "an end-entity certificate",
            "a CA",
            "a VCEK/VLEK must not be a CA",
        ),
        Ok(()) if !unknown_critical.is_empty() => v.fail(
            "chain.vek",
            "no unknown critical extensions",
            unknown_critical.join(", "),
            "RFC 5280: refuse what we do not understand",
        ),
        Ok(()) => v.pass(
            "chain.vek",
            vek.label(),
            format!(
                "signed by {}, sha256 {}",
                intermediate.label(),
                &vek.fingerprint_hex()[..16]
            ),
        ),
        Err(err) => {
            v.fail(
                "chain.vek",
                format!("signed by {}", intermediate.label()),
                "not",
                err.to_string(),
            );
            return None;
        }
    }

    // Validity at `now`, for every certificate of the chain.
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let outside: Vec<String> = [&roots.ark, intermediate, &vek]
        .iter()
        .filter(|c| now < c.not_before() || now > c.not_after())
        .map(|c| {
            format!(
                "{} valid {} to {}",
                c.label(),
                fmt(c.not_before()),
                fmt(c.not_after())
            )
        })
        .collect();
    if outside.is_empty() {
        v.pass(
            "chain.validity",
            format!("valid at {}", fmt(now)),
            "ARK, intermediate and VEK",
        );
    } else {
        v.fail(
            "chain.validity",
            format!("valid at {}", fmt(now)),
            outside.join("; "),
            "expired or not yet valid (set --now to judge at another time)",
        );
    }

    Some(vek)
}

/// `verify` (an RSA-PSS check of `signed` under `issuer`), or the memo's word that it passed before.
fn signed_by(
    memo: Option<&SignatureMemo>,
    issuer: &Cert,
    signed: &[u8],
    verify: impl FnOnce() -> Result<(), CertError>,
) -> Result<(), CertError> {
    match memo {
        Some(m) => m.check(issuer.der(), signed, verify),
        None => verify(),
    }
}

fn crl_check(
    v: &mut Verdict,
    e: &Endorsements,
    roots: &Roots,
    intermediate: &Cert,
    vek: Option<&Cert>,
    terms: Terms<'_>,
) {
    let Terms { policy, memo, now } = terms;
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let bytes = match &e.crl {
        CrlInput::Given(bytes) => bytes,
        CrlInput::NotAtHand(why) | CrlInput::Failed(why) if !policy.require_crl => {
            v.pass(
                "chain.crl",
                "skipped by policy",
                format!("require_crl = false (--no-crl): revocation NOT checked; {why}"),
            );
            return;
        }
        CrlInput::NotAtHand(why) | CrlInput::Failed(why) => {
            v.fail(
                "chain.crl",
                format!("a current CRL signed by {}", roots.ark.label()),
                "none",
                format!(
                    "{why}. Get one: run without --offline so the KDS is asked, put crl.pem or \
                     crl.der in --certs, or pass --crl FILE; or opt out of revocation checking \
                     explicitly with --no-crl (policy require_crl = false)"
                ),
            );
            return;
        }
    };
    let crl = match Crl::decode(bytes) {
        Ok(crl) => crl,
        Err(err) => {
            v.fail("chain.crl", "a CRL", "undecodable", err.to_string());
            return;
        }
    };
    let ark_name = &roots.ark.x509().tbs_certificate.subject;
    let revoked: Vec<String> = [Some(intermediate), vek]
        .into_iter()
        .flatten()
        .filter(|c| crl.revokes(c))
        .map(|c| format!("{} (serial {}) is revoked", c.label(), c.serial_hex()))
        .collect();
    let verdict = if crl.issuer() != ark_name {
        Err(format!(
            "issued by {}, not {}",
            name_text(crl.issuer()),
            name_text(ark_name)
        ))
    } else if let Err(err) = signed_by(memo, &roots.ark, crl.der(), || {
        crl.verify_signed_by(&roots.ark)
    }) {
        Err(err.to_string())
    } else if now < crl.this_update() || crl.next_update().is_some_and(|n| now > n) {
        Err(format!(
            "CRL is current from {} to {}, not at {} (a fresh one comes from the KDS)",
            fmt(crl.this_update()),
            crl.next_update().map(fmt).unwrap_or_default(),
            fmt(now)
        ))
    } else if !revoked.is_empty() {
        Err(revoked.join("; "))
    } else {
        Ok(())
    };
    match verdict {
        Ok(()) => v.pass(
            "chain.crl",
            "not revoked",
            format!(
                "CRL by {}, {} entries; {} and {} not listed",
                roots.ark.label(),
                crl.revoked_count(),
                intermediate.label(),
                vek.map_or("the VEK (not at hand)".into(), Cert::label)
            ),
        ),
        Err(why) => v.fail(
            "chain.crl",
            "a current ARK-signed CRL not revoking the chain",
            "failed",
            why,
        ),
    }
}

/// A distinguished name for messages, in RFC 4514 form (`CN=ARK-Milan,O=…`).
fn name_text(name: &x509_cert::name::Name) -> String {
    name.to_string()
}

pub(super) fn vek_matches_report(v: &mut Verdict, r: &Report, vek: &Cert, product: Product) {
    let ext = match vek_extensions(vek) {
        Ok(x) => x,
        Err(err) => {
            v.fail(
                "vek.tcb",
                "AMD's TCB extensions",
                "malformed",
                err.to_string(),
            );
            return;
        }
    };
    let tcb = r.tcb(r.reported_tcb, product);
    let VekExtensions {
        bl_spl,
        tee_spl,
        snp_spl,
        ucode_spl,
        fmc_spl,
        ..
    } = &ext;
    let mut pairs = vec![
        ("blSPL", *bl_spl, tcb.bootloader),
        ("teeSPL", *tee_spl, tcb.tee),
        ("snpSPL", *snp_spl, tcb.snp),
        ("ucodeSPL", *ucode_spl, tcb.microcode),
    ];
    if let Some(fmc) = tcb.fmc {
        pairs.insert(0, ("fmcSPL", *fmc_spl, fmc));
    }
    let ok = pairs.iter().all(|(_, cert, rep)| *cert == Some(*rep));
    let reported: Vec<String> = pairs
        .iter()
        .map(|(n, _, rep)| format!("{n}={rep}"))
        .collect();
    let certified: Vec<String> = pairs
        .iter()
        .map(|(n, cert, _)| format!("{n}={}", cert.map_or("absent".into(), |c| c.to_string())))
        .collect();
    v.push(
        "vek.tcb",
        ok,
        format!("REPORTED_TCB {}", reported.join(" ")),
        format!("certificate {}", certified.join(" ")),
        "the VEK must be the one derived for the reported TCB",
    );

    match r.signing_key {
        SigningKey::Vlek => v.pass(
            "vek.hwid",
            "not chip-bound",
            "a VLEK belongs to a cloud provider, not to one chip",
        ),
        _ => {
            let chip = r.chip_id_for(product);
            // Turin's CHIP_ID is 8 bytes; the rest of the field must be zero, or two reports
            // with different CHIP_ID fields would share one VCEK.
            let tail_zero = r.chip_id[chip.len()..].iter().all(|&b| b == 0);
            match &ext.hw_id {
                Some(_) if !tail_zero => v.fail(
                    "vek.hwid",
                    format!("{} followed by zeros", hex::encode(chip)),
                    hex::encode(r.chip_id),
                    "CHIP_ID has bytes after the chip's 8-byte id",
                ),
                Some(hw) if hw[..] == *chip => v.pass(
                    "vek.hwid",
                    hex::encode(chip),
                    "hwID extension equals CHIP_ID",
                ),
                Some(hw) => v.fail(
                    "vek.hwid",
                    hex::encode(chip),
                    hex::encode(hw),
                    "the VCEK belongs to another chip",
                ),
                None => v.fail(
                    "vek.hwid",
                    hex::encode(chip),
                    "no hwID extension",
                    "a VCEK names its chip",
                ),
            }
        }
    }

    let name = ext.product_name.clone().unwrap_or_default();
    let ok = name == product.kds_name() || name.starts_with(&format!("{}-", product.kds_name()));
    v.push(
        "vek.product",
        ok,
        product.kds_name(),
        if name.is_empty() {
            "absent".into()
        } else {
            name
        },
        "productName extension",
    );
}

/// The report's signature by the VEK, over bytes 0x000–0x29F exactly as received.
pub(super) fn signature(v: &mut Verdict, r: &Report, vek: &Cert) {
    match vek.p384_key() {
        Ok(key) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            let (rr, ss) = r.signature_rs();
            let digest = sha384(r.signed_bytes());
            let ok = p384::ecdsa::Signature::from_scalars(rr, ss)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok());
            v.push(
                "report.signature",
                ok,
                format!("ECDSA P-384 signature by the {}", vek.label()),
                if ok { "valid" } else { "invalid" },
                format!(
                    "SHA-384 of bytes 0x000–0x29F = {}",
                    hex::encode(&digest[..8])
                ),
            );
        }
        Err(err) => v.fail(
            "report.signature",
            "a P-384 key in the VCEK/VLEK",
            "none",
            err.to_string(),
        ),
    }
}
