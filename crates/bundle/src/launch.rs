//! [`LaunchSpec`]: one way to launch an image, as recipes, `manifest.json` and `expected.json`
//! write it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The most vCPUs a launch configuration may have, wherever it is given (a recipe's `[[launch]]`,
/// `measure --vcpus`): QEMU's limit for the q35 machine snpkit launches (4096 since QEMU 9.0,
/// which needs KVM built with 4096 vCPUs, `CONFIG_KVM_MAX_NR_VCPUS`/`MAXSMP`, and an edk2 from
/// 2024-05 or later to boot them). SEV-SNP sets none of its own: each vCPU adds one VMSA page to
/// the launch digest. A host that allows fewer refuses the launch with QEMU's own message. Here,
/// beside [`LaunchSpec`], so that the recipe's check and the measurement's share one limit
/// without either depending on the other.
pub const MAX_VCPUS: u32 = 4096;

/// One way to launch an image, written down: a recipe's `[[launch]]` table, copied verbatim into
/// `manifest.json` and into every config of `expected.json`.
///
/// Named *spec* and not *config* on purpose: it is plain data (strings and integers, as a person
/// wrote them), while `snpkit_measure::LaunchConfig` is the checked, typed configuration a launch
/// digest is computed from (`snpkit_measure::launch_config_from` turns one into the other). The
/// typed one keeps the shorter name because the measurement code, its tests and its fuzz target
/// use it everywhere; this one lives where it is stored, so a verifier can read `expected.json`
/// without the measurement or the recipe format.
///
/// The CPU model, VMM and guest features are checked by the measurement before a build or lock
/// starts, so this crate does not track those lists (and cannot drift from them). There is
/// deliberately no `Default`: every field changes the launch digest or the guest's security, and
/// none has an answer that is right for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
    /// Name used on the command line (`--config NAME`) and in expected.json.
    pub name: String,
    /// Number of vCPUs; one VMSA per vCPU is measured.
    pub vcpus: u32,
    /// QEMU CPU model (`EPYC-v4`, `EPYC-Milan`, …) whose CPUID signature goes into the VMSAs.
    pub vcpu_type: String,
    /// The VMM that launches the guest (`qemu`, `ec2`, `gce`, …: they build different VMSAs).
    pub vmm: String,
    /// SEV_FEATURES written into every VMSA (e.g. 0x1 = SNP active; QEMU ≥ 9.1 with KVM's
    /// newer init path uses other values).
    pub guest_features: u64,
    /// The SNP guest policy (e.g. 0x30000: SMT allowed, reserved bit 17 set, no debug).
    pub policy: u64,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// HOST_DATA for this launch: 32 bytes of the launcher's own (a configuration digest, say)
    /// that the PSP reports as-is. Not measured: it changes no launch digest, so it belongs to
    /// the launch (as `memory_mib` does) and not to the prediction; here so that `boot` launches
    /// with it and a verifier reading `expected.json` knows what this config's reports carry.
    /// Absent from the JSON when unset, so configs without it read and hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_data: Option<HostData>,
}

/// HOST_DATA: the 32 bytes a launcher gives SNP_LAUNCH_START (QEMU's `host-data`) and every
/// report carries at 0xC0, unmeasured and unchecked by the PSP: a verifier that cares compares
/// it. Written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostData(pub [u8; 32]);

impl HostData {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for HostData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for HostData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostData({self})")
    }
}

/// Why a string is not HOST_DATA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "host_data is 32 bytes written as 64 hex digits, found {found:?} ({why}); e.g. the SHA-256 of your configuration: `sha256sum FILE`"
)]
pub struct BadHostData {
    pub found: String,
    pub why: &'static str,
}

impl FromStr for HostData {
    type Err = BadHostData;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| BadHostData {
            // A hostile value may be long: quote enough to recognise it.
            found: s.chars().take(80).collect(),
            why,
        };
        if s.len() != 64 {
            return Err(bad("not 64 characters"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad("not hex"))?;
        Ok(HostData(out))
    }
}

impl Serialize for HostData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for HostData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a check found wrong with one field of a [`LaunchSpec`]: the measurement's reading of
/// CPU model, VMM and guest features, which the recipe crate reports against `recipe.toml`.
/// Here, beside the spec, so that neither the measurement nor the recipe depends on the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchProblem {
    /// The key inside `[[launch]]`, e.g. `vcpu_type` (empty: the configuration as a whole).
    pub field: &'static str,
    pub problem: String,
    pub fix: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_data_is_64_hex_digits_and_absent_when_unset() {
        let h: HostData = "Ab".repeat(32).parse().unwrap();
        assert_eq!(h.0, [0xab; 32]);
        assert_eq!(h.to_string(), "ab".repeat(32));
        for bad in [
            "",
            "ab",
            &"ab".repeat(33),
            &"zz".repeat(32),
            &"é".repeat(32),
        ] {
            let err = bad.parse::<HostData>().unwrap_err();
            assert!(err.to_string().contains("64 hex digits"), "{err}");
        }
        let mut spec = crate::launch_spec_example("c");
        let plain = serde_json::to_string(&spec).unwrap();
        assert!(!plain.contains("host_data"), "{plain}");
        spec.host_data = Some(h);
        let with = serde_json::to_string(&spec).unwrap();
        assert!(with.contains(&format!("\"host_data\":\"{}\"", "ab".repeat(32))));
        assert_eq!(serde_json::from_str::<LaunchSpec>(&with).unwrap(), spec);
    }
}
