//! Reference values: the SEV-SNP launch digest the AMD security processor will compute.
//!
//! Owns the launch digest (OVMF pages, SEV hashes table, VMSAs), the hashes-table page as QEMU builds it,
//! and the search that explains a mismatching digest. Knows nothing of QEMU processes or of reports.
#![forbid(unsafe_code)]

pub mod expected;
