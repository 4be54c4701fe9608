//! Images: the reproducible bytes snpkit boots.
//!
//! Owns the initramfs writer (cpio newc + gzip), the read-only root filesystem, the dm-verity hash tree
//! and the build manifest. Every function here takes values and returns bytes or writes to a writer:
//! no network, no processes, no knowledge of recipes' file format or of QEMU.
#![forbid(unsafe_code)]
