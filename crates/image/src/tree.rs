//! The appliance's file tree, in memory, in the order it will be written.
//!
//! Paths are kept relative (`usr/bin/hello`) in a `BTreeMap`, so iteration is sorted by bytes; a
//! directory's path is a prefix of its children's, so parents always come before children. Owners
//! are always root and times always the build epoch, so neither is stored.

use crate::ImageError;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Permission bits (`0o7777` at most); the file type is in `kind`.
    pub mode: u32,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File(Arc<[u8]>),
    Symlink(String),
    /// Another name for the regular file at this (relative) path.
    HardLink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// Directories made implicitly, to hold a file, get this mode.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// `/usr/bin/x`, `usr/bin/x` and `./usr/bin/x` → `usr/bin/x`.
pub(crate) fn key(path: &str) -> Result<String, ImageError> {
    let bad = |problem: &str| ImageError::BadPath {
        path: path.to_owned(),
        problem: problem.to_owned(),
    };
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad("contains '..'")),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(bad("names the root itself"));
    }
    Ok(parts.join("/"))
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        key(path).ok().and_then(|k| self.nodes.get(&k))
    }

    /// Entries in archive order: sorted by path bytes, parents first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Total bytes of regular file contents (hard links counted once).
    pub fn file_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.kind {
                NodeKind::File(d) => d.len() as u64,
                _ => 0,
            })
            .sum()
    }

    fn ensure_parents(&mut self, key: &str) -> Result<(), ImageError> {
        let mut end = 0;
        while let Some(pos) = key[end..].find('/') {
            let parent = &key[..end + pos];
            match self.nodes.get(parent) {
                None => {
                    self.nodes.insert(
                        parent.to_owned(),
                        Node {
                            mode: IMPLICIT_DIR_MODE,
                            kind: NodeKind::Dir,
                        },
                    );
                }
                Some(Node {
                    kind: NodeKind::Dir,
                    ..
                }) => {}
                Some(other) => {
                    return Err(ImageError::Conflict {
                        path: format!("/{key}"),
                        problem: format!(
                            "its parent /{parent} is a {}, not a directory",
                            other.kind.describe()
                        ),
                    });
                }
            }
            end += pos + 1;
        }
        Ok(())
    }

    fn insert(&mut self, path: &str, mode: u32, kind: NodeKind) -> Result<(), ImageError> {
        let node = Node { mode, kind };
        let key = key(path)?;
        if node.mode > 0o7777 {
            return Err(ImageError::BadPath {
                path: path.to_owned(),
                problem: format!("mode {:#o} is not a permission mode", node.mode),
            });
        }
        self.ensure_parents(&key)?;
        match (self.nodes.get(&key).map(|n| &n.kind), &node.kind) {
            (Some(NodeKind::Dir), NodeKind::Dir) | (None, _) => {}
            (Some(NodeKind::Dir), new) => {
                return Err(ImageError::Conflict {
                    path: format!("/{key}"),
                    problem: format!("a {} would replace a directory", new.describe()),
                });
            }
            (Some(old), NodeKind::Dir) => {
                return Err(ImageError::Conflict {
                    path: format!("/{key}"),
                    problem: format!("a directory would replace a {}", old.describe()),
                });
            }
            // A later source overrides an earlier file: recipes overlay files on packages.
            (Some(_), _) => {
                if self
                    .nodes
                    .values()
                    .any(|n| matches!(&n.kind, NodeKind::HardLink(t) if *t == key))
                {
                    return Err(ImageError::Conflict {
                        path: format!("/{key}"),
                        problem: "other hard links point at it; replacing it would change them too"
                            .into(),
                    });
                }
            }
        }
        self.nodes.insert(key, node);
        Ok(())
    }

    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), ImageError> {
        self.insert(path, mode, NodeKind::Dir)
    }

    pub fn add_file(
        &mut self,
        path: &str,
        data: impl Into<Arc<[u8]>>,
        mode: u32,
    ) -> Result<(), ImageError> {
        self.insert(path, mode, NodeKind::File(data.into()))
    }

    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), ImageError> {
        if target.is_empty() || target.contains('\0') {
            return Err(ImageError::BadPath {
                path: path.to_owned(),
                problem: "empty or NUL symlink target".into(),
            });
        }
        self.insert(path, 0o777, NodeKind::Symlink(target.to_owned()))
    }

    /// Makes `path` another name for the regular file `target`, which must already be in the tree.
    pub fn add_hardlink(&mut self, path: &str, target: &str) -> Result<(), ImageError> {
        let mut target_key = key(target)?;
        // Links to links are links to the same file.
        if let Some(Node {
            kind: NodeKind::HardLink(t),
            ..
        }) = self.nodes.get(&target_key)
        {
            target_key = t.clone();
        }
        let mode = match self.nodes.get(&target_key) {
            Some(Node {
                kind: NodeKind::File(_),
                mode,
            }) => *mode,
            _ => {
                return Err(ImageError::Conflict {
                    path: path.to_owned(),
                    problem: format!(
                        "hard link to /{target_key}, which is not a regular file in the image"
                    ),
                });
            }
        };
        if key(path)? == target_key {
            return Err(ImageError::Conflict {
                path: path.to_owned(),
                problem: "hard link to itself".into(),
            });
        }
        self.insert(path, mode, NodeKind::HardLink(target_key))
    }

    pub fn add_char_device(
        &mut self,
        path: &str,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> Result<(), ImageError> {
        self.insert(path, mode, NodeKind::CharDevice { major, minor })
    }
}

/// Why a path names nothing in the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    #[error("nothing is at /{0}")]
    Missing(String),
    #[error("/{0} is a {1}, not a directory")]
    NotADirectory(String, &'static str),
    #[error("more than {MAX_LINKS} symlinks on the way (a loop?)")]
    TooManyLinks,
    #[error("{0:?} is not a path")]
    BadPath(String),
}

/// The kernel's limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

impl Tree {
    /// What `path` names once symlinks are followed inside the tree, as the guest's kernel will
    /// follow them (absolute targets from the image root, `..` stopping at the root): the final
    /// path and its node, a hard link resolved to the file it names.
    pub fn resolve(&self, path: &str) -> Result<(String, &Node), Unresolved> {
        let mut todo: std::collections::VecDeque<String> =
            path.split('/').map(str::to_owned).collect();
        let mut at: Vec<String> = Vec::new();
        let mut links = 0;
        let mut last: Option<&Node> = None;
        while let Some(part) = todo.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    at.pop();
                    last = None;
                    continue;
                }
                _ => {}
            }
            // Only a directory can hold the next component.
            if let Some(node) = last
                && node.kind != NodeKind::Dir
            {
                return Err(Unresolved::NotADirectory(
                    at.join("/"),
                    node.kind.describe(),
                ));
            }
            at.push(part);
            let here = at.join("/");
            let Some(node) = self.nodes.get(&here) else {
                return Err(Unresolved::Missing(here));
            };
            match &node.kind {
                NodeKind::Symlink(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Unresolved::TooManyLinks);
                    }
                    at.pop();
                    if target.starts_with('/') {
                        at.clear();
                    }
                    for p in target.split('/').rev() {
                        todo.push_front(p.to_owned());
                    }
                    last = None;
                }
                NodeKind::HardLink(file) => {
                    let Some(node) = self.nodes.get(file) else {
                        return Err(Unresolved::Missing(file.clone()));
                    };
                    at = file.split('/').map(str::to_owned).collect();
                    last = Some(node);
                }
                _ => last = Some(node),
            }
        }
        match last {
            Some(node) => Ok((at.join("/"), node)),
            // The root, or a walk that ended on `..`: directories the tree has or implies.
            None if at.is_empty() => Err(Unresolved::BadPath(path.to_owned())),
            None => {
                let here = at.join("/");
                self.nodes
                    .get(&here)
                    .map(|n| (here.clone(), n))
                    .ok_or(Unresolved::Missing(here))
            }
        }
    }
}

impl NodeKind {
    /// The kind in words, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            NodeKind::Dir => "directory",
            NodeKind::File(_) => "file",
            NodeKind::Symlink(_) => "symlink",
            NodeKind::HardLink(_) => "hard link",
            NodeKind::CharDevice { .. } => "character device",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use Add::{Dir, File, HardLink, Symlink};

    /// One `add_*` call of a fixture tree.
    enum Add<'a> {
        File(&'a str, &'a [u8], u32),
        Dir(&'a str, u32),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
    }

    /// The tree that `adds`, in order, make; each must succeed.
    fn tree(adds: &[Add<'_>]) -> Tree {
        let mut t = Tree::new();
        for add in adds {
            match *add {
                File(path, data, mode) => t.add_file(path, data, mode),
                Dir(path, mode) => t.add_dir(path, mode),
                Symlink(path, target) => t.add_symlink(path, target),
                HardLink(path, target) => t.add_hardlink(path, target),
            }
            .unwrap();
        }
        t
    }

    #[test]
    fn parents_come_first_and_are_implicit() {
        let t = tree(&[
            File("/usr/bin/hello", b"x", 0o755),
            File("/a.txt", b"y", 0o644),
            Dir("/usr", 0o700),
        ]);
        let order: Vec<&str> = t.iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["a.txt", "usr", "usr/bin", "usr/bin/hello"]);
        assert_eq!(t.get("/usr").unwrap().mode, 0o700);
        assert_eq!(t.get("usr/bin").unwrap().mode, 0o755);
    }

    #[test]
    fn later_files_override_but_types_never_change_silently() {
        let mut t = tree(&[File("/etc/x", b"1", 0o644), File("/etc/x", b"2", 0o600)]);
        assert_eq!(
            t.get("/etc/x").unwrap().kind,
            NodeKind::File(Arc::from(&b"2"[..]))
        );
        assert!(t.add_dir("/etc/x", 0o755).is_err());
        assert!(t.add_file("/etc", &b""[..], 0o644).is_err());
        let err = t.add_file("/etc/x/y", &b""[..], 0o644).unwrap_err();
        assert!(err.to_string().contains("parent /etc/x is a file"), "{err}");
    }

    #[test]
    fn bad_paths_are_refused() {
        let mut t = Tree::new();
        for p in ["/", "", "/../etc", "a/\0b"] {
            assert!(t.add_file(p, &b""[..], 0o644).is_err(), "{p:?}");
        }
        assert!(t.add_file("/x", &b""[..], 0o10000).is_err());
    }

    #[test]
    fn hard_links_point_at_files_only() {
        let mut t = tree(&[
            File("/bin/busybox", b"elf", 0o755),
            HardLink("/bin/sh", "/bin/busybox"),
            HardLink("/bin/ls", "/bin/sh"),
        ]);
        assert_eq!(
            t.get("/bin/ls").unwrap().kind,
            NodeKind::HardLink("bin/busybox".into())
        );
        assert!(t.add_hardlink("/x", "/bin").is_err());
        assert!(t.add_hardlink("/y", "/missing").is_err());
        assert!(t.add_file("/bin/busybox", &b"new"[..], 0o755).is_err());
    }

    #[test]
    fn resolve_follows_symlinks_inside_the_tree() {
        let t = tree(&[
            File("/usr/bin/busybox", b"elf", 0o755),
            Symlink("/bin", "usr/bin"),
            Symlink("/usr/bin/sh", "busybox"),
            Symlink("/usr/local/bin/app", "../../bin/sh"),
            Symlink("/opt/abs", "/bin/sh"),
            HardLink("/usr/bin/ash", "/usr/bin/busybox"),
            Symlink("/loop/a", "b"),
            Symlink("/loop/b", "a"),
            Symlink("/dangling", "/usr/bin/missing"),
        ]);
        let found = |p: &str| t.resolve(p).map(|(path, n)| (path, n.kind.clone()));
        let busybox = Ok((
            "usr/bin/busybox".to_owned(),
            NodeKind::File(Arc::from(&b"elf"[..])),
        ));
        for p in [
            "/bin/sh",
            "/usr/local/bin/app",
            "/opt/abs",
            "/usr/bin/ash",
            "/bin/../bin/sh",
        ] {
            assert_eq!(found(p), busybox, "{p}");
        }
        assert_eq!(found("/bin").unwrap().1, NodeKind::Dir);
        assert_eq!(
            t.resolve("/dangling").unwrap_err(),
            Unresolved::Missing("usr/bin/missing".into())
        );
        assert_eq!(t.resolve("/loop/a").unwrap_err(), Unresolved::TooManyLinks);
        assert_eq!(
            t.resolve("/bin/sh/x").unwrap_err(),
            Unresolved::NotADirectory("usr/bin/busybox".into(), "file")
        );
        assert_eq!(
            t.resolve("/nope/x").unwrap_err(),
            Unresolved::Missing("nope".into())
        );
    }
}
