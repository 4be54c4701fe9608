//! The firmware check the build runs before it accepts an OVMF.

use snpkit_measure::Ovmf;

/// Why `ovmf` cannot be used for measured direct boot, if it cannot.
///
/// Only an AmdSev build has the SNP_KERNEL_HASHES section: a plain OvmfX64 boots a kernel, initrd
/// and cmdline that nothing binds to the launch measurement, so its attestation would prove
/// nothing about the appliance.
pub fn check(ovmf: &[u8]) -> Result<(), String> {
    let parsed =
        Ovmf::parse(ovmf).map_err(|e| format!("not an OVMF image snpkit can measure: {e}"))?;
    if parsed.kernel_hashes_section().is_none() || parsed.hash_table_area().is_none() {
        return Err("it has no SNP_KERNEL_HASHES section, so the kernel, initrd and cmdline would not be bound to the \
                    launch measurement; build the AmdSev OVMF with `cargo xtask ovmf`"
            .into());
    }
    Ok(())
}
