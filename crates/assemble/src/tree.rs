//! The appliance's file tree: the recipe's packages, archives, folders, files and symlinks on top
//! of the folders every image has, checked for paths that belong to `/init` and for a runnable
//! entry point.

use crate::BuildError;
use crate::closed::{Taken, close};
use crate::entry::check_entry;
use crate::options::Reporter;
use crate::packages::add_packages;
use crate::paths::relative;
use snpkit_bundle::{Input, InputKind};
use snpkit_image::{Tree, import};
use snpkit_inputs::Cache;
use snpkit_recipe::{LockedDeb, LockedFile, Recipe};

/// Paths our `/init` owns inside every image.
const RESERVED: &[&str] = &["init", "etc/snpkit"];

/// The appliance's tree and the inputs it was made from (packages, then local files).
pub(crate) struct Appliance {
    pub tree: Tree,
    pub inputs: Vec<Input>,
    /// What the closure took from the dependency packages: (package, path).
    pub taken: Taken,
}

/// The tree of the recipe's files, closed (every program's interpreter and libraries in it, no
/// dangling symlink). `lock` runs it too, so a lock never pins an image the build refuses.
pub(crate) fn appliance(
    recipe: &Recipe,
    packages: &[LockedDeb],
    files: &[LockedFile],
    cache: &Cache,
    reporter: &dyn Reporter,
) -> Result<Appliance, BuildError> {
    let mut tree = Tree::new();
    base_dirs(&mut tree)?;
    let (mut inputs, pool) = add_packages(recipe, packages, cache, reporter, &mut tree)?;
    for a in &recipe.archives {
        let bytes = snpkit_fsguard::read(&a.src, "an archive", import::MAX_MEMBER)?;
        import::add_tar(&mut tree, &bytes, &a.dst, &relative(recipe, &a.src))?;
    }
    for d in &recipe.directories {
        import::add_host_dir(&mut tree, &d.src, &d.dst)?;
    }
    for f in &recipe.files {
        let bytes = snpkit_fsguard::read(&f.src, "a file", import::MAX_MEMBER)?;
        tree.add_file(&f.dst, bytes, f.mode)?;
    }
    for s in &recipe.symlinks {
        tree.add_symlink(&s.path, &s.target)?;
    }
    // A volume's mount point must exist in a read-only (verity) root; /init mounts over it.
    for v in &recipe.volumes {
        if tree.get(&v.mount).is_none() {
            tree.add_dir(&v.mount, 0o755)?;
        }
    }
    for (path, _) in tree.iter() {
        if let Some(r) = RESERVED
            .iter()
            .find(|r| path == **r || path.starts_with(&format!("{r}/")))
        {
            return Err(BuildError::Reserved {
                path: format!("/{path}"),
                why: format!("/{r} belongs to snpkit's init"),
            });
        }
    }
    accounts(recipe, &mut tree)?;
    let mounts: Vec<String> = recipe.volumes.iter().map(|v| v.mount.clone()).collect();
    let taken = close(&mut tree, &pool, &mounts)?;
    check_entry(recipe, &tree)?;
    for f in files {
        // Symlinks and folders are entries of the initramfs; the manifest lists bytes.
        if let LockedFile::File {
            path, sha256, size, ..
        } = f
        {
            inputs.push(Input {
                kind: InputKind::File,
                name: path.clone(),
                version: None,
                sha256: *sha256,
                size: *size,
            });
        }
    }
    Ok(Appliance {
        tree,
        inputs,
        taken,
    })
}

/// `/etc/passwd` and `/etc/group` for `[entry] user`: root and the entry's account, nothing else
/// (so `id`, `ls -l` and servers that look their user up find it). The working folder must be a
/// folder of the image.
fn accounts(recipe: &Recipe, tree: &mut Tree) -> Result<(), BuildError> {
    let entry = &recipe.entry;
    if let Some(dir) = &entry.workdir
        && !matches!(tree.resolve(dir), Ok((_, n)) if n.kind == snpkit_image::NodeKind::Dir)
    {
        return Err(snpkit_recipe::RecipeError::Invalid {
            path: recipe.file.clone(),
            key: "entry.workdir".into(),
            problem: format!("{dir} is not a folder in the image"),
            fix: "add the folder (with [[directories]], a package or a volume mount point) or correct the path"
                .into(),
        }
        .into());
    }
    let Some(u) = &entry.user else {
        return Ok(());
    };
    for file in ["etc/passwd", "etc/group"] {
        if tree.get(file).is_some() {
            return Err(BuildError::Reserved {
                path: format!("/{file}"),
                why: format!(
                    "[entry] user = {:?} makes snpkit write it; remove the recipe's own copy (or the \
                     package's, with include) or leave user out and provide the account yourself",
                    u.user
                ),
            });
        }
    }
    let home = entry.workdir.as_deref().unwrap_or("/");
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\n{}:x:{}:{}:{}:{home}:/sbin/nologin\n",
        u.user, u.uid, u.gid, u.user
    );
    let mut group = "root:x:0:\n".to_owned();
    if u.gid != 0 {
        group.push_str(&format!("{}:x:{}:\n", u.group, u.gid));
    }
    tree.add_file("etc/passwd", passwd.into_bytes(), 0o644)?;
    tree.add_file("etc/group", group.into_bytes(), 0o644)?;
    Ok(())
}

/// The folders (and `/dev/console`) every image has, the appliance's tree and a verity
/// layout's small initramfs alike.
pub(crate) fn base_dirs(tree: &mut Tree) -> Result<(), BuildError> {
    for (dir, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("etc", 0o755),
    ] {
        tree.add_dir(dir, mode)?;
    }
    // The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
    tree.add_char_device("dev/console", 5, 1, 0o600)?;
    Ok(())
}
