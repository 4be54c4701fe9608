//! Parsing the folder's JSON files: bytes that are not the type, and a schema version this snpkit
//! does not read, are each one error naming the file.

use crate::BundleError;
use serde::de::DeserializeOwned;
use std::path::Path;

/// `bytes`, read from `path`, as a `T`; `what` names the file in the error.
pub(crate) fn parse<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    what: &'static str,
) -> Result<T, BundleError> {
    serde_json::from_slice(bytes).map_err(|source| BundleError::Json {
        path: path.to_owned(),
        what,
        source,
    })
}

/// As [`parse`], and the file's schema version (`schema` of it) must be `supported`.
pub(crate) fn parse_versioned<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    what: &'static str,
    supported: u32,
    schema: fn(&T) -> u32,
) -> Result<T, BundleError> {
    let parsed: T = parse(path, bytes, what)?;
    let found = schema(&parsed);
    if found != supported {
        return Err(BundleError::Schema {
            path: path.to_owned(),
            found,
            supported,
        });
    }
    Ok(parsed)
}
