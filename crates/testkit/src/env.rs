//! Files a test run is handed through the environment: things too big or too slow to make in a
//! test (the AmdSev firmware, the sev-snp-measure oracle). `cargo xtask test` prepares and names
//! them; run alone, a test that needs one fails saying how to get it, and never skips itself.

use std::path::PathBuf;

/// The AmdSev OVMF that `cargo xtask ovmf` builds, named by `SNPKIT_OVMF`.
pub fn amdsev_ovmf() -> PathBuf {
    required_file(
        "SNPKIT_OVMF",
        "the AmdSev OVMF",
        "run `cargo xtask ovmf` and set SNPKIT_OVMF to the OVMF.fd it builds (`cargo xtask test` \
         does both)",
    )
}

/// sev-snp-measure 0.0.13 (the oracle of the measurement), named by `SNPKIT_SEV_SNP_MEASURE`.
pub fn sev_snp_measure() -> PathBuf {
    required_file(
        "SNPKIT_SEV_SNP_MEASURE",
        "sev-snp-measure 0.0.13",
        "run `cargo xtask oracles` and set SNPKIT_SEV_SNP_MEASURE to the path it prints (`cargo \
         xtask test` does both)",
    )
}

/// The file `var` names; panics saying `what` is missing and how to `fix` it when it names none.
fn required_file(var: &str, what: &str, fix: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_default();
    assert!(path.is_file(), "{what} is missing ({var}={path:?}): {fix}");
    path
}
