//! A literal model of the kernel's parse loop, kept as the oracle that [`super::params`] is tested
//! and fuzzed against (snpkit itself never calls it).
//!
//! It follows the C statement by statement over a NUL-terminated copy of the line: `next_arg`
//! writes NULs into the buffer where the kernel does, and names and values are read back as C
//! strings. [`super::params`] computes the same thing with slices and no writes; the two are
//! written differently on purpose, so that a slip in one shows up as a disagreement.

use super::{Section, is_kernel_space};

/// `(name, value, section)` of every parameter, as the kernel would see them.
pub type Parsed = Vec<(Vec<u8>, Option<Vec<u8>>, Section)>;

fn skip_spaces(buf: &[u8], mut p: usize) -> usize {
    while is_kernel_space(buf[p]) {
        p += 1;
    }
    p
}

fn c_string(buf: &[u8], start: usize) -> Vec<u8> {
    buf[start..]
        .iter()
        .take_while(|&&b| b != 0)
        .copied()
        .collect()
}

/// `next_arg(args, &param, &val)`: returns (param, val, the next args).
fn next_arg(buf: &mut [u8], mut args: usize) -> (usize, Option<usize>, usize) {
    let mut i = 0usize;
    let mut equals = 0usize;
    let mut in_quote = false;
    let mut quoted = false;
    if buf[args] == b'"' {
        args += 1;
        in_quote = true;
        quoted = true;
    }
    while buf[args + i] != 0 {
        if is_kernel_space(buf[args + i]) && !in_quote {
            break;
        }
        if equals == 0 && buf[args + i] == b'=' {
            equals = i;
        }
        if buf[args + i] == b'"' {
            in_quote = !in_quote;
        }
        i += 1;
    }
    let param = args;
    let val = if equals == 0 {
        None
    } else {
        buf[args + equals] = 0;
        let mut v = args + equals + 1;
        if buf[v] == b'"' {
            v += 1;
            if buf[args + i - 1] == b'"' {
                buf[args + i - 1] = 0;
            }
        }
        Some(v)
    };
    // With i == 0 this is the leading quote itself (args - 1), as in the C.
    if quoted && buf[args + i - 1] == b'"' {
        buf[args + i - 1] = 0;
    }
    let next = if buf[args + i] != 0 {
        buf[args + i] = 0;
        args + i + 1
    } else {
        args + i
    };
    (param, val, skip_spaces(buf, next))
}

/// `parse_args` for the kernel's parameters, then again (from after the `--`) for init's.
pub fn parse(line: &[u8]) -> Parsed {
    let mut buf: Vec<u8> = line.iter().copied().take_while(|&b| b != 0).collect();
    buf.push(0);
    let mut out = Vec::new();
    let mut section = Section::Kernel;
    let mut args = skip_spaces(&buf, 0);
    while buf[args] != 0 {
        let (param, val, next) = next_arg(&mut buf, args);
        args = next;
        let name = c_string(&buf, param);
        if val.is_none() && name == b"--" {
            match section {
                Section::Kernel => {
                    section = Section::Init;
                    continue;
                }
                Section::Init => {
                    section = Section::Unused;
                    continue;
                }
                Section::Unused => {}
            }
        }
        out.push((name, val.map(|v| c_string(&buf, v)), section));
    }
    out
}
