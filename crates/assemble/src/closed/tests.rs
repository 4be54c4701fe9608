#![allow(clippy::unwrap_used)]
//! The closed-image step on real ELF files: the build machine's own Debian programs and
//! libraries (the same bytes Debian's packages ship), laid out as a package would lay them out.

use super::*;
use crate::packages::Known;

fn host(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn file(path: &str, data: Vec<u8>) -> DebEntry {
    DebEntry {
        path: path.into(),
        mode: 0o644,
        kind: DebEntryKind::File(data),
    }
}

/// libc6, libselinux1 and libpcre2-8-0 as packages: the libraries under /lib/x86_64-linux-gnu,
/// the loader reached through the /lib64 symlink, and a file `ls` does not need.
fn pool(without: &[&str]) -> Pool {
    let mut pool = Pool::default();
    let lib = "lib/x86_64-linux-gnu";
    let mut add = |package: &str, e: DebEntry| {
        if without.contains(&e.path.rsplit('/').next().unwrap()) {
            return;
        }
        pool.known.insert(
            e.path.clone(),
            Known {
                package: package.into(),
                left_out_by: None,
            },
        );
        pool.deps.insert(e.path.clone(), (package.into(), e));
    };
    for name in ["libc.so.6", "ld-linux-x86-64.so.2", "libm.so.6"] {
        add(
            "libc6",
            file(&format!("{lib}/{name}"), host(&format!("/{lib}/{name}"))),
        );
    }
    add(
        "libc6",
        DebEntry {
            path: "lib64/ld-linux-x86-64.so.2".into(),
            mode: 0o777,
            kind: DebEntryKind::Symlink(format!("/{lib}/ld-linux-x86-64.so.2")),
        },
    );
    add(
        "libc6",
        DebEntry {
            path: "lib64".into(),
            mode: 0o755,
            kind: DebEntryKind::Dir,
        },
    );
    add(
        "libselinux1",
        file(
            &format!("{lib}/libselinux.so.1"),
            host(&format!("/{lib}/libselinux.so.1")),
        ),
    );
    // A soname symlink to the real file, as Debian ships libraries.
    let pcre = std::fs::read_link(format!("/{lib}/libpcre2-8.so.0")).unwrap();
    let pcre = pcre.to_string_lossy().into_owned();
    add(
        "libpcre2-8-0",
        DebEntry {
            path: format!("{lib}/libpcre2-8.so.0"),
            mode: 0o777,
            kind: DebEntryKind::Symlink(pcre.clone()),
        },
    );
    add(
        "libpcre2-8-0",
        file(&format!("{lib}/{pcre}"), host(&format!("/{lib}/{pcre}"))),
    );
    pool
}

fn with_ls() -> Tree {
    let mut t = Tree::new();
    crate::tree::base_dirs(&mut t).unwrap();
    t.add_file("usr/bin/ls", host("/bin/ls"), 0o755).unwrap();
    t
}

#[test]
fn takes_exactly_what_a_real_program_needs() {
    let mut t = with_ls();
    let taken = close(&mut t, &pool(&[]), &[]).unwrap();
    let paths: Vec<&str> = taken.iter().map(|(_, p)| p.as_str()).collect();
    for want in [
        "/lib64",
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libselinux.so.1",
        "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
    ] {
        assert!(paths.contains(&want), "{want} not taken: {paths:?}");
    }
    // libm is in the pool but nothing here needs it.
    assert!(t.get("lib/x86_64-linux-gnu/libm.so.6").is_none());
    assert!(taken.iter().any(|(p, _)| p == "libpcre2-8-0"));
    // Closed now: a second pass takes nothing.
    assert!(close(&mut t, &Pool::default(), &[]).unwrap().is_empty());
}

#[test]
fn a_missing_library_names_the_program_the_library_and_who_ships_it() {
    let mut t = with_ls();
    let mut p = pool(&["libselinux.so.1"]);
    let err = close(&mut t, &p, &[]).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "the image is not closed: /usr/bin/ls needs the library libselinux.so.1, which is not in the image"
        ) && err.contains("no package of the recipe or of its dependencies ships it"),
        "{err}"
    );
    // A recipe entry ships it, but its include left it out: the message says so.
    p.known.insert(
        "lib/x86_64-linux-gnu/libselinux.so.1".into(),
        Known {
            package: "libselinux1".into(),
            left_out_by: Some("packages[1].include".into()),
        },
    );
    let mut t = with_ls();
    let err = close(&mut t, &p, &[]).unwrap_err().to_string();
    assert!(
        err.contains(
            "libselinux1 ships /lib/x86_64-linux-gnu/libselinux.so.1, but packages[1].include leaves it out"
        ),
        "{err}"
    );
    // A failed lookup leaves the tree as it was: nothing half-taken.
    assert!(t.get("lib/x86_64-linux-gnu/libselinux.so.1").is_none());
}

#[test]
fn a_missing_interpreter_is_named() {
    let mut t = with_ls();
    let err = close(&mut t, &pool(&["ld-linux-x86-64.so.2"]), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/usr/bin/ls needs its interpreter /lib64/ld-linux-x86-64.so.2"),
        "{err}"
    );
}

#[test]
fn a_runpath_with_origin_is_searched_first() {
    let mut t = with_ls();
    // ls has no RUNPATH; a library beside a program is found only through one, so check
    // the candidate order directly with the needs a RUNPATH gives.
    let needs = Needs {
        interpreter: None,
        needed: vec!["libx.so".into()],
        search: vec!["$ORIGIN/../lib/app".into(), "relative".into()],
    };
    let c = candidates("opt/app/bin/tool", &needs, "libx.so");
    assert_eq!(c[0], "/opt/app/bin/../lib/app/libx.so");
    assert_eq!(c[1], "/lib/x86_64-linux-gnu/libx.so");
    t.add_file("opt/app/lib/app/libx.so", b"not elf".to_vec(), 0o644)
        .unwrap();
    t.add_dir("opt/app/bin", 0o755).unwrap();
    assert_eq!(
        t.resolve(&c[0]).unwrap().0,
        "opt/app/lib/app/libx.so",
        "`..` is followed as the loader follows it"
    );
}

#[test]
fn dangling_symlinks_are_refused_unless_they_lead_into_runtime_mounts() {
    let mut t = Tree::new();
    crate::tree::base_dirs(&mut t).unwrap();
    t.add_file("bin/busybox", b"x".to_vec(), 0o755).unwrap();
    t.add_symlink("bin/sh", "busybox").unwrap();
    t.add_symlink("dev/stdin", "/proc/self/fd/0").unwrap();
    t.add_symlink("var/lib/app/current", "/var/lib/data/v1")
        .unwrap();
    close(&mut t, &Pool::default(), &["/var/lib/data".into()]).unwrap();

    t.add_symlink("usr/bin/sh", "/bin/bash").unwrap();
    let err = close(&mut t, &Pool::default(), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the symlink /usr/bin/sh -> /bin/bash is left dangling in the image (nothing is at /bin/bash)")
            || err.contains("/var/lib/app/current"),
        "{err}"
    );
    let mut t2 = Tree::new();
    crate::tree::base_dirs(&mut t2).unwrap();
    t2.add_symlink("usr/bin/sh", "/bin/bash").unwrap();
    let err = close(&mut t2, &Pool::default(), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "the symlink /usr/bin/sh -> /bin/bash is left dangling in the image (nothing is at /bin)"
        ),
        "{err}"
    );
}
