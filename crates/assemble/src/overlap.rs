//! Outputs that are never inputs: the image folder is not the recipe folder (nor inside it, nor
//! around it), and `recipe.lock` is not one of the files the recipe reads. Both are checked with
//! `snpkit-fsguard`'s one mechanism (device and inode, symlinks followed), before anything is
//! fetched or written.

use crate::BuildError;
use snpkit_fsguard::{Input, refuse_nested, refuse_output_onto};
use snpkit_image::import::{self, HostKind};
use snpkit_recipe::{FirmwareSource, KernelSource, Recipe};
use std::path::{Path, PathBuf};

/// Refuses to build `recipe` into `images_dir` when its image folder `images_dir/<name>` is the
/// recipe folder, lies inside it (the next build would copy the image into itself) or holds it
/// (the swap would replace the recipe with the image).
pub fn refuse_image_over_recipe(images_dir: &Path, recipe: &Recipe) -> Result<(), BuildError> {
    Ok(refuse_nested(
        &images_dir.join(&recipe.name),
        "the image folder",
        &recipe.dir,
        "the recipe folder",
    )?)
}

/// Refuses to write `recipe.lock` over a file the recipe reads (`[[directories]] src = "."`
/// copies the recipe folder, lock included; a source may be a link to the lock): the lock would
/// pin itself, or replace an input.
pub(crate) fn refuse_lock_over_inputs(recipe: &Recipe, lock_path: &Path) -> Result<(), BuildError> {
    let mut paths: Vec<(String, PathBuf)> = vec![("recipe.toml".into(), recipe.file.clone())];
    for (i, f) in recipe.files.iter().enumerate() {
        paths.push((format!("files[{i}].src"), f.src.clone()));
    }
    for (i, a) in recipe.archives.iter().enumerate() {
        paths.push((format!("archives[{i}].src"), a.src.clone()));
    }
    for (i, d) in recipe.directories.iter().enumerate() {
        for e in import::host_entries(&d.src)? {
            if matches!(e.kind, HostKind::File { .. }) {
                paths.push((format!("a file of directories[{i}]"), e.path));
            }
        }
    }
    if let KernelSource::Local { path, .. } = &recipe.kernel {
        paths.push(("kernel.path".into(), path.clone()));
    }
    if let FirmwareSource::Local { path, .. } = &recipe.firmware {
        paths.push(("firmware.path".into(), path.clone()));
    }
    let mut inputs = Vec::new();
    for (what, path) in &paths {
        if let Some(input) = Input::stat(what, path)? {
            inputs.push(input);
        }
    }
    Ok(refuse_output_onto(lock_path, "recipe.lock", &inputs)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const RECIPE: &str = r#"
name = "app"
cmdline = ""
[kernel]
package = "linux-image-amd64"
[firmware]
source = "amdsev"
[[directories]]
src = "DIR"
dst = "/opt/app"
[entry]
argv = ["/opt/app/tool"]
[[launch]]
name = "one"
vcpus = 1
vcpu_type = "EPYC-v4"
vmm = "qemu"
guest_features = 1
policy = 0x30000
memory_mib = 512
"#;

    fn recipe(top: &Path, dir_src: &str) -> Recipe {
        let folder = top.join("app/recipes/app");
        std::fs::create_dir_all(folder.join("tree")).unwrap();
        std::fs::write(folder.join("tree/tool"), b"x").unwrap();
        let file = folder.join("recipe.toml");
        std::fs::write(&file, RECIPE.replace("DIR", dir_src)).unwrap();
        Recipe::load(&file).unwrap()
    }

    #[test]
    fn the_image_folder_never_overlaps_the_recipe_folder() {
        let top = tempfile::tempdir().unwrap();
        let r = recipe(top.path(), "tree");
        for (images, how) in [
            (top.path().join("app/recipes"), "the same folder as"),
            (top.path().join("app/recipes/app/tree"), "inside"),
            (top.path().to_path_buf(), "a folder holding"),
        ] {
            let err = refuse_image_over_recipe(&images, &r)
                .unwrap_err()
                .to_string();
            assert!(err.contains(how) && err.contains("recipe folder"), "{err}");
        }
        refuse_image_over_recipe(&top.path().join("images"), &r).unwrap();
    }

    #[test]
    fn the_lock_is_never_one_of_the_inputs() {
        let top = tempfile::tempdir().unwrap();
        let r = recipe(top.path(), ".");
        let lock = r.dir.join(snpkit_recipe::LOCK_FILE);
        // No lock yet: nothing to overwrite.
        refuse_lock_over_inputs(&r, &lock).unwrap();
        std::fs::write(&lock, b"old lock").unwrap();
        let err = refuse_lock_over_inputs(&r, &lock).unwrap_err().to_string();
        assert!(
            err.contains("directories[0]") && err.contains("recipe.lock"),
            "{err}"
        );

        let top = tempfile::tempdir().unwrap();
        let r = recipe(top.path(), "tree");
        let lock = r.dir.join(snpkit_recipe::LOCK_FILE);
        std::os::unix::fs::symlink("recipe.toml", &lock).unwrap();
        let err = refuse_lock_over_inputs(&r, &lock).unwrap_err().to_string();
        assert!(err.contains("a symlink to recipe.toml"), "{err}");
    }
}
