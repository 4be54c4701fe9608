//! Judging evidence: the whole verification as one pure function over bytes.
//!
//! No I/O here: certificates come in as bytes (from a directory, the KDS client or the emulated PSP),
//! the time is a parameter, and the result is a [`Verdict`] with one named line per check. The AMD
//! chain and the emulated test chain walk the same code; the only difference is which roots are
//! trusted, and the test roots only when the caller allows emulation.
//!
//! Split the way go-sev-guest separates `verify/` from `validate/`, while the verdict stays one
//! ordered list: this file reads the evidence (format, signing key, product) and picks the roots;
//! `chain` judges the endorsements (chain, CRL, validity, signature, the VEK's extensions);
//! `claims` judges what the report says against policy and reference values (policy, TCB, VMPL,
//! REPORT_DATA, measurement, identity fields). `run` calls them in the verdict's order.

mod chain;
mod claims;
mod configs;
mod inputs;
mod memo;

pub use configs::{ConfigMatch, ReferenceConfig};
pub use inputs::{CrlInput, EMULATED_MARK, Endorsements, Reference, Trust};
pub(crate) use inputs::{names_emulated_chain, product_from_names};
pub use memo::SignatureMemo;

use crate::policy::{KeyRequirement, Policy};
use crate::product::Product;
use crate::report::{self, Report, SigningKey};
use crate::roots::{self, Roots};
use crate::verdict::{EMULATED_BANNER, Verdict};
use time::OffsetDateTime;

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

/// Every check, in the verdict's order; a check that leaves nothing to judge ends the run and
/// the verdict lists the rest as not reached.
fn run(
    v: &mut Verdict,
    report_bytes: &[u8],
    e: &Endorsements,
    reference: &Reference,
    policy: &Policy,
    trust: &Trust<'_>,
    now: OffsetDateTime,
) {
    at_hand(v, report_bytes, e);

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

    if !signing_key(v, &r, policy) {
        return;
    }

    // --- product
    let emulated = names_emulated_chain(e);
    let emulated_roots = if emulated && trust.allow_emulated {
        trust.emulated_roots
    } else {
        None
    };
    let Some(product) = product(v, &r, e, reference, emulated_roots) else {
        return;
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
                crate::error_text(&err),
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

    // --- endorsements: chain, signature, and the VEK describing this chip and firmware
    let Some(vek) = chain::chain(
        v,
        &r,
        e,
        roots,
        chain::Terms {
            policy,
            memo: trust.memo,
            now,
        },
    ) else {
        return;
    };
    chain::signature(v, &r, &vek);
    chain::vek_matches_report(v, &r, &vek, product);

    // --- claims: guest policy and reference values
    claims::judge(v, &r, policy, reference, product);
}

/// The `input` line: what came with the report.
fn at_hand(v: &mut Verdict, report_bytes: &[u8], e: &Endorsements) {
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
}

/// `report.signing_key`: the key KEY_INFO names against the policy's. False when the report
/// says it was signed by no key, which leaves nothing to verify.
fn signing_key(v: &mut Verdict, r: &Report, policy: &Policy) -> bool {
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
    r.signing_key != SigningKey::None
}

/// `product`: the CPUID fields, else the caller's `--product`, else the certificate names (version
/// 2 reports carry no CPUID). None when no product with AMD roots can be named.
fn product(
    v: &mut Verdict,
    r: &Report,
    e: &Endorsements,
    reference: &Reference,
    emulated_roots: Option<&Roots>,
) -> Option<Product> {
    let chip_product = r.cpuid_product();
    let product = match (reference.product, chip_product, r.cpuid) {
        (_, None, Some((fam, model, step))) => {
            v.fail(
                "product",
                "Milan, Genoa or Turin",
                format!("CPUID family {fam:#x} model {model:#x} stepping {step:#x}"),
                "the chip is not a product we hold AMD roots for",
            );
            return None;
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
                return None;
            }
        },
    };
    Some(product)
}
