//! Why bytes are not a well-formed ID block or ID authentication structure.

use std::ops::Range;

/// A structural rule of the ABI that the bytes break. Each variant names the field and, where
/// there is one, the byte range, the expected and the found value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{structure} is exactly {expected} bytes, this input has {found}")]
    Size {
        structure: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("ID block VERSION is {found}; the ABI defines version 1 only")]
    Version { found: u32 },
    #[error(
        "{field} is {found}; the ABI defines 1 (ECDSA P-384 with SHA-384) only{}",
        if *.author_absent { " (0 is also accepted when the structure carries no author key)" } else { "" }
    )]
    Algorithm {
        field: &'static str,
        found: u32,
        author_absent: bool,
    },
    #[error("{field} CURVE is {found}; ID and author keys are P-384 (2)")]
    Curve { field: &'static str, found: u32 },
    #[error("{field}: {part} (bytes {start:#05x}..{end:#05x}) must be zero, found {found}")]
    Reserved {
        field: &'static str,
        part: &'static str,
        start: usize,
        end: usize,
        found: String,
    },
    #[error("{field} (QX, QY) is not a point on the P-384 curve")]
    NotOnCurve { field: &'static str },
    #[error("{field}: {component} is zero or not below the P-384 group order")]
    ScalarRange {
        field: &'static str,
        component: &'static str,
    },
    #[error(
        "the author part (ID_KEY_SIG, AUTHOR_KEY at {:#05x}..{:#05x}) is partly zero: {zero} is zero while the other is set",
        crate::layout::auth::AUTHOR_PART.start,
        crate::layout::auth::AUTHOR_PART.end
    )]
    AuthorPartial { zero: &'static str },
}

/// Fails on the first non-zero byte of any range of `table`, each offset by `base`.
pub(crate) fn check_zero(
    b: &[u8],
    base: usize,
    field: &'static str,
    table: &[(&'static str, Range<usize>)],
) -> Result<(), DecodeError> {
    for (part, r) in table {
        let bytes = &b[r.clone()];
        if let Some(i) = bytes.iter().position(|&x| x != 0) {
            return Err(DecodeError::Reserved {
                field,
                part,
                start: base + r.start,
                end: base + r.end,
                found: format!("{:#04x} at {:#05x}", bytes[i], base + r.start + i),
            });
        }
    }
    Ok(())
}

pub(crate) fn check_size(
    structure: &'static str,
    expected: usize,
    bytes: &[u8],
) -> Result<(), DecodeError> {
    if bytes.len() != expected {
        return Err(DecodeError::Size {
            structure,
            expected,
            found: bytes.len(),
        });
    }
    Ok(())
}
