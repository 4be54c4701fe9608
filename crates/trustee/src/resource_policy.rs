//! The KBS resource policy: which resources a guest appraised by Trustee may have.
//!
//! Trustee's KBS evaluates it with the attestation token's claims as `input` and the request as
//! `data` (`data.plugin`, `data["resource-path"]`). Trustee's reference values are global to its
//! RVPS, so "affirming" alone would hand this image's secrets to any image of the fleet; the policy
//! therefore also names this image's measurements, read from the token's annotated evidence.

use serde_json::Value;
use snpkit_kbs::ResourcePath;

/// The policy text for one image: its measurements and the resources it may have.
pub(crate) fn render(recipe: &str, measurements: &[String], resources: &[ResourcePath]) -> String {
    let set = |items: &mut dyn Iterator<Item = String>| {
        let quoted: Vec<String> = items.map(|s| Value::String(s).to_string()).collect();
        if quoted.is_empty() {
            // `set()`: Rego has no literal for an empty set.
            "set()".to_owned()
        } else {
            format!("{{\n\t{},\n}}", quoted.join(",\n\t"))
        }
    };
    let measurements = set(&mut measurements.iter().cloned());
    let resources = set(&mut resources.iter().map(ToString::to_string));
    let recipe = Value::String(recipe.to_owned());
    format!(
        r#"# KBS resource policy written by `cargo xtask export trustee` for the snpkit image {recipe}.
#
# A resource is released when all of these hold:
# - it is one of this image's resources (its recipe's [[secrets]] and kbs: volume keys);
# - Trustee's attestation service appraised the guest as affirming (with the reference values
#   exported beside this file and Trustee's default CPU policy: measurement, TCB, guest policy);
# - the guest's launch measurement is one of this image's, so another image of the same fleet,
#   also affirming, does not get this image's secrets.
#
# Trustee keeps one resource policy: to serve several images, join their allow rules in one file.
package policy

import rego.v1

default allow := false

image_measurements := {measurements}

image_resources := {resources}

allow if {{
	data.plugin == "resource"
	concat("/", data["resource-path"]) in image_resources
	cpu := input.submods.cpu0
	cpu["ear.status"] == "affirming"
	cpu["ear.veraison.annotated-evidence"].snp.measurement in image_measurements
}}
"#
    )
}
