//! The guest's serial console. QEMU writes it to a socket; a thread of ours copies it into the
//! run's log file, capped, and watches it for the few signs the supervisor decides on.
//!
//! Both exist because the console is the guest's to fill: a chatty kernel pushes its first lines
//! out of any window at the end of the log (so the signs are sticky, observed once as the bytes
//! go by), and a flooding guest must not fill the host's disk before the deadline (so the log
//! keeps its head up to a cap, then only a rolling tail, and says so).
//!
//! The kernel's own account of why it stopped (dm-verity's corruption report, a panic) is one of
//! the signs too: a hardened image without `console=` can still say it over the channel, but a
//! guest that rebooted or panicked before it could has only these lines.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most of the console kept from its start.
pub const LOG_CAP: u64 = 8 << 20;
/// How much of the end is kept once the cap is reached.
pub const TAIL_KEEP: usize = 64 << 10;

/// Console lines that only a started kernel (or our `/init`) prints. With `quiet` the kernel's own
/// banner is not printed, so `/init`'s first line counts too.
const KERNEL_STARTED_MARKERS: &[&str] = &[
    "Linux version ",
    "snpkit-init:",
    "Run /init as init process",
    "EFI stub: ",
];
const KERNEL_PANIC_MARKER: &str = "Kernel panic - not syncing";
/// OVMF's boot manager gave up on every boot option. With direct kernel boot there is only the
/// kernel, so this is the firmware refusing it (its hash, the initrd's or the command line's did
/// not match the hashes table).
const FIRMWARE_GAVE_UP_MARKER: &str = "BdsDxe: No bootable option was found";
/// dm-verity's report of a block whose hash does not match the tree, one line with both parts:
/// `device-mapper: verity: 254:0: data block 5 is corrupted`.
const VERITY_CORRUPTED_MARKERS: [&str; 2] = ["verity", "is corrupted"];
/// Console lines whose first sighting is timed (host clock, from the copier's start, which is
/// QEMU's start within a millisecond): where a boot's seconds go. Under `quiet` the kernel's own
/// lines are absent, and so are their marks.
pub const TIMING_MARKS: &[(&str, &str)] = &[
    ("kernel entered (EFI stub)", "EFI stub: "),
    ("kernel banner", "Linux version "),
    ("kernel runs /init", "Run /init as init process"),
    ("/init starts", "snpkit-init: starting ("),
    ("/init has attested", "snpkit-init: evidence sent"),
    (
        "entry point starts",
        "snpkit-init: starting the entry point",
    ),
    ("/init powers off", "snpkit-init: powering off"),
];

/// The most of one console line kept for the line signs; a kernel line is at most 1 KiB.
const LINE_CAP: usize = 4096;

/// What the console has shown so far. Each sign, once seen, stays seen.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Signs {
    pub kernel_started: bool,
    pub kernel_panicked: bool,
    pub firmware_gave_up: bool,
    /// dm-verity reported a corrupted block.
    pub verity_corrupted: bool,
    /// The first line in which the kernel said why it stopped (dm-verity's corruption report or a
    /// panic), trimmed: for runs whose guest could not say it over the channel.
    pub kernel_said: Option<String>,
    /// When the console's first byte and each [`TIMING_MARKS`] line were first seen, from the
    /// copier's start, in the order seen.
    pub marks: Vec<(&'static str, Duration)>,
}

/// Scans console bytes as they arrive, including markers split between two reads.
#[derive(Debug, Default)]
pub struct Watch {
    signs: Signs,
    /// The end of what came before, long enough to complete a marker split across reads.
    carry: Vec<u8>,
    /// The line being received (its first [`LINE_CAP`] bytes), for the signs that are lines.
    line: Vec<u8>,
    /// `kernel_said` was taken from `line` before its end arrived, so it grows with the line.
    said_unfinished: bool,
    /// Where the marks' times count from (unset: no marks are taken).
    clock: Option<std::time::Instant>,
}

fn longest_marker() -> usize {
    KERNEL_STARTED_MARKERS
        .iter()
        .chain([&KERNEL_PANIC_MARKER, &FIRMWARE_GAVE_UP_MARKER])
        .chain(TIMING_MARKS.iter().map(|(_, m)| m))
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

impl Watch {
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(bytes);
        let s = &mut self.signs;
        s.kernel_started |= KERNEL_STARTED_MARKERS.iter().any(|m| contains(&window, m));
        s.kernel_panicked |= contains(&window, KERNEL_PANIC_MARKER);
        s.firmware_gave_up |= contains(&window, FIRMWARE_GAVE_UP_MARKER);
        if let Some(clock) = self.clock {
            let now = clock.elapsed();
            if s.marks.is_empty() && !bytes.is_empty() {
                s.marks.push(("first console byte (firmware)", now));
            }
            for (label, needle) in TIMING_MARKS {
                if !s.marks.iter().any(|(l, _)| l == label) && contains(&window, needle) {
                    s.marks.push((label, now));
                }
            }
        }
        let keep = longest_marker().saturating_sub(1).min(window.len());
        self.carry = window.split_off(window.len() - keep);

        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.extend_line(&rest[..end]);
            self.line_seen(true);
            self.line.clear();
            rest = &rest[end + 1..];
        }
        // A line still open when the run ends counts too: the guest may die in the middle of one.
        if self.extend_line(rest) {
            self.line_seen(false);
        }
    }

    /// Adds to the current line up to its cap; whether anything was added.
    fn extend_line(&mut self, part: &[u8]) -> bool {
        let room = LINE_CAP.saturating_sub(self.line.len()).min(part.len());
        self.line.extend_from_slice(&part[..room]);
        room > 0
    }

    fn line_seen(&mut self, ended: bool) {
        let line = &self.line;
        let corrupted = VERITY_CORRUPTED_MARKERS.iter().all(|m| contains(line, m));
        self.signs.verity_corrupted |= corrupted;
        let says_why = corrupted || contains(line, KERNEL_PANIC_MARKER);
        if says_why && (self.signs.kernel_said.is_none() || self.said_unfinished) {
            self.signs.kernel_said = Some(String::from_utf8_lossy(line).trim().to_owned());
            self.said_unfinished = !ended;
        }
    }

    /// What was seen so far (the copier publishes its own field instead of cloning per read).
    #[cfg(test)]
    pub fn signs(&self) -> Signs {
        self.signs.clone()
    }
}

/// The console log file: everything up to [`LOG_CAP`] bytes, then a note, and when the run ends
/// the last [`TAIL_KEEP`] bytes after a note of how much was left out.
pub struct CappedLog {
    file: File,
    /// What the log is, for its notes (`console`, `appliance`).
    what: &'static str,
    cap: u64,
    written: u64,
    /// Bytes past the cap, the last of them kept in `tail`.
    dropped: u64,
    tail: Vec<u8>,
}

impl CappedLog {
    pub fn new(file: File, cap: u64) -> CappedLog {
        CappedLog::named(file, cap, "console")
    }

    /// A capped log whose notes call it `what` (e.g. `appliance`).
    pub fn named(file: File, cap: u64, what: &'static str) -> CappedLog {
        CappedLog {
            file,
            what,
            cap,
            written: 0,
            dropped: 0,
            tail: Vec::new(),
        }
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let room = usize::try_from(self.cap.saturating_sub(self.written)).unwrap_or(usize::MAX);
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        if !head.is_empty() {
            self.file.write_all(head)?;
            self.written += head.len() as u64;
        }
        if rest.is_empty() {
            return Ok(());
        }
        if self.dropped == 0 {
            writeln!(
                self.file,
                "\n[snpkit: the {} log reached its cap of {} bytes; later output is left out \
                 except its last {} bytes, which follow when the run ends]",
                self.what, self.cap, TAIL_KEEP
            )?;
        }
        self.dropped += rest.len() as u64;
        self.tail.extend_from_slice(rest);
        if self.tail.len() > 2 * TAIL_KEEP {
            self.tail.drain(..self.tail.len() - TAIL_KEEP);
        }
        Ok(())
    }

    /// Bytes past the cap so far (0: nothing was left out).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes the kept tail, if the cap was reached.
    pub fn finish(mut self) -> io::Result<()> {
        if self.dropped > 0 {
            let keep = self.tail.len().min(TAIL_KEEP);
            let tail = &self.tail[self.tail.len() - keep..];
            writeln!(
                self.file,
                "\n[snpkit: {} bytes of {} output were left out here; its last {} bytes follow]",
                self.dropped - keep as u64,
                self.what,
                keep
            )?;
            self.file.write_all(tail)?;
        }
        self.file.flush()
    }
}

/// Copies the console from QEMU's connection into `log` until QEMU closes it (or, if QEMU never
/// connects, until `stop` is set), publishing what it sees in `signs`.
pub fn copy_console(
    listener: UnixListener,
    log: CappedLog,
    signs: Arc<Mutex<Signs>>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let clock = std::time::Instant::now();
    let Some(stream) = accept(&listener, &stop)? else {
        return log.finish();
    };
    copy_stream(stream, log, &signs, &stop, clock)
}

fn accept(listener: &UnixListener, stop: &AtomicBool) -> io::Result<Option<UnixStream>> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => return Ok(Some(stream)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy_stream(
    mut stream: UnixStream,
    mut log: CappedLog,
    signs: &Mutex<Signs>,
    stop: &AtomicBool,
    clock: std::time::Instant,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut watch = Watch {
        clock: Some(clock),
        ..Watch::default()
    };
    let mut buf = vec![0u8; 64 << 10];
    let result = loop {
        match stream.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                watch.feed(&buf[..n]);
                if let Ok(mut s) = signs.lock()
                    && *s != watch.signs
                {
                    s.clone_from(&watch.signs);
                }
                if let Err(e) = log.write(&buf[..n]) {
                    break Err(e);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let finished = log.finish();
    result.and(finished)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signs_stay_seen_after_any_amount_of_chatter() {
        let mut w = Watch::default();
        w.feed(b"BdsDxe: loading Boot0001 \"EFI Internal Shell\"\r\n");
        assert_eq!(w.signs(), Signs::default());
        w.feed(b"[    0.000000] Linux version 6.12.95+deb12-cloud-amd64\n");
        // Far more than any window at the end of a log: 1 MiB of kernel chatter.
        for i in 0..16_384 {
            w.feed(
                format!("[    1.{i:06}] virtio_blk virtio1: chatter chatter chatter\n").as_bytes(),
            );
        }
        let s = w.signs();
        assert!(
            s.kernel_started && !s.kernel_panicked && !s.firmware_gave_up,
            "{s:?}"
        );
    }

    #[test]
    fn timing_marks_are_taken_once_in_the_order_seen() {
        let mut w = Watch {
            clock: Some(std::time::Instant::now()),
            ..Watch::default()
        };
        w.feed(b"\x1b[2JBdsDxe: loading\r\nEFI stub: Loaded initrd\n");
        w.feed(b"snpkit-init: start");
        w.feed(b"ing (snpkit-init 0.1.0)\nsnpkit-init: starting (again)\n");
        let labels: Vec<&str> = w.signs().marks.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            labels,
            [
                "first console byte (firmware)",
                "kernel entered (EFI stub)",
                "/init starts"
            ]
        );
        // Without a clock (the tests' watches, a replay), nothing is timed.
        let mut w = Watch::default();
        w.feed(b"EFI stub: x\n");
        assert!(w.signs().marks.is_empty());
    }

    #[test]
    fn markers_split_between_reads_are_seen() {
        let text = b"noise\nKernel panic - not syncing: dm-verity device corrupted\n";
        for cut in 0..text.len() {
            let mut w = Watch::default();
            w.feed(&text[..cut]);
            w.feed(&text[cut..]);
            assert!(w.signs().kernel_panicked, "split at {cut}");
        }
        // One byte at a time.
        let mut w = Watch::default();
        for b in b"BdsDxe: No bootable option was found.\r\n" {
            w.feed(&[*b]);
        }
        assert!(w.signs().firmware_gave_up);
        assert!(!w.signs().kernel_started);
    }

    fn watched(chunks: &[&[u8]]) -> Signs {
        let mut w = Watch::default();
        for c in chunks {
            w.feed(c);
        }
        w.signs()
    }

    #[test]
    fn the_kernel_s_first_reason_is_kept_whatever_follows() {
        let corrupted = "device-mapper: verity: 254:0: data block 5 is corrupted";
        let text = format!(
            "[ 1.0] Linux version 6.12\r\n[ 2.0] {corrupted}\r\n[ 2.1] Kernel panic - not syncing: VFS\r\n"
        );
        for cut in 0..text.len() {
            let s = watched(&[&text.as_bytes()[..cut], &text.as_bytes()[cut..]]);
            assert!(s.verity_corrupted && s.kernel_panicked, "split at {cut}");
            assert_eq!(
                s.kernel_said.as_deref(),
                Some(format!("[ 2.0] {corrupted}").as_str()),
                "split at {cut}"
            );
        }
        // A panic alone is the reason; dm-verity was not involved.
        let s = watched(&[
            b"chatter\n",
            b"  Kernel panic - not syncing: Attempted to kill init!  \n",
        ]);
        assert!(!s.verity_corrupted);
        assert_eq!(
            s.kernel_said.as_deref(),
            Some("Kernel panic - not syncing: Attempted to kill init!")
        );
    }

    #[test]
    fn the_verity_sign_needs_both_parts_on_one_line() {
        let s = watched(&[
            b"device-mapper: verity: 254:0: ready\n",
            b"the block is corrupted\n",
        ]);
        assert_eq!(s, Signs::default());
        let s = watched(&[b"squashfs: is corrupted? no\nverity\n"]);
        assert!(!s.verity_corrupted && s.kernel_said.is_none(), "{s:?}");
    }

    #[test]
    fn a_reason_line_cut_off_by_the_end_of_the_run_still_counts() {
        let mut w = Watch::default();
        w.feed(b"ok\nKernel panic - not syn");
        assert!(w.signs().kernel_said.is_none(), "no marker yet");
        w.feed(b"cing: VFS: Unable to mount");
        assert_eq!(
            w.signs().kernel_said.as_deref(),
            Some("Kernel panic - not syncing: VFS: Unable to mount")
        );
        // The line grows until it ends, then stays.
        w.feed(b" root fs\nKernel panic - not syncing: second\n");
        assert_eq!(
            w.signs().kernel_said.as_deref(),
            Some("Kernel panic - not syncing: VFS: Unable to mount root fs")
        );
    }

    #[test]
    fn a_hostile_endless_line_is_kept_to_its_cap() {
        let mut w = Watch::default();
        w.feed(b"Kernel panic - not syncing: ");
        for _ in 0..1000 {
            w.feed(&[b'x'; 1000]);
        }
        let said = w.signs().kernel_said.unwrap();
        assert_eq!(said.len(), LINE_CAP);
        assert!(said.starts_with("Kernel panic - not syncing: xxx"));
    }

    fn log_text(path: &std::path::Path) -> String {
        String::from_utf8(std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn the_log_keeps_its_head_and_tail_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut log = CappedLog::new(File::create(&path).unwrap(), 1000);
        log.write(b"first line\n").unwrap();
        for i in 0..50_000 {
            log.write(format!("flood {i:08}\n").as_bytes()).unwrap();
        }
        log.write(b"the very last line\n").unwrap();
        log.finish().unwrap();
        let text = log_text(&path);
        assert!(
            text.starts_with("first line\nflood 00000000\n"),
            "{}",
            &text[..100]
        );
        assert!(text.contains("reached its cap of 1000 bytes"));
        assert!(text.contains("bytes of console output were left out here"));
        assert!(text.ends_with("flood 00049999\nthe very last line\n"));
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 1000 + TAIL_KEEP as u64 + 1000, "{size}");
    }

    #[test]
    fn a_log_under_the_cap_is_written_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut log = CappedLog::new(File::create(&path).unwrap(), 1000);
        log.write(b"one\n").unwrap();
        log.write(b"two\n").unwrap();
        log.finish().unwrap();
        assert_eq!(log_text(&path), "one\ntwo\n");
    }

    #[test]
    fn the_copier_writes_the_log_and_publishes_signs() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("console.sock");
        let path = dir.path().join("console.log");
        let listener = UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        let signs = Arc::new(Mutex::new(Signs::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let log = CappedLog::new(File::create(&path).unwrap(), LOG_CAP);
        let (s, st) = (signs.clone(), stop.clone());
        let copier = std::thread::spawn(move || copy_console(listener, log, s, st));
        let mut qemu = UnixStream::connect(&sock).unwrap();
        qemu.write_all(b"[ 0.0] Linux vers").unwrap();
        qemu.write_all(b"ion 6.12\n").unwrap();
        drop(qemu);
        copier.join().unwrap().unwrap();
        assert!(signs.lock().unwrap().kernel_started);
        assert_eq!(log_text(&path), "[ 0.0] Linux version 6.12\n");

        // QEMU never connects: the stop flag ends the copier.
        let listener = UnixListener::bind(dir.path().join("other.sock")).unwrap();
        listener.set_nonblocking(true).unwrap();
        let log = CappedLog::new(File::create(dir.path().join("other.log")).unwrap(), LOG_CAP);
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let copier = std::thread::spawn(move || {
            copy_console(listener, log, Arc::new(Mutex::new(Signs::default())), st)
        });
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::SeqCst);
        copier.join().unwrap().unwrap();
    }
}
