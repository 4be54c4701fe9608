//! A release rule's signer requirements: the ID-block identity that `cargo xtask verify` takes as
//! `--author-key`, `--id-key`, `--family-id`, `--image-id` and `--min-guest-svn`, here per
//! resource. They become fields of an snpkit-attest [`Policy`], so the broker judges them with
//! the verifier's own checks — including its rule that a measurement passes "by signature" only
//! when a non-zero key digest is required.
//!
//! Key digests are computed as the PSP computes ID_KEY_DIGEST and AUTHOR_KEY_DIGEST (SHA-384 of
//! the key in the SNP ABI form), by snpkit-idblock, from public key files (SubjectPublicKeyInfo,
//! PEM or DER) or given as 96 hex digits.

use snpkit_attest::Policy;
use std::path::Path;

/// What a rule requires of the launch's signed identity. Every field set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signer {
    pub id_key_digest: Option<[u8; 48]>,
    pub author_key_digest: Option<[u8; 48]>,
    pub family_id: Option<[u8; 16]>,
    pub image_id: Option<[u8; 16]>,
    pub min_guest_svn: Option<u32>,
}

/// A rule's signer keys as the rules file writes them.
#[derive(Debug, Default)]
pub struct SignerText<'a> {
    pub id_key: Option<&'a str>,
    pub id_key_digest: Option<&'a str>,
    pub author_key: Option<&'a str>,
    pub author_key_digest: Option<&'a str>,
    pub family_id: Option<&'a str>,
    pub image_id: Option<&'a str>,
    pub min_guest_svn: Option<u32>,
}

/// A key given as a public key file or as its digest (never both).
fn key_digest(
    name: &str,
    file: Option<&str>,
    digest: Option<&str>,
    base: &Path,
) -> Result<Option<[u8; 48]>, String> {
    match (file, digest) {
        (Some(_), Some(_)) => Err(format!(
            "give {name} (a public key file) or {name}_digest (its 96 hex digits), not both"
        )),
        (Some(file), None) => {
            let path = base.join(file);
            let key = snpkit_idblock::keyfile::read_public_key(&path)
                .map_err(|e| format!("{name}: {}", error_chain(&e)))?;
            Ok(Some(key.digest()))
        }
        (None, Some(text)) => hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 48]>::try_from(b).ok())
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{name}_digest {:?} is not 96 hex digits (SHA-384 of the key in the SNP ABI form; \
                     `cargo xtask keygen` prints it)",
                    text.chars().take(120).collect::<String>()
                )
            }),
        (None, None) => Ok(None),
    }
}

/// FAMILY_ID or IMAGE_ID: 32 hex digits or a UUID, as the recipe's `[identity]` and verify take
/// them.
fn id16(name: &str, text: Option<&str>) -> Result<Option<[u8; 16]>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let mut out = [0u8; 16];
    if text.len() == 32 && hex::decode_to_slice(text, &mut out).is_ok() {
        return Ok(Some(out));
    }
    uuid::Uuid::try_parse(text)
        .map(|u| Some(*u.as_bytes()))
        .map_err(|_| {
            format!(
                "{name} {:?} is not 16 bytes: write 32 hex digits or a UUID",
                text.chars().take(80).collect::<String>()
            )
        })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

impl Signer {
    /// The requirements a rule writes, or `None` when it writes none. Relative key file paths are
    /// read from `base` (the rules file's folder).
    pub fn from_text(t: &SignerText<'_>, base: &Path) -> Result<Option<Signer>, String> {
        let signer = Signer {
            id_key_digest: key_digest("id_key", t.id_key, t.id_key_digest, base)?,
            author_key_digest: key_digest("author_key", t.author_key, t.author_key_digest, base)?,
            family_id: id16("family_id", t.family_id)?,
            image_id: id16("image_id", t.image_id)?,
            min_guest_svn: t.min_guest_svn,
        };
        Ok((signer != Signer::default()).then_some(signer))
    }

    /// Whether a non-zero key digest is required. Only then may the measurement pass by
    /// signature: the PSP launched the guest because that key signed an ID block naming it. A
    /// zero digest is what an unsigned launch reports, so it vouches for nothing.
    pub fn names_a_key(&self) -> bool {
        [self.author_key_digest, self.id_key_digest]
            .iter()
            .flatten()
            .any(|d| d.iter().any(|&b| b != 0))
    }

    /// The broker's policy with these requirements added (the larger minimum SVN of the two).
    pub fn policy(&self, base: &Policy) -> Policy {
        let mut p = base.clone();
        let set = |field: &mut Option<String>, value: Option<&[u8]>| {
            if let Some(v) = value {
                *field = Some(hex::encode(v));
            }
        };
        set(
            &mut p.id_key_digest,
            self.id_key_digest.as_ref().map(|d| &d[..]),
        );
        set(
            &mut p.author_key_digest,
            self.author_key_digest.as_ref().map(|d| &d[..]),
        );
        set(&mut p.family_id, self.family_id.as_ref().map(|d| &d[..]));
        set(&mut p.image_id, self.image_id.as_ref().map(|d| &d[..]));
        if let Some(n) = self.min_guest_svn {
            p.min_guest_svn = p.min_guest_svn.max(n);
        }
        p
    }

    /// Where the broker's policy file already sets one of these fields to another value: no
    /// guest could pass both, so the rule would be dead.
    pub fn conflict(&self, base: &Policy) -> Option<String> {
        // This rule's fields as policy text, beside the policy file's.
        let mine = self.policy(&Policy::default());
        [
            ("id_key_digest", &base.id_key_digest, &mine.id_key_digest),
            (
                "author_key_digest",
                &base.author_key_digest,
                &mine.author_key_digest,
            ),
            ("family_id", &base.family_id, &mine.family_id),
            ("image_id", &base.image_id, &mine.image_id),
        ]
        .into_iter()
        .find_map(|(key, old, new)| match (old, new) {
            (Some(old), Some(new)) if !old.trim().eq_ignore_ascii_case(new) => Some(format!(
                "the policy file sets {key} = {old:?}, the rule requires {new}: no guest could \
                 pass both; give one of them"
            )),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_give_the_digest_the_psp_reports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = snpkit_idblock::SigningKey::generate();
        let pem = key.public_key().to_spki_pem().expect("pem");
        std::fs::write(dir.path().join("author.pub.pem"), pem).expect("write");
        let signer = Signer::from_text(
            &SignerText {
                author_key: Some("author.pub.pem"),
                family_id: Some("5e0d3ab4-7f5c-4b43-9a33-0c6b2f0e6d11"),
                min_guest_svn: Some(3),
                ..SignerText::default()
            },
            dir.path(),
        )
        .expect("valid")
        .expect("some");
        assert_eq!(signer.author_key_digest, Some(key.public_key().digest()));
        assert_eq!(
            signer.family_id.map(hex::encode).as_deref(),
            Some("5e0d3ab47f5c4b439a330c6b2f0e6d11")
        );
        assert!(signer.names_a_key());
        let base = Policy {
            min_guest_svn: 5,
            ..Policy::default()
        };
        let p = signer.policy(&base);
        assert_eq!(p.min_guest_svn, 5, "the larger minimum holds");
        assert_eq!(
            p.author_key_digest,
            Some(hex::encode(key.public_key().digest()))
        );
        assert_eq!(
            p.family_id.as_deref(),
            Some("5e0d3ab47f5c4b439a330c6b2f0e6d11")
        );
        assert_eq!(p.id_key_digest, None);
        assert!(signer.conflict(&base).is_none());
        let other = Policy {
            author_key_digest: Some("ab".repeat(48)),
            ..Policy::default()
        };
        assert!(
            signer
                .conflict(&other)
                .expect("conflict")
                .contains("author_key_digest")
        );
    }

    #[test]
    fn zero_digests_name_no_key_and_bad_text_is_refused() {
        let zero = "00".repeat(48);
        let s = Signer::from_text(
            &SignerText {
                author_key_digest: Some(&zero),
                ..SignerText::default()
            },
            Path::new("."),
        )
        .expect("valid")
        .expect("some");
        assert!(!s.names_a_key());
        assert_eq!(
            Signer::from_text(&SignerText::default(), Path::new(".")).expect("valid"),
            None
        );
        let d = "11".repeat(48);
        for (t, needle) in [
            (
                SignerText {
                    author_key: Some("a.pem"),
                    author_key_digest: Some(&d),
                    ..SignerText::default()
                },
                "not both",
            ),
            (
                SignerText {
                    id_key_digest: Some("abc"),
                    ..SignerText::default()
                },
                "96 hex",
            ),
            (
                SignerText {
                    id_key: Some("missing.pub.pem"),
                    ..SignerText::default()
                },
                "missing.pub.pem",
            ),
            (
                SignerText {
                    image_id: Some("12"),
                    ..SignerText::default()
                },
                "32 hex digits or a UUID",
            ),
        ] {
            let err = Signer::from_text(&t, Path::new("/nonexistent")).expect_err(needle);
            assert!(err.contains(needle), "{err}");
        }
    }
}
