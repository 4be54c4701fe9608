//! Reference values in the RVPS "sample" provenance: the names Trustee's default CPU policy
//! (`ear_default_policy_cpu.rego`) asks `query_reference_value` for, each with what a snpkit
//! image and verification policy accept.

use crate::error::ExportError;
use crate::guest_policy::GuestPolicy;
use crate::options::ExportOptions;
use serde_json::{Map, Value, json};
use snpkit_attest::policy::Policy;
use snpkit_bundle::{Expected, ExpectedConfig};

/// The highest value of a one-byte TCB component.
const TCB_MAX: u8 = u8::MAX;

/// The reference values, name → value, as a JSON object.
pub(crate) fn values(
    configs: &[&ExpectedConfig],
    policy: &Policy,
    options: &ExportOptions,
    notes: &mut Vec<String>,
) -> Result<Map<String, Value>, ExportError> {
    let mut rv = Map::new();
    let mut measurements: Vec<String> = Vec::new();
    for config in configs {
        let hex = config.measurement.to_ascii_lowercase();
        if hex.len() != 96 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ExportError::Measurement(config.measurement.clone()));
        }
        refuse_unappraisable(config)?;
        if !measurements.contains(&hex) {
            measurements.push(hex);
        }
    }
    measurements.sort();
    rv.insert("snp_launch_measurement".into(), json!(measurements));

    // The default policy asks `reported_tcb_x in query_reference_value(...)`: a set, not a
    // minimum, so a minimum becomes every value from it up.
    let min = &policy.min_tcb;
    for (name, floor) in [
        ("snp_bootloader", min.bootloader),
        ("snp_microcode", min.microcode),
        ("snp_snp_svn", min.snp),
        ("snp_tee_svn", min.tee),
    ] {
        let accepted: Vec<u8> = (floor..=TCB_MAX).collect();
        rv.insert(name.into(), json!(accepted));
    }
    if [min.bootloader, min.microcode, min.snp, min.tee] == [0; 4] {
        notes.push(
            "no minimum TCB: the verification policy's [min_tcb] is all zero, so every reported TCB \
             is a reference value; set [min_tcb] in --policy for your fleet's firmware"
                .into(),
        );
    }
    if min.fmc.is_some() {
        notes.push(
            "[min_tcb] fmc is not exported: Trustee's default policy reads no FMC claim".into(),
        );
    }

    let first = configs[0];
    let same = |field: &'static str, get: &dyn Fn(GuestPolicy) -> Value| {
        let want = get(GuestPolicy(first.launch.policy));
        for other in &configs[1..] {
            let found = get(GuestPolicy(other.launch.policy));
            if found != want {
                return Err(ExportError::Disagree {
                    field,
                    first_config: first.launch.name.clone(),
                    first: want.to_string(),
                    other_config: other.launch.name.clone(),
                    other: found.to_string(),
                });
            }
        }
        Ok(want)
    };
    rv.insert(
        "snp_guest_abi_major".into(),
        same("the guest policy's ABI major", &|p| json!(p.abi_major()))?,
    );
    rv.insert(
        "snp_guest_abi_minor".into(),
        same("the guest policy's ABI minor", &|p| json!(p.abi_minor()))?,
    );
    rv.insert(
        "snp_single_socket".into(),
        same("the guest policy's SINGLE_SOCKET", &|p| {
            json!(p.single_socket())
        })?,
    );
    rv.insert(
        "snp_smt_allowed".into(),
        same("the guest policy's SMT bit", &|p| json!(p.smt_allowed()))?,
    );

    // Platform facts, not the image's: only the operator knows them.
    match (options.smt_enabled, options.tsme_enabled) {
        (Some(smt), Some(tsme)) => {
            rv.insert("snp_smt_enabled".into(), json!(smt));
            rv.insert("snp_tsme_enabled".into(), json!(tsme));
        }
        (None, None) => notes.push(
            "platform SMT and TSME not given (--smt-enabled, --tsme-enabled): Trustee's default policy \
             then appraises the configuration as 3 (\"no known vulnerabilities\": debug and migration \
             agent off) instead of 2 (\"a known and approved config\"); both are affirming"
                .into(),
        ),
        _ => notes.push(
            "only one of --smt-enabled and --tsme-enabled given: Trustee's default policy compares \
             both, so neither is exported"
                .into(),
        ),
    }
    Ok(rv)
}

fn refuse_unappraisable(config: &ExpectedConfig) -> Result<(), ExportError> {
    let p = GuestPolicy(config.launch.policy);
    let what = if p.debug_allowed() {
        "allows DEBUG (bit 19)"
    } else if p.migrate_ma() {
        "allows a migration agent (bit 18)"
    } else {
        return Ok(());
    };
    Err(ExportError::Refused {
        config: config.launch.name.clone(),
        policy: config.launch.policy,
        what,
    })
}

/// The configs to export: the one named, or all of them.
pub(crate) fn choose<'a>(
    expected: &'a Expected,
    name: Option<&str>,
) -> Result<Vec<&'a ExpectedConfig>, ExportError> {
    match name {
        None => Ok(expected.configs.iter().collect()),
        Some(name) => expected
            .configs
            .iter()
            .find(|c| c.launch.name == name)
            .map(|c| vec![c])
            .ok_or_else(|| ExportError::NoSuchConfig(name.into())),
    }
}
