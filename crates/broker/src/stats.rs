//! Where the broker's time goes (for `cargo xtask bench kbs`): time in handlers, in the verifier
//! and completing endorsements, and how many attestations and releases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters for the benchmark: where the broker's time goes.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) handler_ns: AtomicU64,
    pub(crate) verify_ns: AtomicU64,
    pub(crate) endorse_ns: AtomicU64,
    pub(crate) attestations: AtomicU64,
    pub(crate) releases: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct StatsSnapshot {
    /// Time inside the three handlers, all requests.
    pub handler: Duration,
    /// Time inside the verifier (chain, signature, claims).
    pub verify: Duration,
    /// Time completing endorsements (cache, KDS).
    pub endorse: Duration,
    pub attestations: u64,
    pub releases: u64,
    /// Certificate and CRL signatures the appraiser remembers as verified (one VCEK and one CRL
    /// per chip and TCB), so that a chip's next attestation skips their RSA checks.
    pub signatures_remembered: usize,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, d: Duration) {
        counter.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let ns = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        StatsSnapshot {
            handler: ns(&self.handler_ns),
            verify: ns(&self.verify_ns),
            endorse: ns(&self.endorse_ns),
            attestations: self.attestations.load(Ordering::Relaxed),
            releases: self.releases.load(Ordering::Relaxed),
            signatures_remembered: 0,
        }
    }
}
