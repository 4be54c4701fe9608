//! The emulated PSP's signing side: a test chain shaped like AMD's, and reports signed with it.
//!
//! Used where no SNP hardware exists (the emulated launch). Every name in the chain says
//! `snpkit-EMULATED`; the verifier trusts it only when asked (`--allow-emulated`) and then says
//! EMULATED — NOT HARDWARE-BACKED in every verdict.
//!
//! Beside the chain, the emulated chip's secret ([`chip_secret`]) and MSG_KEY_REQ ([`key`]): keys
//! for sealed volumes, derived by a KDF of our own whose properties, not values, match a PSP's.

pub mod chain;
pub mod chip_secret;
pub mod key;
pub mod report;

pub use chain::{ChainNames, EmulatedError, TestChain, VekSpec, default_dir};
pub use chip_secret::{ChipSecret, ChipSecretError};
pub use key::GuestContext;
pub use report::{Cpuid, EmulatedLaunch, emulated_report, sign, sign_with};
