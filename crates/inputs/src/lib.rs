//! Build inputs: getting the bytes a recipe names, checked against their pins.
//!
//! Owns the content-addressed cache under the XDG cache directory, Debian packages (`apt-get download`,
//! then unpacked in Rust), kernel modules with their dependencies, and the AmdSev OVMF built from the
//! pinned Debian edk2 source. Knows nothing of image layout or measurement.
#![forbid(unsafe_code)]
