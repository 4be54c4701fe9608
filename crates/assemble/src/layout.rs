//! Where the appliance lives. Initramfs layout: the appliance is the initramfs. Verity layout: the
//! appliance becomes a squashfs root with a dm-verity tree, and the initramfs holds only what
//! `/init` needs.

use crate::BuildError;
use crate::tree::base_dirs;
use snpkit_image::verity::VerityParams;
use snpkit_image::{Tree, rootfs};
use snpkit_inputs::Progress;
use snpkit_recipe::{Layout, Recipe, RootFilesystem, VeritySpec};
use snpkit_wire::init::Root;

/// The initramfs to finish, where `/init` finds the root, and the verity root if there is one.
pub(crate) struct LaidOut {
    pub initramfs: Tree,
    pub root: Root,
    pub verity: Option<VerityRoot>,
}

/// A dm-verity protected root filesystem, with every parameter the command line carries.
pub(crate) struct VerityRoot {
    /// The filesystem image (`rootfs.img`).
    pub rootfs: Vec<u8>,
    /// The hash device (`rootfs.verity`): the tree alone, no superblock.
    pub hash_device: Vec<u8>,
    pub filesystem: RootFilesystem,
    /// Root hash, salt, geometry and corruption handling, checked.
    pub params: VerityParams,
}

pub(crate) fn lay_out(
    recipe: &Recipe,
    tree: Tree,
    epoch: u32,
    progress: &dyn Progress,
) -> Result<LaidOut, BuildError> {
    match &recipe.layout {
        Layout::Initramfs => Ok(LaidOut {
            initramfs: tree,
            root: Root::Initramfs,
            verity: None,
        }),
        Layout::Verity(spec) => {
            progress.set_message(&format!(
                "writing the squashfs root ({} entries)",
                tree.len()
            ));
            let rootfs = rootfs::squashfs(&tree, epoch, u64::from(spec.data_block_size))?;
            progress.set_message("hashing the dm-verity tree");
            let verity = verity_root(rootfs, spec)?;
            let mut small = Tree::new();
            base_dirs(&mut small)?;
            let root = Root::Verity {
                fstype: spec.filesystem.name().to_owned(),
                data_device: "/dev/vda".into(),
                hash_device: "/dev/vdb".into(),
            };
            Ok(LaidOut {
                initramfs: small,
                root,
                verity: Some(verity),
            })
        }
    }
}

/// A dm-verity tree over the root filesystem.
fn verity_root(rootfs: Vec<u8>, spec: &VeritySpec) -> Result<VerityRoot, BuildError> {
    use snpkit_image::verity::{
        self, BlockSize, Superblock, VerityOptions, salt_from_seed, uuid_from_seed,
    };
    let bad = |what: &str, e: &dyn std::fmt::Display| BuildError::Verity(format!("{what}: {e}"));
    let salt = salt_from_seed(&spec.seed, "salt");
    let uuid = uuid_from_seed(&spec.seed, "uuid");
    let mut options = VerityOptions::new(salt, uuid);
    // No superblock: the kernel never reads it (every parameter is on the measured command line),
    // so a changed superblock byte would go unnoticed; without one, every byte of the hash device
    // is part of the tree and checked.
    options.superblock = Superblock::None;
    options.tree.hash = spec.hash;
    options.tree.data_block_size =
        BlockSize::new(spec.data_block_size).map_err(|e| bad("data block size", &e))?;
    options.tree.hash_block_size =
        BlockSize::new(spec.hash_block_size).map_err(|e| bad("hash block size", &e))?;
    let formatted = verity::format(&rootfs, &options).map_err(|e| bad("hash tree", &e))?;
    let params = formatted
        .kernel_params(spec.on_corruption, spec.check)
        .map_err(|e| bad("parameters", &e))?;
    Ok(VerityRoot {
        rootfs,
        hash_device: formatted.hash_area,
        filesystem: spec.filesystem,
        params,
    })
}
