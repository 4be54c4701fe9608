//! Certificate and CRL signatures already verified, remembered for the next report from the same
//! chip.
//!
//! A broker judges report after report signed by the same few VCEKs (one per chip and TCB) under
//! the same ASK, with the same CRL: after the report's own ECDSA signature, the RSA-PSS checks of
//! that VCEK and that CRL are the costliest part of a verdict, and their answer never changes.
//! "These exact bytes are signed by this exact issuer" is a pure function of the two byte strings,
//! so the memo's key is a digest of both and nothing else can make a remembered answer wrong.
//! Only passes are remembered: an entry takes a signature that verified under an issuer the chain
//! already trusts, so junk evidence cannot fill the memo; it is bounded all the same. Everything
//! that depends on the time, the policy or the report (validity dates, CRL currency, revocation,
//! the VEK's extensions against the report, the report's signature) is judged afresh every time.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

/// Signature checks that passed, shared by the verdicts of one process (a broker's appraisals).
#[derive(Debug)]
pub struct SignatureMemo {
    passed: Mutex<HashSet<[u8; 32]>>,
    capacity: usize,
}

impl Default for SignatureMemo {
    fn default() -> SignatureMemo {
        SignatureMemo::new(SignatureMemo::DEFAULT_CAPACITY)
    }
}

impl SignatureMemo {
    /// Entries kept before the memo starts over: far more chips × TCB versions than a fleet
    /// presents, at 32 bytes each.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// An empty memo of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> SignatureMemo {
        SignatureMemo {
            passed: Mutex::new(HashSet::new()),
            capacity: capacity.max(1),
        }
    }

    /// How many verified signatures are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Passes if `signed` (a whole certificate or CRL, DER) was verified under `issuer` (the
    /// issuer's whole certificate, DER) before; else runs `verify` and remembers a pass.
    pub fn check<E>(
        &self,
        issuer: &[u8],
        signed: &[u8],
        verify: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let key = key(issuer, signed);
        if self.lock().contains(&key) {
            return Ok(());
        }
        verify()?;
        let mut passed = self.lock();
        // Starting over is simpler than an eviction order and costs one RSA check per chip.
        if passed.len() >= self.capacity {
            passed.clear();
        }
        passed.insert(key);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<[u8; 32]>> {
        // A panic elsewhere cannot leave a half-written set: every entry is a finished insert.
        self.passed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// SHA-256 over both byte strings, the first length-prefixed so no two pairs share an encoding.
fn key(issuer: &[u8], signed: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((issuer.len() as u64).to_be_bytes());
    h.update(issuer);
    h.update(signed);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn counted<'a>(
        calls: &'a Cell<u32>,
        answer: Result<(), &'static str>,
    ) -> impl FnOnce() -> Result<(), &'static str> + 'a {
        move || {
            calls.set(calls.get() + 1);
            answer
        }
    }

    #[test]
    fn a_pass_is_remembered_for_exactly_the_same_pair() {
        let memo = SignatureMemo::default();
        let calls = Cell::new(0);
        assert_eq!(
            memo.check(b"ask", b"vcek-1", counted(&calls, Ok(()))),
            Ok(())
        );
        assert_eq!(
            memo.check(b"ask", b"vcek-1", counted(&calls, Ok(()))),
            Ok(())
        );
        assert_eq!(
            calls.get(),
            1,
            "the second check of the same pair is remembered"
        );
        // Another certificate, another issuer, or the same bytes split differently: verified.
        assert_eq!(
            memo.check(b"ask", b"vcek-2", counted(&calls, Ok(()))),
            Ok(())
        );
        assert_eq!(
            memo.check(b"asvk", b"vcek-1", counted(&calls, Ok(()))),
            Ok(())
        );
        assert_eq!(
            memo.check(b"askv", b"cek-1", counted(&calls, Ok(()))),
            Ok(())
        );
        assert_eq!(calls.get(), 4);
        assert_eq!(memo.len(), 4);
    }

    #[test]
    fn a_failure_is_never_remembered() {
        let memo = SignatureMemo::default();
        let calls = Cell::new(0);
        assert_eq!(
            memo.check(b"ask", b"forged", counted(&calls, Err("bad signature"))),
            Err("bad signature")
        );
        assert_eq!(
            memo.check(b"ask", b"forged", counted(&calls, Err("bad signature"))),
            Err("bad signature")
        );
        assert_eq!(calls.get(), 2);
        assert!(memo.is_empty());
    }

    #[test]
    fn the_memo_stays_within_its_capacity() {
        let memo = SignatureMemo::new(3);
        for i in 0..10u8 {
            assert_eq!(memo.check(b"ask", &[i], || Ok::<(), ()>(())), Ok(()));
            assert!(memo.len() <= 3, "{} entries", memo.len());
        }
        assert!(!memo.is_empty());
    }
}
