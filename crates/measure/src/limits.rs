//! The largest inputs a measurement reads. Every read of them is bounded by counting bytes
//! (`snpkit-fsguard`), never by the size a file reports; these constants are the bounds, and the
//! errors that enforce them name them.

/// A kernel image (a bzImage is 10–20 MiB); the same bound as a recipe's local kernel.
pub const MAX_KERNEL: u64 = snpkit_recipe::sources::MAX_KERNEL_FILE;
/// An initrd: QEMU loads it into guest memory whole.
pub const MAX_INITRD: u64 = 4 << 30;
/// An OVMF or SVSM image (an AmdSev OVMF is 4 MiB); the same bound as a recipe's local firmware.
pub const MAX_FIRMWARE: u64 = snpkit_recipe::sources::MAX_FIRMWARE_FILE;
/// An image's `cmdline` file (the kernel takes 2 KiB).
pub const MAX_CMDLINE_FILE: u64 = 64 << 10;
/// An image's `manifest.json` or `expected.json`.
pub const MAX_JSON: u64 = 16 << 20;
/// A file searched for an attestation report (`find_report`): a report is 1184 bytes, an HCL or
/// other container a few KiB.
pub const MAX_REPORT_BLOB: u64 = 1 << 20;
