//! Kernel modules from the initramfs, loaded in the order the image builder wrote (dependencies
//! first). Debian's modules are `.ko.xz`; the kernel decompresses them itself when asked with
//! MODULE_INIT_COMPRESSED_FILE, so no decompressor is needed in the guest.

use crate::console::say;
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module};
use std::fs::File;

/// `include/uapi/linux/module.h`; nix does not name this flag, bitflags keeps unknown bits.
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

pub fn flags_for(path: &str) -> ModuleInitFlags {
    let compressed = [".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| path.ends_with(ext));
    if compressed {
        ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
    } else {
        ModuleInitFlags::empty()
    }
}

pub fn load_all(paths: &[String]) -> Result<()> {
    for path in paths {
        let file = File::open(path).with_context(|| format!("opening kernel module {path}"))?;
        match finit_module(&file, c"", flags_for(path)) {
            Ok(()) => say!("loaded {path}"),
            Err(Errno::EEXIST) => say!("{path}: already loaded"),
            // A driver whose device this machine lacks (sev-guest outside an SNP guest) refuses
            // to load with ENODEV; the kernel decided that from hardware state, not from the host.
            Err(Errno::ENODEV) => say!("{path}: no such device on this machine, not loaded"),
            Err(errno) => {
                return Err(errno).with_context(|| format!("loading kernel module {path}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_modules_ask_the_kernel_to_decompress() {
        assert_eq!(flags_for("/lib/modules/x/tsm.ko.xz").bits(), 4);
        assert_eq!(flags_for("/lib/modules/x/tsm.ko.zst").bits(), 4);
        assert_eq!(flags_for("/lib/modules/x/tsm.ko").bits(), 0);
    }
}
