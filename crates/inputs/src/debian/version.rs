//! Debian version comparison, as dpkg orders versions (Debian Policy §5.6.12).
//!
//! Written here rather than taken from a crate: it is forty lines of a fixed algorithm, and the
//! tests check it against `dpkg --compare-versions` itself where dpkg is installed.

use std::cmp::Ordering;

/// Compares two Debian versions `[epoch:]upstream[-revision]`.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

/// `(epoch, upstream, revision)`; a missing epoch is 0, a missing revision is empty (which
/// compares equal to "0", as in dpkg).
fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// dpkg's weight of a non-digit character: `~` sorts before everything, even the end of the
/// string; letters before other characters.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// One part (upstream or revision): alternating runs of non-digits (compared by [`weight`]) and
/// digits (compared as numbers).
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let (si, sj) = (i, j);
        while a.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        // Without leading zeros, a longer run of digits is the larger number.
        let order = (i - si)
            .cmp(&(j - sj))
            .then_with(|| a[si..i].cmp(&b[sj..j]));
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs with their order, from Debian Policy's examples and dpkg's own test suite.
    const CASES: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", Ordering::Equal),
        ("1.0-0", "1.0", Ordering::Equal),
        ("0:1.0", "1.0", Ordering::Equal),
        ("1.0~rc1", "1.0", Ordering::Less),
        ("1.0~~", "1.0~~a", Ordering::Less),
        ("1.0~", "1.0", Ordering::Less),
        ("1.0", "1.0a", Ordering::Less),
        ("1.0a", "1.0+", Ordering::Less),
        ("1:0.1", "2.0", Ordering::Greater),
        ("1.10", "1.9", Ordering::Greater),
        ("1.010", "1.9", Ordering::Greater),
        ("2.36-9+deb12u14", "2.36-9+deb12u7", Ordering::Greater),
        ("2.36-9+deb12u4", "2.34", Ordering::Greater),
        (
            "1:1.35.0-4+deb12u1+b1",
            "1:1.35.0-4+deb12u1",
            Ordering::Greater,
        ),
        ("6.12.95-1~bpo12+1", "6.12.95-1", Ordering::Less),
        ("3.0.17-1~deb12u2", "3.0.0", Ordering::Greater),
        ("1.2.3-1-2", "1.2.3-1", Ordering::Greater),
        ("a", "b", Ordering::Less),
    ];

    #[test]
    fn orders_as_policy_says() {
        for (a, b, want) in CASES {
            assert_eq!(compare(a, b), *want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// The same pairs judged by dpkg itself, where it is installed (it is on every Debian
    /// builder): the two must agree.
    #[test]
    fn agrees_with_dpkg() {
        let dpkg = |a: &str, op: &str, b: &str| {
            std::process::Command::new("dpkg")
                .args(["--compare-versions", a, op, b])
                .status()
                .ok()
                .map(|s| s.success())
        };
        if dpkg("1", "eq", "1").is_none() {
            eprintln!("dpkg is not installed: skipping the comparison with it");
            return;
        }
        for (a, b, want) in CASES {
            let op = match want {
                Ordering::Less => "lt",
                Ordering::Equal => "eq",
                Ordering::Greater => "gt",
            };
            assert_eq!(dpkg(a, op, b), Some(true), "dpkg disagrees: {a} {op} {b}");
        }
    }
}
