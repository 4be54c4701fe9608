//! Launches: QEMU for SEV-SNP hosts and for the emulated launch.
//!
//! Owns the QEMU argv built from one launch description, the supervision of the QEMU process (console
//! log, deadline, clean shutdown) and the host side of the host ⇄ guest channel. Knows nothing of
//! report verification.
#![forbid(unsafe_code)]
