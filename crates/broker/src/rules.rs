//! Release rules (`--rules FILE`): which attested guests may have which resources.
//!
//! Without a rules file every guest that passes verification — its measurement among the
//! reference configs, its REPORT_DATA bound to this session — may have every resource in the
//! folder: one appliance, one broker. With a rules file, resources are refused unless a rule
//! grants them:
//!
//! ```toml
//! # Each [[resource]] grants the resources its path names to the guests it lists.
//! [[resource]]
//! path = "default/secret-hello/token"  # <repository>/<type>/<tag>; "*" matches any one component
//! configs = ["hello-1"]                # launch configs of the reference (expected.json), by name
//!
//! [[resource]]
//! path = "default/database/*"
//! measurements = ["<96 hex digits>"]   # launch digests (each must be one of the reference's)
//! author_keys = ["<96 hex digits>"]    # SHA-384 of an ID-block author key (AUTHOR_KEY_DIGEST)
//! ```
//!
//! A guest may have a resource when any rule whose path matches lists its config, its
//! measurement, or (with AUTHOR_KEY_EN set in its report) its author key digest. Rules only grant;
//! there is no deny, so their order does not matter. The file is checked when the broker starts:
//! unknown keys, a rule that grants to no one, a config the reference does not have and a
//! measurement no guest could pass with are errors, not silent no-ops.
//!
//! Author keys: today they narrow among the reference measurements (verification still demands
//! one); the ID-block work (issue 13) may let an author key stand for measurements it signed.

use crate::reference::ReferenceSet;
use serde::Deserialize;
use snpkit_kbs::ResourcePath;
use std::path::{Path, PathBuf};

/// Largest rules file read.
pub const MAX_RULES_LEN: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read the rules file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the rules file {path} is more than {MAX_RULES_LEN} bytes")]
    TooLarge { path: PathBuf },
    #[error("the rules file {path} is not valid")]
    Toml {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("the rules file {path}, rule {index} (path {rule_path:?}): {reason}")]
    Rule {
        path: PathBuf,
        index: usize,
        rule_path: String,
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    resource: Vec<RuleText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    path: String,
    #[serde(default)]
    configs: Vec<String>,
    #[serde(default)]
    measurements: Vec<String>,
    #[serde(default)]
    author_keys: Vec<String>,
}

/// One component of a rule's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone)]
pub struct Rule {
    path: [Pattern; 3],
    text: String,
    configs: Vec<String>,
    measurements: Vec<[u8; 48]>,
    author_keys: Vec<[u8; 48]>,
}

/// What the broker knows of an attested guest when it asks for a resource.
#[derive(Debug, Clone)]
pub struct Guest<'a> {
    pub configs: &'a [String],
    pub measurement: &'a [u8; 48],
    /// The report's AUTHOR_KEY_DIGEST when its AUTHOR_KEY_EN bit is set.
    pub author_key: Option<&'a [u8; 48]>,
}

#[derive(Debug, Clone)]
pub struct Rules {
    source: PathBuf,
    rules: Vec<Rule>,
}

/// Why a resource was released or refused, for the audit line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// No rules file: every verified guest.
    NoRules,
    /// Granted by the rule with this path, through this criterion.
    Rule { path: String, by: &'static str },
    /// No matching rule names the guest.
    Refused { matching_rules: usize },
}

fn hex48(text: &str) -> Option<[u8; 48]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
}

impl Rules {
    pub fn read(path: &Path, reference: &ReferenceSet) -> Result<Rules, RulesError> {
        let bytes = crate::store::read_bounded(path, MAX_RULES_LEN).map_err(|e| match e {
            crate::store::BoundedRead::TooLarge => RulesError::TooLarge { path: path.into() },
            crate::store::BoundedRead::Io(source) => RulesError::Read {
                path: path.into(),
                source,
            },
        })?;
        let text = String::from_utf8_lossy(&bytes);
        Rules::parse(path, &text, reference)
    }

    pub fn parse(path: &Path, text: &str, reference: &ReferenceSet) -> Result<Rules, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|source| RulesError::Toml {
            path: path.into(),
            source,
        })?;
        let mut rules = Vec::with_capacity(file.resource.len());
        for (i, r) in file.resource.into_iter().enumerate() {
            let err = |reason: String| RulesError::Rule {
                path: path.into(),
                index: i + 1,
                rule_path: r.path.clone(),
                reason,
            };
            let parts: Vec<&str> = r.path.split('/').collect();
            let [a, b, c] = parts.as_slice() else {
                return Err(err("a path is <repository>/<type>/<tag>".into()));
            };
            // Check the literal components as a resource name would be checked ("*" stands in).
            let probe = |p: &str| {
                if p == "*" {
                    "x".to_owned()
                } else {
                    p.to_owned()
                }
            };
            ResourcePath::new(&probe(a), &probe(b), &probe(c)).map_err(|e| err(e.to_string()))?;
            let pattern = |p: &str| {
                if p == "*" {
                    Pattern::Any
                } else {
                    Pattern::Exact(p.into())
                }
            };
            if r.configs.is_empty() && r.measurements.is_empty() && r.author_keys.is_empty() {
                return Err(err(
                    "it grants to no one: list configs, measurements or author_keys".into(),
                ));
            }
            for name in &r.configs {
                if reference.by_name(name).is_none() {
                    return Err(err(format!(
                        "config {name:?} is not in the reference {} (it has: {})",
                        reference.source.display(),
                        reference.names()
                    )));
                }
            }
            let mut measurements = Vec::new();
            for m in &r.measurements {
                let d = hex48(m)
                    .ok_or_else(|| err(format!("measurement {m:?} is not 96 hex digits")))?;
                if !reference.configs.iter().any(|c| c.measurement == d) {
                    return Err(err(format!(
                        "measurement {m} is not in the reference {}: no guest with it could pass verification",
                        reference.source.display()
                    )));
                }
                measurements.push(d);
            }
            let author_keys = r
                .author_keys
                .iter()
                .map(|k| {
                    hex48(k).ok_or_else(|| err(format!("author key {k:?} is not 96 hex digits")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                path: [pattern(a), pattern(b), pattern(c)],
                text: r.path.clone(),
                configs: r.configs,
                measurements,
                author_keys,
            });
        }
        Ok(Rules {
            source: path.into(),
            rules,
        })
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// May this guest have this resource?
    pub fn decide(&self, resource: &ResourcePath, guest: &Guest<'_>) -> Grant {
        let mut matching = 0;
        for rule in &self.rules {
            let hit = rule
                .path
                .iter()
                .zip(resource.components())
                .all(|(p, c)| match p {
                    Pattern::Any => true,
                    Pattern::Exact(e) => e == c,
                });
            if !hit {
                continue;
            }
            matching += 1;
            let by = if rule.configs.iter().any(|c| guest.configs.contains(c)) {
                Some("config")
            } else if rule.measurements.contains(guest.measurement) {
                Some("measurement")
            } else if guest
                .author_key
                .is_some_and(|k| rule.author_keys.contains(k))
            {
                Some("author key")
            } else {
                None
            };
            if let Some(by) = by {
                return Grant::Rule {
                    path: rule.text.clone(),
                    by,
                };
            }
        }
        Grant::Refused {
            matching_rules: matching,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ReferenceConfig;

    fn reference() -> ReferenceSet {
        ReferenceSet {
            source: "expected.json".into(),
            recipe: "r".into(),
            configs: vec![
                ReferenceConfig {
                    name: "one".into(),
                    measurement: [1; 48],
                    policy: 0x30000,
                },
                ReferenceConfig {
                    name: "two".into(),
                    measurement: [2; 48],
                    policy: 0x30000,
                },
            ],
        }
    }

    fn parse(text: &str) -> Result<Rules, String> {
        Rules::parse(Path::new("rules.toml"), text, &reference()).map_err(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(c) = src {
                s.push_str(&format!(": {c}"));
                src = c.source();
            }
            s
        })
    }

    fn res(p: &str) -> ResourcePath {
        ResourcePath::parse(p).expect("valid")
    }

    #[test]
    fn rules_grant_by_config_measurement_or_author_key() {
        let two = hex::encode([2u8; 48]);
        let key = hex::encode([9u8; 48]);
        let rules = parse(&format!(
            r#"
[[resource]]
path = "app/token/a"
configs = ["one"]
[[resource]]
path = "app/db/*"
measurements = ["{two}"]
[[resource]]
path = "*/signed/*"
author_keys = ["{key}"]
"#
        ))
        .expect("parses");
        let one_cfg = ["one".to_string()];
        let g1 = Guest {
            configs: &one_cfg,
            measurement: &[1; 48],
            author_key: None,
        };
        let two_cfg = ["two".to_string()];
        let g2 = Guest {
            configs: &two_cfg,
            measurement: &[2; 48],
            author_key: Some(&[9; 48]),
        };
        assert_eq!(
            rules.decide(&res("app/token/a"), &g1),
            Grant::Rule {
                path: "app/token/a".into(),
                by: "config"
            }
        );
        assert_eq!(
            rules.decide(&res("app/token/a"), &g2),
            Grant::Refused { matching_rules: 1 }
        );
        assert_eq!(
            rules.decide(&res("app/db/pw"), &g2),
            Grant::Rule {
                path: "app/db/*".into(),
                by: "measurement"
            }
        );
        assert_eq!(
            rules.decide(&res("app/db/pw"), &g1),
            Grant::Refused { matching_rules: 1 }
        );
        assert_eq!(
            rules.decide(&res("x/signed/y"), &g2),
            Grant::Rule {
                path: "*/signed/*".into(),
                by: "author key"
            }
        );
        assert_eq!(
            rules.decide(&res("x/signed/y"), &g1),
            Grant::Refused { matching_rules: 1 }
        );
        assert_eq!(
            rules.decide(&res("other/x/y"), &g1),
            Grant::Refused { matching_rules: 0 }
        );
    }

    #[test]
    fn mistakes_in_the_file_are_errors_naming_the_rule() {
        let bad = hex::encode([7u8; 48]);
        for (text, needle) in [
            (
                "[[resource]]\npath = \"a/b\"\nconfigs = [\"one\"]",
                "<repository>/<type>/<tag>",
            ),
            (
                "[[resource]]\npath = \"a/../c\"\nconfigs = [\"one\"]",
                "\"..\"",
            ),
            ("[[resource]]\npath = \"a/b/c\"", "grants to no one"),
            (
                "[[resource]]\npath = \"a/b/c\"\nconfigs = [\"three\"]",
                "it has: one, two",
            ),
            (
                &format!("[[resource]]\npath = \"a/b/c\"\nmeasurements = [\"{bad}\"]"),
                "could pass",
            ),
            (
                "[[resource]]\npath = \"a/b/c\"\nmeasurements = [\"ab\"]",
                "96 hex",
            ),
            (
                "[[resource]]\npath = \"a/b/c\"\nauthor_keys = [\"zz\"]",
                "96 hex",
            ),
            (
                "[[resource]]\npath = \"a/b/c\"\nconfig = [\"one\"]",
                "unknown field",
            ),
            ("[[resources]]\npath = \"a/b/c\"", "unknown field"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(parse("").expect("an empty file grants nothing").is_empty());
    }
}

#[cfg(test)]
mod example {
    use super::*;
    use crate::reference::ReferenceConfig;

    /// The documented example (`crates/broker/examples/rules.toml`) parses against a reference
    /// that has its config and measurement.
    #[test]
    fn the_example_rules_file_is_valid() {
        let reference = ReferenceSet {
            source: "expected.json".into(),
            recipe: "secret-hello".into(),
            configs: vec![ReferenceConfig {
                name: "hello-1".into(),
                measurement: [0x11; 48],
                policy: 0x30000,
            }],
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rules.toml");
        let rules = Rules::read(&path, &reference).expect("the example parses");
        assert_eq!(rules.len(), 3);
    }
}
