//! Test support shared by every crate's tests, the end-to-end tests and xtask's developer commands
//! (`fuzz`, `bench`): one place for what they all need and used to repeat.
//!
//! Owns the lookup of the vendored vectors ([`vectors`]), a seedable RNG for picking test inputs
//! ([`rng`]), small recipe fixtures ([`recipe`]) and the check that an error chain says each thing
//! once ([`errors`]). Must not know any snpkit crate (it has no dependencies, so any crate can use
//! it without a cycle), and is only ever a dev-dependency of the shipped crates: the architecture
//! test refuses it as a normal dependency of anything under `crates/`.
#![forbid(unsafe_code)]

pub mod errors;
pub mod recipe;
pub mod rng;
pub mod vectors;
