//! The appliance's log on the host: the `AppLog` frames of a run, written into
//! `runs/<id>/appliance.log` capped like the console (head up to a cap, then a rolling tail, and
//! a note saying so), with its last lines kept for the end of the run.
//!
//! The bytes are the appliance's, so hostile: the file gets them as they came (it is a log, read
//! with a pager), but nothing of them is printed raw. [`printable`] turns them into text a
//! terminal shows as it is: escape sequences dropped, every other control character but tab and
//! newline shown as `\u{FFFD}`.

use crate::console::CappedLog;
use snpkit_wire::frame::AppLog;
use std::fs::File;
use std::io;
use std::path::Path;

/// Most of the appliance's log kept from its start.
pub const APPLOG_CAP: u64 = 8 << 20;
/// How much of its end is kept in memory for [`AppLogEnd::tail`].
const TAIL_BYTES: usize = 16 << 10;

/// Where a run's `AppLog` frames go.
pub struct AppLogSink {
    log: CappedLog,
    tail: Vec<u8>,
    bytes: u64,
    frames: u64,
    error: Option<io::Error>,
}

/// What the appliance's log came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppLogEnd {
    /// Bytes received.
    pub bytes: u64,
    /// Bytes past the cap, not in the file but for its kept tail.
    pub left_out: u64,
    /// The last lines, already [`printable`].
    pub tail: String,
    /// Why the file could not be written, if it could not (the run goes on without it).
    pub write_error: Option<String>,
}

impl AppLogSink {
    /// Creates (truncates) the log file.
    pub fn create(path: &Path) -> io::Result<AppLogSink> {
        Ok(AppLogSink::to_file(File::create(path)?, APPLOG_CAP))
    }

    fn to_file(file: File, cap: u64) -> AppLogSink {
        AppLogSink {
            log: CappedLog::named(file, cap, "appliance"),
            tail: Vec::new(),
            bytes: 0,
            frames: 0,
            error: None,
        }
    }

    /// Takes one frame's bytes.
    pub fn take(&mut self, log: &AppLog) {
        // The two streams share one file in the order they came; stderr is not marked, as a
        // terminal would not mark it either.
        self.frames += 1;
        self.bytes += log.bytes.len() as u64;
        if self.error.is_none()
            && let Err(e) = self.log.write(&log.bytes)
        {
            self.error = Some(e);
        }
        self.tail.extend_from_slice(&log.bytes);
        if self.tail.len() > 2 * TAIL_BYTES {
            self.tail.drain(..self.tail.len() - TAIL_BYTES);
        }
    }

    /// Closes the file (writing the kept tail if the cap was reached) and says what came.
    pub fn finish(self, lines: usize) -> AppLogEnd {
        let left_out = self.log.dropped();
        let mut write_error = self.error.map(|e| e.to_string());
        if let Err(e) = self.log.finish() {
            write_error.get_or_insert(e.to_string());
        }
        let text = String::from_utf8_lossy(&self.tail);
        AppLogEnd {
            bytes: self.bytes,
            left_out,
            tail: last_lines(&printable(&text), lines),
            write_error,
        }
    }
}

fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Text a terminal shows as written: `ESC`-sequences (CSI, OSC up to BEL or ST, and any other
/// two-byte escape) are dropped, carriage returns too, and every other control character (C0 but
/// tab and newline, DEL, C1) becomes U+FFFD.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use snpkit_wire::frame::LogStream;

    fn log(bytes: &[u8]) -> AppLog {
        AppLog {
            stream: LogStream::Stdout,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn hostile_text_is_made_printable() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(printable("\u{1b}[2J\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(
            printable("a\u{1b}]0;owned title\u{7}b\u{1b}]8;;http://x\u{1b}\\c"),
            "abc"
        );
        assert_eq!(printable("x\u{1b}Py"), "x");
        assert_eq!(
            printable("bell\u{7} del\u{7f} csi\u{9b}31m"),
            "bell\u{fffd} del\u{fffd} csi\u{fffd}31m"
        );
        assert_eq!(printable("over\rwrite"), "overwrite");
        assert_eq!(printable("lone\u{1b}"), "lone");
    }

    #[test]
    fn the_file_is_capped_and_the_tail_is_printable_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appliance.log");
        let mut sink = AppLogSink::to_file(File::create(&path).unwrap(), 100);
        for i in 0..50 {
            sink.take(&log(format!("line {i} \u{1b}[1mbold\u{1b}[0m\n").as_bytes()));
        }
        sink.take(&log(b"\xff\xfe not utf-8\n"));
        let end = sink.finish(3);
        assert!(end.bytes > 100 && end.left_out > 0, "{end:?}");
        assert_eq!(end.write_error, None);
        assert_eq!(
            end.tail,
            "line 48 bold\nline 49 bold\n\u{fffd}\u{fffd} not utf-8"
        );
        let file = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&file);
        assert!(
            text.starts_with("line 0 \u{1b}[1mbold"),
            "the file keeps the bytes"
        );
        assert!(
            text.contains("the appliance log reached its cap of 100 bytes"),
            "{text}"
        );
        assert!(
            text.contains("bytes of appliance output were left out here"),
            "{text}"
        );
    }
}
