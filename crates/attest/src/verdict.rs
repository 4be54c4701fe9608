//! The verdict: every check by name, with what was expected and what was found.
//!
//! Every verdict holds the same checks, under the same names, in the same order ([`CHECKS`]), whether
//! they pass, fail or could not be evaluated, so a JSON consumer can key on a name. A check that
//! could not run because an earlier one failed (a truncated report has no chain to walk) is listed
//! with `evaluated: false` and `passed: false`: nothing unchecked ever counts as a pass.
//!
//! | name | passes when |
//! |---|---|
//! | `input` | the report and endorsements could be read (file present, not oversized, flags well-formed); `found` names what was at hand, or the file or flag that was not |
//! | `report.format` | the report is 1184 bytes of a known version (2, 3, 5) with every reserved byte zero, signature algorithm 1, policy bit 17 set, a valid KEY_INFO and VMPL; on failure `found` names the rule (`size`, `version`, `reserved_zero`, `signature_algo`, `policy_reserved`, `key_info`, `vmpl_range`) |
//! | `report.signing_key` | KEY_INFO names a key the policy accepts (`signing_key`); "no key" always fails |
//! | `product` | the product (Milan, Genoa, Turin) is known and agrees with `--product` |
//! | `emulated` | the chain is AMD's, or the emulated test chain with `--allow-emulated` (then the verdict says EMULATED) |
//! | `chain.ark` | any ARK given is the pinned one |
//! | `chain.ask` | any ASK/ASVK given is the pinned one |
//! | `chain.crl` | a current ARK-signed CRL revokes neither the ASK/ASVK nor the VCEK/VLEK; without a CRL it fails unless the policy opts out (`require_crl = false`, `--no-crl`), and then says "skipped by policy" |
//! | `chain.vek_kind` | the certificate is the kind KEY_INFO names (`SEV-VCEK` or `SEV-VLEK`) |
//! | `chain.vek` | the VCEK/VLEK is at hand, names the intermediate as issuer, is signed by it, is no CA and has no unknown critical extension |
//! | `chain.validity` | ARK, intermediate and VEK are valid at `--now` |
//! | `report.signature` | the VEK's ECDSA P-384 signature over bytes 0x000–0x29F verifies |
//! | `vek.tcb` | the VEK's TCB extensions equal REPORTED_TCB |
//! | `vek.hwid` | the VCEK's hwID equals CHIP_ID (a VLEK is not chip-bound) |
//! | `vek.product` | the VEK's productName is the product's |
//! | `policy.debug`, `policy.migration_agent`, `policy.smt`, `policy.single_socket`, `policy.abi` | the guest policy bits meet the verification policy |
//! | `policy.launch` | the guest policy equals the launch config's (when one is given; of several, the config whose MEASUREMENT the report has) |
//! | `guest_svn` | GUEST_SVN is at least `min_guest_svn` |
//! | `tcb.minimum` | REPORTED_TCB meets `[min_tcb]` per component |
//! | `vmpl` | VMPL equals the policy's |
//! | `report_data` | REPORT_DATA equals the binding of nonce and key, or `--report-data` |
//! | `measurement` | MEASUREMENT equals that of one of expected.json's launch configs (the verdict's `config` names the one matched in MEASUREMENT and guest policy; `--config NAME` holds it to one) or `--measurement`; with neither, passes "by signature" only when the policy requires a non-zero `author_key_digest` or `id_key_digest` (the PSP launched the guest only because an ID block signed by that key named this MEASUREMENT; that key's own line must pass too) |
//! | `host_data`, `id_key_digest`, `author_key_digest`, `family_id`, `image_id` | equal the policy's value (when it sets one) |

use serde::Serialize;

/// Schema of the JSON verdict (`--json`). 2: one stable name per check, every check always listed,
/// `evaluated` added.
pub const VERDICT_SCHEMA: u32 = 2;

/// The words an emulated verdict carries wherever a person or a program reads it.
pub const EMULATED_BANNER: &str = "EMULATED — NOT HARDWARE-BACKED";

/// Every check of a verdict, in the order they are listed (documented in the module docs).
pub const CHECKS: &[&str] = &[
    "input",
    "report.format",
    "report.signing_key",
    "product",
    "emulated",
    "chain.ark",
    "chain.ask",
    "chain.crl",
    "chain.vek_kind",
    "chain.vek",
    "chain.validity",
    "report.signature",
    "vek.tcb",
    "vek.hwid",
    "vek.product",
    "policy.debug",
    "policy.migration_agent",
    "policy.smt",
    "policy.single_socket",
    "policy.abi",
    "policy.launch",
    "guest_svn",
    "tcb.minimum",
    "vmpl",
    "report_data",
    "measurement",
    "host_data",
    "id_key_digest",
    "author_key_digest",
    "family_id",
    "image_id",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable dotted name, one of [`CHECKS`].
    pub name: String,
    pub passed: bool,
    /// False when an earlier failure kept this check from running (then `passed` is false too).
    pub evaluated: bool,
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
    /// The launch config the report matched, by its name in `expected.json`, when the reference
    /// listed configs (`verify --expected`, or an image's prediction): any of them passes, and
    /// this says which. `null` otherwise, and when none matched.
    pub config: Option<String>,
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
            config: None,
            checks: vec![],
        }
    }

    /// Record a check. A second line under one name (two given ASKs, say) is folded into the
    /// first, so each name appears once; it passes only if both did.
    pub(crate) fn push(
        &mut self,
        name: &str,
        passed: bool,
        expected: impl Into<String>,
        found: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let (expected, found, detail) = (expected.into(), found.into(), detail.into());
        if let Some(c) = self.checks.iter_mut().find(|c| c.name == name) {
            if c.passed && !passed {
                c.expected = expected;
                c.found = found;
            }
            c.passed &= passed;
            if !detail.is_empty() {
                c.detail = if c.detail.is_empty() {
                    detail
                } else {
                    format!("{}; {detail}", c.detail)
                };
            }
            return;
        }
        self.checks.push(Check {
            name: name.to_string(),
            passed,
            evaluated: true,
            expected,
            found,
            detail,
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

    /// Close the verdict: list every check of [`CHECKS`] in its order, marking those that never
    /// ran as not evaluated (and so not passed), and pass only when every check passed.
    pub(crate) fn finish(mut self) -> Verdict {
        // Checks are recorded in the order they run: the last failure is the one that stopped
        // the run (a chain that does not verify leaves no key to check the signature with).
        let stopped_by = self
            .checks
            .iter()
            .rev()
            .find(|c| !c.passed)
            .map(|c| c.name.clone());
        for name in CHECKS {
            if self.checks.iter().all(|c| c.name != *name) {
                self.checks.push(Check {
                    name: (*name).to_string(),
                    passed: false,
                    evaluated: false,
                    expected: "not checked".into(),
                    found: "not checked".into(),
                    detail: match &stopped_by {
                        Some(f) => format!("not reached: {f} failed"),
                        None => "not reached".into(),
                    },
                });
            }
        }
        let rank = |name: &str| {
            CHECKS
                .iter()
                .position(|n| *n == name)
                .unwrap_or(CHECKS.len())
        };
        self.checks.sort_by_key(|c| rank(&c.name));
        self.passed = self.checks.iter().all(|c| c.passed);
        self
    }

    /// The verdict when the inputs themselves could not be had (a file missing, oversized or not
    /// text, a malformed flag): `input` fails naming `what` (the file or flag) and the problem, and
    /// every other check is listed as not evaluated.
    pub fn input_error(what: impl Into<String>, problem: impl Into<String>) -> Verdict {
        let mut v = Verdict::new();
        v.fail("input", "readable, well-formed inputs", what, problem);
        v.finish()
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Checks that did not pass: those that failed and those never evaluated.
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
        for c in self.checks.iter().filter(|c| c.evaluated) {
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
        // Checks that never ran, on one line for people (the JSON lists each of them).
        let skipped_names: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.evaluated)
            .map(|c| c.name.as_str())
            .collect();
        if let Some(first) = self.checks.iter().find(|c| !c.evaluated) {
            out.push_str(&format!(
                "{}  {} not checked ({}): {}\n",
                paint("33", "SKIP"),
                skipped_names.len(),
                first.detail,
                skipped_names.join(", ")
            ));
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.evaluated && !c.passed)
            .count();
        let skipped = self.checks.iter().filter(|c| !c.evaluated).count();
        let summary = if self.passed {
            paint(
                "1;32",
                &format!("VERDICT: PASS — all {} checks passed", self.checks.len()),
            )
        } else {
            let not_checked = if skipped > 0 {
                format!(", {skipped} not checked")
            } else {
                String::new()
            };
            paint(
                "1;31",
                &format!(
                    "VERDICT: FAIL — {failed} of {} checks failed{not_checked}",
                    self.checks.len()
                ),
            )
        };
        out.push_str(&summary);
        if let Some(config) = &self.config {
            out.push_str(&format!(" (launch config {config:?})"));
        }
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
        for name in CHECKS {
            ok.pass(name, "x", "");
        }
        assert!(ok.clone().finish().passed);
        // One check left out is listed, not evaluated, and fails the verdict.
        ok.checks.retain(|c| c.name != "chain.crl");
        let v = ok.finish();
        assert!(!v.passed);
        let crl = v.check("chain.crl").expect("listed");
        assert!(!crl.passed && !crl.evaluated, "{crl:?}");
    }

    #[test]
    fn every_check_is_listed_once_in_order_whatever_was_run() {
        let names = |v: &Verdict| v.checks.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let want: Vec<String> = CHECKS.iter().map(|s| s.to_string()).collect();
        assert_eq!(names(&sample(false)), want);
        assert_eq!(names(&Verdict::input_error("report.bin", "gone")), want);
        let mut twice = Verdict::new();
        twice.pass("chain.ask", "ASK", "");
        twice.fail("chain.ask", "ASK", "other", "not pinned");
        let v = twice.finish();
        assert_eq!(names(&v), want);
        let ask = v.check("chain.ask").expect("ask");
        assert!(!ask.passed && ask.found == "other", "{ask:?}");
    }

    #[test]
    fn input_errors_are_failing_verdicts_naming_the_file() {
        let v = Verdict::input_error("/x/report.bin", "no such file");
        assert!(!v.passed);
        let c = v.check("input").expect("input");
        assert!(!c.passed && c.evaluated && c.found == "/x/report.bin");
        let t = v.to_table(false);
        assert!(
            t.contains("FAIL  input") && t.contains("no such file"),
            "{t}"
        );
        assert!(
            t.contains("VERDICT: FAIL — 1 of 31 checks failed, 30 not checked"),
            "{t}"
        );
        assert!(
            t.contains("SKIP  30 not checked (not reached: input failed): report.format,"),
            "{t}"
        );
        assert!(t.contains(", measurement,"), "{t}");
        let json: serde_json::Value = serde_json::from_str(&v.to_json()).expect("json");
        assert_eq!(json["passed"], false);
        assert_eq!(json["checks"][0]["name"], "input");
        assert_eq!(json["checks"][1]["evaluated"], false);
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
