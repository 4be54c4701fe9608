//! Outputs that are not inputs: compared by device and inode, not by spelling.

use crate::FsError;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// A file's identity: device and inode. Two paths with the same id are one file, whether through
/// a symlink, a hard link or a bind mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of_metadata(m: &Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    /// The id of an opened file (its descriptor, not its path).
    pub fn of_file(f: &File) -> io::Result<FileId> {
        f.metadata().map(|m| FileId::of_metadata(&m))
    }

    /// The id of what `path` leads to, or `None` when nothing is there.
    pub fn of_path(path: &Path) -> io::Result<Option<FileId>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(FileId::of_metadata(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A file a command reads, with its id taken when it was opened (or looked at).
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub what: &'a str,
    pub path: &'a Path,
    pub id: FileId,
}

impl<'a> Input<'a> {
    /// The input at `path` as it is now; `None` when it does not exist (then nothing can be
    /// written onto it).
    pub fn stat(what: &'a str, path: &'a Path) -> Result<Option<Input<'a>>, FsError> {
        let id = FileId::of_path(path).map_err(|error| FsError::Io {
            path: path.to_path_buf(),
            what: what.to_owned(),
            doing: "look at",
            error,
        })?;
        Ok(id.map(|id| Input { what, path, id }))
    }
}

/// Refuses to write `output` when it is one of `inputs`: the same file by device and inode, so a
/// symlink or a hard link to an input is refused like the input's own path. A missing output is
/// fine (it cannot be an input).
pub fn refuse_output_onto(
    output: &Path,
    output_what: &str,
    inputs: &[Input<'_>],
) -> Result<(), FsError> {
    let Some(out) = FileId::of_path(output).map_err(|error| FsError::Io {
        path: output.to_path_buf(),
        what: output_what.to_owned(),
        doing: "look at",
        error,
    })?
    else {
        return Ok(());
    };
    let Some(input) = inputs.iter().find(|i| i.id == out) else {
        return Ok(());
    };
    let is_link = std::fs::symlink_metadata(output).is_ok_and(|m| m.file_type().is_symlink());
    let same_path = match (output.canonicalize(), input.path.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let how = if is_link {
        "a symlink to"
    } else if same_path {
        "the same file as"
    } else {
        "a hard link to"
    };
    Err(FsError::OutputIsInput {
        output: output.to_path_buf(),
        output_what: output_what.to_owned(),
        input: input.path.to_path_buf(),
        input_what: input.what.to_owned(),
        how,
    })
}

/// Refuses an output folder that is, holds or lies inside an input folder (an image folder
/// written over a recipe folder would replace the recipe; one inside it would be copied into
/// the next image). Both are resolved through symlinks; the output need not exist yet.
pub fn refuse_nested(
    output: &Path,
    output_what: &str,
    input: &Path,
    input_what: &str,
) -> Result<(), FsError> {
    let input_real = input.canonicalize().map_err(|error| FsError::Io {
        path: input.to_path_buf(),
        what: input_what.to_owned(),
        doing: "resolve",
        error,
    })?;
    let output_real = resolve_maybe_missing(output).map_err(|error| FsError::Io {
        path: output.to_path_buf(),
        what: output_what.to_owned(),
        doing: "resolve",
        error,
    })?;
    let how = if output_real == input_real {
        "the same folder as"
    } else if output_real.starts_with(&input_real) {
        "inside"
    } else if input_real.starts_with(&output_real) {
        "a folder holding"
    } else {
        return Ok(());
    };
    Err(FsError::OutputIsInput {
        output: output.to_path_buf(),
        output_what: output_what.to_owned(),
        input: input.to_path_buf(),
        input_what: input_what.to_owned(),
        how,
    })
}

/// `path` with its longest existing ancestor resolved and the missing rest appended as written.
fn resolve_maybe_missing(path: &Path) -> io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut out = real;
                for part in missing.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(Component::Normal(name))) =
                    (existing.parent(), existing.components().next_back())
                else {
                    return Err(e);
                };
                missing.push(name.to_owned());
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn an_output_is_refused_when_it_is_an_input_by_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, b"d").unwrap();
        symlink(&data, dir.path().join("sym")).unwrap();
        std::fs::hard_link(&data, dir.path().join("hard")).unwrap();
        let input = Input::stat("DATA", &data).unwrap().unwrap();
        for (out, how) in [
            ("data", "the same file as"),
            ("sym", "a symlink to"),
            ("hard", "a hard link to"),
        ] {
            let err =
                refuse_output_onto(&dir.path().join(out), "HASH", std::slice::from_ref(&input))
                    .unwrap_err();
            assert_eq!(err.kind(), "output_is_input");
            assert!(err.to_string().contains(how), "{err}");
        }
        std::fs::write(dir.path().join("other"), b"o").unwrap();
        refuse_output_onto(
            &dir.path().join("other"),
            "HASH",
            std::slice::from_ref(&input),
        )
        .unwrap();
        refuse_output_onto(&dir.path().join("new"), "HASH", &[input]).unwrap();
        assert!(
            Input::stat("x", &dir.path().join("absent"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn output_folders_may_not_nest_with_input_folders() {
        let dir = tempfile::tempdir().unwrap();
        let recipes = dir.path().join("recipes");
        let recipe = recipes.join("hello");
        std::fs::create_dir_all(&recipe).unwrap();
        symlink(&recipes, dir.path().join("link")).unwrap();
        for (out, how) in [
            (recipe.clone(), "the same folder as"),
            (dir.path().join("link/hello"), "the same folder as"),
            (recipe.join("images/hello"), "inside"),
            (dir.path().to_path_buf(), "a folder holding"),
        ] {
            let err =
                refuse_nested(&out, "the image folder", &recipe, "the recipe folder").unwrap_err();
            assert!(err.to_string().contains(how), "{out:?}: {err}");
        }
        refuse_nested(
            &dir.path().join("images/hello"),
            "the image folder",
            &recipe,
            "the recipe folder",
        )
        .unwrap();
    }
}
