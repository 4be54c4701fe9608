//! Where the appliance's files come from, per `InitConfig.root`.

use anyhow::{Result, bail};
use snpkit_wire::init::Root;

/// The root file system is ready for the entry point.
#[derive(Debug)]
pub struct RootReady;

pub fn prepare(root: &Root) -> Result<RootReady> {
    match root {
        // The initramfs is already our root.
        Root::Initramfs => Ok(RootReady),
        Root::Verity { .. } => bail!(
            "this /init does not support dm-verity roots yet (InitConfig.root = verity); build the image with an initramfs root"
        ),
    }
}
