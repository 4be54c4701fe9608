//! The kernel command line: a minijinja template rendered with the recipe's values, then checked.
//!
//! The rendered line is hashed into the SEV hashes table exactly as written (QEMU appends a NUL), so
//! rendering must be deterministic and must not reformat whitespace: a trailing space changes the
//! launch digest. Options that would let someone bypass `/init` are refused outright; a hardened
//! recipe also refuses consoles and debug switches (a serial console with a shell is a back door).

use crate::{Recipe, RecipeError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What the template can refer to. `verity` is only set for dm-verity layouts, once the hash tree
/// is known.
#[derive(Debug, Clone, Serialize)]
pub struct CmdlineContext {
    pub name: String,
    pub layout: &'static str,
    /// `uname -r` of the kernel being shipped.
    pub kernel_release: String,
    pub vars: BTreeMap<String, toml::Value>,
    pub verity: Option<VerityContext>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerityContext {
    /// The whole `snpkit.verity=…` token, ready to place on the command line.
    pub arg: String,
    pub root_hash: String,
    pub salt: String,
}

// Options that replace or bypass our `/init` or open a shell are never allowed; the one check
// is shared with `/init`, which applies it again to `/proc/cmdline`.
use snpkit_wire::cmdline::find_bypass;

/// Options a hardened image must not carry: they print secrets to or take input from the host.
const HARDENED_REFUSED: &[&str] = &[
    "console",
    "earlycon",
    "earlyprintk",
    "debug",
    "ignore_loglevel",
    "kgdboc",
    "kgdbwait",
];

pub(crate) fn check_template(template: &str, file: &Path) -> Result<(), RecipeError> {
    env()
        .template_from_str(template)
        .map(drop)
        .map_err(|e| template_error(file, &e))
}

fn env() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Keep the text exactly as written: no trimming of the final newline, no autoescape.
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

fn template_error(file: &Path, e: &minijinja::Error) -> RecipeError {
    let mut message = e.to_string();
    if let Some(detail) = e.detail() {
        message = format!("{message} ({detail})");
    }
    RecipeError::Template {
        path: file.to_owned(),
        message,
    }
}

/// Renders the recipe's cmdline and checks the result.
pub fn render_cmdline(recipe: &Recipe, ctx: &CmdlineContext) -> Result<String, RecipeError> {
    let env = env();
    let template = env
        .template_from_str(&recipe.cmdline)
        .map_err(|e| template_error(&recipe.file, &e))?;
    let line = template
        .render(ctx)
        .map_err(|e| template_error(&recipe.file, &e))?;
    check_rendered(&line, recipe, ctx)?;
    Ok(line)
}

fn check_rendered(line: &str, recipe: &Recipe, ctx: &CmdlineContext) -> Result<(), RecipeError> {
    let bad =
        |problem: String, fix: &str| RecipeError::invalid(&recipe.file, "cmdline", problem, fix);
    if line.contains(['\n', '\r', '\0']) {
        return Err(bad(
            "the rendered command line contains a newline or NUL".into(),
            "keep it on one line",
        ));
    }
    // The kernel's COMMAND_LINE_SIZE on x86 is 2048 including the NUL.
    if line.len() > 2047 {
        return Err(bad(
            format!("the rendered command line is {} bytes", line.len()),
            "keep it under 2048 bytes",
        ));
    }
    if let Some(word) = find_bypass(line) {
        return Err(bad(
            format!("`{word}` would bypass snpkit's /init (and so attestation)"),
            "remove it; the appliance's entry point is [entry].argv",
        ));
    }
    for word in line.split_ascii_whitespace() {
        let key = word.split('=').next().unwrap_or(word);
        if recipe.hardened && HARDENED_REFUSED.contains(&key) {
            return Err(bad(
                format!(
                    "`{word}` is not allowed in a hardened image: consoles and debug switches leak to the host"
                ),
                "remove it, or set hardened = false for a development image",
            ));
        }
        if key == "snpkit.verity" && ctx.verity.as_ref().is_none_or(|v| v.arg != word) {
            return Err(bad(
                "a hand-written snpkit.verity= option".into(),
                "use {{ verity.arg }} so the root hash comes from the image being built",
            ));
        }
    }
    if let Some(v) = &ctx.verity
        && !line.split_ascii_whitespace().any(|w| w == v.arg)
    {
        return Err(bad(
            "a verity recipe whose command line does not carry the root hash".into(),
            "add {{ verity.arg }} to cmdline: the root hash must be measured",
        ));
    }
    Ok(())
}
