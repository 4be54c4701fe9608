//! Launch configurations: how one image is started, and so which digest the PSP will compute.
//!
//! A `[[launch]]` table is `snpkit_bundle::LaunchSpec`, the plain data that manifest.json and
//! expected.json carry too; this crate parses and validates it, and reports what an outside check
//! (the measurement's reading of CPU model, VMM and guest features, as a
//! `snpkit_bundle::LaunchProblem`) found wrong with it against `recipe.toml`.

pub use snpkit_bundle::LaunchProblem;
