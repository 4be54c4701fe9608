//! Relationship fields of a binary package stanza: `Depends`, `Pre-Depends` and `Provides`
//! (Debian Policy §7.1): groups separated by `,`, alternatives by `|`, each a name with an
//! optional `(op version)` and an optional `:arch` qualifier.

use super::version::compare;
use std::cmp::Ordering;
use std::fmt;

/// A version constraint's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Earlier,
    EarlierEqual,
    Equal,
    LaterEqual,
    Later,
}

/// One alternative: `name`, or `name (op version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub constraint: Option<(Op, String)>,
}

impl Relation {
    /// Whether `version` of a package called [`Relation::name`] satisfies the constraint.
    pub fn accepts(&self, version: &str) -> bool {
        let Some((op, wanted)) = &self.constraint else {
            return true;
        };
        let o = compare(version, wanted);
        match op {
            Op::Earlier => o == Ordering::Less,
            Op::EarlierEqual => o != Ordering::Greater,
            Op::Equal => o == Ordering::Equal,
            Op::LaterEqual => o != Ordering::Less,
            Op::Later => o == Ordering::Greater,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some((op, v)) = &self.constraint {
            let op = match op {
                Op::Earlier => "<<",
                Op::EarlierEqual => "<=",
                Op::Equal => "=",
                Op::LaterEqual => ">=",
                Op::Later => ">>",
            };
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// A group of alternatives: any one satisfies it.
pub type Group = Vec<Relation>;

/// Parses a relationship field; `Err` names the part that is not a relation.
pub fn parse(field: &str) -> Result<Vec<Group>, String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|group| group.split('|').map(|alt| one(alt.trim())).collect())
        .collect()
}

fn one(text: &str) -> Result<Relation, String> {
    let bad = || format!("{text:?} is not a package relation");
    let (name, rest) = match text.find(|c: char| c.is_whitespace() || c == '(') {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    };
    // `perl:any`, `python3:native`, `libc6:amd64`: we resolve for one architecture only, so the
    // qualifier names the same package.
    let name = name.split_once(':').map_or(name, |(n, _)| n);
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
    {
        return Err(bad());
    }
    // Architecture lists (`[amd64]`) and build profiles (`<!nocheck>`) belong to source
    // packages; a binary stanza has none.
    let constraint = if rest.is_empty() {
        None
    } else {
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(bad)?
            .trim();
        let split = inner.find(|c: char| !"<>=".contains(c)).ok_or_else(bad)?;
        let (op, version) = (&inner[..split], inner[split..].trim());
        let op = match op {
            "<<" => Op::Earlier,
            // `<` and `>` are the old spellings of `<=` and `>=`.
            "<=" | "<" => Op::EarlierEqual,
            "=" => Op::Equal,
            ">=" | ">" => Op::LaterEqual,
            ">>" => Op::Later,
            _ => return Err(bad()),
        };
        if version.is_empty() || version.contains(char::is_whitespace) {
            return Err(bad());
        }
        Some((op, version.to_owned()))
    };
    Ok(Relation {
        name: name.to_owned(),
        constraint,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn groups_alternatives_and_constraints() {
        let g = parse("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any,libssl3(>>3.0)")
            .unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g[0][0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(g[1].len(), 2);
        assert_eq!(g[1][1].name, "debconf-2.0");
        assert_eq!(g[2][0].to_string(), "perl");
        assert_eq!(g[3][0].to_string(), "libssl3 (>> 3.0)");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn constraints_use_debian_order() {
        let r = &parse("libc6 (>= 2.34)").unwrap()[0][0];
        assert!(r.accepts("2.36-9+deb12u14"));
        assert!(!r.accepts("2.33-1"));
        let r = &parse("x (<< 1.0)").unwrap()[0][0];
        assert!(r.accepts("1.0~rc1") && !r.accepts("1.0"));
        let r = &parse("x (= 1:2.0-1)").unwrap()[0][0];
        assert!(r.accepts("1:2.0-1") && !r.accepts("2.0-1"));
    }

    #[test]
    fn garbage_is_named() {
        for bad in ["Libc6", "x (~ 1)", "x (>= )", "x >= 1", "x (>= 1"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("is not a package relation"), "{bad}: {err}");
        }
    }
}
