//! Judging a report against several launch configs: an image's `expected.json` lists one launch
//! digest per way of launching it, and a report passes when it comes from any one of them.
//!
//! The decision ([`ConfigMatch::of`]) is on MEASUREMENT and guest policy together: the guest
//! policy is not part of the launch digest, so two configs may share a digest and differ only in
//! the policy the PSP enforces, and a report matches a config only when both agree. The verdict
//! names the config matched; a report that matches none fails `measurement` naming every config.

use crate::report::Report;
use crate::verdict::Verdict;

/// One launch config a report may come from: its name (as `expected.json` and `--config` spell
/// it), its launch digest and the guest policy it launches with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceConfig {
    pub name: String,
    pub measurement: [u8; 48],
    pub launch_policy: u64,
}

/// Which of a reference's configs a report's MEASUREMENT and guest policy match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigMatch<'a> {
    /// These match in both, in the reference's order (never empty); the first is the one named.
    Matched(Vec<&'a ReferenceConfig>),
    /// These have the report's MEASUREMENT but launch with another guest policy (never empty).
    PolicyDiffers(Vec<&'a ReferenceConfig>),
    /// No config has the report's MEASUREMENT.
    None,
}

impl<'a> ConfigMatch<'a> {
    pub fn of(configs: &'a [ReferenceConfig], measurement: &[u8; 48], policy: u64) -> Self {
        let same_digest: Vec<&ReferenceConfig> = configs
            .iter()
            .filter(|c| &c.measurement == measurement)
            .collect();
        let both: Vec<&ReferenceConfig> = same_digest
            .iter()
            .copied()
            .filter(|c| c.launch_policy == policy)
            .collect();
        if !both.is_empty() {
            ConfigMatch::Matched(both)
        } else if !same_digest.is_empty() {
            ConfigMatch::PolicyDiffers(same_digest)
        } else {
            ConfigMatch::None
        }
    }

    /// The config the report came from, when one matched in both.
    pub fn matched(&self) -> Option<&'a ReferenceConfig> {
        match self {
            ConfigMatch::Matched(c) => c.first().copied(),
            _ => None,
        }
    }
}

fn names(configs: &[&ReferenceConfig]) -> String {
    configs
        .iter()
        .map(|c| format!("{:?}", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn policies(configs: &[&ReferenceConfig]) -> String {
    let mut p: Vec<u64> = configs.iter().map(|c| c.launch_policy).collect();
    p.dedup();
    p.iter()
        .map(|p| format!("{p:#x}"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `policy.launch` against the configs: the guest policy of the config matched.
pub(super) fn launch_policy(
    v: &mut Verdict,
    r: &Report,
    configs: &[ReferenceConfig],
    m: &ConfigMatch<'_>,
    source: &str,
) {
    let found = format!("{:#x}", r.policy);
    match m {
        ConfigMatch::Matched(c) => v.pass(
            "policy.launch",
            found,
            format!("the policy of launch config {:?} of {source}", c[0].name),
        ),
        ConfigMatch::PolicyDiffers(c) => v.fail(
            "policy.launch",
            policies(c),
            found,
            format!(
                "the launch config(s) of {source} with this MEASUREMENT ({}) launch with another guest policy",
                names(c)
            ),
        ),
        // No config has this digest (`measurement` fails and says so); the policy is judged
        // against what any config launches with.
        ConfigMatch::None => {
            let all: Vec<&ReferenceConfig> = configs.iter().collect();
            let with: Vec<&ReferenceConfig> = configs
                .iter()
                .filter(|c| c.launch_policy == r.policy)
                .collect();
            if with.is_empty() {
                v.fail(
                    "policy.launch",
                    policies(&all),
                    found,
                    format!("no launch config of {source} launches with this guest policy"),
                );
            } else {
                v.pass(
                    "policy.launch",
                    found,
                    format!(
                        "the policy of launch config(s) {} of {source}; no config has this MEASUREMENT",
                        names(&with)
                    ),
                );
            }
        }
    }
}

/// `measurement` against the configs; names the config matched in the verdict.
pub(super) fn measurement(
    v: &mut Verdict,
    r: &Report,
    configs: &[ReferenceConfig],
    m: &ConfigMatch<'_>,
    source: &str,
) {
    let found = hex::encode(r.measurement);
    match m {
        ConfigMatch::Matched(c) => {
            let also = if c.len() > 1 {
                format!(
                    "; so do {} (same MEASUREMENT and guest policy)",
                    names(&c[1..])
                )
            } else {
                String::new()
            };
            v.pass(
                "measurement",
                found,
                format!("launch config {:?} of {source}{also}", c[0].name),
            );
            v.config = Some(c[0].name.clone());
        }
        ConfigMatch::PolicyDiffers(c) => v.pass(
            "measurement",
            found,
            format!(
                "the digest of launch config(s) {} of {source}, whose guest policy differs (see policy.launch)",
                names(c)
            ),
        ),
        ConfigMatch::None => match configs {
            [one] => v.fail(
                "measurement",
                hex::encode(one.measurement),
                found,
                format!("{source} config {:?}", one.name),
            ),
            _ => v.fail(
                "measurement",
                format!(
                    "one of {}",
                    configs
                        .iter()
                        .map(|c| format!("{:?} {}", c.name, hex::encode(c.measurement)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                found,
                format!(
                    "matches none of the {} launch configs of {source}: {}",
                    configs.len(),
                    names(&configs.iter().collect::<Vec<_>>())
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, digest: u8, policy: u64) -> ReferenceConfig {
        ReferenceConfig {
            name: name.into(),
            measurement: [digest; 48],
            launch_policy: policy,
        }
    }

    fn names_of(m: &ConfigMatch<'_>) -> Vec<String> {
        match m {
            ConfigMatch::Matched(c) | ConfigMatch::PolicyDiffers(c) => {
                c.iter().map(|c| c.name.clone()).collect()
            }
            ConfigMatch::None => vec![],
        }
    }

    #[test]
    fn any_config_matches_and_the_first_of_equals_is_named() {
        let configs = [
            config("a", 0xA, 0x30000),
            config("b", 0xB, 0x30000),
            config("b-big", 0xB, 0x30000),
        ];
        let m = ConfigMatch::of(&configs, &[0xB; 48], 0x30000);
        assert!(matches!(m, ConfigMatch::Matched(_)), "{m:?}");
        assert_eq!(names_of(&m), ["b", "b-big"]);
        assert_eq!(m.matched().map(|c| c.name.as_str()), Some("b"));
        let m = ConfigMatch::of(&configs, &[0xA; 48], 0x30000);
        assert_eq!(m.matched().map(|c| c.name.as_str()), Some("a"));
    }

    #[test]
    fn a_digest_with_another_policy_or_no_digest_matches_nothing() {
        let configs = [config("a", 0xA, 0x30000), config("a-debug", 0xA, 0xB0000)];
        // Same digest, the debug config's policy: only that config matches.
        let m = ConfigMatch::of(&configs, &[0xA; 48], 0xB0000);
        assert_eq!(m.matched().map(|c| c.name.as_str()), Some("a-debug"));
        // Same digest, a policy no config launches with.
        let m = ConfigMatch::of(&configs, &[0xA; 48], 0x31000);
        assert!(matches!(m, ConfigMatch::PolicyDiffers(_)), "{m:?}");
        assert_eq!(names_of(&m), ["a", "a-debug"]);
        assert_eq!(m.matched(), None);
        // A digest no config has.
        assert_eq!(
            ConfigMatch::of(&configs, &[0xC; 48], 0x30000),
            ConfigMatch::None
        );
        assert_eq!(ConfigMatch::of(&[], &[0xA; 48], 0x30000), ConfigMatch::None);
    }
}
