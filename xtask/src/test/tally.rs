//! Counting the results of `cargo test` from libtest's own output, so the suite can end with one
//! total over every test binary and doc-test run.
//!
//! Each libtest binary prints `running N tests`, a `test NAME ... ok|FAILED|ignored` line per test,
//! and `test result: ok. P passed; F failed; I ignored; M measured; …` at its end; the result line
//! is taken as the binary's count when its numbers add up to N (a failing test's captured output,
//! printed before it, may quote another run's lines). A binary that dies before its result line
//! (an abort, a signal) leaves only `running N tests` and the lines of the tests that finished: its
//! tests that never reported count as failed, since none of them can be said to have passed.

use std::fmt;

/// Results summed over test binaries (and, in `cargo xtask test`, the fuzz targets).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    /// Ignored tests (`#[ignore]`); not a failure, but said.
    pub skipped: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// A binary that has said `running N tests` and not yet its result line.
#[derive(Debug, Default)]
struct Open {
    expected: u64,
    /// Counted from the per-test lines, for a binary that never prints its result line.
    seen: Tally,
    /// Inside the `failures:` report, where tests' captured output is printed verbatim.
    in_failures: bool,
}

/// Feed it libtest's stdout line by line; [`Reader::finish`] gives the total.
#[derive(Debug, Default)]
pub struct Reader {
    total: Tally,
    open: Option<Open>,
    /// Binaries that ended without a result line.
    pub crashed: u64,
}

impl Reader {
    pub fn line(&mut self, raw: &str) {
        let line = strip_ansi(raw);
        let line = line.trim();
        if let Some(result) = line.strip_prefix("test result: ") {
            if let (Some((counts, measured)), Some(open)) = (parse_result(result), &self.open)
                && counts.passed + counts.failed + counts.skipped + measured == open.expected
            {
                self.total += counts;
                self.open = None;
            }
            return;
        }
        let in_failures = self.open.as_ref().is_some_and(|o| o.in_failures);
        if !in_failures && let Some(expected) = parse_running(line) {
            self.close_crashed();
            self.open = Some(Open {
                expected,
                ..Open::default()
            });
            return;
        }
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if in_failures {
            return;
        }
        if line == "failures:" {
            open.in_failures = true;
        } else if let Some(rest) = line.strip_prefix("test ") {
            match rest.rsplit_once(" ... ").map(|(_, status)| status) {
                Some("ok") => open.seen.passed += 1,
                Some("FAILED") => open.seen.failed += 1,
                Some(s) if s.starts_with("ignored") => open.seen.skipped += 1,
                _ => {}
            }
        }
    }

    /// The total; a binary still open (no result line) counts as crashed.
    pub fn finish(mut self) -> (Tally, u64) {
        self.close_crashed();
        (self.total, self.crashed)
    }

    fn close_crashed(&mut self) {
        if let Some(open) = self.open.take() {
            let s = open.seen;
            let unreported = open.expected.saturating_sub(s.passed + s.skipped);
            self.total += Tally {
                passed: s.passed,
                failed: unreported.max(s.failed),
                skipped: s.skipped,
            };
            self.crashed += 1;
        }
    }
}

/// `running 12 tests` / `running 1 test`.
fn parse_running(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("running ")?;
    let (n, word) = rest.split_once(' ')?;
    matches!(word, "test" | "tests").then(|| n.parse().ok())?
}

/// `ok. 5 passed; 1 failed; 2 ignored; 0 measured; 3 filtered out; finished in 0.01s`: the
/// counts, and the benchmarks measured.
fn parse_result(text: &str) -> Option<(Tally, u64)> {
    let (_, counts) = text.split_once(". ")?;
    let mut tally = Tally::default();
    let mut measured = 0;
    let mut found = 0;
    for part in counts.split(';') {
        let Some((n, what)) = part.trim().split_once(' ') else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => tally.passed = n,
            "failed" => tally.failed = n,
            "ignored" => tally.skipped = n,
            "measured" => measured = n,
            _ => continue,
        }
        found += 1;
    }
    (found == 4).then_some((tally, measured))
}

/// libtest colours its words when asked (`--color always`): `ESC[32mok ESC(B ESC[m`.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // Character set selection: one more byte.
            Some('(' | ')') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Tally, u64) {
        let mut r = Reader::default();
        for line in text.lines() {
            r.line(line);
        }
        r.finish()
    }

    /// `cargo test --no-fail-fast -- --test-threads=1` on a small crate made for this (thread ids
    /// and the doctest temp folder replaced by N and XXXXXX): a unit-test binary with a pass, a
    /// failure and an `#[ignore]`d test; an integration binary whose first test aborts the
    /// process; an empty one; one with two passes; doc-tests with a pass and a failure.
    #[test]
    fn counts_real_cargo_test_output_with_a_failure_an_ignored_test_and_a_crash() {
        let (tally, crashed) = read(include_str!("libtest-failures.out"));
        // lib 1/1/1, crash 0 passed + 2 unreported, empty 0, plain 2, doc 1/1.
        assert_eq!(
            tally,
            Tally {
                passed: 4,
                failed: 4,
                skipped: 1
            }
        );
        assert_eq!(crashed, 1);
        assert_eq!(tally.to_string(), "4 passed, 4 failed, 1 skipped");
    }

    /// The unit-test binary above again, run with `--color always`.
    #[test]
    fn colour_codes_do_not_hide_the_counts() {
        let (tally, crashed) = read(include_str!("libtest-color.out"));
        assert_eq!(
            tally,
            Tally {
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
        assert_eq!(crashed, 0);
    }

    /// A test that runs `cargo test` itself (the e2e tests drive cargo) and fails prints the
    /// inner run's lines in its failure report, before the outer result line.
    #[test]
    fn a_failure_report_quoting_another_run_is_not_counted() {
        let text = "running 1 test\ntest nested ... FAILED\n\nfailures:\n\n---- nested stdout ----\n\
                    running 7 tests\ntest inner ... ok\ntest result: ok. 7 passed; 0 failed; 0 ignored; \
                    0 measured; 0 filtered out; finished in 0.01s\n\nfailures:\n    nested\n\n\
                    test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; \
                    finished in 2.00s\n";
        let (tally, crashed) = read(text);
        assert_eq!(
            tally,
            Tally {
                passed: 0,
                failed: 1,
                skipped: 0
            }
        );
        assert_eq!(crashed, 0);
    }

    #[test]
    fn the_line_names_skipped_only_when_some_were() {
        let t = Tally {
            passed: 344,
            failed: 0,
            skipped: 0,
        };
        assert_eq!(t.to_string(), "344 passed, 0 failed");
    }

    #[test]
    fn result_lines_are_parsed_exactly() {
        assert_eq!(
            parse_result(
                "FAILED. 1 passed; 2 failed; 3 ignored; 0 measured; 9 filtered out; finished in 0.1s"
            ),
            Some((
                Tally {
                    passed: 1,
                    failed: 2,
                    skipped: 3
                },
                0
            ))
        );
        assert_eq!(parse_result("ok. garbage"), None);
        assert_eq!(parse_running("running 1 test"), Some(1));
        assert_eq!(parse_running("running 12 tests"), Some(12));
        assert_eq!(parse_running("running late"), None);
    }
}
