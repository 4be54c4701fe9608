//! Running QEMU: the only place in snpkit that spawns it.
//!
//! QEMU runs in its own process group under `setpriv --pdeathsig KILL` (util-linux), so it dies
//! with us even when we cannot clean up (Ctrl-C's default action, SIGKILL, an abort); on every
//! other way out — the deadline, an error, a panic — [`Vm`]'s `Drop` kills the whole group. The
//! death signal fires when the *thread* that spawned QEMU ends, so spawn and wait in one thread.
//!
//! The serial console reaches us over a socket and is copied into the log by a thread of ours
//! (`console.rs`): capped, and watched as it goes by, so "the kernel started" is remembered from
//! its first sighting however chatty the kernel is afterwards.

use crate::channel::{ChannelError, GuestChannel};
use crate::console::{self, CappedLog, Signs};
use crate::launch::{Launch, LaunchKind, Sockets, argv};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of console kept in an outcome.
pub const TAIL_LINES: usize = 30;

/// The oldest QEMU with `sev-snp-guest`.
pub const MIN_SNP_QEMU: (u32, u32) = (9, 1);

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// QEMU exited 0: the guest powered off, or rebooted (`-no-reboot` ends QEMU then too, as
    /// dm-verity's `restart_on_corruption` does). Not by itself a sign that the appliance ran:
    /// only the guest's `Finished` message on the attest channel is.
    Exited,
    /// QEMU exited 0 after the guest kernel panicked (with `panic=-1` and `-no-reboot`).
    GuestPanicked { console_tail: String },
    /// The deadline passed after the kernel had started; QEMU was killed.
    TimedOut { console_tail: String },
    /// QEMU exited with an error.
    Crashed {
        status: ExitStatus,
        console_tail: String,
        qemu_stderr: String,
    },
    /// The deadline passed (or OVMF said it found no bootable option) and nothing shows that Linux
    /// ever ran: no kernel or `/init` line on the console, no byte on any channel. The RELEASE AmdSev firmware refuses a kernel, initrd or
    /// command line whose hash differs from the hashes table without a word, so on a measured
    /// launch this is the sign of a refused image.
    KernelNeverStarted { console_tail: String },
}

/// What the console showed by the end of a run: its last lines and every sign it gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConsoleEnd {
    /// The last [`TAIL_LINES`] lines (the same tail the [`Outcome`] carries, where it has one).
    pub tail: String,
    pub signs: Signs,
}

/// Classifies a finished or timed-out run. `status` is `None` when the deadline passed.
pub fn classify(
    status: Option<ExitStatus>,
    signs: &Signs,
    console_tail: String,
    qemu_stderr: &str,
    guest_spoke: bool,
) -> Outcome {
    match status {
        Some(s) if s.success() && signs.kernel_panicked => Outcome::GuestPanicked { console_tail },
        Some(s) if s.success() => Outcome::Exited,
        Some(status) => Outcome::Crashed {
            status,
            console_tail,
            qemu_stderr: tail(qemu_stderr, TAIL_LINES),
        },
        None if guest_spoke || signs.kernel_started => Outcome::TimedOut { console_tail },
        None => Outcome::KernelNeverStarted { console_tail },
    }
}

/// The last `lines` lines of `text`, without carriage returns or terminal escape sequences
/// (OVMF clears the screen on the serial console).
pub fn tail(text: &str, lines: usize) -> String {
    let clean = strip_escapes(text);
    let all: Vec<&str> = clean.lines().map(|l| l.trim_end_matches('\r')).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Drops `ESC [ params letter` (CSI) sequences and lone escapes.
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

/// The last lines of a console log (reads at most its last 64 KiB).
pub fn console_tail(path: &Path, lines: usize) -> String {
    tail(&read_end(path, 64 * 1024), lines)
}

fn read_end(path: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "{qemu} was not found; install QEMU ≥ {}.{} (Debian bookworm: `apt-get install -t bookworm-backports qemu-system-x86`, which is QEMU 10.0)",
        MIN_SNP_QEMU.0, MIN_SNP_QEMU.1
    )]
    QemuMissing { qemu: PathBuf },
    #[error(
        "{} is missing (util-linux); snpkit runs QEMU under `setpriv --pdeathsig` so it never outlives us",
        SETPRIV
    )]
    SetprivMissing,
    #[error("the {what} {path} does not exist")]
    InputMissing { what: &'static str, path: PathBuf },
    #[error(
        "{qemu} is QEMU {found}; SEV-SNP launches need QEMU ≥ {}.{} (sev-snp-guest): install it (Debian bookworm: `apt-get install -t bookworm-backports qemu-system-x86`) or pass --qemu",
        MIN_SNP_QEMU.0, MIN_SNP_QEMU.1
    )]
    QemuTooOld { qemu: PathBuf, found: String },
    #[error("could not tell {qemu}'s version from `-version`: {output:?}")]
    QemuVersionUnknown { qemu: PathBuf, output: String },
    #[error(transparent)]
    Argv(#[from] crate::launch::ArgvError),
    #[error("creating the sockets' directory")]
    SocketDir(#[source] io::Error),
    #[error("listening on {path}")]
    Listen { path: PathBuf, source: io::Error },
    #[error("creating the console log {path}")]
    ConsoleLog { path: PathBuf, source: io::Error },
    #[error("starting {qemu}")]
    Spawn { qemu: PathBuf, source: io::Error },
}

const SETPRIV: &str = "/usr/bin/setpriv";

/// A running QEMU. Dropping it kills QEMU's process group.
///
/// A run goes: [`spawn`]; for emulated (and unmeasured) launches, hand
/// [`Vm::emulated_psp_channel`] to [`crate::serve_emulated_psp`] *before* attesting (the guest asks
/// the PSP while the host waits for its evidence); [`crate::attest`] on [`Vm::attest_channel`],
/// then [`crate::finish`] for the guest's word on how its entry point ended (and drop the
/// channel: the guest powers off once the host hangs up), beside [`Vm::wait`] on this thread.
pub struct Vm {
    child: Option<Child>,
    started: Instant,
    deadline: Instant,
    console_log: PathBuf,
    attest: Option<UnixListener>,
    psp: Option<UnixListener>,
    guest_spoke: Arc<AtomicBool>,
    signs: Arc<Mutex<Signs>>,
    /// Tells the console thread that QEMU is gone (it ends by itself when QEMU had connected).
    console_stop: Arc<AtomicBool>,
    console: Option<JoinHandle<io::Result<()>>>,
    /// When the kernel must have shown a sign of life (see [`Vm::kernel_must_start_within`]).
    kernel_deadline: Option<Instant>,
    // Holds the sockets and QEMU's stderr; removed on drop.
    dir: tempfile::TempDir,
}

fn resolve(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `(major, minor)` from `QEMU emulator version 10.0.2 (…)`.
pub fn parse_qemu_version(output: &str) -> Option<(u32, u32)> {
    let rest = output.split("version ").nth(1)?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Finds `qemu` and checks that it is new enough for an SNP launch: before anything is asked of
/// the host, so the advice names what to install.
pub fn check_snp_qemu(qemu: &Path) -> Result<PathBuf, SpawnError> {
    let found = resolve(qemu).ok_or_else(|| SpawnError::QemuMissing {
        qemu: qemu.to_owned(),
    })?;
    check_snp_qemu_version(&found)?;
    Ok(found)
}

fn check_snp_qemu_version(qemu: &Path) -> Result<(), SpawnError> {
    let output = Command::new(qemu)
        .arg("-version")
        .output()
        .map_err(|source| SpawnError::Spawn {
            qemu: qemu.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let Some((major, minor)) = parse_qemu_version(&text) else {
        return Err(SpawnError::QemuVersionUnknown {
            qemu: qemu.to_owned(),
            output: text,
        });
    };
    if (major, minor) < MIN_SNP_QEMU {
        return Err(SpawnError::QemuTooOld {
            qemu: qemu.to_owned(),
            found: format!("{major}.{minor}"),
        });
    }
    Ok(())
}

fn must_exist(what: &'static str, path: &Path) -> Result<(), SpawnError> {
    if path.exists() {
        Ok(())
    } else {
        Err(SpawnError::InputMissing {
            what,
            path: path.to_owned(),
        })
    }
}

fn listen(path: &Path) -> Result<UnixListener, SpawnError> {
    let listener = UnixListener::bind(path).map_err(|source| SpawnError::Listen {
        path: path.to_owned(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| SpawnError::Listen {
            path: path.to_owned(),
            source,
        })?;
    Ok(listener)
}

/// Starts QEMU for `launch`; the run must be over within `deadline` (see [`Vm::wait`]).
pub fn spawn(launch: &Launch, deadline: Duration) -> Result<Vm, SpawnError> {
    let qemu = resolve(&launch.qemu).ok_or_else(|| SpawnError::QemuMissing {
        qemu: launch.qemu.clone(),
    })?;
    if !Path::new(SETPRIV).is_file() {
        return Err(SpawnError::SetprivMissing);
    }
    must_exist("kernel", &launch.kernel)?;
    must_exist("initrd", &launch.initrd)?;
    for disk in &launch.disks {
        must_exist("disk", disk)?;
    }
    let with_psp = match &launch.kind {
        LaunchKind::Snp(snp) => {
            must_exist("firmware", &snp.firmware)?;
            check_snp_qemu_version(&qemu)?;
            false
        }
        LaunchKind::Emulated(emu) => {
            must_exist("firmware", &emu.firmware)?;
            must_exist("hashes page", &emu.hashes_page)?;
            true
        }
        LaunchKind::TcgUnmeasured => true,
    };
    // Unix socket paths are limited to 108 bytes: keep them in a short private directory.
    let dir = tempfile::Builder::new()
        .prefix("snpkit-vm-")
        .tempdir()
        .map_err(SpawnError::SocketDir)?;
    let sockets = Sockets {
        console: dir.path().join("console.sock"),
        attest: dir.path().join("attest.sock"),
        emulated_psp: with_psp.then(|| dir.path().join("psp.sock")),
    };
    let args = argv(launch, &sockets)?;
    let console_listener = listen(&sockets.console)?;
    let attest = listen(&sockets.attest)?;
    let psp = sockets.emulated_psp.as_deref().map(listen).transpose()?;
    let log = File::create(&launch.console_log).map_err(|source| SpawnError::ConsoleLog {
        path: launch.console_log.clone(),
        source,
    })?;
    let stderr = File::create(dir.path().join("qemu.stderr")).map_err(SpawnError::SocketDir)?;
    let child = Command::new(SETPRIV)
        .args(["--pdeathsig", "KILL", "--"])
        .arg(&qemu)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|source| SpawnError::Spawn {
            qemu: qemu.clone(),
            source,
        })?;
    let started = Instant::now();
    let signs = Arc::new(Mutex::new(Signs::default()));
    let console_stop = Arc::new(AtomicBool::new(false));
    let console = {
        let (signs, stop) = (signs.clone(), console_stop.clone());
        let log = CappedLog::new(log, console::LOG_CAP);
        std::thread::spawn(move || console::copy_console(console_listener, log, signs, stop))
    };
    Ok(Vm {
        child: Some(child),
        started,
        deadline: started + deadline,
        console_log: launch.console_log.clone(),
        attest: Some(attest),
        psp,
        guest_spoke: Arc::new(AtomicBool::new(false)),
        signs,
        console_stop,
        console: Some(console),
        kernel_deadline: None,
        dir,
    })
}

impl Vm {
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Ends the run early, as [`Outcome::KernelNeverStarted`], when neither the console nor a
    /// channel shows that Linux started within `limit` of QEMU's start. The AmdSev firmware that
    /// refuses a blob whose hash differs from the table stops in a dead loop before it prints
    /// anything, so without this a refused image costs the whole deadline.
    pub fn kernel_must_start_within(&mut self, limit: Duration) {
        self.kernel_deadline = Some(self.started + limit);
    }

    /// How long QEMU has been running.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// QEMU's process id (it leads its own process group), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn console_log(&self) -> &Path {
        &self.console_log
    }

    /// What the console has shown so far.
    pub fn console_signs(&self) -> Signs {
        self.signs.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Ends the console thread (QEMU is gone) and waits until the log is complete.
    fn close_console(&mut self) {
        self.console_stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.console.take() {
            let _ = thread.join();
        }
    }

    /// The attest port's connection (QEMU connects at startup). Once only.
    pub fn attest_channel(&mut self) -> Result<GuestChannel, ChannelError> {
        let listener = self
            .attest
            .take()
            .ok_or(ChannelError::AlreadyTaken { port: "attest" })?;
        self.accept(&listener)
    }

    /// The emulated PSP port's connection, for [`crate::channel::serve_emulated_psp`]. Once only.
    pub fn emulated_psp_channel(&mut self) -> Result<GuestChannel, ChannelError> {
        let listener = self.psp.take().ok_or(ChannelError::AlreadyTaken {
            port: "emulated PSP",
        })?;
        self.accept(&listener)
    }

    fn accept(&mut self, listener: &UnixListener) -> Result<GuestChannel, ChannelError> {
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    return GuestChannel::new(stream, self.deadline, self.guest_spoke.clone());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(source) => {
                    return Err(ChannelError::Io {
                        waiting_for: "QEMU to connect",
                        source,
                    });
                }
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let stderr = tail(
                    &read_end(&self.dir.path().join("qemu.stderr"), 16 * 1024),
                    TAIL_LINES,
                );
                return Err(ChannelError::QemuExited { status, stderr });
            }
            if Instant::now() >= self.deadline {
                return Err(ChannelError::Timeout {
                    waiting_for: "QEMU to connect",
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for QEMU to exit, killing it at the deadline (or as soon as the firmware has given up
    /// on the kernel), and says how the run ended.
    pub fn wait(self) -> Outcome {
        self.wait_with_console().0
    }

    /// As [`Vm::wait`], with what the console showed (for a run's verdict, see [`crate::verdict`]).
    pub fn wait_with_console(mut self) -> (Outcome, ConsoleEnd) {
        let Some(mut child) = self.child.take() else {
            return (Outcome::Exited, ConsoleEnd::default());
        };
        let mut polls: u32 = 0;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= self.deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break None,
            }
            polls += 1;
            if polls.is_multiple_of(10) {
                let signs = self.console_signs();
                let started = signs.kernel_started || self.guest_spoke.load(Ordering::SeqCst);
                let silent_too_long =
                    self.kernel_deadline.is_some_and(|d| Instant::now() >= d) && !started;
                if silent_too_long || (signs.firmware_gave_up && !started) {
                    break None;
                }
            }
        };
        if status.is_none() {
            kill_group(&mut child);
        }
        self.close_console();
        let tail = console_tail(&self.console_log, TAIL_LINES);
        let stderr = read_end(&self.dir.path().join("qemu.stderr"), 16 * 1024);
        let signs = self.console_signs();
        let outcome = classify(
            status,
            &signs,
            tail.clone(),
            &stderr,
            self.guest_spoke.load(Ordering::SeqCst),
        );
        (outcome, ConsoleEnd { tail, signs })
    }
}

fn kill_group(child: &mut Child) {
    // The group's id is QEMU's (setpriv's) pid: process_group(0) made it a group leader.
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
        self.close_console();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn outcomes_are_classified() {
        let ok = ExitStatus::from_raw(0);
        let failed = ExitStatus::from_raw(1 << 8);
        let seen = |text: &str| {
            let mut w = crate::console::Watch::default();
            w.feed(text.as_bytes());
            w.signs()
        };
        let none = Signs::default();
        assert_eq!(
            classify(
                Some(ok),
                &seen("snpkit-init: powering off\n"),
                String::new(),
                "",
                true
            ),
            Outcome::Exited
        );
        assert!(matches!(
            classify(
                Some(ok),
                &seen("[ 1.0] Kernel panic - not syncing: VFS\n"),
                "panic".into(),
                "",
                false
            ),
            Outcome::GuestPanicked { console_tail } if console_tail == "panic"
        ));
        assert_eq!(
            classify(
                Some(failed),
                &none,
                String::new(),
                "qemu: bad thing\n",
                false
            ),
            Outcome::Crashed {
                status: failed,
                console_tail: String::new(),
                qemu_stderr: "qemu: bad thing".into()
            }
        );
        assert!(matches!(
            classify(
                None,
                &seen("[0.0] Linux version 6.12\n"),
                String::new(),
                "",
                false
            ),
            Outcome::TimedOut { .. }
        ));
        assert!(matches!(
            classify(
                None,
                &seen("snpkit-init: starting\n"),
                String::new(),
                "",
                false
            ),
            Outcome::TimedOut { .. }
        ));
        assert!(matches!(
            classify(None, &none, String::new(), "", true),
            Outcome::TimedOut { .. }
        ));
        assert_eq!(
            classify(
                None,
                &seen("BdsDxe: loading Boot0001\r\n"),
                "BdsDxe: loading Boot0001".into(),
                "",
                false
            ),
            Outcome::KernelNeverStarted {
                console_tail: "BdsDxe: loading Boot0001".into()
            }
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\r\n")).collect();
        let t = tail(&text, 30);
        assert_eq!(t.lines().count(), 30);
        assert!(t.starts_with("line 70\nline 71"));
        assert!(t.ends_with("line 99"));
        assert_eq!(tail("", 30), "");
        let ovmf = "\u{1b}[2J\u{1b}[01;01H\u{1b}[=3hBdsDxe: No bootable option was found.\r\n";
        assert_eq!(tail(ovmf, 30), "BdsDxe: No bootable option was found.");
    }

    #[test]
    fn qemu_versions_parse() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\n"),
            Some((10, 0))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15\n"),
            Some((7, 2))
        );
        assert_eq!(parse_qemu_version("garbage"), None);
    }
}
