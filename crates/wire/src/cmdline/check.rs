//! The one judgement of a command line: what the recipe check, the image builder and `/init` apply.

use super::{BYPASS, HARDENED, find, params};

/// Why a command line is refused, with the fix ([`CmdlineProblem::fix`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineProblem {
    #[error(
        "byte {offset} is {name} (0x{byte:02x}): control characters are refused, because the kernel, \
         x86's early parser and userspace split words on them differently"
    )]
    Control {
        offset: usize,
        byte: u8,
        name: &'static str,
    },
    #[error(
        "byte {offset} is 0x{byte:02x}, not ASCII: the kernel reads byte 0xA0 as a space, and UTF-8 \
         letters carry it (`à` is C3 A0), so a word can split where no space is seen"
    )]
    NonAscii { offset: usize, byte: u8 },
    #[error(
        "byte {offset} is {name}: systemd and dracut unquote it when they read /proc/cmdline, the \
         kernel does not, so they would see another option than the one checked"
    )]
    ShellQuote { offset: usize, name: &'static str },
    #[error(
        "`{word}`: double quotes may only enclose a whole option (\"name=value\") or its value \
         (name=\"value\"), once each"
    )]
    Quote { word: String },
    #[error(
        "`{word}` would bypass snpkit's /init (and so attestation): {why} (obeyed by {reader})"
    )]
    Bypass {
        word: String,
        why: &'static str,
        reader: &'static str,
    },
    #[error(
        "`{word}` is not allowed in a hardened image: {why}; consoles and debug switches leak to the \
         host (obeyed by {reader})"
    )]
    Hardened {
        word: String,
        why: &'static str,
        reader: &'static str,
    },
}

impl CmdlineProblem {
    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            CmdlineProblem::Control { .. } => {
                "separate options with plain spaces and keep the line on one line"
            }
            CmdlineProblem::NonAscii { .. } => "write the command line in ASCII",
            CmdlineProblem::ShellQuote { .. } => {
                "remove it; quote a value with double quotes: name=\"a b\""
            }
            CmdlineProblem::Quote { .. } => "write name=\"value with spaces\", or no quotes at all",
            CmdlineProblem::Bypass { .. } => {
                "remove it; the appliance's entry point is [entry].argv, started by snpkit's /init"
            }
            CmdlineProblem::Hardened { .. } => {
                "remove it, or set hardened = false for a development image"
            }
        }
    }

    /// A short, stable name, for machines and test tables.
    pub fn kind(&self) -> &'static str {
        match self {
            CmdlineProblem::Control { .. } => "cmdline_control_byte",
            CmdlineProblem::NonAscii { .. } => "cmdline_non_ascii",
            CmdlineProblem::ShellQuote { .. } => "cmdline_shell_quote",
            CmdlineProblem::Quote { .. } => "cmdline_quote",
            CmdlineProblem::Bypass { .. } => "cmdline_bypass",
            CmdlineProblem::Hardened { .. } => "cmdline_hardened",
        }
    }
}

fn control_name(b: u8) -> &'static str {
    match b {
        0 => "a NUL",
        b'\t' => "a tab",
        b'\n' => "a newline",
        0x0b => "a vertical tab",
        0x0c => "a form feed",
        b'\r' => "a carriage return",
        0x1b => "an escape",
        0x7f => "a delete",
        _ => "a control character",
    }
}

/// Refuses a command line that any of its readers could read differently from this check, or
/// that carries an option bypassing `/init` (or, when `hardened`, a console or debugger).
///
/// Allowed: printable ASCII with plain spaces between options, double quotes only as
/// `"name=value"` or `name="value"`. Everything else is refused before any option is looked at,
/// because on those bytes the kernel, x86's early parser and systemd disagree about where words
/// start. Then every option is looked up as the kernel reads it (all sections, `-` as `_`) and in
/// x86's quote-blind view.
pub fn check(line: &[u8], hardened: bool) -> Result<(), CmdlineProblem> {
    for (offset, &byte) in line.iter().enumerate() {
        match byte {
            0..=0x1f | 0x7f => {
                return Err(CmdlineProblem::Control {
                    offset,
                    byte,
                    name: control_name(byte),
                });
            }
            0x80..=0xff => return Err(CmdlineProblem::NonAscii { offset, byte }),
            b'\'' => {
                return Err(CmdlineProblem::ShellQuote {
                    offset,
                    name: "a single quote",
                });
            }
            b'\\' => {
                return Err(CmdlineProblem::ShellQuote {
                    offset,
                    name: "a backslash",
                });
            }
            _ => {}
        }
    }
    for p in params(line) {
        if !quotes_well_placed(p.raw) {
            return Err(CmdlineProblem::Quote { word: p.text() });
        }
    }
    if let Some(f) = find(line, BYPASS) {
        return Err(CmdlineProblem::Bypass {
            word: f.word,
            why: f.why,
            reader: f.reader,
        });
    }
    if hardened && let Some(f) = find(line, HARDENED) {
        return Err(CmdlineProblem::Hardened {
            word: f.word,
            why: f.why,
            reader: f.reader,
        });
    }
    Ok(())
}

/// No quote, or exactly two: the word's first and last byte, or the byte after its first `=`
/// (not the word's first byte) and its last byte.
fn quotes_well_placed(raw: &[u8]) -> bool {
    let count = raw.iter().filter(|&&b| b == b'"').count();
    if count == 0 {
        return true;
    }
    let last_is_quote = raw.len() >= 2 && raw[raw.len() - 1] == b'"';
    if count != 2 || !last_is_quote {
        return false;
    }
    if raw[0] == b'"' {
        return true;
    }
    raw.iter()
        .skip(1)
        .position(|&b| b == b'=')
        .is_some_and(|eq| raw.get(eq + 2) == Some(&b'"') && eq + 2 < raw.len() - 1)
}
