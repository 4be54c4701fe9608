//! The kernel command line as the kernel reads it, and the options that must never be on it.
//!
//! One tokenizer ([`params`]) for every side that judges a command line: the recipe check (which
//! refuses to lock or build an image with a bad one), the image builder, and `/init`, which applies
//! the same check again to `/proc/cmdline` (defence in depth, should a kernel, firmware or boot
//! loader add an option). It models the kernel exactly, because a check that splits words
//! differently from the kernel can be walked around: a quoted `"init=/bin/sh"`, a vertical tab or
//! a UTF-8 letter holding byte 0xA0 were all read as harmless by whitespace splitting while the
//! kernel obeyed them.
//!
//! What the kernel does (`lib/cmdline.c` `next_arg`, `kernel/params.c` `parse_args`, `init/main.c`):
//! - words are separated by the bytes its ctype table calls space: HT, LF, VT, FF, CR, space and
//!   0xA0 ([`is_kernel_space`]); the line ends at the first NUL;
//! - a double quote toggles "inside quotes" wherever it appears, and spaces inside quotes do not
//!   split; an unclosed quote runs to the end of the line;
//! - a word that starts with `"` loses that quote, and its last byte if that is `"`; a value that
//!   starts with `"` (right after the first `=`) loses that quote and the word's last `"`;
//! - the name ends at the first `=` that is not the word's first byte;
//! - a bare `--` (no `=`) ends the kernel's parameters: what follows is handed to init as its
//!   arguments and environment, and a second bare `--` ends those too ([`Section`]);
//! - in names, `-` and `_` are the same (`parameq`); early parameters (`earlycon`, `console`, …)
//!   and `__setup` handlers (`init=`, `rdinit=`) are matched on the name so normalised, and a
//!   `__setup` name without `=` (`sysrq_always_enabled`) matches as a prefix.
//!
//! x86's early code (`arch/x86/lib/cmdline.c`) reads the same line once more with a simpler
//! parser that knows no quotes and treats every byte up to space as a separator; userspace
//! (systemd, dracut) reads `/proc/cmdline` with yet other rules (single quotes, backslashes).
//! The listed options are therefore looked for in the kernel's parameters, in every section, and
//! in the words of the quote-blind view ([`find`]); and [`check`] refuses outright the bytes on
//! which these readers disagree.

mod check;
pub mod reference;

pub use check::{CmdlineProblem, check};

/// Whether the kernel's `isspace` is true for `b` (`lib/ctype.c`: `_S`).
pub fn is_kernel_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

/// Which part of the command line a parameter is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Before any bare `--`: the kernel's own parameters.
    Kernel,
    /// After the first bare `--`: handed to init as arguments (`word`) or environment (`k=v`).
    Init,
    /// After a second bare `--`: read by nobody in the kernel, still in `/proc/cmdline`.
    Unused,
}

/// One parameter as `next_arg` hands it to the kernel's parsers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// The name, as the kernel sees it (a leading quote removed).
    pub name: &'a [u8],
    /// The value after the first `=`, its quotes removed as the kernel removes them.
    pub value: Option<&'a [u8]>,
    /// The word as written on the line, quotes and all.
    pub raw: &'a [u8],
    pub section: Section,
}

impl Param<'_> {
    /// The raw word, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.raw).into_owned()
    }
}

fn skip_spaces(line: &[u8], mut pos: usize) -> usize {
    while pos < line.len() && is_kernel_space(line[pos]) {
        pos += 1;
    }
    pos
}

/// `next_arg` from `start` (not a space): the parameter and where the next word starts.
fn next_arg(line: &[u8], start: usize) -> (&[u8], Option<&[u8]>, usize, usize) {
    let quoted = line[start] == b'"';
    let s = if quoted { start + 1 } else { start };
    let mut in_quote = quoted;
    let mut equals = None;
    let mut end = s;
    while end < line.len() {
        let c = line[end];
        if is_kernel_space(c) && !in_quote {
            break;
        }
        // `equals == 0` means "none yet" in the C: a `=` as the first byte never counts.
        if equals.is_none() && c == b'=' && end > s {
            equals = Some(end);
        }
        if c == b'"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let ends_in_quote = end > s && line[end - 1] == b'"';
    let (name, value) = match equals {
        None => {
            let e = if quoted && ends_in_quote {
                end - 1
            } else {
                end
            };
            (&line[s..e], None)
        }
        Some(eq) => {
            let mut vs = eq + 1;
            let mut ve = end;
            let mut stripped = false;
            if vs < end && line[vs] == b'"' {
                vs += 1;
                if ends_in_quote {
                    ve = end - 1;
                    stripped = true;
                }
            }
            // The quoted word's closing quote, unless the value's already took it (or the byte
            // before the end is the `=` itself, which the C has overwritten by then).
            if quoted && !stripped && ends_in_quote && end - 1 > eq {
                ve = end - 1;
            }
            (&line[s..eq], Some(&line[vs..ve.max(vs)]))
        }
    };
    let next = if end < line.len() { end + 1 } else { end };
    (name, value, end, skip_spaces(line, next))
}

/// Every parameter of `line` in order, as the kernel tokenises it (see the module docs). Bare
/// `--` separators are not returned; they only change the [`Section`] of what follows.
pub fn params(line: &[u8]) -> Vec<Param<'_>> {
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut out = Vec::new();
    let mut section = Section::Kernel;
    let mut pos = skip_spaces(line, 0);
    while pos < line.len() {
        let start = pos;
        let (name, value, end, next) = next_arg(line, start);
        pos = next;
        if value.is_none() && name == b"--" && section != Section::Unused {
            section = match section {
                Section::Kernel => Section::Init,
                _ => Section::Unused,
            };
            continue;
        }
        out.push(Param {
            name,
            value,
            raw: &line[start..end],
            section,
        });
    }
    out
}

/// The words x86's early parser (`arch/x86/lib/cmdline.c`) sees: split at every byte up to
/// space, quotes not special.
pub fn early_x86_words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b <= b' ').filter(|w| !w.is_empty())
}

/// How a listed option is recognised, on names with `-` read as `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The whole name (`parameq`; `init=`/`rdinit=` handlers need the `=`, refused without too).
    Name(&'static str),
    /// Any name starting with this (`rd.` for dracut's switches; a `__setup` without `=`).
    Prefix(&'static str),
}

impl Key {
    pub fn matches(self, name: &[u8]) -> bool {
        let norm = |b: &u8| if *b == b'-' { b'_' } else { *b };
        let (want, prefix) = match self {
            Key::Name(n) => (n, false),
            Key::Prefix(p) => (p, true),
        };
        let want = want.as_bytes();
        if prefix {
            name.len() >= want.len() && name.iter().zip(want).all(|(a, b)| norm(a) == norm(b))
        } else {
            name.len() == want.len() && name.iter().zip(want).all(|(a, b)| norm(a) == norm(b))
        }
    }
}

/// An option on a list, and why it is there.
#[derive(Debug, Clone, Copy)]
pub struct Listed {
    pub key: Key,
    pub why: &'static str,
}

/// Options that replace or bypass snpkit's `/init`, or ask for a shell. The attestation flow and
/// the appliance's integrity live in `/init`, so none is ever allowed, in any image.
pub const BYPASS: &[Listed] = &[
    Listed {
        key: Key::Name("init"),
        why: "the kernel would run it instead of snpkit's /init",
    },
    Listed {
        key: Key::Name("rdinit"),
        why: "the kernel would run it from the initramfs instead of snpkit's /init",
    },
    Listed {
        key: Key::Name("bootconfig"),
        why: "the kernel would take more parameters from the initrd's bootconfig, which no check sees",
    },
    Listed {
        key: Key::Prefix("rd."),
        why: "dracut's initramfs switches (rd.shell, rd.break, rd.cmdline=ask) open shells or take input",
    },
    Listed {
        key: Key::Name("rescue"),
        why: "it asks init for a rescue shell",
    },
    Listed {
        key: Key::Name("emergency"),
        why: "it asks init for an emergency shell",
    },
    Listed {
        key: Key::Name("single"),
        why: "it asks init for single-user mode, a root shell",
    },
    Listed {
        key: Key::Name("systemd.debug_shell"),
        why: "systemd starts a root shell on a console",
    },
];

/// Options a hardened image must not carry: consoles and debuggers print secrets to, or take
/// input from, the host.
pub const HARDENED: &[Listed] = &[
    Listed {
        key: Key::Name("console"),
        why: "a console talks to the host",
    },
    Listed {
        key: Key::Name("earlycon"),
        why: "an early console talks to the host (without a value, the one the host's ACPI names)",
    },
    Listed {
        key: Key::Name("earlyprintk"),
        why: "early messages go to the host",
    },
    Listed {
        key: Key::Name("debug"),
        why: "debug messages go to the console",
    },
    Listed {
        key: Key::Name("ignore_loglevel"),
        why: "every message goes to the console",
    },
    Listed {
        key: Key::Name("keep_bootcon"),
        why: "the boot console stays open to the host",
    },
    Listed {
        key: Key::Name("netconsole"),
        why: "kernel messages go over the network",
    },
    Listed {
        key: Key::Prefix("sysrq_always_enabled"),
        why: "magic SysRq keys from the host's console act on the guest",
    },
    Listed {
        key: Key::Name("kgdboc"),
        why: "a kernel debugger on a host-facing port",
    },
    Listed {
        key: Key::Name("kgdbwait"),
        why: "a kernel debugger waits for the host",
    },
    Listed {
        key: Key::Name("kgdbcon"),
        why: "a kernel debugger console",
    },
    Listed {
        key: Key::Name("kgdbdbgp"),
        why: "a kernel debugger on the USB debug port",
    },
    Listed {
        key: Key::Name("ekgdboc"),
        why: "an early kernel debugger on a host-facing port",
    },
];

/// A listed option found on a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The word as written.
    pub word: String,
    pub why: &'static str,
    /// Which reader obeys it: "the kernel", "init (after --)", "x86's early parser".
    pub reader: &'static str,
}

/// The first option of `list` on `line`, in the kernel's parameters (every section) or in the
/// words of x86's quote-blind early parser.
pub fn find(line: &[u8], list: &[Listed]) -> Option<Found> {
    let hit = |name: &[u8]| list.iter().find(|l| l.key.matches(name));
    for p in params(line) {
        if let Some(l) = hit(p.name) {
            return Some(Found {
                word: p.text(),
                why: l.why,
                reader: match p.section {
                    Section::Kernel => "the kernel",
                    Section::Init => "init (after --) and whoever reads /proc/cmdline",
                    Section::Unused => "whoever reads /proc/cmdline",
                },
            });
        }
    }
    for word in early_x86_words(line) {
        let name = word.split(|&b| b == b'=').next().unwrap_or_default();
        if let Some(l) = hit(name) {
            return Some(Found {
                word: String::from_utf8_lossy(word).into_owned(),
                why: l.why,
                reader: "x86's early parser, which does not know quotes",
            });
        }
    }
    None
}

#[cfg(test)]
mod tests;
