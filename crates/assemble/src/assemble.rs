//! `cargo xtask build`: every input checked against the lock, the tree assembled, the image
//! written. [`build`] runs the steps in order, each a function with a typed result:
//!
//! ```text
//! check::check ─▶ CheckedLock ─▶ fetch::fetch ─▶ Fetched (kernel, firmware)
//!   tree::appliance ─▶ Appliance ─▶ layout::lay_out ─▶ LaidOut (initramfs tree, root, VerityRoot)
//!   initramfs::initrd ─▶ Initrd ─▶ cmdline ─▶ manifest::manifest ─▶ predict (expected.json)
//!   ─▶ snpkit_bundle::write_image
//! ```

use crate::check::check;
use crate::fetch::fetch;
use crate::initramfs::{InitParts, initrd};
use crate::layout::{VerityRoot, lay_out};
use crate::manifest::{Made, manifest};
use crate::tree::appliance;
use crate::{BuildError, BuildOptions};
use snpkit_bundle::{Expected, Manifest, MeasuredFiles, files, write_image};
use snpkit_recipe::{CmdlineContext, Recipe, VerityContext, render_cmdline};
use std::path::PathBuf;

#[derive(Debug)]
pub struct BuiltImage {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The prediction written beside it.
    pub expected: Expected,
    /// What the build did not do and the appliance may need (maintainer scripts not run).
    pub warnings: Vec<String>,
    /// Files the closure took from the dependency packages, as `package /path`.
    pub from_dependencies: Vec<String>,
}

pub fn build(
    recipe: &Recipe,
    recipe_text: &[u8],
    opts: &BuildOptions<'_>,
) -> Result<BuiltImage, BuildError> {
    let checked = check(recipe, recipe_text, opts)?;
    let fetched = fetch(recipe, &checked.lock, opts)?;

    let step = opts.reporter.step("assembling the file tree");
    let appliance = appliance(
        recipe,
        &checked.lock.packages,
        &checked.lock.files,
        opts.cache,
        opts.reporter,
    )?;
    let from_dependencies: Vec<String> = appliance
        .taken
        .iter()
        .map(|(package, path)| format!("{package} {path}"))
        .collect();
    let laid = lay_out(recipe, appliance.tree, checked.epoch, &*step)?;
    let initrd = initrd(
        recipe,
        laid.initramfs,
        InitParts {
            kernel: &fetched.kernel,
            root: laid.root,
            guest_init: opts.guest_init,
            epoch: checked.epoch,
        },
        &*step,
    )?;
    drop(step);

    let cmdline = cmdline(recipe, &fetched.kernel.release, laid.verity.as_ref())?;
    let mut artifacts: Vec<(&str, &[u8])> = vec![
        (files::KERNEL, &fetched.kernel.vmlinuz),
        (files::INITRD, &initrd.bytes),
        (files::CMDLINE, cmdline.as_bytes()),
        (files::FIRMWARE, &fetched.firmware),
    ];
    if let Some(v) = &laid.verity {
        artifacts.push((files::ROOTFS, &v.rootfs));
        artifacts.push((files::VERITY, &v.hash_device));
    }
    let inputs = [fetched.inputs, appliance.inputs, initrd.inputs].concat();
    let manifest = manifest(
        recipe,
        &checked.lock,
        &opts.tools,
        Made {
            epoch: checked.epoch,
            kernel_release: &fetched.kernel.release,
            cmdline: &cmdline,
            artifacts: &artifacts,
            inputs,
            verity: laid.verity.as_ref(),
        },
    );
    let measured = MeasuredFiles {
        firmware: &fetched.firmware,
        kernel: &fetched.kernel.vmlinuz,
        initrd: &initrd.bytes,
        cmdline: cmdline.as_bytes(),
    };
    let expected = (opts.predict)(&recipe.name, &measured, &recipe.launch).map_err(|source| {
        BuildError::Prediction {
            recipe: recipe.name.clone(),
            source,
        }
    })?;
    let manifest_json = manifest.to_json();
    let expected_json = expected.to_json();
    artifacts.push((files::MANIFEST, manifest_json.as_bytes()));
    artifacts.push((files::EXPECTED, expected_json.as_bytes()));
    let image = write_image(opts.images_dir, &recipe.name, &artifacts)?;
    Ok(BuiltImage {
        dir: image.path().to_owned(),
        manifest,
        expected,
        warnings: script_warnings(&checked.lock),
        from_dependencies,
    })
}

/// One line per package whose installation scripts were not run, naming them: users, groups,
/// alternatives or caches they would have made are the recipe's to provide.
pub fn script_warnings(lock: &snpkit_recipe::Lock) -> Vec<String> {
    lock.packages
        .iter()
        .filter(|d| !d.maintainer_scripts.is_empty())
        .map(|d| {
            format!(
                "{} {} has {} that snpkit does not run (it only unpacks files): provide what it would \
                 have made (users in /etc/passwd, symlinks, generated files) through the recipe if the \
                 appliance needs it",
                d.name,
                d.version,
                d.maintainer_scripts.join(" and ")
            )
        })
        .collect()
}

/// The kernel command line, rendered from the recipe's template with the verity parameters.
fn cmdline(
    recipe: &Recipe,
    kernel_release: &str,
    verity: Option<&VerityRoot>,
) -> Result<String, BuildError> {
    let ctx = CmdlineContext {
        name: recipe.name.clone(),
        layout: recipe.layout.name(),
        kernel_release: kernel_release.to_owned(),
        vars: recipe.vars.clone(),
        verity: verity.map(|v| VerityContext {
            arg: v.params.to_cmdline_arg(),
            root_hash: hex::encode(&v.params.fields().root_hash),
            salt: hex::encode(&v.params.fields().salt),
        }),
    };
    Ok(render_cmdline(recipe, &ctx)?)
}
