//! Resource names, `<repository>/<type>/<tag>` (`GET /kbs/v0/resource/<repo>/<type>/<tag>`).
//!
//! Each component becomes a file-name component on the broker (`DIR/<repo>/<type>/<tag>`), so a
//! [`ResourcePath`] is checked once, where it is made: not empty, not `.` or `..`, no `/`, NUL or
//! other control character (after percent-decoding, so `%2F` and `%2e%2e` are caught too), at most
//! [`MAX_COMPONENT_LEN`] bytes of UTF-8.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use std::fmt;

/// Longest component (a Linux file name).
pub const MAX_COMPONENT_LEN: usize = 255;
const NAMES: [&str; 3] = ["repository", "type", "tag"];

/// What a guest percent-encodes in a component: everything but unreserved characters (RFC 3986).
const COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'+')
    .add(b';')
    .add(b'=')
    .add(b'&')
    .add(b'$')
    .add(b',')
    .add(b'@')
    .add(b':')
    .add(b'\'')
    .add(b'!')
    .add(b'(')
    .add(b')')
    .add(b'*');

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("a resource is <repository>/<type>/<tag>; {0:?} has {1} components")]
    Components(String, usize),
    #[error("the resource's {0} is empty")]
    Empty(&'static str),
    #[error("the resource's {0} is {1:?}, which names no file")]
    Dot(&'static str, String),
    #[error("the resource's {0} contains {1}, which a file name cannot hold")]
    Forbidden(&'static str, &'static str),
    #[error("the resource's {0} is {1} bytes, more than {MAX_COMPONENT_LEN}")]
    TooLong(&'static str, usize),
    #[error("the resource's {0} is not percent-encoded UTF-8")]
    Encoding(&'static str),
}

/// A checked resource name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePath {
    parts: [String; 3],
}

fn check(which: &'static str, c: &str) -> Result<(), ResourceError> {
    if c.is_empty() {
        return Err(ResourceError::Empty(which));
    }
    if c == "." || c == ".." {
        return Err(ResourceError::Dot(which, c.into()));
    }
    if c.contains('/') {
        return Err(ResourceError::Forbidden(which, "'/'"));
    }
    if c.contains('\0') {
        return Err(ResourceError::Forbidden(which, "NUL"));
    }
    if c.chars().any(char::is_control) {
        return Err(ResourceError::Forbidden(which, "a control character"));
    }
    if c.len() > MAX_COMPONENT_LEN {
        return Err(ResourceError::TooLong(which, c.len()));
    }
    Ok(())
}

impl ResourcePath {
    pub fn new(repository: &str, kind: &str, tag: &str) -> Result<ResourcePath, ResourceError> {
        let parts = [repository, kind, tag];
        for (which, c) in NAMES.into_iter().zip(parts) {
            check(which, c)?;
        }
        Ok(ResourcePath {
            parts: parts.map(str::to_owned),
        })
    }

    /// `repo/type/tag`, as written in rule files and on the command line.
    pub fn parse(text: &str) -> Result<ResourcePath, ResourceError> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [r, k, t] => ResourcePath::new(r, k, t),
            _ => Err(ResourceError::Components(text.into(), parts.len())),
        }
    }

    /// The part of a request path after `/kbs/v0/resource/`, percent-encoded.
    pub fn from_url_path(encoded: &str) -> Result<ResourcePath, ResourceError> {
        let raw: Vec<&str> = encoded.split('/').collect();
        let [r, k, t] = raw.as_slice() else {
            return Err(ResourceError::Components(encoded.into(), raw.len()));
        };
        let mut parts: [String; 3] = Default::default();
        for ((slot, which), c) in parts.iter_mut().zip(NAMES).zip([r, k, t]) {
            *slot = percent_decode_str(c)
                .decode_utf8()
                .map_err(|_| ResourceError::Encoding(which))?
                .into_owned();
        }
        let [r, k, t] = &parts;
        ResourcePath::new(r, k, t)
    }

    /// The request path, each component percent-encoded.
    pub fn url_path(&self) -> String {
        let [r, k, t] = &self.parts;
        let enc = |c: &str| utf8_percent_encode(c, COMPONENT).to_string();
        format!(
            "{}{}/{}/{}",
            crate::message::PATH_RESOURCE_PREFIX,
            enc(r),
            enc(k),
            enc(t)
        )
    }

    pub fn repository(&self) -> &str {
        &self.parts[0]
    }

    pub fn kind(&self) -> &str {
        &self.parts[1]
    }

    pub fn tag(&self) -> &str {
        &self.parts[2]
    }

    pub fn components(&self) -> [&str; 3] {
        [&self.parts[0], &self.parts[1], &self.parts[2]]
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.parts[0], self.parts[1], self.parts[2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_url() {
        for text in [
            "default/secret-hello/token",
            "a b/ü/x%y",
            "repo/type/tag.with.dots",
        ] {
            let p = ResourcePath::parse(text).expect(text);
            assert_eq!(p.to_string(), text);
            let url = p.url_path();
            let tail = url.strip_prefix("/kbs/v0/resource/").expect("prefix");
            assert_eq!(
                ResourcePath::from_url_path(tail).expect("decodes"),
                p,
                "{url}"
            );
        }
        assert_eq!(
            ResourcePath::parse("a b/c/d").expect("ok").url_path(),
            "/kbs/v0/resource/a%20b/c/d"
        );
    }

    #[test]
    fn traversal_and_odd_components_are_refused() {
        for (url, want) in [
            (
                "..%2F..%2Fetc/passwd/x",
                ResourceError::Forbidden("repository", "'/'"),
            ),
            ("%2e%2e/a/b", ResourceError::Dot("repository", "..".into())),
            ("a/./b", ResourceError::Dot("type", ".".into())),
            ("a//b", ResourceError::Empty("type")),
            ("a/b/c%00", ResourceError::Forbidden("tag", "NUL")),
            (
                "a/b/c%0a",
                ResourceError::Forbidden("tag", "a control character"),
            ),
            ("a/b/%ff", ResourceError::Encoding("tag")),
            ("a/b", ResourceError::Components("a/b".into(), 2)),
            ("a/b/c/d", ResourceError::Components("a/b/c/d".into(), 4)),
            ("../../etc", ResourceError::Dot("repository", "..".into())),
        ] {
            assert_eq!(ResourcePath::from_url_path(url), Err(want), "{url}");
        }
        let long = "x".repeat(MAX_COMPONENT_LEN + 1);
        assert_eq!(
            ResourcePath::new("a", "b", &long),
            Err(ResourceError::TooLong("tag", MAX_COMPONENT_LEN + 1))
        );
        assert!(ResourcePath::new("a", "b", &"x".repeat(MAX_COMPONENT_LEN)).is_ok());
    }
}
