//! The kernel and the module files a recipe ships, from a Debian kernel package or from disk.

use crate::InputError;
use crate::deb::{DebEntryKind, data_entries};
use crate::modules::ModuleDb;
use std::collections::BTreeMap;
use std::path::Path;

/// A kernel image plus the module files the recipe asked for (with dependencies).
#[derive(Debug, Clone)]
pub struct KernelFiles {
    /// `uname -r`.
    pub release: String,
    pub vmlinuz: Vec<u8>,
    /// Module paths relative to `lib/modules/<release>/`, in load order.
    pub load_order: Vec<String>,
    /// Module path → file bytes (as shipped, usually `.ko.xz`).
    pub modules: BTreeMap<String, Vec<u8>>,
}

/// Reads the kernel and the wanted modules out of a Debian kernel package.
pub fn from_deb(
    deb: &[u8],
    what: &str,
    module_names: &[String],
) -> Result<KernelFiles, InputError> {
    // Debian moved modules from /lib to /usr/lib with the usr merge; accept both.
    let modules_rel = |p: &str| -> Option<(String, String)> {
        let rest = p
            .strip_prefix("usr/")
            .unwrap_or(p)
            .strip_prefix("lib/modules/")?;
        let (release, file) = rest.split_once('/')?;
        Some((release.to_owned(), file.to_owned()))
    };
    let want = |p: &str| p.starts_with("boot/vmlinuz-") || modules_rel(p).is_some();
    let entries = data_entries(deb, what, &want)?;

    let bad = |detail: String| InputError::BadKernel {
        what: what.to_owned(),
        detail,
    };
    let mut vmlinuz = None;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut release_of_modules = None;
    for e in entries {
        let DebEntryKind::File(data) = e.kind else {
            continue;
        };
        if let Some(release) = e.path.strip_prefix("boot/vmlinuz-") {
            if vmlinuz.is_some() {
                return Err(bad("more than one boot/vmlinuz-* in the package".into()));
            }
            vmlinuz = Some((release.to_owned(), data));
        } else if let Some((release, file)) = modules_rel(&e.path) {
            release_of_modules.get_or_insert(release);
            files.insert(file, data);
        }
    }
    let Some((release, vmlinuz)) = vmlinuz else {
        return Err(bad(
            "no boot/vmlinuz-* in the package: is it a linux-image package?".into(),
        ));
    };
    if release_of_modules.as_deref().is_some_and(|r| r != release) {
        return Err(bad(format!(
            "kernel {release} but modules for {release_of_modules:?}"
        )));
    }
    select(release, vmlinuz, files, module_names)
}

/// A kernel image on disk, with modules from a `lib/modules/<release>` folder when given.
pub fn from_disk(
    image: Vec<u8>,
    modules_dir: Option<&Path>,
    module_names: &[String],
) -> Result<KernelFiles, InputError> {
    let Some(dir) = modules_dir else {
        if !module_names.is_empty() {
            return Err(InputError::BadKernel {
                what: "kernel.modules_dir".into(),
                detail: "the recipe asks for modules but names no modules_dir for its local kernel"
                    .into(),
            });
        }
        return Ok(KernelFiles {
            release: "local".into(),
            vmlinuz: image,
            load_order: Vec::new(),
            modules: BTreeMap::new(),
        });
    };
    let release = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let read = |rel: &str| {
        let p = dir.join(rel);
        std::fs::read(&p).map_err(InputError::io("read", p))
    };
    let dep = String::from_utf8_lossy(&read("modules.dep")?).into_owned();
    let builtin = read("modules.builtin")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let db = ModuleDb::from_modules_dep(&release, &dep, &builtin)?;
    let load_order = db.resolve(module_names)?;
    let mut modules = BTreeMap::new();
    for rel in &load_order {
        modules.insert(rel.clone(), read(rel)?);
    }
    Ok(KernelFiles {
        release,
        vmlinuz: image,
        load_order,
        modules,
    })
}

fn select(
    release: String,
    vmlinuz: Vec<u8>,
    mut files: BTreeMap<String, Vec<u8>>,
    module_names: &[String],
) -> Result<KernelFiles, InputError> {
    let builtin = files
        .get("modules.builtin")
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let load_order = ModuleDb::from_files(&release, &files, &builtin).resolve(module_names)?;
    let mut modules = BTreeMap::new();
    for rel in &load_order {
        let data = files.remove(rel).ok_or_else(|| InputError::BadKernel {
            what: format!("kernel {release}"),
            detail: format!("modules.dep names {rel}, but the package has no such file"),
        })?;
        modules.insert(rel.clone(), data);
    }
    Ok(KernelFiles {
        release,
        vmlinuz,
        load_order,
        modules,
    })
}
