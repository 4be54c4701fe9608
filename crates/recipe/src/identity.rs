//! The `[identity]` table: what the image's owner signs into the ID block of every launch config
//! besides its digest and policy — FAMILY_ID, IMAGE_ID and GUEST_SVN — and what the PSP then
//! reports in every attestation report of the guest.
//!
//! ```toml
//! [identity]
//! family_id = "5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11"   # 16 bytes: a UUID, or 32 hex digits
//! image_id = "00000000000000000000000000000001"       # 16 bytes, likewise
//! guest_svn = 3                                       # 0 to 4294967295
//! ```
//!
//! Every key is required: each is a decision (which product line, which image, which security
//! version) a signer makes, with no value right for everyone. The signing keys are never here nor
//! in the image: they are given to `cargo xtask sign` on its command line. The table changes no
//! image byte: changing it needs a new signature (`sign`), not a new image (though `recipe.lock`,
//! which pins the whole file, must be written again before the next build).
//!
//! A UUID is written into the 16 bytes in the order its hex digits are written (RFC 9562's byte
//! order, as the `uuid` crate's `as_bytes` gives it), not in Microsoft's mixed-endian GUID layout:
//! a verifier comparing `--family-id` with a report reads the same digits either way.

use crate::RecipeError;
use serde::Deserialize;
use std::path::Path;

/// The `[identity]` table as TOML spells it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    pub family_id: Option<String>,
    pub image_id: Option<String>,
    pub guest_svn: Option<i64>,
    /// Read only to refuse it with advice: keys never belong in a recipe.
    pub id_key: Option<toml::Value>,
    /// Read only to refuse it with advice.
    pub author_key: Option<toml::Value>,
}

/// The checked `[identity]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub guest_svn: u32,
}

/// Checks the table read from `file`.
pub(crate) fn identity(raw: &RawIdentity, file: &Path) -> Result<Identity, RecipeError> {
    let err = |key: &str, problem: String, fix: &str| {
        RecipeError::invalid(file, format!("identity.{key}"), problem, fix)
    };
    for (key, given) in [("id_key", &raw.id_key), ("author_key", &raw.author_key)] {
        if given.is_some() {
            return Err(err(
                key,
                "a signing key in the recipe".into(),
                "remove it: keys never go into a recipe or an image; pass them to `cargo xtask sign <recipe> --id-key FILE [--author-key FILE]`",
            ));
        }
    }
    let id16 = |key: &str, value: &Option<String>| -> Result<[u8; 16], RecipeError> {
        let fix = "write 32 hex digits or a UUID, e.g. \"5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11\"";
        let Some(text) = value else {
            return Err(err(key, "missing".into(), fix));
        };
        parse_id(text).ok_or_else(|| {
            let shown: String = text.chars().take(80).collect();
            err(key, format!("{shown:?} is not 16 bytes"), fix)
        })
    };
    let family_id = id16("family_id", &raw.family_id)?;
    let image_id = id16("image_id", &raw.image_id)?;
    let svn_fix = "write the image's security version, 0 to 4294967295; raise it when an update fixes a vulnerability";
    let guest_svn = match raw.guest_svn {
        None => return Err(err("guest_svn", "missing".into(), svn_fix)),
        Some(n) => u32::try_from(n)
            .map_err(|_| err("guest_svn", format!("{n} is out of range"), svn_fix))?,
    };
    Ok(Identity {
        family_id,
        image_id,
        guest_svn,
    })
}

/// 32 hex digits, or a UUID in any of its usual spellings (hyphenated, braced, `urn:uuid:`).
pub fn parse_id(text: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    if text.len() == 32 && hex::decode_to_slice(text, &mut out).is_ok() {
        return Some(out);
    }
    uuid::Uuid::try_parse(text).ok().map(|u| *u.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_or_uuids_in_the_order_written() {
        let want = [
            0x5e, 0x0d, 0x3a, 0xb4, 0x7f, 0x5c, 0x4b, 0x43, 0x9a, 0x33, 0x0c, 0x6b, 0x2f, 0x0e,
            0x6d, 0x11,
        ];
        for text in [
            "5e0d3ab47f5c4b439a330c6b2f0e6d11",
            "5E0D3AB47F5C4B439A330C6B2F0E6D11",
            "5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11",
            "{5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11}",
            "urn:uuid:5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11",
        ] {
            assert_eq!(parse_id(text), Some(want), "{text}");
        }
        for bad in [
            "",
            "5e0d3ab47f5c4b439a330c6b2f0e6d1",
            "5e0d3ab47f5c4b439a330c6b2f0e6d1100",
            "5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d1g",
            "family-one",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }
}
