//! Attestation: judging evidence, and the emulated PSP that produces it without hardware.
//!
//! Owns SNP report parsing and verification (signature, AMD certificate chains, policy, TCB, binding),
//! the AMD KDS client with its on-disk cache, and the emulated PSP's test signing chain.
#![forbid(unsafe_code)]
