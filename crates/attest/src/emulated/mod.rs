//! The emulated PSP's signing side: a test chain shaped like AMD's, reports signed with it, and
//! the answer to a guest's report request.
//!
//! Used where no SNP hardware exists (the emulated launch). Every name in the chain says
//! `snpkit-EMULATED`; the verifier trusts it only when asked (`--allow-emulated`) and then says
//! EMULATED — NOT HARDWARE-BACKED in every verdict.
//!
//! Beside the chain, the emulated chip's secret ([`chip_secret`]) and MSG_KEY_REQ ([`key`]): keys
//! for sealed volumes, derived by a KDF of our own whose properties, not values, match a PSP's.

pub mod chain;
pub mod chip_secret;
mod error;
mod issue;
pub mod key;
pub mod psp;
pub mod report;

pub use chain::{CACHE_VERSION, ChainNames, EmulatedError, TestChain, VekSpec, default_dir};
pub use chip_secret::{ChipSecret, ChipSecretError};
pub use key::GuestContext;
pub use psp::{answer, certificate_table};
pub use report::{Cpuid, ReportFields, emulated_report, sign, sign_with};
