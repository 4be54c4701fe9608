//! Bounded reads of regular files.

use crate::{FileId, FileKind, FsError};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn io_err(path: &Path, what: &str, doing: &'static str) -> impl FnOnce(io::Error) -> FsError {
    let path = path.to_path_buf();
    let what = what.to_owned();
    move |error| FsError::Io {
        path,
        what,
        doing,
        error,
    }
}

/// A regular file, opened for reading: checked by path before the open and by descriptor after.
#[derive(Debug)]
pub struct Regular {
    file: File,
    path: PathBuf,
    what: String,
    id: FileId,
    reported_len: u64,
}

/// Opens `path` for reading if it is a regular file (symlinks are followed). A device is never
/// opened; a FIFO swapped in after the first look does not hang the open (`O_NONBLOCK`) and is
/// refused by the second look, on the opened descriptor.
///
/// The one device taken is the null device (`/dev/null`, 1:3): it reads as an empty file, can
/// neither block nor stream, and is how sev-snp-measure's own invocations (our test vectors) say
/// "no kernel" or "an empty initrd".
pub fn open(path: &Path, what: &str) -> Result<Regular, FsError> {
    let not_regular = |kind| FsError::NotRegular {
        path: path.to_path_buf(),
        what: what.to_owned(),
        kind,
    };
    let fits = |m: &std::fs::Metadata| {
        let kind = FileKind::of(m.file_type());
        if kind == FileKind::Regular || is_null_device(m) {
            Ok(())
        } else {
            Err(not_regular(kind))
        }
    };
    let before = std::fs::metadata(path).map_err(io_err(path, what, "read"))?;
    fits(&before)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err(path, what, "open"))?;
    let meta = file.metadata().map_err(io_err(path, what, "read"))?;
    fits(&meta)?;
    Ok(Regular {
        id: FileId::of_metadata(&meta),
        reported_len: meta.len(),
        file,
        path: path.to_path_buf(),
        what: what.to_owned(),
    })
}

/// The null device, character device 1:3 on Linux.
fn is_null_device(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let rdev = m.rdev();
    // glibc's gnu_dev_major/minor: 12 bits of major and 20 of minor, split across the word.
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    m.file_type().is_char_device() && major == 1 && minor == 3
}

impl Regular {
    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Device and inode of the opened file, for [`crate::refuse_output_onto`].
    pub fn id(&self) -> FileId {
        self.id
    }

    /// The size the file reported when opened: a hint, never a bound (it can change, and is 0 for
    /// `/proc` files).
    pub fn reported_len(&self) -> u64 {
        self.reported_len
    }

    /// The opened file itself, for positional reads bounded by the caller's own count.
    pub fn into_file(self) -> File {
        self.file
    }

    /// The file as a reader that fails once more than `max` bytes come.
    pub fn bounded(self, max: u64) -> Bounded<File> {
        Bounded::new(self.file, &self.path, &self.what, max)
    }

    /// All of the file, refused (without reading on) once it passes `max` bytes.
    pub fn read_all(self, max: u64) -> Result<Vec<u8>, FsError> {
        // The reported size only sizes the first allocation; the count is what bounds the read.
        let hint = self.reported_len.min(max).min(64 << 20) as usize;
        let mut bytes = Vec::with_capacity(hint);
        let reported = self.reported_len;
        let mut reader = self.bounded(max);
        match reader.read_to_end(&mut bytes) {
            Ok(_) => Ok(bytes),
            Err(e) => match reader.error(e, "read") {
                FsError::TooLarge {
                    path, what, max, ..
                } => Err(FsError::TooLarge {
                    path,
                    what,
                    max,
                    reported: Some(reported),
                }),
                other => Err(other),
            },
        }
    }
}

/// All of the regular file `path`, at most `max` bytes.
pub fn read(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, FsError> {
    open(path, what)?.read_all(max)
}

/// All of the regular file `path` as UTF-8 text, at most `max` bytes.
pub fn read_string(path: &Path, what: &str, max: u64) -> Result<String, FsError> {
    String::from_utf8(read(path, what, max)?).map_err(|e| FsError::NotText {
        path: path.to_path_buf(),
        what: what.to_owned(),
        source: e.utf8_error(),
    })
}

/// A reader that counts what it hands out and fails once the source has more than `max` bytes,
/// for inputs that are streamed (hashed, decompressed) rather than held. Reading exactly `max`
/// bytes is fine; the error comes when a byte beyond them shows up.
#[derive(Debug)]
pub struct Bounded<R> {
    inner: R,
    count: u64,
    max: u64,
    path: PathBuf,
    what: String,
}

/// Carried inside an `io::Error` so that a bounded stream's overflow survives `Read` plumbing.
#[derive(Debug, thiserror::Error)]
#[error("more than {}, the most snpkit reads of it", crate::size_text(*max))]
struct Overflow {
    max: u64,
}

impl<R: Read> Bounded<R> {
    /// `inner`, counted; `path` and `what` only name it in errors.
    pub fn new(inner: R, path: &Path, what: &str, max: u64) -> Bounded<R> {
        Bounded {
            inner,
            count: 0,
            max,
            path: path.to_path_buf(),
            what: what.to_owned(),
        }
    }

    /// Bytes handed out so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The error a failed read of this stream stands for: [`FsError::TooLarge`] for the bound,
    /// [`FsError::Io`] (saying `doing`) for anything else.
    pub fn error(&self, e: io::Error, doing: &'static str) -> FsError {
        stream_error(e, &self.path, &self.what, self.max, doing)
    }
}

/// The error a failed read of a [`Bounded`] stream over `path` stands for, when the stream
/// itself was handed away (to a hashing thread, a decoder): [`FsError::TooLarge`] for the bound,
/// [`FsError::Io`] (saying `doing`) for anything else.
pub fn stream_error(
    e: io::Error,
    path: &Path,
    what: &str,
    max: u64,
    doing: &'static str,
) -> FsError {
    if e.get_ref().is_some_and(|inner| inner.is::<Overflow>()) {
        FsError::TooLarge {
            path: path.to_path_buf(),
            what: what.to_owned(),
            max,
            reported: None,
        }
    } else {
        FsError::Io {
            path: path.to_path_buf(),
            what: what.to_owned(),
            doing,
            error: e,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.count >= self.max {
            // At the bound: one more byte means the source is too large.
            let mut probe = [0u8; 1];
            loop {
                return match self.inner.read(&mut probe) {
                    Ok(0) => Ok(0),
                    Ok(_) => Err(io::Error::other(Overflow { max: self.max })),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
            }
        }
        let room = usize::try_from(self.max - self.count).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        let got = self.inner.read(&mut buf[..n])?;
        self.count += got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_are_bounded_by_count_not_by_reported_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read(&p, "a test file", 5).unwrap(), b"12345");
        let err = read(&p, "a test file", 4).unwrap_err();
        assert_eq!(err.kind(), "too_large", "{err}");
        assert!(err.to_string().contains("it says it is 5 bytes"), "{err}");
        assert!(
            err.to_string()
                .contains("larger than 4 bytes (it says it is 5 bytes): snpkit reads at most"),
            "{err}"
        );
        // /proc files report size 0 and still have bytes: they are read, and bounded.
        let status = read(Path::new("/proc/self/status"), "proc", 1 << 20).unwrap();
        assert!(status.starts_with(b"Name:"));
        let err = read(Path::new("/proc/self/status"), "proc", 10).unwrap_err();
        assert_eq!(err.kind(), "too_large");
    }

    #[test]
    fn devices_fifos_and_folders_are_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for (path, kind) in [
            (fifo.as_path(), "FIFO"),
            (Path::new("/dev/zero"), "character device"),
            (Path::new("/dev/urandom"), "character device"),
            (Path::new("/dev/full"), "character device"),
            (dir.path(), "folder"),
        ] {
            let err = read(path, "the report", 1024).unwrap_err();
            assert_eq!(err.kind(), "not_a_regular_file", "{err}");
            assert!(err.to_string().contains(kind), "{err}");
        }
        // The null device is an empty file (sev-snp-measure's idiom for "none").
        assert_eq!(read(Path::new("/dev/null"), "--kernel", 10).unwrap(), b"");
        let err = read(&dir.path().join("absent"), "the report", 1).unwrap_err();
        assert_eq!(err.io_kind(), Some(io::ErrorKind::NotFound));
        assert!(err.to_string().contains("the report"), "{err}");
    }

    #[test]
    fn a_bounded_stream_reads_exactly_the_bound_then_fails_past_it() {
        let data = vec![7u8; 1000];
        let mut ok = Vec::new();
        let mut r = Bounded::new(&data[..], Path::new("x"), "x", 1000);
        r.read_to_end(&mut ok).unwrap();
        assert_eq!(ok.len(), 1000);
        let mut r = Bounded::new(std::io::repeat(1), Path::new("/dev/zero"), "a kernel", 4096);
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        let err = r.error(e, "hash");
        assert_eq!(err.kind(), "too_large");
        assert!(err.to_string().contains("4 KiB"), "{err}");
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_string(&p, "policy", 10).unwrap_err().kind(),
            "not_text"
        );
    }
}
