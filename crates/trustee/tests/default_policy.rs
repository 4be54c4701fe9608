//! The export judged by Trustee itself: Trustee's default CPU attestation policy
//! (`ear_default_policy_cpu.rego`, vendored unchanged) evaluated by regorus, the engine Trustee
//! evaluates it with, on the claims Trustee's SNP verifier derives from a snpkit report, with the
//! reference values `export` wrote served through `query_reference_value` as Trustee's RVPS serves
//! them. Then the resource policy `export` wrote, on the token Trustee would issue.
//!
//! The claims are derived with the `sev` crate's report type, as Trustee's verifier derives them
//! (`deps/verifier/src/snp/mod.rs`, `parse_tee_evidence`), not with snpkit's parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use regorus::{Engine, Value as Rego};
use serde_json::{Value, json};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use snpkit_attest::emulated::{ReportFields, TestChain, emulated_report};
use snpkit_attest::policy::Policy;
use snpkit_bundle::{Expected, ExpectedConfig, ExpectedInput, LaunchSpec};
use snpkit_trustee::{Export, ExportError, ExportOptions, export};

const POLICY_FILE: &str =
    "confidential-containers-trustee/attestation-service/src/ear_token/ear_default_policy_cpu.rego";
const SNP_POLICY: u64 = 0x30000;
const RESOURCE: &str = "default/secret-hello/token";

fn chain() -> &'static TestChain {
    TestChain::cached().expect("test chain (generated once into the XDG cache)")
}

fn config(name: &str, measurement: [u8; 48], policy: u64) -> ExpectedConfig {
    ExpectedConfig {
        launch: LaunchSpec {
            name: name.into(),
            vcpus: 1,
            vcpu_type: "EPYC-v4".into(),
            vmm: "qemu".into(),
            guest_features: 1,
            policy,
            memory_mib: 512,
            host_data: None,
        },
        measurement: hex::encode(measurement),
    }
}

fn expected(configs: Vec<ExpectedConfig>) -> Expected {
    Expected {
        schema: snpkit_bundle::EXPECTED_SCHEMA,
        recipe: "secret-hello".into(),
        inputs: vec![ExpectedInput::of("cmdline", b"console=ttyS0")],
        configs,
    }
}

/// What Trustee's SNP verifier makes of a report (`parse_tee_evidence`), nested under the TEE's
/// name with report and init data lifted out, as its EAR broker's `transform_claims` does.
fn trustee_input(report: &[u8]) -> Value {
    let r = AttestationReport::from_bytes(report).expect("sev parses the report");
    let claims = json!({
        "policy_abi_major": r.policy.abi_major(),
        "policy_abi_minor": r.policy.abi_minor(),
        "policy_smt_allowed": r.policy.smt_allowed(),
        "policy_migrate_ma": r.policy.migrate_ma_allowed(),
        "policy_debug_allowed": r.policy.debug_allowed(),
        "policy_single_socket": r.policy.single_socket_required(),
        "reported_tcb_bootloader": r.reported_tcb.bootloader,
        "reported_tcb_tee": r.reported_tcb.tee,
        "reported_tcb_snp": r.reported_tcb.snp,
        "reported_tcb_microcode": r.reported_tcb.microcode,
        "platform_tsme_enabled": r.plat_info.tsme_enabled(),
        "platform_smt_enabled": r.plat_info.smt_enabled(),
        "measurement": hex::encode(r.measurement),
        "chip_id": hex::encode(r.chip_id),
    });
    json!({
        "init_data": hex::encode(r.host_data),
        "init_data_claims": {},
        "report_data": hex::encode(r.report_data),
        "runtime_data_claims": {},
        "snp": claims,
    })
}

fn report(measurement: [u8; 48]) -> [u8; 1184] {
    emulated_report(
        chain(),
        &ReportFields::new(measurement, [7; 64], SNP_POLICY),
    )
}

/// `data.policy.trust_claims` of the default policy for this input and these reference values.
fn trust_claims(input: &Value, export: &Export) -> Value {
    let mut engine = Engine::new();
    let text =
        String::from_utf8(snpkit_testkit::vectors::read(POLICY_FILE)).expect("policy is UTF-8");
    engine
        .add_policy("".into(), text)
        .expect("Trustee's policy parses");
    engine.set_input_json(&input.to_string()).unwrap();
    let values = export.reference_values.clone();
    engine
        .add_extension(
            "query_reference_value".into(),
            1,
            Box::new(move |args: Vec<Rego>| {
                let name = args[0].as_string()?.to_string();
                // An unknown name is null, as Trustee's RVPS client answers it.
                let value = values.get(&name).cloned().unwrap_or(Value::Null);
                Ok(serde_json::from_value(value)?)
            }),
        )
        .unwrap();
    let result = engine
        .eval_rule("data.policy.trust_claims".into())
        .expect("the policy evaluates");
    serde_json::to_value(result).unwrap()
}

/// AR4SI's tiers, as Trustee's EAR token sets `ear.status`: any claim in the contraindicated range
/// wins, then any warning; otherwise affirming.
fn ear_status(claims: &Value) -> &'static str {
    let values: Vec<i64> = claims
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .collect();
    if values
        .iter()
        .any(|v| (96..=127).contains(v) || (-128..=-97).contains(v))
    {
        "contraindicated"
    } else if values
        .iter()
        .any(|v| (32..=95).contains(v) || (-96..=-33).contains(v))
    {
        "warning"
    } else {
        "affirming"
    }
}

/// The resource policy's `allow` for a request of `path` by a guest so appraised.
fn allowed(export: &Export, input: &Value, claims: &Value, path: &str) -> bool {
    let token = json!({
        "submods": { "cpu0": {
            "ear.status": ear_status(claims),
            "ear.trustworthiness-vector": claims,
            "ear.veraison.annotated-evidence": input,
        }}
    });
    let mut engine = Engine::new();
    engine
        .add_policy("resource.rego".into(), export.resource_policy.clone())
        .expect("the exported resource policy parses");
    engine.set_input_json(&token.to_string()).unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    let data = json!({ "plugin": "resource", "resource-path": parts, "query": {} });
    engine
        .add_data(Rego::from_json_str(&data.to_string()).unwrap())
        .unwrap();
    let allow = engine.eval_rule("data.policy.allow".into()).unwrap();
    allow == Rego::from(true)
}

fn exported(measurement: [u8; 48], policy: &Policy, options: &ExportOptions) -> Export {
    let expected = expected(vec![config("qemu-1vcpu", measurement, SNP_POLICY)]);
    export(&expected, policy, &[RESOURCE.to_owned()], options).expect("exports")
}

#[test]
fn trustees_default_policy_affirms_the_predicted_image() {
    let m = [0x5a; 48];
    let e = exported(m, &Policy::default(), &ExportOptions::default());
    let input = trustee_input(&report(m));
    let claims = trust_claims(&input, &e);
    assert_eq!(claims["executables"], 3, "{claims}");
    assert_eq!(claims["hardware"], 2, "{claims}");
    // Platform SMT/TSME not given: the policy's fallback for a safe config.
    assert_eq!(claims["configuration"], 3, "{claims}");
    assert_eq!(ear_status(&claims), "affirming");
    assert!(allowed(&e, &input, &claims, RESOURCE));
}

#[test]
fn with_the_platform_given_the_configuration_is_the_approved_one() {
    let m = [0x5a; 48];
    let input = trustee_input(&report(m));
    let plat = &input["snp"];
    let options = ExportOptions {
        smt_enabled: plat["platform_smt_enabled"].as_bool(),
        tsme_enabled: plat["platform_tsme_enabled"].as_bool(),
        ..ExportOptions::default()
    };
    let e = exported(m, &Policy::default(), &options);
    assert_eq!(trust_claims(&input, &e)["configuration"], 2);
    // A platform other than the one named: no longer "approved", still not a vulnerability.
    let other = ExportOptions {
        smt_enabled: options.smt_enabled.map(|b| !b),
        ..options
    };
    let e = exported(m, &Policy::default(), &other);
    assert_eq!(trust_claims(&input, &e)["configuration"], 3);
}

#[test]
fn a_changed_measurement_is_refused_by_trustee_and_by_the_resource_policy() {
    let e = exported([0x5a; 48], &Policy::default(), &ExportOptions::default());
    let mut other = [0x5a; 48];
    other[47] ^= 1;
    let input = trustee_input(&report(other));
    let claims = trust_claims(&input, &e);
    // 33: "executables … not recognized".
    assert_eq!(claims["executables"], 33, "{claims}");
    assert_eq!(ear_status(&claims), "warning");
    assert!(!allowed(&e, &input, &claims, RESOURCE));
}

#[test]
fn an_affirming_guest_of_another_image_gets_nothing() {
    // Trustee's reference values are global: image B's measurement is affirming there, but this
    // image's resource policy names only its own.
    let mine = exported([0x5a; 48], &Policy::default(), &ExportOptions::default());
    let theirs = exported([0x77; 48], &Policy::default(), &ExportOptions::default());
    let input = trustee_input(&report([0x77; 48]));
    let claims = trust_claims(&input, &theirs);
    assert_eq!(ear_status(&claims), "affirming");
    assert!(!allowed(&mine, &input, &claims, RESOURCE));
    assert!(allowed(&theirs, &input, &claims, RESOURCE));
}

#[test]
fn only_the_images_resources_are_released() {
    let m = [0x5a; 48];
    let e = exported(m, &Policy::default(), &ExportOptions::default());
    let input = trustee_input(&report(m));
    let claims = trust_claims(&input, &e);
    assert!(!allowed(&e, &input, &claims, "default/secret-hello/other"));
    assert!(!allowed(&e, &input, &claims, "default/secret-hello"));
}

#[test]
fn a_tcb_below_the_minimum_is_not_genuine_hardware_for_trustee() {
    let m = [0x5a; 48];
    let input = trustee_input(&report(m));
    let snp = input["snp"]["reported_tcb_snp"].as_u64().unwrap() as u8;
    let mut policy = Policy::default();
    policy.min_tcb.snp = snp + 1;
    let e = exported(m, &policy, &ExportOptions::default());
    let claims = trust_claims(&input, &e);
    // 97: "hardware … not recognized".
    assert_eq!(claims["hardware"], 97, "{claims}");
    assert!(!allowed(&e, &input, &claims, RESOURCE));
    policy.min_tcb.snp = snp;
    let e = exported(m, &policy, &ExportOptions::default());
    assert_eq!(trust_claims(&input, &e)["hardware"], 2);
}

#[test]
fn images_trustee_would_never_affirm_are_refused_at_export() {
    for (bit, word) in [(19, "DEBUG"), (18, "migration agent")] {
        let expected = expected(vec![config("c", [1; 48], SNP_POLICY | 1 << bit)]);
        let err = export(
            &expected,
            &Policy::default(),
            &[],
            &ExportOptions::default(),
        )
        .expect_err("refused");
        assert!(matches!(err, ExportError::Refused { .. }));
        assert!(err.to_string().contains(word), "{err}");
    }
}

#[test]
fn configs_that_disagree_on_a_compared_field_must_be_chosen_between() {
    let both = expected(vec![
        config("smt", [1; 48], SNP_POLICY),
        config("nosmt", [2; 48], 0x20000),
    ]);
    let err = export(&both, &Policy::default(), &[], &ExportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("--config"), "{err}");
    let one = ExportOptions {
        config: Some("nosmt".into()),
        ..ExportOptions::default()
    };
    let e = export(&both, &Policy::default(), &[], &one).expect("one config exports");
    assert_eq!(e.measurements, vec![hex::encode([2; 48])]);
    assert_eq!(e.reference_values["snp_smt_allowed"], false);
    let none = ExportOptions {
        config: Some("absent".into()),
        ..ExportOptions::default()
    };
    assert!(matches!(
        export(&both, &Policy::default(), &[], &none),
        Err(ExportError::NoSuchConfig(_))
    ));
}

#[test]
fn hostile_resource_names_cannot_break_out_of_the_policy() {
    let expected = expected(vec![config("c", [1; 48], SNP_POLICY)]);
    for bad in ["a/b", "a/../c/d", "a/b/c/d", "", "a/b/\u{0}"] {
        assert!(
            matches!(
                export(
                    &expected,
                    &Policy::default(),
                    &[bad.into()],
                    &ExportOptions::default()
                ),
                Err(ExportError::Resource(_))
            ),
            "{bad:?}"
        );
    }
    // Quotes and backslashes are legal in a tag; they must stay inside their string.
    let tricky = r#"default/x/a"} allow if { true } #\"#;
    let e = export(
        &expected,
        &Policy::default(),
        &[tricky.into()],
        &ExportOptions::default(),
    )
    .expect("a legal name exports");
    let input = trustee_input(&report([1; 48]));
    let claims = trust_claims(&input, &e);
    assert!(allowed(&e, &input, &claims, tricky));
    assert!(!allowed(&e, &input, &claims, "default/x/other"));
}

#[test]
fn the_rvps_message_carries_the_provenance() {
    let e = exported([0x5a; 48], &Policy::default(), &ExportOptions::default());
    let message: Value = serde_json::from_str(&e.rvps_message()).unwrap();
    assert_eq!(message["type"], "sample");
    assert_eq!(message["version"], snpkit_trustee::RVPS_MESSAGE_VERSION);
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(message["payload"].as_str().unwrap())
        .unwrap();
    let provenance: serde_json::Map<String, Value> = serde_json::from_slice(&payload).unwrap();
    assert_eq!(provenance, e.reference_values);
}

#[test]
fn the_reference_values_file_reads_back_as_the_provenance() {
    let e = exported([0x5a; 48], &Policy::default(), &ExportOptions::default());
    let text = e.reference_values_json();
    let back: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, e.reference_values);
    assert!(text.lines().count() < 20, "one line per name:\n{text}");
}
