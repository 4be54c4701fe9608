//! Running the few external tools this crate needs, with errors that say which and why.

use crate::InputError;
use std::process::{Command, Output};

/// Runs a command to completion, capturing its output; a missing binary becomes `ToolMissing`.
pub(crate) fn run(cmd: &mut Command, package: &str, purpose: &str) -> Result<Output, InputError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            InputError::ToolMissing {
                tool: program.clone(),
                purpose: purpose.to_owned(),
                package: package.to_owned(),
            }
        } else {
            InputError::CommandFailed {
                command: program.clone(),
                detail: e.to_string(),
            }
        }
    })
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The first line a tool prints for `--version`, or "unknown".
pub fn tool_version(program: &str, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
