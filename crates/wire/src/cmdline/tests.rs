#![allow(clippy::unwrap_used)]
use super::*;

/// (line, [(name, value, section)]) as the kernel reads them.
type Row = (
    &'static [u8],
    &'static [(&'static str, Option<&'static str>, Section)],
);

use Section::{Init, Kernel, Unused};

const TOKENS: &[Row] = &[
    (b"init=/bin/sh", &[("init", Some("/bin/sh"), Kernel)]),
    // A leading quote is dropped, and the word's closing one.
    (b"\"init=/bin/sh\"", &[("init", Some("/bin/sh"), Kernel)]),
    (
        b"init=\"/bin/sh -c x\" quiet",
        &[
            ("init", Some("/bin/sh -c x"), Kernel),
            ("quiet", None, Kernel),
        ],
    ),
    // Every byte the kernel's ctype calls space splits words: VT, FF, CR, LF, tab and 0xA0.
    (
        b"quiet\x0binit=/bin/sh",
        &[("quiet", None, Kernel), ("init", Some("/bin/sh"), Kernel)],
    ),
    (
        b"quiet\x0cinit=1",
        &[("quiet", None, Kernel), ("init", Some("1"), Kernel)],
    ),
    (
        b"quiet\rinit=1\n",
        &[("quiet", None, Kernel), ("init", Some("1"), Kernel)],
    ),
    (
        b"quiet\tinit=1",
        &[("quiet", None, Kernel), ("init", Some("1"), Kernel)],
    ),
    // `à` in UTF-8 is C3 A0: the A0 splits.
    (
        "x\u{e0}init=/bin/sh".as_bytes(),
        &[
            ("x\u{fffd}", None, Kernel),
            ("init", Some("/bin/sh"), Kernel),
        ],
    ),
    // Other control bytes do not split for the kernel.
    (b"a\x01init=1", &[("a\x01init", Some("1"), Kernel)]),
    // `--` ends the kernel's parameters; a second one ends init's.
    (
        b"a -- init=/bin/sh b",
        &[
            ("a", None, Kernel),
            ("init", Some("/bin/sh"), Init),
            ("b", None, Init),
        ],
    ),
    (
        b"a -- b -- c",
        &[("a", None, Kernel), ("b", None, Init), ("c", None, Unused)],
    ),
    // A quoted `--` is still `--` once the quotes are gone; `--=x` is a parameter.
    (b"a \"--\" b", &[("a", None, Kernel), ("b", None, Init)]),
    (b"--=x y", &[("--", Some("x"), Kernel), ("y", None, Kernel)]),
    // A first-byte `=` never ends the name.
    (b"=init=/bin/sh", &[("=init", Some("/bin/sh"), Kernel)]),
    (
        b"init= init",
        &[("init", Some(""), Kernel), ("init", None, Kernel)],
    ),
    // Repeated keys are all there, in order (each reaches its handler; the last usually wins).
    (
        b"console=a console=b",
        &[
            ("console", Some("a"), Kernel),
            ("console", Some("b"), Kernel),
        ],
    ),
    // An unclosed quote runs to the end of the line.
    (
        b"\"a b init=/bin/sh",
        &[("a b init", Some("/bin/sh"), Kernel)],
    ),
    (b"a=\"b c", &[("a", Some("b c"), Kernel)]),
    // Quotes in the middle group words but are kept.
    (
        b"a=b\"c d\"e f",
        &[("a", Some("b\"c d\"e"), Kernel), ("f", None, Kernel)],
    ),
    (b"a\"=b\"", &[("a\"", Some("b\""), Kernel)]),
    (b"\"foo\"", &[("foo", None, Kernel)]),
    (b"\"", &[("", None, Kernel)]),
    (b"a=\"", &[("a", Some(""), Kernel)]),
    (b"\"a=\"", &[("a", Some(""), Kernel)]),
    (b"\"a=\"\"", &[("a", Some(""), Kernel)]),
    // The line ends at a NUL, as a C string does.
    (b"a\0init=/bin/sh", &[("a", None, Kernel)]),
    (
        b"  \t spaced   out  ",
        &[("spaced", None, Kernel), ("out", None, Kernel)],
    ),
    (b"", &[]),
];

fn parsed(line: &[u8]) -> Vec<(String, Option<String>, Section)> {
    params(line)
        .iter()
        .map(|p| {
            (
                String::from_utf8_lossy(p.name).into_owned(),
                p.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                p.section,
            )
        })
        .collect()
}

#[test]
fn tokens_are_what_the_kernel_reads() {
    for (line, want) in TOKENS {
        let want: Vec<_> = want
            .iter()
            .map(|(n, v, s)| ((*n).to_owned(), v.map(str::to_owned), *s))
            .collect();
        assert_eq!(parsed(line), want, "{:?}", String::from_utf8_lossy(line));
        // And the literal model of the C agrees on every row.
        let model: Vec<_> = reference::parse(line)
            .into_iter()
            .map(|(n, v, s)| {
                (
                    String::from_utf8_lossy(&n).into_owned(),
                    v.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    s,
                )
            })
            .collect();
        assert_eq!(model, want, "model: {:?}", String::from_utf8_lossy(line));
    }
}

/// (line, listed option found or not, on which list)
const FINDS: &[(&[u8], Option<&str>, bool)] = &[
    (b"console=ttyS0 init=/bin/sh", Some("init=/bin/sh"), false),
    (b"\"rdinit=/bin/sh\"", Some("\"rdinit=/bin/sh\""), false),
    (b"quiet\x0binit=/bin/sh", Some("init=/bin/sh"), false),
    (b"panic=-1 -- init=/bin/sh", Some("init=/bin/sh"), false),
    (
        b"systemd.debug-shell=1",
        Some("systemd.debug-shell=1"),
        false,
    ),
    (b"systemd.debug_shell", Some("systemd.debug_shell"), false),
    (b"rd.break=pre-mount", Some("rd.break=pre-mount"), false),
    (b"rd.cmdline=ask", Some("rd.cmdline=ask"), false),
    (b"bootconfig", Some("bootconfig"), false),
    (b"single", Some("single"), false),
    (b"init=", Some("init="), false),
    // Quoted values hide words from the kernel but not from x86's early parser.
    (b"x=\"a init=/bin/sh\"", Some("init=/bin/sh\""), false),
    // Repeated: a harmless first one does not hide a second.
    (
        b"init_on_free=1 quiet \"init=/bin/sh\"",
        Some("\"init=/bin/sh\""),
        false,
    ),
    (b"initrd=x", None, false),
    (b"init_on_alloc=1 singleuser rd rd_shell", None, false),
    (b"snpkit.verity=format=1,root=00 panic=-1", None, false),
    // Hardened: `-` and `_` alike, prefixes for __setup names without `=`.
    (b"console=ttyS0", Some("console=ttyS0"), true),
    (b"console", Some("console"), true),
    (b"ignore-loglevel", Some("ignore-loglevel"), true),
    (
        b"sysrq_always_enabledx",
        Some("sysrq_always_enabledx"),
        true,
    ),
    (b"quiet \"earlycon\"", Some("\"earlycon\""), true),
    (b"x=\"a console=ttyS0\"", Some("console=ttyS0\""), true),
    (b"consoleblank=0 loglevel=3", None, true),
];

#[test]
fn listed_options_are_found_as_the_kernel_reads_them() {
    for (line, want, hardened) in FINDS {
        let list = if *hardened { HARDENED } else { BYPASS };
        let found = find(line, list).map(|f| f.word);
        assert_eq!(
            found.as_deref(),
            *want,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

/// (line, hardened, the problem's kind or None)
const CHECKS: &[(&[u8], bool, Option<&str>)] = &[
    (
        b"console=ttyS0 panic=-1 snpkit.appliance=hello",
        false,
        None,
    ),
    (
        b"panic=-1 dm-mod.create=\"x,,,ro,0 8 linear 1 2\" \"a=b c\" e=\"\"",
        true,
        None,
    ),
    (b"console=ttyS0", true, Some("cmdline_hardened")),
    (b"a\tb", false, Some("cmdline_control_byte")),
    (
        b"quiet\x0binit=/bin/sh",
        false,
        Some("cmdline_control_byte"),
    ),
    (b"a\x7f", false, Some("cmdline_control_byte")),
    ("caf\u{e9}".as_bytes(), false, Some("cmdline_non_ascii")),
    (b"x\xa0init=/bin/sh", false, Some("cmdline_non_ascii")),
    (b"'rd.shell'", false, Some("cmdline_shell_quote")),
    (b"rd.sh\\ell", false, Some("cmdline_shell_quote")),
    (b"\"a=b", false, Some("cmdline_quote")),
    (b"a\"b\"", false, Some("cmdline_quote")),
    (b"rd.\"shell\"", false, Some("cmdline_quote")),
    (b"a=b\"c\"", false, Some("cmdline_quote")),
    (b"\"a\"=b", false, Some("cmdline_quote")),
    (b"a=\"b\"\"\"", false, Some("cmdline_quote")),
    (b"\"init=/bin/sh\"", false, Some("cmdline_bypass")),
    (
        b"panic=-1 \"--\" init=/bin/sh",
        false,
        Some("cmdline_bypass"),
    ),
    (b"x=\"y rdinit=/bin/sh\"", false, Some("cmdline_bypass")),
];

#[test]
fn check_refuses_what_readers_disagree_on_and_listed_options() {
    for (line, hardened, want) in CHECKS {
        let got = check(line, *hardened).err();
        assert_eq!(
            got.as_ref().map(CmdlineProblem::kind),
            *want,
            "{:?}: {got:?}",
            String::from_utf8_lossy(line)
        );
        if let Some(p) = got {
            assert!(!p.fix().is_empty());
        }
    }
    let err = check(b"quiet \"init=/bin/sh\"", false).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`\"init=/bin/sh\"`") && text.contains("the kernel"),
        "{text}"
    );
}

/// A small xorshift, so the property test is the same on every run.
fn rng(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[test]
fn the_tokenizer_agrees_with_the_literal_model_of_the_c() {
    // Bytes where the two could disagree, often; anything else now and then.
    const HOT: &[u8] = b"\"\"\"=== -\t\x0b\x0c\r\n\xa0\0ai--";
    let mut next = rng(0x5eed_c0de_1234_5678);
    for _ in 0..100_000 {
        let len = (next() % 24) as usize;
        let line: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if r.is_multiple_of(8) {
                    r as u8
                } else {
                    HOT[(r >> 8) as usize % HOT.len()]
                }
            })
            .collect();
        let ours: reference::Parsed = params(&line)
            .iter()
            .map(|p| (p.name.to_vec(), p.value.map(<[u8]>::to_vec), p.section))
            .collect();
        assert_eq!(ours, reference::parse(&line), "{line:?}");
        // Whatever check accepts, it accepts for reasons that hold in every view.
        if check(&line, true).is_ok() {
            assert!(find(&line, BYPASS).is_none() && find(&line, HARDENED).is_none());
        }
    }
}
