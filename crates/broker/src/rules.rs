//! Release rules (`--rules FILE`): which attested guests may have which resources.
//!
//! Without a rules file every guest that passes verification — its measurement among the
//! reference configs, its REPORT_DATA bound to this session — may have every resource in the
//! folder: one appliance, one broker. With a rules file, resources are refused unless a rule
//! grants them (`crates/broker/examples/rules.toml` is a commented example):
//!
//! ```toml
//! # Each [[resource]] grants the resources its path names to the guests it describes.
//! [[resource]]
//! path = "default/secret-hello/token"  # <repository>/<type>/<tag>; "*" matches any one component
//! configs = ["hello-1"]                # launch configs of the reference (expected.json), by name
//!
//! [[resource]]
//! path = "default/database/*"
//! measurements = ["<96 hex digits>"]   # launch digests (each must be one of the reference's)
//!
//! # Signer rules, as `cargo xtask verify` takes them (ID block, issue 13): any image signed by
//! # this author key, of family F, with guest SVN at least 3 — no measurement pinned.
//! [[resource]]
//! path = "default/signed/*"
//! author_key = "keys/author.pub.pem"   # public key file (SPKI, PEM or DER), relative to this file
//! # author_key_digest = "<96 hex>"     # or its digest (AUTHOR_KEY_DIGEST), as keygen prints it
//! # id_key = "…" / id_key_digest = "…" # the ID key, likewise (ID_KEY_DIGEST)
//! family_id = "5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11"  # 32 hex digits or a UUID (FAMILY_ID)
//! # image_id = "…"                     # likewise (IMAGE_ID)
//! min_guest_svn = 3                    # GUEST_SVN at least this
//! ```
//!
//! A rule names guests by what they measured (`configs`, `measurements`: either one matching is
//! enough) and, or instead, by who signed them (the signer keys: every one written must hold).
//! With both, a guest needs both. With signer keys alone, the rule pins no measurement: the
//! broker appraises the report with the signer keys added to its snpkit-attest policy and no
//! expected measurement, so the measurement passes by signature exactly as `verify` passes it —
//! and only when the rule requires a non-zero author or ID key digest (the PSP launched the guest
//! because that key signed an ID block naming its MEASUREMENT). Such a guest attests even when its
//! measurement is in no reference config, and may then have only what signer rules grant it.
//!
//! Rules only grant; there is no deny, so their order does not matter. The file is checked when
//! the broker starts: unknown keys, a rule that grants to no one (family, image or SVN without a
//! key or a pinned measurement: anyone can launch with any ID block of their own), a config the
//! reference does not have, a measurement no guest could pass with, an unreadable key file and a
//! signer key the policy file contradicts are errors, not silent no-ops.

use crate::reference::ReferenceSet;
use crate::signer::{Signer, SignerText};
use serde::Deserialize;
use snpkit_attest::Policy;
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
    id_key: Option<String>,
    id_key_digest: Option<String>,
    author_key: Option<String>,
    author_key_digest: Option<String>,
    family_id: Option<String>,
    image_id: Option<String>,
    min_guest_svn: Option<u32>,
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
    signer: Option<Signer>,
}

impl Rule {
    /// Whether the rule names guests by what they measured.
    fn pins(&self) -> bool {
        !self.configs.is_empty() || !self.measurements.is_empty()
    }
}

/// What the appraisal found of one signer rule: did the report pass under the policy with that
/// rule's signer keys (`Err`: the failed checks, in one line)?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerOutcome {
    /// The rule's index in the file (0-based).
    pub rule: usize,
    pub result: Result<(), String>,
}

/// What the broker knows of an attested guest when it asks for a resource.
#[derive(Debug, Clone)]
pub struct Guest<'a> {
    pub configs: &'a [String],
    pub measurement: &'a [u8; 48],
    /// Every signer rule's outcome for this guest's report.
    pub signers: &'a [SignerOutcome],
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
    /// No matching rule grants it: why not, rule by rule (`rule 2 (path …): …`).
    Refused {
        matching_rules: usize,
        reasons: Vec<String>,
    },
}

fn hex48(text: &str) -> Option<[u8; 48]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
}

/// How rules are named in messages: as in the file's errors, counted from 1.
pub fn rule_label(index: usize, path: &str) -> String {
    format!("rule {} (path {path:?})", index + 1)
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

    /// Parses a rules file read from `path`; key files it names are read relative to its folder.
    pub fn parse(path: &Path, text: &str, reference: &ReferenceSet) -> Result<Rules, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|source| RulesError::Toml {
            path: path.into(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
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
            let signer = Signer::from_text(
                &SignerText {
                    id_key: r.id_key.as_deref(),
                    id_key_digest: r.id_key_digest.as_deref(),
                    author_key: r.author_key.as_deref(),
                    author_key_digest: r.author_key_digest.as_deref(),
                    family_id: r.family_id.as_deref(),
                    image_id: r.image_id.as_deref(),
                    min_guest_svn: r.min_guest_svn,
                },
                base,
            )
            .map_err(err)?;
            if r.configs.is_empty() && r.measurements.is_empty() {
                match &signer {
                    None => {
                        return Err(err(
                            "it grants to no one: list configs or measurements, or signer keys \
                             (author_key, id_key)"
                                .into(),
                        ));
                    }
                    Some(s) if !s.names_a_key() => {
                        return Err(err(
                            "it grants to no one: without configs or measurements a rule needs a \
                             non-zero author_key or id_key (family_id, image_id and min_guest_svn \
                             are claims any launch can make with an ID block of its own, and a zero \
                             digest is what an unsigned launch reports)"
                                .into(),
                        ));
                    }
                    Some(_) => {}
                }
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
            rules.push(Rule {
                path: [pattern(a), pattern(b), pattern(c)],
                text: r.path.clone(),
                configs: r.configs,
                measurements,
                signer,
            });
        }
        Ok(Rules {
            source: path.into(),
            rules,
        })
    }

    /// Refuses signer keys the broker's policy file contradicts (each would make a dead rule).
    pub fn check_policy(&self, policy: &Policy) -> Result<(), RulesError> {
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(reason) = rule.signer.as_ref().and_then(|s| s.conflict(policy)) {
                return Err(RulesError::Rule {
                    path: self.source.clone(),
                    index: i + 1,
                    rule_path: rule.text.clone(),
                    reason,
                });
            }
        }
        Ok(())
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

    /// The rules with signer keys: `(index, path, signer)`.
    pub fn signers(&self) -> impl Iterator<Item = (usize, &str, &Signer)> {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.signer.as_ref().map(|s| (i, r.text.as_str(), s)))
    }

    /// May this guest have this resource?
    pub fn decide(&self, resource: &ResourcePath, guest: &Guest<'_>) -> Grant {
        let mut matching = 0;
        let mut reasons = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
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
            let pinned = if rule.configs.iter().any(|c| guest.configs.contains(c)) {
                Some("config")
            } else if rule.measurements.contains(guest.measurement) {
                Some("measurement")
            } else {
                None
            };
            if rule.pins() && pinned.is_none() {
                reasons.push(format!(
                    "{}: lists neither this guest's config nor its measurement",
                    rule_label(i, &rule.text)
                ));
                continue;
            }
            let by = match (&rule.signer, pinned) {
                (None, Some(by)) => by,
                (Some(_), pinned) => {
                    let outcome = guest.signers.iter().find(|o| o.rule == i);
                    match outcome.map(|o| &o.result) {
                        Some(Ok(())) => match pinned {
                            Some("config") => "config and signer",
                            Some(_) => "measurement and signer",
                            None => "signature",
                        },
                        Some(Err(why)) => {
                            reasons.push(format!("{}: {why}", rule_label(i, &rule.text)));
                            continue;
                        }
                        None => {
                            reasons.push(format!(
                                "{}: its signer keys were not appraised for this guest",
                                rule_label(i, &rule.text)
                            ));
                            continue;
                        }
                    }
                }
                // A rule with neither pins nor signer is refused when the file is read.
                (None, None) => continue,
            };
            return Grant::Rule {
                path: rule.text.clone(),
                by,
            };
        }
        Grant::Refused {
            matching_rules: matching,
            reasons,
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

    fn refused(matching_rules: usize, reasons: &[&str]) -> Grant {
        Grant::Refused {
            matching_rules,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn rules_grant_by_config_measurement_or_signer() {
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
author_key_digest = "{key}"
min_guest_svn = 3
[[resource]]
path = "app/both/x"
configs = ["two"]
family_id = "000102030405060708090a0b0c0d0e0f"
"#
        ))
        .expect("parses");
        assert_eq!(
            rules.signers().map(|(i, p, _)| (i, p)).collect::<Vec<_>>(),
            [(2, "*/signed/*"), (3, "app/both/x")]
        );
        let one_cfg = ["one".to_string()];
        let g1 = Guest {
            configs: &one_cfg,
            measurement: &[1; 48],
            signers: &[
                SignerOutcome {
                    rule: 2,
                    result: Err("author_key_digest: expected 09…, found 00…".into()),
                },
                SignerOutcome {
                    rule: 3,
                    result: Ok(()),
                },
            ],
        };
        let two_cfg = ["two".to_string()];
        let g2 = Guest {
            configs: &two_cfg,
            measurement: &[2; 48],
            signers: &[
                SignerOutcome {
                    rule: 2,
                    result: Ok(()),
                },
                SignerOutcome {
                    rule: 3,
                    result: Err("family_id: expected 0001…, found 00…".into()),
                },
            ],
        };
        // By signature alone: in no config, its measurement in no rule.
        let signed = Guest {
            configs: &[],
            measurement: &[7; 48],
            signers: g2.signers,
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
            refused(
                1,
                &[
                    "rule 1 (path \"app/token/a\"): lists neither this guest's config nor its measurement"
                ]
            )
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
            refused(
                1,
                &[
                    "rule 2 (path \"app/db/*\"): lists neither this guest's config nor its measurement"
                ]
            )
        );
        for g in [&g2, &signed] {
            assert_eq!(
                rules.decide(&res("x/signed/y"), g),
                Grant::Rule {
                    path: "*/signed/*".into(),
                    by: "signature"
                }
            );
        }
        assert_eq!(
            rules.decide(&res("x/signed/y"), &g1),
            refused(
                1,
                &["rule 3 (path \"*/signed/*\"): author_key_digest: expected 09…, found 00…"]
            )
        );
        // Config and signer: both must hold.
        assert!(matches!(
            rules.decide(&res("app/both/x"), &g2),
            Grant::Refused { ref reasons, .. } if reasons[0].contains("family_id")
        ));
        assert!(matches!(
            rules.decide(&res("app/both/x"), &g1),
            Grant::Refused { ref reasons, .. } if reasons[0].contains("lists neither")
        ));
        let g2_family = Guest {
            signers: &[SignerOutcome {
                rule: 3,
                result: Ok(()),
            }],
            ..g2.clone()
        };
        assert_eq!(
            rules.decide(&res("app/both/x"), &g2_family),
            Grant::Rule {
                path: "app/both/x".into(),
                by: "config and signer"
            }
        );
        assert_eq!(rules.decide(&res("other/x/y"), &g1), refused(0, &[]));
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
                "[[resource]]\npath = \"a/b/c\"\nauthor_key_digest = \"zz\"",
                "96 hex",
            ),
            (
                "[[resource]]\npath = \"a/b/c\"\nfamily_id = \"000102030405060708090a0b0c0d0e0f\"\nmin_guest_svn = 3",
                "needs a non-zero author_key or id_key",
            ),
            (
                &format!(
                    "[[resource]]\npath = \"a/b/c\"\nid_key_digest = \"{}\"",
                    "00".repeat(48)
                ),
                "needs a non-zero author_key or id_key",
            ),
            (
                "[[resource]]\npath = \"a/b/c\"\nauthor_key = \"no-such.pub.pem\"",
                "no-such.pub.pem",
            ),
            (
                "[[resource]]\npath = \"a/b/c\"\nauthor_keys = [\"ab\"]",
                "unknown field",
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
        assert_eq!(rules.len(), 4);
        // Its author key file is read beside it, and its digest is the one the PSP would report.
        let key = snpkit_idblock::keyfile::read_public_key(&path.with_file_name("author.pub.pem"))
            .expect("the example's key");
        let signers: Vec<_> = rules.signers().collect();
        assert_eq!(signers.len(), 2);
        assert_eq!(signers[0].2.author_key_digest, Some(key.digest()));
        assert_eq!(signers[0].2.min_guest_svn, Some(3));
    }
}
