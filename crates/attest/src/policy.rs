//! What the verifier requires of a report beyond its authenticity: the verification policy.
//!
//! Written as TOML (`--policy policy.toml`); every key is optional. `crates/attest/examples/policy.toml`
//! shows every key with its meaning.
//!
//! The defaults are strict where a wrong guess is a hole and permissive where only the relying
//! party knows the answer:
//! - strict: DEBUG and a migration agent are refused, the report must come from VMPL 0, and a
//!   current CRL is required (`require_crl = true`: no CRL at hand fails `chain.crl`);
//! - permissive, so set them for your fleet: SMT is accepted, any ABI (`min_abi = "0.0"`), any guest
//!   SVN, any VCEK or VLEK, and **no minimum TCB** (`[min_tcb]` all zero: a report from firmware
//!   with known vulnerabilities passes until you raise it).
//!
//! ```toml
//! allow_debug = false            # refuse DEBUG (policy bit 19): the host could read guest memory
//! allow_migration_agent = false  # refuse a migration agent (bit 18)
//! allow_smt = true               # accept SMT allowed (bit 16)
//! require_single_socket = false  # require SINGLE_SOCKET (bit 20)
//! min_abi = "0.0"                # minimum ABI major.minor the guest policy asks for
//! vmpl = 0                       # the VMPL that must have requested the report
//! signing_key = "any"            # "vcek", "vlek" or "any"
//! require_crl = true             # false: skip revocation when no CRL is at hand (said in the verdict)
//! min_guest_svn = 0
//! # optional exact values, hex:
//! # host_data = "…64 hex…"; id_key_digest = "…96 hex…"; author_key_digest = "…96 hex…"
//! # family_id = "…32 hex…"; image_id = "…32 hex…"
//! [min_tcb]                      # minimum REPORTED_TCB per component; 0 = no minimum
//! bootloader = 0
//! tee = 0
//! snp = 0
//! microcode = 0
//! # fmc = 0                      # Turin only: set for another product, it fails tcb.minimum
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRequirement {
    Any,
    Vcek,
    Vlek,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinTcb {
    #[serde(default)]
    pub bootloader: u8,
    #[serde(default)]
    pub tee: u8,
    #[serde(default)]
    pub snp: u8,
    #[serde(default)]
    pub microcode: u8,
    /// Turin's FMC component. Other products have none, so a policy that sets it fails their
    /// `tcb.minimum` rather than being silently ignored.
    #[serde(default)]
    pub fmc: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub allow_debug: bool,
    #[serde(default)]
    pub allow_migration_agent: bool,
    #[serde(default = "yes")]
    pub allow_smt: bool,
    #[serde(default)]
    pub require_single_socket: bool,
    /// "major.minor"
    #[serde(default = "abi_zero")]
    pub min_abi: String,
    #[serde(default)]
    pub vmpl: u32,
    #[serde(default = "any_key")]
    pub signing_key: KeyRequirement,
    #[serde(default = "yes")]
    pub require_crl: bool,
    #[serde(default)]
    pub min_guest_svn: u32,
    #[serde(default)]
    pub min_tcb: MinTcb,
    pub host_data: Option<String>,
    pub id_key_digest: Option<String>,
    pub author_key_digest: Option<String>,
    pub family_id: Option<String>,
    pub image_id: Option<String>,
}

fn yes() -> bool {
    true
}
fn abi_zero() -> String {
    "0.0".into()
}
fn any_key() -> KeyRequirement {
    KeyRequirement::Any
}

impl Default for Policy {
    /// The default policy (see the module docs for what it does and does not demand).
    fn default() -> Policy {
        Policy {
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            require_single_socket: false,
            min_abi: abi_zero(),
            vmpl: 0,
            signing_key: KeyRequirement::Any,
            require_crl: true,
            min_guest_svn: 0,
            min_tcb: MinTcb::default(),
            host_data: None,
            id_key_digest: None,
            author_key_digest: None,
            family_id: None,
            image_id: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file is not valid TOML for snpkit's policy schema")]
    Toml(#[from] toml::de::Error),
    #[error("policy key {key}: {reason}")]
    Value { key: &'static str, reason: String },
}

impl Policy {
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text)?;
        policy.min_abi()?;
        for (key, value, len) in policy.hex_fields() {
            if let Some(v) = value {
                decode_hex(key, v, len)?;
            }
        }
        Ok(policy)
    }

    /// (major, minor) of `min_abi`.
    pub fn min_abi(&self) -> Result<(u8, u8), PolicyError> {
        let err = || PolicyError::Value {
            key: "min_abi",
            reason: format!("{:?} is not MAJOR.MINOR", self.min_abi),
        };
        let (major, minor) = self.min_abi.split_once('.').ok_or_else(err)?;
        Ok((
            major.parse().map_err(|_| err())?,
            minor.parse().map_err(|_| err())?,
        ))
    }

    pub(crate) fn hex_fields(&self) -> [(&'static str, Option<&String>, usize); 5] {
        [
            ("host_data", self.host_data.as_ref(), 32),
            ("id_key_digest", self.id_key_digest.as_ref(), 48),
            ("author_key_digest", self.author_key_digest.as_ref(), 48),
            ("family_id", self.family_id.as_ref(), 16),
            ("image_id", self.image_id.as_ref(), 16),
        ]
    }
}

pub(crate) fn decode_hex(
    key: &'static str,
    value: &str,
    len: usize,
) -> Result<Vec<u8>, PolicyError> {
    let bytes = hex::decode(value.trim()).map_err(|e| PolicyError::Value {
        key,
        reason: format!("not hex ({e})"),
    })?;
    if bytes.len() != len {
        return Err(PolicyError::Value {
            key,
            reason: format!("{} bytes, expected {len}", bytes.len()),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_policy_parses() {
        let text = include_str!("../examples/policy.toml");
        let p = Policy::from_toml(text).expect("example policy");
        // The example says it shows the defaults: hold it to that.
        assert_eq!(p, Policy::default());
    }

    #[test]
    fn empty_policy_is_the_default_and_requires_a_crl() {
        let p = Policy::from_toml("").expect("empty");
        assert_eq!(p, Policy::default());
        assert!(p.require_crl && !p.allow_debug && !p.allow_migration_agent && p.vmpl == 0);
        assert_eq!(p.min_tcb.fmc, None);
        let p = Policy::from_toml("require_crl = false\n[min_tcb]\nfmc = 2").expect("opt out");
        assert!(!p.require_crl);
        assert_eq!(p.min_tcb.fmc, Some(2));
    }

    #[test]
    fn bad_policies_name_the_key() {
        let e = Policy::from_toml("min_abi = \"one\"").expect_err("bad abi");
        assert!(e.to_string().contains("min_abi"), "{e}");
        let e = Policy::from_toml("host_data = \"abcd\"").expect_err("short");
        assert!(e.to_string().contains("host_data"), "{e}");
        let e = Policy::from_toml("alow_debug = true").expect_err("typo");
        assert!(format!("{e:?}").contains("alow_debug"), "{e:?}");
        assert!(Policy::from_toml("signing_key = \"ark\"").is_err());
    }
}
