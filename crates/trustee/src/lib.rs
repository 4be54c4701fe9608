//! snpkit's reference values in Confidential Containers Trustee's formats, so that a fleet can
//! move from `cargo xtask kbs serve` to a Trustee KBS without changing the image.
//!
//! Owns the translation of one image's prediction (`expected.json`) and snpkit's verification
//! policy into what Trustee reads:
//! - the reference values its default CPU attestation policy (`ear_default_policy_cpu.rego`)
//!   queries, as the RVPS "sample" provenance ([`Export::reference_values`]) and wrapped in the
//!   message RVPS registers ([`Export::rvps_message`]);
//! - a KBS resource policy in Rego ([`Export::resource_policy`]) releasing the image's resources
//!   only to an affirming guest with one of the image's measurements.
//!
//! What Trustee's default policy does not check (HOST_DATA, ID-block keys, guest SVN, VMPL, the
//! signing key kind, revocation as snpkit judges it) is listed in [`Export::notes`], never
//! silently dropped. The crate writes no files and talks to no Trustee: `cargo xtask export
//! trustee` writes the files, and the tests evaluate them with regorus, the Rego engine Trustee
//! uses, against Trustee's own default policy (vendored under `tests/vectors`).
#![forbid(unsafe_code)]

mod error;
mod guest_policy;
mod options;
mod reference;
mod resource_policy;

pub use error::ExportError;
pub use options::ExportOptions;

use base64::Engine;
use serde_json::{Map, Value, json};
use snpkit_attest::policy::Policy;
use snpkit_bundle::Expected;
use snpkit_kbs::ResourcePath;

/// The RVPS message version Trustee's RVPS reads (its `Message` default).
pub const RVPS_MESSAGE_VERSION: &str = "0.1.0";

/// What `cargo xtask export trustee` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// Name → reference value, the RVPS sample provenance.
    pub reference_values: Map<String, Value>,
    /// The launch measurements exported, lower-case hex.
    pub measurements: Vec<String>,
    /// The KBS resource policy (Rego).
    pub resource_policy: String,
    /// What Trustee will not check that snpkit's verifier would, and choices made for the operator.
    pub notes: Vec<String>,
}

impl Export {
    /// The reference values as JSON, one name per line with its value compact (a TCB list is
    /// 256 numbers), and a final newline.
    pub fn reference_values_json(&self) -> String {
        let lines: Vec<String> = self
            .reference_values
            .iter()
            .map(|(name, value)| format!("  {}: {value}", Value::String(name.clone())))
            .collect();
        format!("{{\n{}\n}}\n", lines.join(",\n"))
    }

    /// The message RVPS registers (`{"version", "type": "sample", "payload"}`, the payload being
    /// the provenance in standard base64), as pretty JSON with a final newline.
    pub fn rvps_message(&self) -> String {
        let payload = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&self.reference_values).unwrap_or_default());
        let message = json!({
            "version": RVPS_MESSAGE_VERSION,
            "type": "sample",
            "payload": payload,
        });
        let mut text = serde_json::to_string_pretty(&message).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Translate an image's prediction and a verification policy for Trustee. `resources` are the
/// `<repository>/<type>/<tag>` paths the image may have (its recipe's secrets and volume keys).
pub fn export(
    expected: &Expected,
    policy: &Policy,
    resources: &[String],
    options: &ExportOptions,
) -> Result<Export, ExportError> {
    let configs = reference::choose(expected, options.config.as_deref())?;
    if configs.is_empty() {
        return Err(ExportError::NoConfigs);
    }
    let mut notes = Vec::new();
    let reference_values = reference::values(&configs, policy, options, &mut notes)?;
    let measurements: Vec<String> = reference_values["snp_launch_measurement"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut paths = Vec::new();
    for text in resources {
        let path = ResourcePath::parse(text).map_err(|_| ExportError::Resource(text.clone()))?;
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        notes.push(
            "the recipe names no resources ([[secrets]] or kbs: volume keys): the resource policy \
             releases nothing"
                .into(),
        );
    }
    unchecked(policy, &configs, &mut notes);
    let resource_policy = resource_policy::render(&expected.recipe, &measurements, &paths);
    Ok(Export {
        reference_values,
        measurements,
        resource_policy,
        notes,
    })
}

/// The parts of snpkit's verdict Trustee's default policy leaves out.
fn unchecked(policy: &Policy, configs: &[&snpkit_bundle::ExpectedConfig], notes: &mut Vec<String>) {
    let mut missing = Vec::new();
    if configs.iter().any(|c| c.launch.host_data.is_some()) || policy.host_data.is_some() {
        missing.push("HOST_DATA");
    }
    if policy.id_key_digest.is_some() || policy.author_key_digest.is_some() {
        missing.push("the ID-block key digests");
    }
    if policy.family_id.is_some() || policy.image_id.is_some() {
        missing.push("FAMILY_ID/IMAGE_ID");
    }
    if policy.min_guest_svn != 0 {
        missing.push("the minimum guest SVN");
    }
    if policy.vmpl != 0 {
        missing.push("the VMPL");
    }
    if !matches!(
        policy.signing_key,
        snpkit_attest::policy::KeyRequirement::Any
    ) {
        missing.push("the signing key kind (VCEK/VLEK)");
    }
    if !missing.is_empty() {
        notes.push(format!(
            "Trustee's default policy does not check {}: add rules for them to your Trustee \
             attestation policy, or keep snpkit's broker for this image",
            missing.join(", ")
        ));
    }
}
