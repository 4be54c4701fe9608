//! Attestation: judging evidence, and the emulated PSP that produces it without hardware.
//!
//! Owns SNP report parsing and verification (signature, AMD certificate chains, CRLs, policy, TCB,
//! REPORT_DATA binding, reference values), the builtin AMD roots, the AMD KDS client with its on-disk
//! cache, and the emulated PSP's test signing chain. Must not know about QEMU, images or how a report
//! was fetched: it takes bytes and returns a [`Verdict`].
//!
//! Layout, in the field's (RATS) vocabulary:
//! - [`report`]: the evidence format, parsed with every must-be-zero range enforced.
//! - [`certs`], [`roots`]: the endorser's certificates and AMD's pinned roots.
//! - `kds`: the endorser's service (AMD Key Distribution Service) with cache and offline mode.
//! - `gather`: the I/O edge: a `--certs` folder (snpguest's names), a boot run folder and
//!   `expected.json` (read through `snpkit-bundle`, which owns the image folder), and the KDS for
//!   what is missing.
//!   (These two need the default `kds` feature, which brings the HTTP stack; without it the crate
//!   is the pure verifier and the emulated PSP.)
//! - [`verifier`]: the judgement, one pure function; [`verdict`]: its result.
//! - [`policy`]: what the relying party requires (TOML, documented in [`policy`]).
//! - [`emulated`]: the test chain and report builder of the emulated PSP.
//!
//! Every check of a verdict has a stable name (`report.signature`, `chain.vek`, `vek.tcb`,
//! `policy.debug`, `measurement`, …), listed in every verdict in one order whether it passed,
//! failed or was not reached (the table of names is in [`verdict`]), and a test that makes it
//! fail (`tests/mutations.rs`, `tests/emulated.rs`). Hand-written here because no crate does it: the report layout
//! ([`report::layout`], whose table lives in `snpkit_wire::report` for the guest and measure too),
//! AMD's VCEK extensions, the verdict table, the KDS URL forms and cache.
//!
//! ## What we take from the `sev` crate, and what we wrote instead
//! Used: `sev::Generation::identify_cpu` (CPUID family/model → product) and the bit-field types
//! `GuestPolicy` and `KeyInfo` for decoding the policy and key-info bits; its `AttestationReport`
//! parser serves as an oracle in our tests.
//! Written here instead, because `sev` 8.0 does not do it safely:
//! - report parsing ([`report::parse`]): `sev` maps unknown versions onto known layouts, fails on
//!   version 2 reports with a masked chip id and on CPU models it does not list, and enforces no
//!   reserved range; we keep the raw bytes and enforce them all, bytes after the signature included.
//! - the report signature: `sev` re-encodes its parsed struct and hashes that; we hash bytes
//!   0x000–0x29F as received.
//! - certificate chains ([`certs`], [`verifier`]): `sev` has no ASVK (VLEK) roots, does not pin the
//!   ARK, re-encodes the TBS before checking RSA-PSS, checks neither the PSS parameters nor validity
//!   dates, CRLs or the VCEK's TCB/hwID extensions against the report. We use `x509-cert` for
//!   parsing and RustCrypto `rsa`/`p384` for the maths, over the exact signed bytes.
//! - AMD's VCEK extensions ([`certs::amd_ext`]): hwID is raw bytes, not a DER OCTET STRING.
#![forbid(unsafe_code)]

pub mod certs;
pub mod emulated;
#[cfg(feature = "kds")]
pub mod gather;
#[cfg(feature = "kds")]
pub mod kds;
pub mod policy;
pub mod product;
pub mod report;
pub mod roots;
pub mod verdict;
pub mod verifier;

pub use policy::Policy;
pub use product::Product;
pub use verdict::{Check, EMULATED_BANNER, Verdict};
pub use verifier::{
    ConfigMatch, CrlInput, Endorsements, Reference, ReferenceConfig, SignatureMemo, Trust, verify,
};

/// An error and its causes on one line (`a: b: c`), for a verdict's detail or a recorded problem,
/// where only text travels on. Each error's message leaves its cause to `source()`, so nothing
/// is said twice.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
