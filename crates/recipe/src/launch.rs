//! Launch configurations: how one image is started, and so which digest the PSP will compute.
//!
//! A `[[launch]]` table is `snpkit_bundle::LaunchSpec`, the plain data that manifest.json and
//! expected.json carry too; this crate parses and validates it, and names what an outside check
//! (the measurement's reading of CPU model, VMM and guest features) found wrong with it.

/// What a check from outside this crate found wrong with one field of a launch configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchProblem {
    /// The key inside `[[launch]]`, e.g. `vcpu_type` (empty: the configuration as a whole).
    pub field: &'static str,
    pub problem: String,
    pub fix: String,
}
