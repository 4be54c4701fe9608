//! Kernel modules and their dependencies.
//!
//! The guest's `/init` loads modules itself, in the order given here, without `modprobe`: so the
//! closure of dependencies and a dependencies-first order are worked out at build time.
//!
//! Debian's kernel packages ship no `modules.dep` (depmod writes it when the package is installed),
//! so dependencies are read where depmod reads them: the `depends=` entry of each module's
//! `.modinfo` ELF section. A local `modules_dir` that has a `modules.dep` uses that instead.

use crate::InputError;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// `sev-guest`, `sev_guest` and `kernel/…/sev-guest.ko.xz` all name the same module.
pub fn module_name(path_or_name: &str) -> String {
    let file = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// Where a module's direct dependencies come from.
enum Deps<'a> {
    /// `modules.dep`: path → dependency paths.
    Table(BTreeMap<String, Vec<String>>),
    /// The module files themselves, path → (possibly compressed) bytes.
    Files(&'a BTreeMap<String, Vec<u8>>),
}

/// What a kernel's module tree says about which module needs which.
pub struct ModuleDb<'a> {
    release: String,
    deps: Deps<'a>,
    /// Normalised module name → path relative to `lib/modules/<release>/`.
    by_name: BTreeMap<String, String>,
    /// Normalised names of modules built into the kernel image.
    builtin: BTreeSet<String>,
}

impl<'a> ModuleDb<'a> {
    /// From `modules.dep` (as depmod writes it) and `modules.builtin`.
    pub fn from_modules_dep(
        release: &str,
        modules_dep: &str,
        modules_builtin: &str,
    ) -> Result<ModuleDb<'a>, InputError> {
        let mut table = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        for (n, line) in modules_dep.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((module, rest)) = line.split_once(':') else {
                return Err(InputError::BadKernel {
                    what: format!("lib/modules/{release}/modules.dep"),
                    detail: format!("line {} has no ':' separator", n + 1),
                });
            };
            let module = module.trim().to_owned();
            by_name.insert(module_name(&module), module.clone());
            table.insert(module, rest.split_whitespace().map(str::to_owned).collect());
        }
        Ok(ModuleDb {
            release: release.to_owned(),
            deps: Deps::Table(table),
            by_name,
            builtin: builtin_names(modules_builtin),
        })
    }

    /// From the module files themselves (path → bytes, `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`).
    pub fn from_files(
        release: &str,
        files: &'a BTreeMap<String, Vec<u8>>,
        modules_builtin: &str,
    ) -> ModuleDb<'a> {
        let by_name = files
            .keys()
            .filter(|p| p.contains(".ko"))
            .map(|p| (module_name(p), p.clone()))
            .collect();
        ModuleDb {
            release: release.to_owned(),
            deps: Deps::Files(files),
            by_name,
            builtin: builtin_names(modules_builtin),
        }
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&module_name(name))
    }

    /// The module files to ship for `names`, dependencies first, each once. Built-in modules need
    /// no file and are left out; an unknown name is an error.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<String>, InputError> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        for name in names {
            let key = module_name(name);
            match self.by_name.get(&key) {
                Some(path) => self.visit(path, &mut done, &mut order, &mut Vec::new())?,
                None if self.builtin.contains(&key) => {}
                None => {
                    return Err(InputError::ModuleNotFound {
                        release: self.release.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(order)
    }

    fn bad(&self, detail: String) -> InputError {
        InputError::BadKernel {
            what: format!("kernel {} modules", self.release),
            detail,
        }
    }

    fn direct_deps(&self, path: &str) -> Result<Vec<String>, InputError> {
        match &self.deps {
            Deps::Table(table) => table.get(path).cloned().ok_or_else(|| {
                self.bad(format!(
                    "{path} is named as a dependency but has no line of its own"
                ))
            }),
            Deps::Files(files) => {
                let bytes = files
                    .get(path)
                    .ok_or_else(|| self.bad(format!("no file {path}")))?;
                let elf = decompress(path, bytes).map_err(|e| self.bad(format!("{path}: {e}")))?;
                let depends =
                    modinfo(&elf, "depends").map_err(|e| self.bad(format!("{path}: {e}")))?;
                let mut paths = Vec::new();
                for dep in depends
                    .iter()
                    .flat_map(|d| d.split(','))
                    .filter(|d| !d.is_empty())
                {
                    let p = self.by_name.get(&module_name(dep)).ok_or_else(|| {
                        self.bad(format!(
                            "{path} depends on {dep}, which the kernel package does not ship"
                        ))
                    })?;
                    paths.push(p.clone());
                }
                Ok(paths)
            }
        }
    }

    fn visit(
        &self,
        path: &str,
        done: &mut BTreeSet<String>,
        order: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Result<(), InputError> {
        if done.contains(path) {
            return Ok(());
        }
        if stack.iter().any(|p| p == path) {
            return Err(self.bad(format!("dependency cycle through {path}")));
        }
        stack.push(path.to_owned());
        for dep in self.direct_deps(path)? {
            self.visit(&dep, done, order, stack)?;
        }
        stack.pop();
        done.insert(path.to_owned());
        order.push(path.to_owned());
        Ok(())
    }
}

fn builtin_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(module_name)
        .collect()
}

/// The largest decompressed module (the biggest in Debian's kernels are a few tens of MiB).
const MAX_MODULE_ELF: u64 = 256 << 20;

/// A module file's ELF bytes, decompressed according to its extension, at most
/// [`MAX_MODULE_ELF`] bytes (a few KiB of xz can claim gigabytes).
pub fn decompress(path: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let decoder: Box<dyn Read + '_> = if path.ends_with(".ko.xz") {
        Box::new(liblzma::read::XzDecoder::new(bytes))
    } else if path.ends_with(".ko.zst") {
        Box::new(
            zstd::stream::read::Decoder::new(bytes)
                .map_err(|e| format!("cannot decompress: {e}"))?,
        )
    } else if path.ends_with(".ko.gz") {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        return Ok(bytes.to_vec());
    };
    let mut out = Vec::new();
    let mut bounded = snpkit_fsguard::Bounded::new(
        decoder,
        std::path::Path::new(path),
        "a decompressed kernel module",
        MAX_MODULE_ELF,
    );
    bounded
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress: {}", bounded.error(e, "decompress")))?;
    Ok(out)
}

/// The values of `key` in an ELF module's `.modinfo` section (NUL-separated `key=value` strings).
pub fn modinfo(elf: &[u8], key: &str) -> Result<Vec<String>, String> {
    use object::read::elf::ElfFile64;
    use object::{Object, ObjectSection};
    let file = ElfFile64::<object::Endianness>::parse(elf)
        .map_err(|e| format!("not an ELF module: {e}"))?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or("no .modinfo section")?;
    let data = section.data().map_err(|e| format!(".modinfo: {e}"))?;
    let prefix = format!("{key}=");
    Ok(data
        .split(|b| *b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .filter_map(|s| s.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DEP: &str = "\
kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz: kernel/drivers/virt/coco/tsm.ko.xz
kernel/drivers/virt/coco/tsm.ko.xz:
kernel/drivers/md/dm-verity.ko.xz: kernel/drivers/md/dm-bufio.ko.xz kernel/lib/reed_solomon/reed_solomon.ko.xz kernel/drivers/md/dm-mod.ko.xz
kernel/drivers/md/dm-bufio.ko.xz: kernel/drivers/md/dm-mod.ko.xz
kernel/drivers/md/dm-mod.ko.xz:
kernel/lib/reed_solomon/reed_solomon.ko.xz:
";

    #[test]
    fn resolves_dependencies_first_each_once() {
        let db = ModuleDb::from_modules_dep("6.12", DEP, "kernel/drivers/char/virtio_console.ko\n")
            .unwrap();
        let got = db
            .resolve(&["dm_verity".into(), "sev-guest".into(), "dm-mod".into()])
            .unwrap();
        assert_eq!(
            got,
            [
                "kernel/drivers/md/dm-mod.ko.xz",
                "kernel/drivers/md/dm-bufio.ko.xz",
                "kernel/lib/reed_solomon/reed_solomon.ko.xz",
                "kernel/drivers/md/dm-verity.ko.xz",
                "kernel/drivers/virt/coco/tsm.ko.xz",
                "kernel/drivers/virt/coco/sev-guest/sev-guest.ko.xz",
            ]
        );
    }

    #[test]
    fn builtin_needs_no_file_and_unknown_is_an_error() {
        let db = ModuleDb::from_modules_dep("6.12", DEP, "kernel/drivers/char/virtio_console.ko\n")
            .unwrap();
        assert!(db.resolve(&["virtio-console".into()]).unwrap().is_empty());
        let err = db.resolve(&["no-such-module".into()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("no module named \"no-such-module\""),
            "{err}"
        );
    }

    #[test]
    fn dangling_dependency_and_cycles_are_errors() {
        let db = ModuleDb::from_modules_dep("k", "a.ko: b.ko\n", "").unwrap();
        assert!(db.resolve(&["a".into()]).is_err());
        let db = ModuleDb::from_modules_dep("k", "a.ko: b.ko\nb.ko: a.ko\n", "").unwrap();
        assert!(
            db.resolve(&["a".into()])
                .unwrap_err()
                .to_string()
                .contains("cycle")
        );
        assert!(ModuleDb::from_modules_dep("k", "no separator\n", "").is_err());
    }

    #[test]
    fn garbage_module_file_is_an_error() {
        let mut files = BTreeMap::new();
        files.insert("kernel/x.ko.xz".to_owned(), b"not xz".to_vec());
        files.insert("kernel/y.ko".to_owned(), b"not elf".to_vec());
        let db = ModuleDb::from_files("k", &files, "");
        assert!(
            db.resolve(&["x".into()])
                .unwrap_err()
                .to_string()
                .contains("decompress")
        );
        assert!(
            db.resolve(&["y".into()])
                .unwrap_err()
                .to_string()
                .contains("ELF")
        );
    }
}
