//! An error says what was being done and to what; its cause is its `source()`, never repeated in
//! its message (anyhow prints the chain once: `cannot read X: No such file or directory`). These
//! checks hold any error chain, or a chain already printed on one line, to that.

use std::error::Error;

/// How long a run of characters shared by two levels of a chain must be to count as said twice.
/// Shorter runs are words any two messages may share ("error", "the file").
pub const MIN_REPEAT: usize = 20;

/// The message of `e` and of every error below it, top first.
pub fn messages(e: &dyn Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(inner) = cur {
        out.push(inner.to_string());
        cur = inner.source();
    }
    out
}

/// `e` and its causes on one line, as anyhow's `{:#}` prints them: `a: b: c`.
pub fn chain_text(e: &dyn Error) -> String {
    messages(e).join(": ")
}

/// Panics unless every error in `e`'s chain says something its causes do not: no message contains
/// the message of an error below it, and no two parts of the chain printed on one line share a run
/// of [`MIN_REPEAT`] characters (a path or URL said again, also inside one message that carries a
/// cause as text).
pub fn assert_says_each_thing_once(e: &dyn Error) {
    let levels = messages(e);
    for (i, upper) in levels.iter().enumerate() {
        for lower in levels[i + 1..].iter().filter(|m| !m.is_empty()) {
            assert!(
                !upper.contains(lower.as_str()),
                "{upper:?} repeats its cause {lower:?}; the whole chain: {}",
                levels.join(": ")
            );
        }
    }
    assert_text_says_each_thing_once(&chain_text(e));
}

/// The same check for a chain already printed on one line (`error: a: b: c`, as a user reads it
/// on stderr, or a verdict's detail): its `": "`-separated parts share no run of [`MIN_REPEAT`]
/// characters.
pub fn assert_text_says_each_thing_once(text: &str) {
    let text = text.trim();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let levels: Vec<String> = text.split(": ").map(str::to_owned).collect();
    assert_levels_say_each_thing_once(&levels);
}

fn assert_levels_say_each_thing_once(levels: &[String]) {
    for (i, a) in levels.iter().enumerate() {
        for b in &levels[i + 1..] {
            if let Some(run) = shared_run(a, b, MIN_REPEAT) {
                panic!(
                    "{run:?} is said twice, in {a:?} and again in {b:?}; the whole chain: {}",
                    levels.join(": ")
                );
            }
        }
    }
}

/// A run of at least `len` characters that both `a` and `b` contain.
fn shared_run<'a>(a: &'a str, b: &str, len: usize) -> Option<&'a str> {
    let starts: Vec<usize> = a.char_indices().map(|(i, _)| i).collect();
    starts.iter().enumerate().find_map(|(k, &from)| {
        let to = starts.get(k + len).copied().or_else(|| {
            // The last window ends at the end of `a`.
            (k + len == starts.len()).then_some(a.len())
        })?;
        let run = &a[from..to];
        b.contains(run).then_some(run)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug)]
    struct Wrap {
        message: String,
        source: std::io::Error,
    }
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.message)
        }
    }
    impl Error for Wrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.source)
        }
    }

    fn missing() -> std::io::Error {
        std::fs::read("/nonexistent/snpkit-testkit").unwrap_err()
    }

    #[test]
    fn a_message_that_leaves_its_cause_to_the_chain_passes() {
        let e = Wrap {
            message: "cannot read /nonexistent/snpkit-testkit".into(),
            source: missing(),
        };
        assert_says_each_thing_once(&e);
        assert_eq!(
            chain_text(&e),
            format!("cannot read /nonexistent/snpkit-testkit: {}", missing())
        );
        assert_text_says_each_thing_once(&format!("error: {}", chain_text(&e)));
    }

    #[test]
    fn a_message_that_prints_its_source_is_caught() {
        let e = Wrap {
            message: format!("cannot read /nonexistent/snpkit-testkit: {}", missing()),
            source: missing(),
        };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_says_each_thing_once(&e)
        }));
        assert!(caught.is_err());
        let text = chain_text(&e);
        assert!(std::panic::catch_unwind(|| assert_text_says_each_thing_once(&text)).is_err());
    }

    #[test]
    fn a_url_said_at_two_levels_is_caught() {
        let text = "KDS http://127.0.0.1:9/vcek/v1/Milan/crl: error sending request for url \
                    (http://127.0.0.1:9/vcek/v1/Milan/crl): connection refused";
        assert!(std::panic::catch_unwind(|| assert_text_says_each_thing_once(text)).is_err());
        assert_text_says_each_thing_once(
            "KDS http://127.0.0.1:9/vcek/v1/Milan/crl: error sending request: connection refused",
        );
    }

    #[test]
    fn shared_runs_are_found_at_either_end() {
        assert_eq!(shared_run("abcdef", "xxabc", 3), Some("abc"));
        assert_eq!(shared_run("abcdef", "defxx", 3), Some("def"));
        assert_eq!(shared_run("abcdef", "abxdef", 4), None);
        assert_eq!(shared_run("ab", "ab", 3), None);
        assert_eq!(shared_run("éüéü", "xéüé", 3), Some("éüé"));
    }
}
