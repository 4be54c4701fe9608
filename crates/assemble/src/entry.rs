//! The entry point must be a program in the image: a typo in `entry.argv[0]` would otherwise be
//! found only when the guest boots, measured and attested, and cannot start its appliance.

use crate::BuildError;
use snpkit_image::{NodeKind, Tree, Unresolved};
use snpkit_recipe::Recipe;

/// Checks that `entry.argv[0]` resolves, through symlinks inside `tree`, to an executable file.
pub(crate) fn check_entry(recipe: &Recipe, tree: &Tree) -> Result<(), BuildError> {
    let Some(argv0) = recipe.entry.argv.first() else {
        // The recipe's validation refuses an empty argv; nothing to look up.
        return Ok(());
    };
    let add = "add it with [[files]], [[directories]], [[archives]] or a package, or correct entry.argv[0]";
    let fail = |problem: String, fix: &str| BuildError::EntryMissing {
        file: recipe.file.clone(),
        argv0: argv0.clone(),
        problem,
        fix: fix.to_owned(),
    };
    let as_written = |at: &str| {
        let p = argv0.trim_start_matches('/');
        p == at || p.starts_with(&format!("{at}/"))
    };
    match tree.resolve(argv0) {
        Ok((path, node)) => match &node.kind {
            NodeKind::File(_) if node.mode & 0o111 != 0 => Ok(()),
            NodeKind::File(_) => Err(fail(
                format!(
                    "resolves to /{path}, which is not executable (mode {:04o})",
                    node.mode
                ),
                "give it mode = 0o755 in [[files]] (or the execute bit on the host file under [[directories]])",
            )),
            other => Err(fail(
                format!("resolves to /{path}, a {}, not a program", other.describe()),
                add,
            )),
        },
        // Missing on the path as written, before any symlink: plainly not there.
        Err(Unresolved::Missing(at)) if as_written(&at) => Err(fail("does not exist".into(), add)),
        Err(why) => Err(fail(format!("does not resolve ({why})"), add)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    fn recipe(argv0: &str) -> Recipe {
        let text = snpkit_testkit::recipe::app(argv0, "");
        Recipe::parse(&text, Path::new("recipes/app/recipe.toml")).unwrap()
    }

    fn tree() -> Tree {
        let mut t = Tree::new();
        t.add_file("/bin/busybox", &b"elf"[..], 0o755).unwrap();
        t.add_symlink("/bin/sh", "busybox").unwrap();
        t.add_symlink("/usr/bin", "../bin").unwrap();
        t.add_file("/etc/motd", &b"hi"[..], 0o644).unwrap();
        t.add_symlink("/usr/local/app", "/opt/missing").unwrap();
        t
    }

    #[test]
    fn an_entry_reached_through_symlinks_is_accepted() {
        for argv0 in ["/bin/busybox", "/bin/sh", "/usr/bin/sh"] {
            check_entry(&recipe(argv0), &tree()).unwrap();
        }
    }

    #[test]
    fn a_missing_or_unfit_entry_is_named_with_the_fix() {
        let cases = [
            ("/opt/hello", "/opt/hello does not exist in the image"),
            // Through /usr/bin -> ../bin: the message says where the lookup ended.
            (
                "/usr/bin/hello",
                "does not resolve (nothing is at /bin/hello)",
            ),
            ("/usr/local/app", "does not resolve (nothing is at /opt)"),
            ("/etc/motd", "not executable (mode 0644)"),
            ("/etc", "a directory, not a program"),
        ];
        for (argv0, want) in cases {
            let err = check_entry(&recipe(argv0), &tree())
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("recipes/app/recipe.toml: entry.argv[0]: ") && err.contains(want),
                "{argv0}: {err}"
            );
        }
    }
}
