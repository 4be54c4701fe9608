//! Timing for `cargo xtask bench`: one way to time a process and one way to summarise runs, for
//! every benchmark (measure, build, verify, verity), apart from the benchmarks that use them.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Runs `program args`, checks it succeeded, returns its wall time and stdout. Shared by every
/// benchmark that times a process.
pub(crate) fn timed<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
) -> anyhow::Result<(Duration, String)> {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    let took = start.elapsed();
    if !out.status.success() {
        let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        bail!(
            "{} {} failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((took, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The median of timed runs (the upper one of an even count); `v` must not be empty.
pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
