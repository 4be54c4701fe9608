//! Kernel modules and their dependencies, from `modules.dep` and `modules.builtin`.
//!
//! The guest's `/init` loads modules itself, in the order given here, without `modprobe`: so the
//! closure of dependencies and a dependencies-first order are worked out at build time.

use crate::InputError;
use std::collections::{BTreeMap, BTreeSet};

/// What a kernel's `modules.dep` and `modules.builtin` say.
#[derive(Debug, Clone)]
pub struct ModuleDb {
    release: String,
    /// Module path (relative to `lib/modules/<release>/`) → its direct dependencies' paths.
    deps: BTreeMap<String, Vec<String>>,
    /// Normalised module name → path.
    by_name: BTreeMap<String, String>,
    /// Normalised names of modules built into the kernel image.
    builtin: BTreeSet<String>,
}

/// `sev-guest`, `sev_guest` and `kernel/…/sev-guest.ko.xz` all name the same module.
pub fn module_name(path_or_name: &str) -> String {
    let file = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

impl ModuleDb {
    pub fn parse(release: &str, modules_dep: &str, modules_builtin: &str) -> Result<ModuleDb, InputError> {
        let mut deps = BTreeMap::new();
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
            let list: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            by_name.insert(module_name(&module), module.clone());
            deps.insert(module, list);
        }
        let builtin = modules_builtin.lines().filter(|l| !l.trim().is_empty()).map(module_name).collect();
        Ok(ModuleDb { release: release.to_owned(), deps, by_name, builtin })
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
                None => return Err(InputError::ModuleNotFound { release: self.release.clone(), name: name.clone() }),
            }
        }
        Ok(order)
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
            return Err(InputError::BadKernel {
                what: format!("lib/modules/{}/modules.dep", self.release),
                detail: format!("dependency cycle through {path}"),
            });
        }
        let Some(deps) = self.deps.get(path) else {
            return Err(InputError::BadKernel {
                what: format!("lib/modules/{}/modules.dep", self.release),
                detail: format!("{path} is named as a dependency but has no line of its own"),
            });
        };
        stack.push(path.to_owned());
        for dep in deps {
            self.visit(dep, done, order, stack)?;
        }
        stack.pop();
        done.insert(path.to_owned());
        order.push(path.to_owned());
        Ok(())
    }
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
        let db = ModuleDb::parse("6.12", DEP, "kernel/drivers/char/virtio_console.ko\n").unwrap();
        let got = db.resolve(&["dm_verity".into(), "sev-guest".into(), "dm-mod".into()]).unwrap();
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
        let db = ModuleDb::parse("6.12", DEP, "kernel/drivers/char/virtio_console.ko\n").unwrap();
        assert!(db.resolve(&["virtio-console".into()]).unwrap().is_empty());
        let err = db.resolve(&["no-such-module".into()]).unwrap_err();
        assert!(err.to_string().contains("no module named \"no-such-module\""), "{err}");
    }

    #[test]
    fn dangling_dependency_and_cycles_are_errors() {
        let db = ModuleDb::parse("k", "a.ko: b.ko\n", "").unwrap();
        assert!(db.resolve(&["a".into()]).is_err());
        let db = ModuleDb::parse("k", "a.ko: b.ko\nb.ko: a.ko\n", "").unwrap();
        assert!(db.resolve(&["a".into()]).unwrap_err().to_string().contains("cycle"));
        assert!(ModuleDb::parse("k", "no separator\n", "").is_err());
    }
}
