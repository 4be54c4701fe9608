//! The claims side of a verdict (go-sev-guest's `validate/`): once the report is known to come
//! from AMD hardware, does what it says meet what the relying party requires? Guest policy,
//! minimum TCB, VMPL, REPORT_DATA, the measurement and the optional identity fields.

use super::configs::{self, ConfigMatch};
use super::inputs::Reference;
use crate::policy::{Policy, decode_hex};
use crate::product::Product;
use crate::report::Report;
use crate::verdict::Verdict;

/// Every claim, in the verdict's order: guest policy, minimum TCB, VMPL, REPORT_DATA, the
/// measurement, then the optional identity fields the policy names.
pub(super) fn judge(
    v: &mut Verdict,
    r: &Report,
    policy: &Policy,
    reference: &Reference,
    product: Product,
) {
    let matched = (!reference.configs.is_empty())
        .then(|| ConfigMatch::of(&reference.configs, &r.measurement, r.policy));
    guest_policy(v, r, policy, reference, matched.as_ref());
    min_tcb(v, r, policy, product);
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
    match (&reference.measurement, signed_by(policy), &matched) {
        (_, _, Some(m)) => configs::measurement(
            v,
            r,
            &reference.configs,
            m,
            &reference.measurement_source,
        ),
        (None, Some(key), None) => v.pass(
            "measurement",
            hex::encode(r.measurement),
            format!(
                "no expected measurement given: passes by signature, as the policy requires the {key} \
                 (the PSP launches a signed guest only when its ID block's LD equals this \
                 MEASUREMENT; see the {key} line)"
            ),
        ),
        _ => expected_value(
            v,
            "measurement",
            reference.measurement.as_ref().map(|d| &d[..]),
            &r.measurement,
            &reference.measurement_source,
            "pass --expected or --measurement, or require a signing key (id_key_digest or author_key_digest)",
        ),
    }
    optional_values(v, r, policy);
}

/// The policy field naming a key that must have signed the launch's ID block, when it names
/// one. A digest of zero is no key: it is what a report of an unsigned launch carries.
fn signed_by(policy: &Policy) -> Option<&'static str> {
    let names_a_key = |d: &Option<String>| {
        d.as_deref()
            .and_then(|text| decode_hex("key digest", text, 48).ok())
            .is_some_and(|bytes| bytes.iter().any(|&b| b != 0))
    };
    if names_a_key(&policy.author_key_digest) {
        Some("author_key_digest")
    } else if names_a_key(&policy.id_key_digest) {
        Some("id_key_digest")
    } else {
        None
    }
}

fn guest_policy(
    v: &mut Verdict,
    r: &Report,
    policy: &Policy,
    reference: &Reference,
    matched: Option<&ConfigMatch<'_>>,
) {
    let bits = r.policy_bits();
    let p = format!("guest policy {:#x}", r.policy);
    // What a set bit grants the guest (`[on, off]` say how the report reads) passes only if the
    // verifier's policy allows it.
    let grants = [
        (
            "policy.debug",
            "debug",
            bits.debug_allowed(),
            policy.allow_debug,
            ["on", "off"],
        ),
        (
            "policy.migration_agent",
            "migration agent",
            bits.migrate_ma_allowed(),
            policy.allow_migration_agent,
            ["on", "off"],
        ),
        (
            "policy.smt",
            "SMT",
            bits.smt_allowed(),
            policy.allow_smt,
            ["allowed", "not allowed"],
        ),
    ];
    for (key, what, granted, allow, [on, off]) in grants {
        v.push(
            key,
            !granted || allow,
            format!("{what} {}", if allow { "allowed" } else { "refused" }),
            format!("{what} {}", if granted { on } else { off }),
            p.clone(),
        );
    }
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
    match (matched, reference.launch_policy) {
        (Some(m), _) => {
            configs::launch_policy(v, r, &reference.configs, m, &reference.measurement_source)
        }
        (None, Some(launch)) => v.push(
            "policy.launch",
            launch == r.policy,
            format!("{launch:#x}"),
            format!("{:#x}", r.policy),
            format!("the policy of {}", reference.measurement_source),
        ),
        (None, None) => v.pass(
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
            hex::encode(want),
            hex::encode(found),
            source.to_string(),
        ),
        None => v.fail(
            name,
            "a reference value",
            hex::encode(found),
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
                Ok(want) => v.push(
                    key,
                    want == found,
                    hex::encode(&want),
                    hex::encode(found),
                    "policy",
                ),
                Err(err) => v.fail(key, text.clone(), hex::encode(found), err.to_string()),
            },
            None => v.pass(key, "not required", format!("the policy sets no {key}")),
        }
    }
}
