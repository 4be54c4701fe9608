use crate::FileKind;
use std::path::PathBuf;

/// What went wrong with a host file. Each variant names the path, what the file was to the
/// command (`what`: "the report", "recipe files[0].src", …) and, where there is one, the limit.
///
/// The I/O error is part of the message and deliberately not a `#[source]`, so a chain printed by
/// anyhow says it once.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot {doing} {} ({what}): {error}", path.display())]
    Io {
        path: PathBuf,
        what: String,
        doing: &'static str,
        error: std::io::Error,
    },

    #[error(
        "{} ({what}) is larger than {}{}: snpkit reads at most that much of {what}",
        path.display(),
        size_text(*max),
        reported
            .filter(|r| r > max)
            .map(|r| format!(" (it says it is {r} bytes)"))
            .unwrap_or_default()
    )]
    TooLarge {
        path: PathBuf,
        what: String,
        max: u64,
        /// The size a regular file reported, when there was one: said, never trusted.
        reported: Option<u64>,
    },

    #[error(
        "{} ({what}) is {kind}, not a regular file: give a file (devices, FIFOs and sockets are \
         refused, they can block or never end)",
        path.display()
    )]
    NotRegular {
        path: PathBuf,
        what: String,
        kind: FileKind,
    },

    #[error("{} ({what}) is not UTF-8 text", path.display())]
    NotText {
        path: PathBuf,
        what: String,
        /// Where the first byte that is not UTF-8 is.
        source: std::str::Utf8Error,
    },

    #[error(
        "{what} {} leads to {}, outside {}; {fix}",
        given.display(), resolved.display(), root.display()
    )]
    Escapes {
        what: String,
        given: PathBuf,
        resolved: PathBuf,
        root: PathBuf,
        fix: String,
    },

    #[error(
        "{} ({what}) has mode {mode:o}, so others can read {}: a secret must be 0600 in a 0700 \
         folder. snpkit does not repair it (it may have been read already): if you trust it, run \
         `chmod {:o} {}`; otherwise delete it and snpkit makes a new one",
        path.display(),
        if *folder { "what it holds" } else { "it" },
        if *folder { 0o700 } else { 0o600 },
        path.display()
    )]
    Exposed {
        path: PathBuf,
        what: String,
        mode: u32,
        /// A folder of secrets rather than a secret file.
        folder: bool,
    },

    #[error(
        "{output_what} {} is {how} {input_what} {}: writing it would destroy an input; choose another \
         output path",
        output.display(), input.display()
    )]
    OutputIsInput {
        output: PathBuf,
        output_what: String,
        input: PathBuf,
        input_what: String,
        /// "the same file as", "a symlink to", "a hard link to", "inside", "the folder holding".
        how: &'static str,
    },
}

impl FsError {
    /// A short, stable name for what went wrong, for machines (`--json` outputs, test tables).
    pub fn kind(&self) -> &'static str {
        match self {
            FsError::Io { .. } => "io",
            FsError::TooLarge { .. } => "too_large",
            FsError::NotRegular { .. } => "not_a_regular_file",
            FsError::NotText { .. } => "not_text",
            FsError::Escapes { .. } => "escapes_folder",
            FsError::OutputIsInput { .. } => "output_is_input",
            FsError::Exposed { .. } => "exposed_secret",
        }
    }

    /// The I/O error's kind, for callers that treat a missing file differently.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            FsError::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }
}

/// `65536` → `64 KiB`, `1610612736` → `1.5 GiB`, `1000` → `1000 bytes`: limits as people read them.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenth = (bytes % size) * 10 / size;
            return if tenth == 0 {
                format!("{whole} {unit}")
            } else {
                format!("{whole}.{tenth} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::size_text;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(0), "0 bytes");
        assert_eq!(size_text(1000), "1000 bytes");
        assert_eq!(size_text(64 * 1024), "64 KiB");
        assert_eq!(size_text(1 << 20), "1 MiB");
        assert_eq!(size_text(3 << 29), "1.5 GiB");
    }
}
