//! Byte offsets of the ATTESTATION_REPORT structure: the table in `snpkit_wire::report`, shared
//! with the guest and the measurement, under the name this crate's readers know.

pub use snpkit_wire::report::*;
