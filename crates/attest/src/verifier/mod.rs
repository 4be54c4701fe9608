//! Judging evidence: the whole verification as one pure function over bytes.
//!
//! No I/O here: certificates come in as bytes (from a directory, the KDS client or the emulated PSP),
//! the time is a parameter, and the result is a [`Verdict`] with one named line per check. The AMD
//! chain and the emulated test chain walk the same code; the only difference is which roots are
//! trusted, and the test roots only when the caller allows emulation.

use crate::certs::amd_ext::{VekExtensions, vek_extensions};
use crate::certs::crl::Crl;
use crate::certs::{Cert, sha384};
use crate::policy::{KeyRequirement, Policy, decode_hex};
use crate::product::Product;
use crate::report::{self, Report, SigningKey};
use crate::roots::{self, Roots};
use crate::verdict::{EMULATED_BANNER, Verdict};
use time::OffsetDateTime;

/// Marker in the subject names of the emulated PSP's test chain.
pub const EMULATED_MARK: &str = "snpkit-EMULATED";

/// Certificates and CRL at hand for one report, as bytes in PEM or DER.
#[derive(Debug, Clone, Default)]
pub struct Endorsements {
    pub ark: Option<Vec<u8>>,
    pub ask: Option<Vec<u8>>,
    pub asvk: Option<Vec<u8>>,
    pub vcek: Option<Vec<u8>>,
    pub vlek: Option<Vec<u8>>,
    /// Why no VCEK/VLEK could be had (KDS down, offline and not cached, …), for the verdict.
    pub vek_problem: Option<String>,
    pub crl: CrlInput,
}

/// The CRL for a verdict. Revocation is checked fail-closed: without a CRL, `chain.crl` fails
/// unless the policy opts out (`require_crl = false`), and then it says "skipped by policy".
#[derive(Debug, Clone)]
pub enum CrlInput {
    /// A CRL (PEM or DER): always checked, whatever the policy says.
    Given(Vec<u8>),
    /// No CRL, and why (offline and not cached, none in `--certs`, not wanted).
    NotAtHand(String),
    /// Fetching one failed, and why.
    Failed(String),
}

impl Default for CrlInput {
    fn default() -> CrlInput {
        CrlInput::NotAtHand("no CRL given".into())
    }
}

/// What the report must say: reference values from the build and the session.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    /// The product the caller insists on (`--product`); else detected.
    pub product: Option<Product>,
    pub measurement: Option<[u8; 48]>,
    pub report_data: Option<[u8; 64]>,
    /// The guest policy the image was launched with (expected.json's launch config), if known.
    pub launch_policy: Option<u64>,
    /// Where the expected REPORT_DATA came from, for messages (`nonce and public key of run …`).
    pub report_data_source: String,
    /// Where the expected measurement and launch policy came from (`expected.json config "hello-1"`).
    pub measurement_source: String,
}

/// Which roots to trust besides AMD's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trust<'a> {
    /// Accept the emulated PSP's test chain. The verdict then says so in every output.
    pub allow_emulated: bool,
    /// This machine's test chain (from the cache), when it exists.
    pub emulated_roots: Option<&'a Roots>,
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn is_emulated_cert(bytes: &Option<Vec<u8>>) -> bool {
    bytes
        .as_ref()
        .and_then(|b| Cert::decode("certificate", b).ok())
        .is_some_and(|c| {
            c.subject_cn().is_some_and(|n| n.contains(EMULATED_MARK))
                || c.issuer_cn().is_some_and(|n| n.contains(EMULATED_MARK))
        })
}

/// Do the given certificates name the emulated PSP's test chain?
pub(crate) fn names_emulated_chain(e: &Endorsements) -> bool {
    [&e.ark, &e.ask, &e.vcek, &e.vlek]
        .into_iter()
        .any(is_emulated_cert)
}

/// Product named by a certificate's issuer or subject (`SEV-Milan`, `SEV-VLEK-Genoa`, `ARK-Turin`).
pub(crate) fn product_from_names(e: &Endorsements) -> Option<Product> {
    for bytes in [&e.vcek, &e.vlek, &e.ask, &e.asvk, &e.ark]
        .into_iter()
        .flatten()
    {
        if let Ok(c) = Cert::decode("certificate", bytes) {
            for name in [c.issuer_cn(), c.subject_cn()].into_iter().flatten() {
                if let Some(p) = Product::ALL
                    .into_iter()
                    .find(|p| name.ends_with(&format!("-{}", p.kds_name())))
                {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Verify a report. Never panics on outside bytes; any doubt is a failing check.
pub fn verify(
    report_bytes: &[u8],
    endorsements: &Endorsements,
    reference: &Reference,
    policy: &Policy,
    trust: &Trust<'_>,
    now: OffsetDateTime,
) -> Verdict {
    let mut v = Verdict::new();
    run(
        &mut v,
        report_bytes,
        endorsements,
        reference,
        policy,
        trust,
        now,
    );
    v.finish()
}

fn run(
    v: &mut Verdict,
    report_bytes: &[u8],
    e: &Endorsements,
    reference: &Reference,
    policy: &Policy,
    trust: &Trust<'_>,
    now: OffsetDateTime,
) {
    // --- what is at hand
    let given: Vec<&str> = [
        ("ark", e.ark.is_some()),
        ("ask", e.ask.is_some()),
        ("asvk", e.asvk.is_some()),
        ("vcek", e.vcek.is_some()),
        ("vlek", e.vlek.is_some()),
        ("crl", matches!(e.crl, CrlInput::Given(_))),
    ]
    .into_iter()
    .filter_map(|(n, at_hand)| at_hand.then_some(n))
    .collect();
    v.pass(
        "input",
        format!("report of {} bytes", report_bytes.len()),
        if given.is_empty() {
            "no certificates or CRL given".to_string()
        } else {
            format!("given: {}", given.join(", "))
        },
    );

    // --- structure
    let r = match report::parse(report_bytes) {
        Ok(r) => r,
        Err(err) => {
            v.fail(
                "report.format",
                "a well-formed SEV-SNP report",
                err.rule(),
                err.to_string(),
            );
            return;
        }
    };
    v.pass(
        "report.format",
        format!("version {}, {} bytes", r.version, report_bytes.len()),
        "reserved bytes zero, signature algorithm ECDSA P-384, policy bit 17 set",
    );

    // --- who signed
    v.signing_key = Some(r.signing_key.to_string());
    let key_ok = match (&policy.signing_key, r.signing_key) {
        (_, SigningKey::None) => false,
        (KeyRequirement::Any, _) => true,
        (KeyRequirement::Vcek, k) => k == SigningKey::Vcek,
        (KeyRequirement::Vlek, k) => k == SigningKey::Vlek,
    };
    let wanted = match policy.signing_key {
        KeyRequirement::Any => "VCEK or VLEK",
        KeyRequirement::Vcek => "VCEK",
        KeyRequirement::Vlek => "VLEK",
    };
    let detail = if r.signing_key == SigningKey::None {
        "KEY_INFO says the firmware signed with no key: the report proves nothing".to_string()
    } else {
        format!("KEY_INFO {:#x}", r.key_info)
    };
    v.push(
        "report.signing_key",
        key_ok,
        wanted,
        r.signing_key.to_string(),
        detail,
    );
    if r.signing_key == SigningKey::None {
        return;
    }

    // --- product
    let emulated = names_emulated_chain(e);
    let chip_product = r.cpuid_product();
    let emulated_roots = if emulated && trust.allow_emulated {
        trust.emulated_roots
    } else {
        None
    };
    let product = match (reference.product, chip_product, r.cpuid) {
        (_, None, Some((fam, model, step))) => {
            v.fail(
                "product",
                "Milan, Genoa or Turin",
                format!("CPUID family {fam:#x} model {model:#x} stepping {step:#x}"),
                "the chip is not a product we hold AMD roots for",
            );
            return;
        }
        (Some(want), Some(chip), _) if want != chip => {
            v.fail(
                "product",
                want.to_string(),
                chip.to_string(),
                "the report's CPUID fields name another product",
            );
            // The caller trusts only `want`'s roots: judge the chain under those, not the chip's.
            want
        }
        (_, Some(chip), _) => {
            v.pass(
                "product",
                chip.to_string(),
                "from the report's CPUID fields",
            );
            chip
        }
        (Some(want), None, None) => {
            v.pass(
                "product",
                want.to_string(),
                "as given (version 2 reports carry no CPUID)",
            );
            want
        }
        (None, None, None) => match emulated_roots
            .map(|r| r.product)
            .or_else(|| product_from_names(e))
        {
            Some(p) => {
                v.pass(
                    "product",
                    p.to_string(),
                    "from the certificate names (version 2 reports carry no CPUID)",
                );
                p
            }
            None => {
                v.fail("product", "Milan, Genoa or Turin", "unknown", "a version 2 report has no CPUID fields and no certificate names the product: pass --product");
                return;
            }
        },
    };
    v.product = Some(product.to_string());

    // --- which roots
    v.emulated = emulated;
    let amd = match roots::builtin(product) {
        Ok(r) => r,
        Err(err) => {
            v.fail(
                "chain.ark",
                "AMD's builtin roots",
                "unusable",
                err.to_string(),
            );
            return;
        }
    };
    let roots: &Roots = if emulated {
        match (trust.allow_emulated, emulated_roots) {
            (true, Some(test)) => {
                v.pass(
                    "emulated",
                    EMULATED_BANNER,
                    "signed by this machine's snpkit test chain; allowed by --allow-emulated",
                );
                test
            }
            (true, None) => {
                v.fail("emulated", "this machine's emulated test chain", "none cached", "the report is signed by an snpkit test chain, but no test chain exists on this machine");
                amd
            }
            (false, _) => {
                v.fail("emulated", "a report signed by AMD hardware", EMULATED_BANNER, "signed by the snpkit test chain; pass --allow-emulated to accept it for testing");
                amd
            }
        }
    } else {
        v.pass(
            "emulated",
            "no",
            format!("no certificate names the snpkit test chain; AMD's {product} roots"),
        );
        amd
    };

    // --- chain
    let Some(vek) = chain(v, &r, e, roots, policy, now) else {
        return;
    };

    // --- signature over the bytes as received
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
                format!("SHA-384 of bytes 0x000–0x29F = {}", hex(&digest[..8])),
            );
        }
        Err(err) => v.fail(
            "report.signature",
            "a P-384 key in the VCEK/VLEK",
            "none",
            err.to_string(),
        ),
    }

    // --- the VEK must describe this chip and firmware
    vek_matches_report(v, &r, &vek, product);

    // --- guest policy and reference values
    guest_policy(v, &r, policy, reference);
    min_tcb(v, &r, policy, product);
    v.push(
        "vmpl",
        r.vmpl == policy.vmpl,
        policy.vmpl.to_string(),
        r.vmpl.to_string(),
        "",
    );
    expected_value(
        v,
        "report_data",
        reference.report_data.as_ref().map(|d| &d[..]),
        &r.report_data,
        &reference.report_data_source,
        "pass --nonce and --pubkey (or --report-data): without a fresh nonce a replayed report would pass",
    );
    expected_value(
        v,
        "measurement",
        reference.measurement.as_ref().map(|d| &d[..]),
        &r.measurement,
        &reference.measurement_source,
        "pass --expected or --measurement",
    );
    optional_values(v, &r, policy);
}

/// ARK → ASK/ASVK → VEK, validity, CRL. Returns the VEK when it is usable for the signature check.
fn chain(
    v: &mut Verdict,
    r: &Report,
    e: &Endorsements,
    roots: &Roots,
    policy: &Policy,
    now: OffsetDateTime,
) -> Option<Cert> {
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
    for (name, given) in [("ask", &e.ask), ("asvk", &e.asvk)] {
        let Some(bytes) = given else { continue };
        match Cert::decode(name, bytes) {
            Ok(c) => {
                let known = c.fingerprint() == roots.ask.fingerprint()
                    || roots
                        .asvk
                        .as_ref()
                        .is_some_and(|a| a.fingerprint() == c.fingerprint());
                if !known {
                    ask_ok = false;
                    v.fail(
                        "chain.ask",
                        format!("{product}'s pinned {}", intermediate.label()),
                        format!("{} sha256 {}", c.label(), c.fingerprint_hex()),
                        format!("the given {name} is not one of AMD's {product} signing keys"),
                    );
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
        v.pass(
            "chain.ask",
            intermediate.label(),
            format!("pinned, signed by {}", roots.ark.label()),
        );
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
        policy,
        now,
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
    match vek.verify_signed_by(intermediate) {
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

fn crl_check(
    v: &mut Verdict,
    e: &Endorsements,
    roots: &Roots,
    intermediate: &Cert,
    vek: Option<&Cert>,
    policy: &Policy,
    now: OffsetDateTime,
) {
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
    } else if let Err(err) = crl.verify_signed_by(&roots.ark) {
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

fn vek_matches_report(v: &mut Verdict, r: &Report, vek: &Cert, product: Product) {
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
                    format!("{} followed by zeros", hex(chip)),
                    hex(&r.chip_id),
                    "CHIP_ID has bytes after the chip's 8-byte id",
                ),
                Some(hw) if hw[..] == *chip => {
                    v.pass("vek.hwid", hex(chip), "hwID extension equals CHIP_ID")
                }
                Some(hw) => v.fail(
                    "vek.hwid",
                    hex(chip),
                    hex(hw),
                    "the VCEK belongs to another chip",
                ),
                None => v.fail(
                    "vek.hwid",
                    hex(chip),
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

fn guest_policy(v: &mut Verdict, r: &Report, policy: &Policy, reference: &Reference) {
    let bits = r.policy_bits();
    let p = format!("guest policy {:#x}", r.policy);
    let allowed = |b: bool| if b { "allowed" } else { "refused" };
    let debug = bits.debug_allowed();
    v.push(
        "policy.debug",
        !debug || policy.allow_debug,
        format!("debug {}", allowed(policy.allow_debug)),
        format!("debug {}", if debug { "on" } else { "off" }),
        p.clone(),
    );
    let ma = bits.migrate_ma_allowed();
    v.push(
        "policy.migration_agent",
        !ma || policy.allow_migration_agent,
        format!("migration agent {}", allowed(policy.allow_migration_agent)),
        format!("migration agent {}", if ma { "on" } else { "off" }),
        p.clone(),
    );
    let smt = bits.smt_allowed();
    v.push(
        "policy.smt",
        !smt || policy.allow_smt,
        format!("SMT {}", allowed(policy.allow_smt)),
        format!("SMT {}", if smt { "allowed" } else { "not allowed" }),
        p.clone(),
    );
    let single = bits.single_socket_required();
    v.push(
        "policy.single_socket",
        single || !policy.require_single_socket,
        if policy.require_single_socket {
            "single socket required"
        } else {
            "any"
        },
        if single {
            "single socket"
        } else {
            "any socket"
        },
        p.clone(),
    );
    let abi = (bits.abi_major() as u8, bits.abi_minor() as u8);
    match policy.min_abi() {
        Ok(min) => v.push(
            "policy.abi",
            abi >= min,
            format!(">= {}.{}", min.0, min.1),
            format!("{}.{}", abi.0, abi.1),
            p.clone(),
        ),
        Err(err) => v.fail(
            "policy.abi",
            "a valid min_abi",
            policy.min_abi.clone(),
            err.to_string(),
        ),
    }
    match reference.launch_policy {
        Some(launch) => v.push(
            "policy.launch",
            launch == r.policy,
            format!("{launch:#x}"),
            format!("{:#x}", r.policy),
            format!("the policy of {}", reference.measurement_source),
        ),
        None => v.pass(
            "policy.launch",
            "not required",
            "no launch config given to compare the guest policy with",
        ),
    }
    v.push(
        "guest_svn",
        r.guest_svn >= policy.min_guest_svn,
        format!(">= {}", policy.min_guest_svn),
        r.guest_svn.to_string(),
        "",
    );
}

fn min_tcb(v: &mut Verdict, r: &Report, policy: &Policy, product: Product) {
    let tcb = r.tcb(r.reported_tcb, product);
    let m = &policy.min_tcb;
    let mut comps = vec![
        ("bootloader", tcb.bootloader, m.bootloader),
        ("tee", tcb.tee, m.tee),
        ("snp", tcb.snp, m.snp),
        ("microcode", tcb.microcode, m.microcode),
    ];
    match (tcb.fmc, m.fmc) {
        (Some(fmc), min) => comps.insert(0, ("fmc", fmc, min.unwrap_or(0))),
        (None, Some(min)) => {
            v.fail(
                "tcb.minimum",
                format!("min_tcb.fmc = {min} on a product with an FMC component"),
                format!("{product}, which has none"),
                "min_tcb.fmc applies to Turin only: use a policy without it for this product",
            );
            return;
        }
        (None, None) => {}
    }
    let low: Vec<String> = comps
        .iter()
        .filter(|(_, have, min)| have < min)
        .map(|(n, have, min)| format!("{n} {have} < {min}"))
        .collect();
    let expected = comps
        .iter()
        .map(|(n, _, min)| format!("{n}>={min}"))
        .collect::<Vec<_>>()
        .join(" ");
    v.push(
        "tcb.minimum",
        low.is_empty(),
        expected,
        tcb.to_string(),
        if low.is_empty() {
            "REPORTED_TCB".to_string()
        } else {
            low.join(", ")
        },
    );
}

fn expected_value(
    v: &mut Verdict,
    name: &str,
    expected: Option<&[u8]>,
    found: &[u8],
    source: &str,
    missing_hint: &str,
) {
    match expected {
        Some(want) => v.push(
            name,
            want == found,
            hex(want),
            hex(found),
            source.to_string(),
        ),
        None => v.fail(
            name,
            "a reference value",
            hex(found),
            format!("no expected value given: {missing_hint}"),
        ),
    }
}

fn optional_values(v: &mut Verdict, r: &Report, policy: &Policy) {
    let fields: [(&str, &[u8]); 5] = [
        ("host_data", &r.host_data),
        ("id_key_digest", &r.id_key_digest),
        ("author_key_digest", &r.author_key_digest),
        ("family_id", &r.family_id),
        ("image_id", &r.image_id),
    ];
    for ((key, value, len), (_, found)) in policy.hex_fields().into_iter().zip(fields) {
        match value {
            Some(text) => match decode_hex(key, text, len) {
                Ok(want) => v.push(key, want == found, hex(&want), hex(found), "policy"),
                Err(err) => v.fail(key, text.clone(), hex(found), err.to_string()),
            },
            None => v.pass(key, "not required", format!("the policy sets no {key}")),
        }
    }
}
