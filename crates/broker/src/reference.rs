//! Reference values: the launch digests of one built image, read from its `expected.json`.
//!
//! A minimal reading of the file `cargo xtask measure` writes (`snpkit_measure::expected`, schema
//! 1): each config's name, launch policy and 48-byte measurement. Read here rather than through
//! the measure crate so the broker does not link the recipe and template stack; a test checks that
//! what the real writer writes is read back (the image-folder crate of issue 10 will own the type).

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The schema of `expected.json` this reads.
pub const EXPECTED_SCHEMA: u32 = 1;
/// Largest `expected.json` read.
pub const MAX_EXPECTED_LEN: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("cannot read the reference values {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the reference values {path} are more than {MAX_EXPECTED_LEN} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is not an expected.json (written by `cargo xtask measure <recipe>`)")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Deserialize)]
struct ExpectedFile {
    schema: u32,
    recipe: String,
    configs: Vec<ExpectedConfig>,
}

#[derive(Deserialize)]
struct ExpectedConfig {
    launch: LaunchFields,
    measurement: String,
}

/// The parts of a launch config the broker uses; the rest is the builder's business.
#[derive(Deserialize)]
struct LaunchFields {
    name: String,
    policy: u64,
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
    pub fn read(path: &Path) -> Result<ReferenceSet, ReferenceError> {
        let bytes = crate::store::read_bounded(path, MAX_EXPECTED_LEN).map_err(|e| match e {
            crate::store::BoundedRead::TooLarge => ReferenceError::TooLarge { path: path.into() },
            crate::store::BoundedRead::Io(source) => ReferenceError::Read {
                path: path.into(),
                source,
            },
        })?;
        ReferenceSet::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<ReferenceSet, ReferenceError> {
        let invalid = |reason: String| ReferenceError::Invalid {
            path: path.into(),
            reason,
        };
        let file: ExpectedFile =
            serde_json::from_slice(bytes).map_err(|source| ReferenceError::Json {
                path: path.into(),
                source,
            })?;
        if file.schema != EXPECTED_SCHEMA {
            return Err(invalid(format!(
                "schema {} is not {EXPECTED_SCHEMA}; rebuild it with this snpkit's `cargo xtask measure`",
                file.schema
            )));
        }
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
            ("{}".into(), "not an expected.json"),
        ] {
            let err = ReferenceSet::parse(Path::new("e.json"), t.as_bytes()).expect_err(&t);
            let msg = format!("{err}");
            assert!(msg.contains(needle), "{msg}");
        }
    }
}
