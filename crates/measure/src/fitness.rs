//! Whether a firmware can be used for measured direct boot: the check a build runs before it
//! accepts an OVMF, and `cargo xtask ovmf` after it built one.

use crate::ovmf::{Ovmf, OvmfError};

/// Why a firmware cannot be used for measured direct boot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnfitFirmware {
    #[error("not an OVMF image snpkit can measure")]
    NotOvmf(#[source] OvmfError),
    #[error(
        "it has no SNP_KERNEL_HASHES section, so the kernel, initrd and cmdline would not be bound to the launch \
         measurement; build the AmdSev OVMF with `cargo xtask ovmf`"
    )]
    NoKernelHashes,
}

/// Refuses a firmware that would not bind kernel, initrd and command line to the launch digest.
///
/// Only an AmdSev build has the SNP_KERNEL_HASHES section (and the hashes-table entry that says
/// where in it QEMU writes the table): a plain OvmfX64 boots a kernel, initrd and cmdline that
/// nothing binds to the launch measurement, so its attestation would prove nothing about the
/// appliance.
pub fn check_direct_boot_firmware(ovmf: &[u8]) -> Result<(), UnfitFirmware> {
    let parsed = Ovmf::parse(ovmf).map_err(UnfitFirmware::NotOvmf)?;
    if parsed.kernel_hashes_section().is_none() || parsed.hash_table_area().is_none() {
        return Err(UnfitFirmware::NoKernelHashes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::tests::{amdsev_like, image, metadata};

    #[test]
    fn only_a_firmware_that_binds_the_kernel_is_fit() {
        assert_eq!(check_direct_boot_firmware(&amdsev_like(0x1000)), Ok(()));
        // Metadata without an SNP_KERNEL_HASHES section (an OvmfX64 has SEV metadata too).
        let plain = image(&[], Some(metadata(&[(0x800000, 0x9000, 1)])));
        assert_eq!(
            check_direct_boot_firmware(&plain),
            Err(UnfitFirmware::NoKernelHashes)
        );
        // The section without the footer entry that places the table in it.
        let no_area = image(&[], Some(metadata(&[(0x810000, 0x1000, 0x10)])));
        assert_eq!(
            check_direct_boot_firmware(&no_area),
            Err(UnfitFirmware::NoKernelHashes)
        );
        let err = check_direct_boot_firmware(&[0x5a; 8192]).unwrap_err();
        assert!(matches!(err, UnfitFirmware::NotOvmf(_)), "{err:?}");
        // The message says what is wrong; the parser's reason is its source, said once.
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(!err.to_string().contains(&source), "{err}");
    }
}
