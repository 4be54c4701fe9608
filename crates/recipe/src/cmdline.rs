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

/// minijinja's strict mode says "undefined value" without the name: find which variables the
/// template uses that the context does not have, and name them with what there is.
fn undefined_error(
    file: &Path,
    template: &minijinja::Template<'_, '_>,
    ctx: &CmdlineContext,
    e: &minijinja::Error,
) -> RecipeError {
    let value = minijinja::Value::from_serialize(ctx);
    let mut missing: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|path| {
            let mut v = value.clone();
            for part in path.split('.') {
                v = v.get_attr(part).unwrap_or(minijinja::Value::UNDEFINED);
                if v.is_undefined() || v.is_none() {
                    return true;
                }
            }
            false
        })
        .collect();
    missing.sort();
    if missing.is_empty() {
        return template_error(file, e);
    }
    let vars: Vec<String> = ctx.vars.keys().map(|k| format!("vars.{k}")).collect();
    let mut known = vec!["name", "layout", "kernel_release"]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if ctx.verity.is_some() {
        known.extend(["verity.arg", "verity.root_hash", "verity.salt"].map(str::to_owned));
    }
    known.extend(vars);
    RecipeError::Template {
        path: file.to_owned(),
        message: format!(
            "undefined variable {} ({}); the template can use {} (add a value under [vars] for vars.*)",
            missing.join(", "),
            e.line()
                .map_or_else(|| "in cmdline".to_owned(), |l| format!("line {l}")),
            known.join(", ")
        ),
    }
}

/// Renders the recipe's cmdline and checks the result.
pub fn render_cmdline(recipe: &Recipe, ctx: &CmdlineContext) -> Result<String, RecipeError> {
    let env = env();
    let template = env
        .template_from_str(&recipe.cmdline)
        .map_err(|e| template_error(&recipe.file, &e))?;
    let line = template.render(ctx).map_err(|e| {
        if e.kind() == minijinja::ErrorKind::UndefinedError {
            undefined_error(&recipe.file, &template, ctx, &e)
        } else {
            template_error(&recipe.file, &e)
        }
    })?;
    check_rendered(&line, recipe, ctx)?;
    Ok(line)
}

fn check_rendered(line: &str, recipe: &Recipe, ctx: &CmdlineContext) -> Result<(), RecipeError> {
    let bad =
        |problem: String, fix: &str| RecipeError::invalid(&recipe.file, "cmdline", problem, fix);
    // The kernel's COMMAND_LINE_SIZE on x86 is 2048 including the NUL.
    if line.len() > 2047 {
        return Err(bad(
            format!("the rendered command line is {} bytes", line.len()),
            "keep it under 2048 bytes",
        ));
    }
    // Bytes the kernel's readers disagree on, options that bypass /init, and (hardened) consoles
    // and debuggers: one judgement, shared with /init's check of /proc/cmdline.
    snpkit_wire::cmdline::check(line.as_bytes(), recipe.hardened)
        .map_err(|p| bad(format!("the rendered command line {line:?}: {p}"), p.fix()))?;
    // The root hash must come from the image being built: any snpkit.verity option, as the
    // kernel reads it, must be exactly the builder's.
    let words = snpkit_wire::cmdline::params(line.as_bytes());
    let verity_key = snpkit_wire::cmdline::Key::Name("snpkit.verity");
    for p in words.iter().filter(|p| verity_key.matches(p.name)) {
        if ctx
            .verity
            .as_ref()
            .is_none_or(|v| v.arg.as_bytes() != p.raw)
        {
            return Err(bad(
                "a hand-written snpkit.verity= option".into(),
                "use {{ verity.arg }} so the root hash comes from the image being built",
            ));
        }
    }
    if let Some(v) = &ctx.verity
        && !words.iter().any(|p| p.raw == v.arg.as_bytes())
    {
        return Err(bad(
            "a verity recipe whose command line does not carry the root hash".into(),
            "add {{ verity.arg }} to cmdline: the root hash must be measured",
        ));
    }
    Ok(())
}

/// A verity token of the shape and the greatest length the build can make for `spec` (the root
/// hash and salt as zeros, block counts of twenty digits), so that a line the build would find
/// too long is refused by `lock` too, not after the root filesystem is built.
fn placeholder(spec: &crate::VeritySpec) -> VerityContext {
    let digest = match spec.hash.name() {
        "sha1" => 40,
        "sha512" => 128,
        _ => 64,
    };
    let (root, salt) = ("0".repeat(digest), "0".repeat(64));
    let blocks = "9".repeat(20);
    VerityContext {
        arg: format!(
            "snpkit.verity=format=1,hash={},data_block={},hash_block={},data_blocks={blocks},hash_start={blocks},root={root},salt={salt},on_corruption={},check={}",
            spec.hash.name(),
            spec.data_block_size,
            spec.hash_block_size,
            spec.on_corruption.name(),
            spec.check.name(),
        ),
        root_hash: root,
        salt,
    }
}

/// What [`check_cmdline`] renders for `kernel_release` when the kernel is not resolved yet.
pub const UNRESOLVED_RELEASE: &str = "0.0.0-unresolved";

/// Renders the command line before anything is fetched or built, and judges it as the build will:
/// a refused option stops `lock` and `build` in their first second, not after the kernel, the
/// firmware and the file tree. The verity root hash and salt exist only once the image is built,
/// so they are placeholders here (of the same shape, at their longest); `kernel_release` is the lock's when there is
/// one, else [`UNRESOLVED_RELEASE`]. The build renders and judges the real line again.
pub fn check_cmdline(recipe: &Recipe, kernel_release: Option<&str>) -> Result<(), RecipeError> {
    let verity = match &recipe.layout {
        crate::Layout::Verity(spec) => Some(placeholder(spec)),
        crate::Layout::Initramfs => None,
    };
    let ctx = CmdlineContext {
        name: recipe.name.clone(),
        layout: if verity.is_some() {
            "verity"
        } else {
            "initramfs"
        },
        kernel_release: kernel_release.unwrap_or(UNRESOLVED_RELEASE).to_owned(),
        vars: recipe.vars.clone(),
        verity,
    };
    render_cmdline(recipe, &ctx).map(drop)
}
