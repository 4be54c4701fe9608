//! Finishing the initramfs: the kernel's modules in load order, `/init` and the configuration it
//! reads, then the cpio archive, compressed.

use crate::BuildError;
use snpkit_bundle::{Input, InputKind, Sha256Sum};
use snpkit_image::{Tree, cpio, gzip};
use snpkit_inputs::Progress;
use snpkit_inputs::kernel::KernelFiles;
use snpkit_recipe::{Recipe, SecretSpec};
use snpkit_wire::init::{
    Account, Entry, INIT_CONFIG_PATH, INIT_SCHEMA, InitConfig, Network, Root, Volume,
};

/// The compressed initramfs (`initrd.cpio.gz`) and the inputs added to it (modules, then `/init`).
pub(crate) struct Initrd {
    pub bytes: Vec<u8>,
    pub inputs: Vec<Input>,
}

/// What goes into the initramfs besides the tree the layout left there.
pub(crate) struct InitParts<'a> {
    pub kernel: &'a KernelFiles,
    /// Where `/init` finds the appliance's root.
    pub root: Root,
    /// The static guest `/init` binary.
    pub guest_init: &'a [u8],
    pub epoch: u32,
}

pub(crate) fn initrd(
    recipe: &Recipe,
    mut initramfs: Tree,
    parts: InitParts<'_>,
    progress: &dyn Progress,
) -> Result<Initrd, BuildError> {
    let InitParts {
        kernel,
        root,
        guest_init,
        epoch,
    } = parts;
    let mut inputs = Vec::new();
    let module_root = format!("lib/modules/{}", kernel.release);
    let mut module_paths = Vec::new();
    for rel in &kernel.load_order {
        let data = kernel
            .modules
            .get(rel)
            .cloned()
            .ok_or_else(|| BuildError::ModuleMissing {
                release: kernel.release.clone(),
                module: rel.clone(),
                recipe: recipe.name.clone(),
            })?;
        let path = format!("{module_root}/{rel}");
        inputs.push(Input {
            kind: InputKind::KernelModule,
            name: rel.clone(),
            version: None,
            sha256: Sha256Sum::of(&data),
            size: data.len() as u64,
        });
        initramfs.add_file(&path, data, 0o644)?;
        module_paths.push(format!("/{path}"));
    }
    let init_config = InitConfig {
        schema: INIT_SCHEMA,
        appliance: recipe.name.clone(),
        entry: Entry {
            argv: recipe.entry.argv.clone(),
            env: recipe.entry.env.clone(),
            log: recipe.entry.log,
            user: recipe.entry.user.as_ref().map(|u| Account {
                uid: u.uid,
                gid: u.gid,
                groups: vec![u.gid],
            }),
            workdir: recipe.entry.workdir.clone(),
        },
        modules: module_paths,
        root,
        volumes: recipe
            .volumes
            .iter()
            .map(|v| Volume {
                name: v.name.clone(),
                mount: v.mount.clone(),
                key: v.key.clone(),
            })
            .collect(),
        secrets: recipe.secrets.iter().map(SecretSpec::init_secret).collect(),
        network: recipe.network.as_ref().map(|n| Network {
            address: n.address,
            prefix: snpkit_recipe::USER_NET_PREFIX,
        }),
    };
    let mut init_json = serde_json::to_vec_pretty(&init_config).map_err(BuildError::InitConfig)?;
    init_json.push(b'\n');
    initramfs.add_file(INIT_CONFIG_PATH, init_json, 0o644)?;
    initramfs.add_file("/init", guest_init.to_vec(), 0o755)?;
    inputs.push(Input {
        kind: InputKind::GuestInit,
        name: "snpkit-init".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        sha256: Sha256Sum::of(guest_init),
        size: guest_init.len() as u64,
    });
    progress.set_message(&format!(
        "writing the initramfs ({} entries, {} MB)",
        initramfs.len(),
        initramfs.file_bytes() / 1_000_000
    ));
    let mut cpio_bytes =
        Vec::with_capacity(initramfs.file_bytes() as usize + initramfs.len() * 256);
    cpio::write_newc(&initramfs, epoch, &mut cpio_bytes)?;
    progress.set_message("compressing the initramfs");
    let bytes = gzip::gzip(&cpio_bytes, gzip::LEVEL)?;
    Ok(Initrd { bytes, inputs })
}
