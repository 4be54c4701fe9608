#![allow(clippy::unwrap_used)]
//! The resolver on a small synthetic `Packages` index: alternatives, versions, virtual names,
//! cycles, exclusions and the message for a dependency nothing satisfies.

use super::*;
use snpkit_bundle::Sha256Sum;

/// Stanzas as an archive's `Packages` file has them (only the fields the resolver reads, plus
/// noise it must skip).
const INDEX: &str = "\
Package: app
Version: 1.0-1
Architecture: amd64
Depends: libc6 (>= 2.34), libssl3 (>= 3.0.0) | libssl1.1, mail-transport-agent, perl:any
Description: an application
 with a folded description: Depends: nothing
Filename: pool/main/a/app/app_1.0-1_amd64.deb
Size: 100
SHA256: 1111111111111111111111111111111111111111111111111111111111111111

Package: libc6
Version: 2.36-9+deb12u14
Architecture: amd64
Depends: libgcc-s1
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb
Size: 200
SHA256: 2222222222222222222222222222222222222222222222222222222222222222

Package: libgcc-s1
Version: 12.2.0-14
Architecture: amd64
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)
Filename: pool/main/g/gcc-12/libgcc-s1_12.2.0-14_amd64.deb
Size: 300
SHA256: 3333333333333333333333333333333333333333333333333333333333333333

Package: gcc-12-base
Version: 12.2.0-14
Architecture: amd64
Filename: pool/main/g/gcc-12/gcc-12-base_12.2.0-14_amd64.deb
Size: 400
SHA256: 4444444444444444444444444444444444444444444444444444444444444444

Package: libssl3
Version: 3.0.17-1~deb12u2
Architecture: amd64
Pre-Depends: libc6 (>= 2.34)
Filename: pool/main/o/openssl/libssl3_3.0.17-1~deb12u2_amd64.deb
Size: 500
SHA256: 5555555555555555555555555555555555555555555555555555555555555555

Package: libssl1.1
Version: 1.1.1w-0+deb11u1
Architecture: amd64
Filename: pool/main/o/openssl/libssl1.1_1.1.1w-0+deb11u1_amd64.deb
Size: 600
SHA256: 6666666666666666666666666666666666666666666666666666666666666666

Package: postfix
Version: 3.7.11-0+deb12u1
Architecture: amd64
Provides: mail-transport-agent
Filename: pool/main/p/postfix/postfix_3.7.11-0+deb12u1_amd64.deb
Size: 700
SHA256: 7777777777777777777777777777777777777777777777777777777777777777

Package: exim4-daemon-light
Version: 4.96-15+deb12u7
Architecture: amd64
Provides: mail-transport-agent
Filename: pool/main/e/exim4/exim4-daemon-light_4.96-15+deb12u7_amd64.deb
Size: 800
SHA256: 8888888888888888888888888888888888888888888888888888888888888888

Package: perl
Version: 5.36.0-7+deb12u2
Architecture: amd64
Filename: pool/main/p/perl/perl_5.36.0-7+deb12u2_amd64.deb
Size: 900
SHA256: 9999999999999999999999999999999999999999999999999999999999999999

Package: perl
Version: 5.36.0-7
Architecture: amd64
Filename: pool/main/p/perl/perl_5.36.0-7_amd64.deb
Size: 901
SHA256: 9999999999999999999999999999999999999999999999999999999999999990

Package: perl
Version: 5.40.0-1
Architecture: arm64
Filename: pool/main/p/perl/perl_5.40.0-1_arm64.deb
Size: 902
SHA256: 9999999999999999999999999999999999999999999999999999999999999991

Package: needs-new-libc
Version: 1
Architecture: amd64
Depends: libc6 (>= 2.40) | libc6-compat, missing-lib
Filename: pool/main/n/needs-new-libc/needs-new-libc_1_amd64.deb
Size: 1000
SHA256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa

Package: versioned-virtual
Version: 1
Architecture: all
Depends: awk-impl (>= 2)
Filename: pool/main/v/vv/versioned-virtual_1_all.deb
Size: 1100
SHA256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

Package: mawk
Version: 1.3.4
Architecture: amd64
Provides: awk-impl (= 1)
Filename: pool/main/m/mawk/mawk_1.3.4_amd64.deb
Size: 1200
SHA256: cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc

Package: gawk
Version: 5.2.1
Architecture: amd64
Provides: awk-impl (= 2)
Filename: pool/main/g/gawk/gawk_5.2.1_amd64.deb
Size: 1300
SHA256: dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd
";

fn deb(index: &Index, name: &str) -> LockedDeb {
    locked(index.get(name).unwrap()).unwrap()
}

fn root<'a>(index: &'a Index, deb: &'a LockedDeb, exclude: &'a [String]) -> Root<'a> {
    let s = index.get(&deb.name).unwrap();
    Root {
        key: "packages[0]".into(),
        deb,
        pre_depends: &s.pre_depends,
        depends: &s.depends,
        provides: &s.provides,
        exclude,
        dependencies: true,
    }
}

fn names(pulled: &[Pulled]) -> Vec<String> {
    pulled
        .iter()
        .map(|p| format!("{} {}", p.deb.name, p.deb.version))
        .collect()
}

#[test]
fn pulls_the_closure_breadth_first_with_cycles_once() {
    let index = Index::parse(INDEX);
    let app = deb(&index, "app");
    let pulled = closure(&index, &[root(&index, &app, &[])]).unwrap();
    assert_eq!(
        names(&pulled),
        [
            "libc6 2.36-9+deb12u14",
            // First alternative that can be had.
            "libssl3 3.0.17-1~deb12u2",
            // A virtual name: the first provider by name.
            "exim4-daemon-light 4.96-15+deb12u7",
            // `perl:any`: the same package; the highest amd64 version of three.
            "perl 5.36.0-7+deb12u2",
            // libc6 ↔ libgcc-s1 is a cycle: each comes once.
            "libgcc-s1 12.2.0-14",
            "gcc-12-base 12.2.0-14",
        ]
    );
    let gcc = pulled.iter().find(|p| p.deb.name == "gcc-12-base").unwrap();
    assert_eq!(gcc.pulled_by, "app");
    assert_eq!(gcc.chain, ["app", "libc6", "libgcc-s1", "gcc-12-base"]);
    assert_eq!(gcc.deb.filename, "gcc-12-base_12.2.0-14_amd64.deb");
    assert_eq!(gcc.deb.sha256, "4".repeat(64).parse::<Sha256Sum>().unwrap());
    assert_eq!(gcc.deb.size, 400);
}

#[test]
fn a_package_already_in_the_image_satisfies_first() {
    let index = Index::parse(INDEX);
    let app = deb(&index, "app");
    // postfix as an entry of the recipe: its Provides satisfies mail-transport-agent, so exim
    // is not pulled in; libssl1.1 as an entry satisfies the second alternative.
    let postfix = deb(&index, "postfix");
    let ssl11 = deb(&index, "libssl1.1");
    let mut roots = vec![root(&index, &app, &[])];
    roots.push(Root {
        key: "packages[1]".into(),
        ..root(&index, &postfix, &[])
    });
    roots.push(Root {
        key: "packages[2]".into(),
        ..root(&index, &ssl11, &[])
    });
    let pulled = names(&closure(&index, &roots).unwrap());
    assert!(!pulled.iter().any(|p| p.starts_with("exim4")), "{pulled:?}");
    assert!(
        !pulled.iter().any(|p| p.starts_with("libssl3")),
        "{pulled:?}"
    );
}

#[test]
fn exclude_and_no_dependencies() {
    let index = Index::parse(INDEX);
    let app = deb(&index, "app");
    let exclude = vec![
        "perl".to_owned(),
        "libgcc-s1".to_owned(),
        "libssl3".to_owned(),
    ];
    let pulled = names(&closure(&index, &[root(&index, &app, &exclude)]).unwrap());
    // libssl3 excluded: the group falls to its next alternative.
    assert_eq!(
        pulled,
        [
            "libc6 2.36-9+deb12u14",
            "libssl1.1 1.1.1w-0+deb11u1",
            "exim4-daemon-light 4.96-15+deb12u7"
        ]
    );
    let none = Root {
        dependencies: false,
        ..root(&index, &app, &[])
    };
    assert!(closure(&index, &[none]).unwrap().is_empty());
}

#[test]
fn versions_decide_between_providers() {
    let index = Index::parse(INDEX);
    let vv = deb(&index, "versioned-virtual");
    // awk-impl (>= 2): mawk provides version 1, gawk version 2.
    assert_eq!(
        names(&closure(&index, &[root(&index, &vv, &[])]).unwrap()),
        ["gawk 5.2.1"]
    );
}

#[test]
fn an_unsatisfiable_dependency_names_the_way_and_every_reason() {
    let index = Index::parse(INDEX);
    let needs = deb(&index, "needs-new-libc");
    let err = closure(&index, &[root(&index, &needs, &[])])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("packages[0]: needs-new-libc depends on libc6 (>= 2.40) | libc6-compat"),
        "{err}"
    );
    assert!(
        err.contains("libc6 (>= 2.40): the index has version 2.36-9+deb12u14 only")
            && err.contains("libc6-compat: not in the archive index")
            && err.contains("packages[0].exclude"),
        "{err}"
    );

    // The recipe pins an older libc6 than a dependency needs: one name, one version.
    let app = deb(&index, "app");
    let mut old_libc = deb(&index, "libc6");
    old_libc.version = "2.31-13".into();
    let roots = [
        root(&index, &app, &[]),
        Root {
            key: "packages[1]".into(),
            ..root(&index, &old_libc, &[])
        },
    ];
    let err = closure(&index, &roots).unwrap_err().to_string();
    assert!(
        err.contains("libc6 (>= 2.34): the image already has version 2.31-13"),
        "{err}"
    );
}
