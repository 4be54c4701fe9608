//! The `[[secrets]]` tables: what `/init` fetches from a key broker once the guest has attested,
//! before the entry point starts.
//!
//! Each secret names a KBS resource, `<repository>/<type>/<tag>`, checked with snpkit-kbs's
//! grammar (the one the broker's resources folder and the guest's request use, so a name the
//! recipe accepts is one the broker can serve), and the file the guest writes it to: under
//! [`SECRETS_DIR`], a tmpfs `/init` mounts in the appliance's root, so a secret never touches a
//! disk.

use crate::RecipeError;
use crate::raw::RawSecret;
use snpkit_kbs::ResourcePath;
use std::collections::BTreeMap;
use std::path::Path;

/// The tmpfs in the appliance's root that holds every secret.
pub const SECRETS_DIR: &str = "/run/secrets";
/// A secret's permission bits unless the recipe says otherwise: readable by its owner only.
pub const DEFAULT_SECRET_MODE: u32 = 0o400;
/// Longest secret name (it becomes a file name by default and appears in messages).
const MAX_NAME_LEN: usize = 64;

/// A checked `[[secrets]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// `[A-Za-z0-9._-]`, not starting with `.`; unique in the recipe.
    pub name: String,
    pub resource: ResourcePath,
    /// A normalised absolute path under [`SECRETS_DIR`]; unique in the recipe.
    pub path: String,
    /// Permission bits only (at most 0o777).
    pub mode: u32,
}

impl SecretSpec {
    /// The entry of `/etc/snpkit/init.json` that tells `/init` to fetch this secret.
    pub fn init_secret(&self) -> snpkit_wire::init::Secret {
        snpkit_wire::init::Secret {
            name: self.name.clone(),
            resource: self.resource.to_string(),
            path: self.path.clone(),
            mode: self.mode,
        }
    }
}

fn invalid(file: &Path, key: String, problem: String, fix: &str) -> RecipeError {
    RecipeError::invalid(file, key, problem, fix)
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A normalised absolute path with at least one component below [`SECRETS_DIR`].
fn path_ok(path: &str) -> bool {
    let Some(rest) = path
        .strip_prefix(SECRETS_DIR)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    !rest.is_empty()
        && !path.contains('\0')
        && rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Checks every `[[secrets]]` entry of the recipe `file`.
pub(crate) fn check(file: &Path, raw: &[RawSecret]) -> Result<Vec<SecretSpec>, RecipeError> {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut paths: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let key = |field: &str| format!("secrets[{i}].{field}");
        if !name_ok(&s.name) {
            return Err(invalid(
                file,
                key("name"),
                format!("{:?} is not a secret name", s.name),
                "use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'",
            ));
        }
        if let Some(j) = names.insert(&s.name, i) {
            return Err(invalid(
                file,
                key("name"),
                format!("{:?} is also the name of secrets[{j}]", s.name),
                "give every secret its own name",
            ));
        }
        let resource = ResourcePath::parse(&s.resource).map_err(|e| {
            invalid(
                file,
                key("resource"),
                format!("{:?}: {e}", s.resource),
                "write <repository>/<type>/<tag>, the path of the file under the broker's resources folder",
            )
        })?;
        let path = s
            .path
            .clone()
            .unwrap_or_else(|| format!("{SECRETS_DIR}/{}", s.name));
        if !path_ok(&path) {
            return Err(invalid(
                file,
                key("path"),
                format!("{path:?} is not a normalised absolute path under {SECRETS_DIR}/"),
                "secrets live only in the tmpfs at /run/secrets: write it like /run/secrets/token",
            ));
        }
        if let Some(j) = paths.insert(path.clone(), i) {
            return Err(invalid(
                file,
                key("path"),
                format!("{path:?} is also the path of secrets[{j}]"),
                "give every secret its own file",
            ));
        }
        let mode = s.mode.unwrap_or(DEFAULT_SECRET_MODE);
        if mode > 0o777 {
            return Err(invalid(
                file,
                key("mode"),
                format!("{mode:#o} is not a file's permission bits"),
                "write an octal mode of at most 0o777, such as 0o400 (no setuid, setgid or sticky bit)",
            ));
        }
        out.push(SecretSpec {
            name: s.name.clone(),
            resource,
            path,
            mode,
        });
    }
    Ok(out)
}
