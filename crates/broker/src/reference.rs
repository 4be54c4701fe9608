//! Reference values: the launch digests of one built image, read from its `expected.json`
//! through the image folder's owner (`snpkit_bundle::Expected`, a bounded read that refuses other
//! schemas), then checked for what a broker needs: at least one config, 96 hex digits each, no
//! name twice.

use snpkit_bundle::{BundleError, Expected};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("cannot use the reference values (written by `cargo xtask build` or `measure`)")]
    Read(#[source] BundleError),
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// One launch configuration the broker accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceConfig {
    pub name: String,
    pub measurement: [u8; 48],
    pub policy: u64,
}

/// Every launch configuration of one image.
#[derive(Debug, Clone)]
pub struct ReferenceSet {
    pub source: PathBuf,
    pub recipe: String,
    pub configs: Vec<ReferenceConfig>,
}

impl ReferenceSet {
    /// Reads `expected.json` at `path` (a file or a pipe, bounded by counting).
    pub fn read(path: &Path) -> Result<ReferenceSet, ReferenceError> {
        let expected = Expected::read_given(path).map_err(ReferenceError::Read)?;
        ReferenceSet::from_expected(path, expected)
    }

    /// Parses the bytes of an `expected.json` read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<ReferenceSet, ReferenceError> {
        let expected = Expected::from_json(path, bytes).map_err(ReferenceError::Read)?;
        ReferenceSet::from_expected(path, expected)
    }

    pub fn from_expected(path: &Path, file: Expected) -> Result<ReferenceSet, ReferenceError> {
        let invalid = |reason: String| ReferenceError::Invalid {
            path: path.into(),
            reason,
        };
        if file.configs.is_empty() {
            return Err(invalid(
                "it lists no launch configs: no guest could ever pass".into(),
            ));
        }
        let mut configs: Vec<ReferenceConfig> = Vec::with_capacity(file.configs.len());
        for c in file.configs {
            let name = c.launch.name;
            let digest = hex::decode(c.measurement.trim())
                .ok()
                .and_then(|d| <[u8; 48]>::try_from(d).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "config {name:?}: the measurement is not 96 hex digits"
                    ))
                })?;
            if configs.iter().any(|o| o.name == name) {
                return Err(invalid(format!("config {name:?} appears twice")));
            }
            configs.push(ReferenceConfig {
                name,
                measurement: digest,
                policy: c.launch.policy,
            });
        }
        Ok(ReferenceSet {
            source: path.into(),
            recipe: file.recipe,
            configs,
        })
    }

    /// The configs a report with this measurement and launch policy could come from.
    pub fn matching(&self, measurement: &[u8; 48], policy: u64) -> Vec<&ReferenceConfig> {
        self.configs
            .iter()
            .filter(|c| &c.measurement == measurement && c.policy == policy)
            .collect()
    }

    pub fn by_name(&self, name: &str) -> Option<&ReferenceConfig> {
        self.configs.iter().find(|c| c.name == name)
    }

    pub fn names(&self) -> String {
        self.configs
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(configs: &str) -> String {
        format!(r#"{{"schema":1,"recipe":"hello","inputs":[],"configs":[{configs}]}}"#)
    }

    fn config(name: &str, m: &str) -> String {
        format!(
            r#"{{"launch":{{"name":"{name}","vcpus":1,"vcpu_type":"EPYC-v4","vmm":"qemu","guest_features":1,"policy":196608,"memory_mib":512}},"measurement":"{m}"}}"#
        )
    }

    #[test]
    fn configs_are_read_with_their_policy() {
        let m = "ab".repeat(48);
        let set = ReferenceSet::parse(Path::new("e.json"), text(&config("one", &m)).as_bytes())
            .expect("parses");
        assert_eq!(set.recipe, "hello");
        assert_eq!(set.configs[0].policy, 0x30000);
        assert_eq!(set.matching(&[0xAB; 48], 0x30000).len(), 1);
        assert!(set.matching(&[0xAB; 48], 0x30001).is_empty());
    }

    #[test]
    fn unusable_files_are_refused_with_the_reason() {
        let m = "ab".repeat(48);
        for (t, needle) in [
            (text(""), "no launch configs"),
            (text(&config("one", "abc")), "96 hex"),
            (
                text(&format!("{},{}", config("a", &m), config("a", &m))),
                "twice",
            ),
            (
                text(&config("one", &m)).replace("\"schema\":1", "\"schema\":2"),
                "schema 2",
            ),
            ("{}".into(), "expected.json"),
        ] {
            let err = ReferenceSet::parse(Path::new("e.json"), t.as_bytes()).expect_err(&t);
            let msg = snpkit_testkit::errors::chain_text(&err);
            assert!(msg.contains(needle), "{msg}");
        }
    }
}
