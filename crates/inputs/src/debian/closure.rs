//! A recipe's packages and the closure of their `Pre-Depends` and `Depends`, as apt would
//! install them from the same index: in each group the first alternative that can be satisfied,
//! a version constraint judged by Debian's order, a virtual name satisfied by a package that
//! `Provides` it. Nothing else of apt's judgement applies: `Recommends` are not followed,
//! `Conflicts` and `Breaks` are not checked (an image holds files, nothing is configured), and
//! every name has one version (the recipe's pin, else the index's candidate).

use super::index::{Index, Stanza};
use super::relation::{self, Group, Relation};
use crate::InputError;
use snpkit_recipe::LockedDeb;
use std::collections::{BTreeMap, VecDeque};

/// A package the recipe names, as the lock resolved it.
#[derive(Debug, Clone)]
pub struct Root<'a> {
    /// The recipe key, `packages[i]`, for messages.
    pub key: String,
    pub deb: &'a LockedDeb,
    /// Its own `Pre-Depends`, `Depends` and `Provides` (of the pinned version, which may not be
    /// the index's candidate).
    pub pre_depends: &'a str,
    pub depends: &'a str,
    pub provides: &'a str,
    /// Names its closure must not pull in.
    pub exclude: &'a [String],
    /// `false` for a package that needs nothing (a static binary).
    pub dependencies: bool,
}

/// A package pulled in for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub deb: LockedDeb,
    /// The entry's package whose closure reached it first.
    pub pulled_by: String,
    /// The way there: entry package first, this package last.
    pub chain: Vec<String>,
}

struct Chosen {
    version: String,
    provides: Vec<Relation>,
}

/// The packages the roots pull in, in the order they were reached (breadth first, each root in
/// the recipe's order, each group in the field's order); the roots themselves are not repeated.
pub fn closure(index: &Index, roots: &[Root<'_>]) -> Result<Vec<Pulled>, InputError> {
    let mut chosen: BTreeMap<String, Chosen> = BTreeMap::new();
    for r in roots {
        chosen.insert(
            r.deb.name.clone(),
            Chosen {
                version: r.deb.version.clone(),
                provides: provides(r.provides),
            },
        );
    }
    let mut out = Vec::new();
    for root in roots.iter().filter(|r| r.dependencies) {
        let mut queue: VecDeque<(Vec<String>, String, String)> = VecDeque::new();
        queue.push_back((
            vec![root.deb.name.clone()],
            root.pre_depends.to_owned(),
            root.depends.to_owned(),
        ));
        while let Some((chain, pre_depends, depends)) = queue.pop_front() {
            let groups = groups(root, &chain, &pre_depends, &depends)?;
            for group in groups {
                let alts: Vec<&Relation> = group
                    .iter()
                    .filter(|r| !root.exclude.contains(&r.name))
                    .collect();
                if alts.is_empty() || alts.iter().any(|r| satisfied(&chosen, r)) {
                    continue;
                }
                let Some(stanza) = alts
                    .iter()
                    .find_map(|r| candidate(index, &chosen, root.exclude, r))
                else {
                    return Err(unsatisfied(index, &chosen, root, &chain, &group));
                };
                let mut next = chain.clone();
                next.push(stanza.name.clone());
                let deb = locked(stanza).ok_or_else(|| InputError::Dependency {
                    key: root.key.clone(),
                    chain: next.join(" → "),
                    problem: "its index entry has no Filename, SHA256 or Size".into(),
                    fix: "run `apt-get update` (as root) and lock again".into(),
                })?;
                chosen.insert(
                    stanza.name.clone(),
                    Chosen {
                        version: stanza.version.clone(),
                        provides: provides(&stanza.provides),
                    },
                );
                out.push(Pulled {
                    deb,
                    pulled_by: root.deb.name.clone(),
                    chain: next.clone(),
                });
                queue.push_back((next, stanza.pre_depends.clone(), stanza.depends.clone()));
            }
        }
    }
    Ok(out)
}

fn provides(field: &str) -> Vec<Relation> {
    relation::parse(field)
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn groups(
    root: &Root<'_>,
    chain: &[String],
    pre_depends: &str,
    depends: &str,
) -> Result<Vec<Group>, InputError> {
    let mut all = Vec::new();
    for (field, text) in [("Pre-Depends", pre_depends), ("Depends", depends)] {
        all.extend(relation::parse(text).map_err(|e| InputError::Dependency {
            key: root.key.clone(),
            chain: chain.join(" → "),
            problem: format!("its {field} field: {e}"),
            fix: format!(
                "exclude the package with {}.exclude, or set {}.dependencies = false and list what it needs",
                root.key, root.key
            ),
        })?);
    }
    Ok(all)
}

/// Whether a package already in the image satisfies `r`: by name and version, or by providing
/// the name (with the version asked for, if one is).
fn satisfied(chosen: &BTreeMap<String, Chosen>, r: &Relation) -> bool {
    if chosen.get(&r.name).is_some_and(|c| r.accepts(&c.version)) {
        return true;
    }
    chosen.values().any(|c| {
        c.provides.iter().any(|p| {
            p.name == r.name
                && match (&r.constraint, &p.constraint) {
                    (None, _) => true,
                    (Some(_), Some((_, v))) => r.accepts(v),
                    (Some(_), None) => false,
                }
        })
    })
}

/// The index's package that can satisfy `r` and is not in the image under another version:
/// the real package of that name, else the first provider by name.
fn candidate<'i>(
    index: &'i Index,
    chosen: &BTreeMap<String, Chosen>,
    exclude: &[String],
    r: &Relation,
) -> Option<&'i Stanza> {
    let free = |name: &str| !chosen.contains_key(name) && !exclude.iter().any(|e| e == name);
    if let Some(s) = index.get(&r.name)
        && free(&s.name)
        && r.accepts(&s.version)
    {
        return Some(s);
    }
    index
        .providers(&r.name)
        .iter()
        .filter(|(p, v)| {
            free(p) && (r.constraint.is_none() || v.as_deref().is_some_and(|v| r.accepts(v)))
        })
        .find_map(|(p, _)| index.get(p))
}

fn locked(s: &Stanza) -> Option<LockedDeb> {
    let filename = s.filename.rsplit('/').next().unwrap_or(&s.filename);
    if filename.is_empty() {
        return None;
    }
    Some(LockedDeb {
        name: s.name.clone(),
        version: s.version.clone(),
        filename: filename.to_owned(),
        sha256: s.sha256?,
        size: s.size?,
        pulled_by: None,
        maintainer_scripts: Vec::new(),
    })
}

/// Why no alternative of `group` can be had, each in a few words.
fn unsatisfied(
    index: &Index,
    chosen: &BTreeMap<String, Chosen>,
    root: &Root<'_>,
    chain: &[String],
    group: &Group,
) -> InputError {
    let why: Vec<String> = group
        .iter()
        .map(|r| {
            let because = if root.exclude.contains(&r.name) {
                "excluded".to_owned()
            } else if let Some(c) = chosen.get(&r.name) {
                format!("the image already has version {}", c.version)
            } else if let Some(s) = index.get(&r.name) {
                format!("the index has version {} only", s.version)
            } else if !index.providers(&r.name).is_empty() {
                let names: Vec<&str> = index
                    .providers(&r.name)
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect();
                format!("no provider fits (provided by {})", names.join(", "))
            } else {
                "not in the archive index".to_owned()
            };
            format!("{r}: {because}")
        })
        .collect();
    let wanted: Vec<String> = group.iter().map(ToString::to_string).collect();
    InputError::Dependency {
        key: root.key.clone(),
        chain: chain.join(" → "),
        problem: format!(
            "depends on {}, which cannot be satisfied ({})",
            wanted.join(" | "),
            why.join("; ")
        ),
        fix: format!(
            "run `apt-get update` (as root) if the index is old; add a package that satisfies it as a \
             [[packages]] entry, or list the name in {}.exclude if the image does not need it",
            root.key
        ),
    }
}

#[cfg(test)]
mod tests;
