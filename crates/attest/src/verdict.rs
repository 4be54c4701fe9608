//! The verdict: every check by name, with what was expected and what was found.

use serde::Serialize;

/// Schema of the JSON verdict (`--json`); fields are only ever added.
pub const VERDICT_SCHEMA: u32 = 1;

/// The words an emulated verdict carries wherever a person or a program reads it.
pub const EMULATED_BANNER: &str = "EMULATED — NOT HARDWARE-BACKED";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable dotted name (`report.signature`, `policy.debug`, …).
    pub name: String,
    pub passed: bool,
    pub expected: String,
    pub found: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub schema: u32,
    /// True only when every check passed.
    pub passed: bool,
    /// The report was signed by the emulated PSP's test chain: it proves nothing about hardware.
    pub emulated: bool,
    pub product: Option<String>,
    pub signing_key: Option<String>,
    pub checks: Vec<Check>,
}

impl Verdict {
    pub(crate) fn new() -> Verdict {
        Verdict {
            schema: VERDICT_SCHEMA,
            passed: false,
            emulated: false,
            product: None,
            signing_key: None,
            checks: vec![],
        }
    }

    pub(crate) fn push(
        &mut self,
        name: &str,
        passed: bool,
        expected: impl Into<String>,
        found: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.checks.push(Check {
            name: name.to_string(),
            passed,
            expected: expected.into(),
            found: found.into(),
            detail: detail.into(),
        });
    }

    pub(crate) fn pass(&mut self, name: &str, found: impl Into<String>, detail: impl Into<String>) {
        let found = found.into();
        self.push(name, true, found.clone(), found, detail);
    }

    pub(crate) fn fail(
        &mut self,
        name: &str,
        expected: impl Into<String>,
        found: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(name, false, expected, found, detail);
    }

    pub(crate) fn finish(mut self) -> Verdict {
        self.passed = !self.checks.is_empty() && self.checks.iter().all(|c| c.passed);
        self
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// Stable JSON for CI. `"emulated": true` and a `"warning"` carry the emulation banner.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let (true, Some(obj)) = (self.emulated, value.as_object_mut()) {
            obj.insert(
                "warning".into(),
                serde_json::Value::String(EMULATED_BANNER.into()),
            );
        }
        serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into())
    }

    /// A table for people. `color` adds ANSI colours; callers pass true only on a terminal.
    pub fn to_table(&self, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let banner = if self.emulated {
            let line = "!".repeat(EMULATED_BANNER.chars().count() + 8);
            format!("{line}\n!!! {EMULATED_BANNER} !!!\n{line}\n")
        } else {
            String::new()
        };
        out.push_str(&paint("1;33", &banner));
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let status = if c.passed {
                paint("32", "PASS")
            } else {
                paint("1;31", "FAIL")
            };
            let mut line = format!("{status}  {:width$}  ", c.name);
            if c.passed || c.expected == c.found {
                line.push_str(&c.found);
            } else {
                line.push_str(&format!("expected {}, found {}", c.expected, c.found));
            }
            if !c.detail.is_empty() {
                line.push_str(&format!("  ({})", c.detail));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let failed = self.failed().count();
        let summary = if self.passed {
            paint(
                "1;32",
                &format!("VERDICT: PASS — all {} checks passed", self.checks.len()),
            )
        } else {
            paint(
                "1;31",
                &format!(
                    "VERDICT: FAIL — {failed} of {} checks failed",
                    self.checks.len()
                ),
            )
        };
        out.push_str(&summary);
        if self.emulated {
            out.push_str(&paint("1;33", &format!("  [{EMULATED_BANNER}]")));
        }
        out.push('\n');
        out.push_str(&paint("1;33", &banner));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(emulated: bool) -> Verdict {
        let mut v = Verdict::new();
        v.emulated = emulated;
        v.pass("report.format", "version 3", "");
        v.fail("measurement", "aa", "bb", "differs");
        v.finish()
    }

    #[test]
    fn fails_when_any_check_fails_and_never_when_empty() {
        assert!(!sample(false).passed);
        assert!(!Verdict::new().finish().passed);
        let mut ok = Verdict::new();
        ok.pass("a", "x", "");
        assert!(ok.finish().passed);
    }

    #[test]
    fn table_shows_both_values_of_a_failure_and_no_colour_unless_asked() {
        let t = sample(false).to_table(false);
        assert!(t.contains("expected aa, found bb"), "{t}");
        assert!(t.contains("FAIL") && !t.contains('\x1b'), "{t}");
        assert!(sample(false).to_table(true).contains('\x1b'));
    }

    #[test]
    fn emulated_banner_in_table_and_json() {
        let v = sample(true);
        assert!(v.to_table(false).contains(EMULATED_BANNER));
        let json: serde_json::Value = serde_json::from_str(&v.to_json()).expect("json");
        assert_eq!(json["emulated"], serde_json::Value::Bool(true));
        assert_eq!(
            json["warning"],
            serde_json::Value::String(EMULATED_BANNER.into())
        );
        assert!(!sample(false).to_table(false).contains(EMULATED_BANNER));
    }
}
