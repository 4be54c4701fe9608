//! The archive index the machine's apt has: one stanza per package, the version apt would
//! install (its candidate), as `apt-cache dumpavail` prints them. Dependencies are resolved
//! against this index, so they come from the same pinned index, and by the same choice, as the
//! recipe's own packages.

use crate::process::run;
use crate::{InputError, debian::version::compare};
use snpkit_bundle::Sha256Sum;
use std::collections::BTreeMap;
use std::process::Command;

/// Architectures a package of the index may have: the guest's, and `all`.
const ARCHES: &[&str] = &["amd64", "all"];

/// One binary package as the index describes it. Relationship fields are kept as text and
/// parsed when the resolver meets the package, so one odd stanza among sixty thousand cannot
/// stop every lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub name: String,
    pub version: String,
    pub depends: String,
    pub pre_depends: String,
    pub provides: String,
    pub filename: String,
    pub sha256: Option<Sha256Sum>,
    pub size: Option<u64>,
}

/// The packages of an index by name, and who provides each virtual name.
#[derive(Debug, Default)]
pub struct Index {
    packages: BTreeMap<String, Stanza>,
    /// Virtual name → (provider, version provided if any), providers in name order.
    providers: BTreeMap<String, Vec<(String, Option<String>)>>,
}

impl Index {
    /// The index of the machine's apt (`apt-cache dumpavail`: every package's candidate).
    pub fn from_apt() -> Result<Index, InputError> {
        let out = run(
            Command::new("apt-cache").arg("dumpavail"),
            "apt",
            "resolve Debian package dependencies",
        )?;
        if !out.status.success() {
            return Err(InputError::CommandFailed {
                command: "apt-cache dumpavail".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(Index::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Reads `Packages`-format text. Where a name comes twice (raw `Packages` files list every
    /// version), the highest version is kept, as apt's candidate would be.
    pub fn parse(text: &str) -> Index {
        let mut index = Index::default();
        for block in text.split("\n\n") {
            let Some(s) = stanza(block) else { continue };
            match index.packages.get(&s.name) {
                Some(old) if compare(&old.version, &s.version).is_ge() => {}
                _ => {
                    index.packages.insert(s.name.clone(), s);
                }
            }
        }
        for s in index.packages.values() {
            // A Provides field that does not parse provides nothing; the resolver names the
            // package if it is ever needed for itself.
            for group in super::relation::parse(&s.provides).unwrap_or_default() {
                for p in group {
                    index
                        .providers
                        .entry(p.name)
                        .or_default()
                        .push((s.name.clone(), p.constraint.map(|(_, v)| v)));
                }
            }
        }
        index
    }

    pub fn get(&self, name: &str) -> Option<&Stanza> {
        self.packages.get(name)
    }

    /// Packages providing `name`, with the version each provides (if it says one).
    pub fn providers(&self, name: &str) -> &[(String, Option<String>)] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }
}

fn stanza(block: &str) -> Option<Stanza> {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    let mut last: Option<&str> = None;
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous field.
            if let Some(v) = last.and_then(|k| fields.get_mut(k)) {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            last = None;
            continue;
        };
        let key = key.trim();
        last = match key {
            "Package" | "Version" | "Architecture" | "Depends" | "Pre-Depends" | "Provides"
            | "Filename" | "SHA256" | "Size" => {
                fields.insert(key, value.trim().to_owned());
                Some(key)
            }
            _ => None,
        };
    }
    let arch = fields.get("Architecture")?;
    if !ARCHES.contains(&arch.as_str()) {
        return None;
    }
    let mut take = |k: &str| fields.remove(k).unwrap_or_default();
    Some(Stanza {
        name: take("Package"),
        version: take("Version"),
        depends: take("Depends"),
        pre_depends: take("Pre-Depends"),
        provides: take("Provides"),
        filename: take("Filename"),
        sha256: take("SHA256").parse().ok(),
        size: take("Size").parse().ok(),
    })
    .filter(|s| !s.name.is_empty() && !s.version.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_version_and_the_guests_architectures() {
        let text = "Package: a\nVersion: 1.0\nArchitecture: amd64\nDepends: b,\n c\n\n\
                    Package: a\nVersion: 1.0+deb12u1\nArchitecture: amd64\nDepends: b\n\n\
                    Package: a\nVersion: 0.9\nArchitecture: amd64\n\n\
                    Package: d\nVersion: 1\nArchitecture: arm64\n\n\
                    Package: e\nVersion: 1\nArchitecture: all\nProvides: v (= 2), w\nDescription: x\n y: z\n";
        let index = Index::parse(text);
        assert_eq!(
            index.get("a").map(|s| s.version.as_str()),
            Some("1.0+deb12u1")
        );
        assert!(index.get("d").is_none(), "another architecture");
        assert_eq!(
            index.providers("v"),
            &[("e".to_owned(), Some("2".to_owned()))]
        );
        assert_eq!(index.providers("w"), &[("e".to_owned(), None)]);
        assert_eq!(index.len(), 2);
        // A folded field is one value.
        let folded = Index::parse("Package: a\nVersion: 1\nArchitecture: all\nDepends: b,\n c\n");
        assert_eq!(folded.get("a").map(|s| s.depends.as_str()), Some("b, c"));
    }
}
