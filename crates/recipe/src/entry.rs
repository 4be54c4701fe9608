//! `[entry]`: the program the appliance runs, its environment, where its output goes, and the
//! account and folder it runs in (checked here; written into the image by snpkit-assemble, applied by `/init`).

use crate::RecipeError;
use crate::model::{EntryLog, EntrySpec, EntryUser};
use crate::raw::RawEntry;
use std::path::Path;

/// Checks `[entry]` of `file`; `abs_path` is the recipe's rule for paths inside the image.
pub(crate) fn check(
    file: &Path,
    e: &RawEntry,
    abs_path: &dyn Fn(&str, &str) -> Result<String, RecipeError>,
) -> Result<EntrySpec, RecipeError> {
    Check { file, abs_path }.entry(e)
}

struct Check<'a> {
    file: &'a Path,
    abs_path: &'a dyn Fn(&str, &str) -> Result<String, RecipeError>,
}

impl Check<'_> {
    fn err(
        &self,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> RecipeError {
        RecipeError::invalid(self.file, key, problem, fix)
    }

    fn entry(&self, e: &RawEntry) -> Result<EntrySpec, RecipeError> {
        let Some(first) = e.argv.first() else {
            return Err(self.err(
                "entry.argv",
                "empty",
                "name the appliance's program, e.g. argv = [\"/usr/bin/hello\"]",
            ));
        };
        (self.abs_path)("entry.argv[0]", first)?;
        if let Some(k) = e
            .env
            .keys()
            .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        {
            return Err(self.err(
                format!("entry.env.{k}"),
                "not a valid variable name",
                "use NAME = \"value\"",
            ));
        }
        let workdir = e
            .workdir
            .as_deref()
            .map(|w| (self.abs_path)("entry.workdir", w))
            .transpose()?;
        let log = match e.log.as_deref() {
            None | Some("channel") => EntryLog::Channel,
            Some("none") => EntryLog::None,
            Some(other) => {
                return Err(self.err(
                    "entry.log",
                    format!("{other:?} is not a place for the entry point's output"),
                    "use \"channel\" (stdout and stderr reach the host's runs/<id>/appliance.log) or \"none\" (discarded)",
                ));
            }
        };
        Ok(EntrySpec {
            argv: e.argv.clone(),
            env: e.env.clone(),
            log,
            user: self.entry_user(e)?,
            workdir,
        })
    }

    fn entry_user(&self, e: &RawEntry) -> Result<Option<EntryUser>, RecipeError> {
        let Some(user) = &e.user else {
            for (key, set) in [
                ("uid", e.uid.is_some()),
                ("group", e.group.is_some()),
                ("gid", e.gid.is_some()),
            ] {
                if set {
                    return Err(self.err(
                        format!("entry.{key}"),
                        "set without entry.user",
                        "name the account with user = \"app\" (the entry point runs as root without it)",
                    ));
                }
            }
            return Ok(None);
        };
        let account = |key: &str, name: &str| -> Result<(), RecipeError> {
            // What Debian's adduser accepts by default (NAME_REGEX), and never root: an entry
            // point that should run as root leaves user out.
            let ok = (1..=32).contains(&name.len())
                && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
            if !ok || name == "root" {
                return Err(self.err(
                    key,
                    format!("{name:?} is not an account name snpkit writes"),
                    "use 1-32 lowercase letters, digits, '_' or '-', starting with a letter (not root: leave user out to run as root)",
                ));
            }
            Ok(())
        };
        let id = |key: &str, id: Option<u32>| -> Result<u32, RecipeError> {
            let id = id.unwrap_or(crate::model::DEFAULT_ENTRY_UID);
            // 0 is root; 65534 is nobody; u32::MAX is (uid_t)-1, "no change" to setuid.
            if id == 0 || id >= 65534 {
                return Err(self.err(
                    key,
                    format!("{id} is not an id for the entry point"),
                    "use 1 to 65533 (the default is 1000)",
                ));
            }
            Ok(id)
        };
        account("entry.user", user)?;
        let group = e.group.clone().unwrap_or_else(|| user.clone());
        account("entry.group", &group)?;
        let uid = id("entry.uid", e.uid)?;
        let gid = id("entry.gid", e.gid.or(e.uid))?;
        Ok(Some(EntryUser {
            user: user.clone(),
            uid,
            group,
            gid,
        }))
    }
}
