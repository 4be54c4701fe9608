//! Whether a run passed, decided from how QEMU ended, what the console showed and what the guest
//! said on the attest channel; and, when it failed, the most specific reason at hand.
//!
//! A run passes only on a positive signal: the guest attested *and* then said, in its `Finished`
//! message, that the appliance's entry point exited 0, and QEMU ended cleanly. QEMU exiting 0 is
//! not one: with `-no-reboot` a guest that reboots (dm-verity's `restart_on_corruption`) or
//! powers off early ends QEMU the same way. Among the failures the guest's own words come first,
//! since a hardened image has no console to read; the kernel's words (see `console.rs`) come
//! with the runs whose guest could not speak.
//!
//! [`converse`] runs the conversation beside the supervisor and gathers a [`RunEnd`]; [`judge`]
//! decides on it without a process, so every branch is tested below without booting.

use crate::applog::{AppLogEnd, AppLogSink};
use crate::channel::{Attested, ChannelError, attest, finish_with};
use crate::relay::Relay;
use crate::supervise::{ConsoleEnd, Outcome, Vm};
use snpkit_wire::frame::{Finished, Nonce};
use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};

/// What the attest channel brought: the evidence, then the guest's word on how the appliance's
/// entry point ended.
pub type Conversation = Result<(Attested, Result<Finished, ChannelError>), ChannelError>;

/// Everything a run's verdict is decided from.
#[derive(Debug)]
pub struct RunEnd {
    pub outcome: Outcome,
    pub console: ConsoleEnd,
    pub conversation: Conversation,
    /// The appliance's log, when the run collected it ([`Session::app_log`]).
    pub app_log: Option<AppLogEnd>,
    /// The host sent `Stop` ([`Session::stop`]): an entry point ended by that SIGTERM passes.
    pub stop_sent: bool,
}

/// What a run does beside the conversation; `Session::default()` does none of it.
#[derive(Default)]
pub struct Session {
    /// Where the entry point's output goes, from its `AppLog` frames (else they are dropped).
    pub app_log: Option<AppLogSink>,
    /// Told once the guest has attested: the appliance is starting.
    pub attested: Option<Sender<()>>,
    /// A message here, at any time after the guest attested, sends it `Stop`.
    pub stop: Option<Receiver<()>>,
    /// Where the guest's key-broker requests go once it has attested (`boot --kbs`); without
    /// one, each is answered with an error naming `--kbs`.
    pub relay: Option<Box<dyn Relay>>,
}

/// How many of the appliance log's last lines a run keeps for people.
pub const APPLOG_TAIL_LINES: usize = 20;

/// Runs the host's half of the attestation conversation ([`attest`], then [`finish`]) beside
/// [`Vm::wait`], and gathers how the run ended.
///
/// The conversation runs on its own thread because the supervisor must stay on this one (QEMU's
/// death signal is tied to the spawning thread) and may end the run early; QEMU's exit closes the
/// channel and so ends the conversation. The channel is dropped after the guest's last word,
/// which is what lets the guest power off. Take the emulated PSP's channel before calling this.
pub fn converse(vm: Vm, nonce: &Nonce) -> RunEnd {
    converse_in(vm, nonce, Session::default())
}

/// As [`converse`], with the appliance's log collected, the start announced and a way to stop
/// the appliance ([`Session`]).
pub fn converse_in(mut vm: Vm, nonce: &Nonce, session: Session) -> RunEnd {
    let nonce = *nonce;
    let stop_sent = Arc::new(AtomicBool::new(false));
    let Session {
        mut app_log,
        attested: announce,
        stop,
        mut relay,
    } = session;
    let conversation = vm.attest_channel().map(|mut ch| {
        let stop_sent = stop_sent.clone();
        std::thread::spawn(move || {
            let attested = match attest(&mut ch, &nonce) {
                Ok(a) => a,
                Err(e) => return (Err(e), app_log),
            };
            if let Some(tx) = announce {
                let _ = tx.send(());
            }
            if let Some(rx) = stop {
                match ch.stopper() {
                    // Not joined: it waits for a stop that may never come.
                    Ok(stopper) => drop(std::thread::spawn(move || {
                        if rx.recv().is_ok() && stopper.stop().is_ok() {
                            stop_sent.store(true, Ordering::SeqCst);
                        }
                    })),
                    Err(e) => return (Ok((attested, Err(e))), app_log),
                }
            }
            let relay: Option<&mut dyn Relay> = match relay.as_mut() {
                Some(r) => Some(r.as_mut()),
                None => None,
            };
            let end = finish_with(
                &mut ch,
                &mut |frame| {
                    if let Some(sink) = app_log.as_mut() {
                        sink.take(frame);
                    }
                },
                relay,
            );
            (Ok((attested, end)), app_log)
        })
    });
    let (outcome, console) = vm.wait_with_console();
    let (conversation, app_log) = match conversation {
        Ok(handle) => handle.join().unwrap_or((
            Err(ChannelError::Closed {
                waiting_for: "the guest's evidence",
            }),
            None,
        )),
        Err(e) => (Err(e), None),
    };
    RunEnd {
        outcome,
        console,
        conversation,
        app_log: app_log.map(|sink| sink.finish(APPLOG_TAIL_LINES)),
        stop_sent: stop_sent.load(Ordering::SeqCst),
    }
}

/// What a failure's message names beyond the run itself.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    /// The image folder that was booted (a refused image is named).
    pub image: &'a std::path::Path,
    /// Its recipe, for the command that rebuilds it.
    pub recipe: &'a str,
    /// The run's deadline in seconds.
    pub timeout_secs: u64,
}

/// A run that passed: the guest's evidence, and its entry point's `Exited(0)`.
#[derive(Debug)]
pub struct Passed {
    pub attested: Attested,
    /// `Exited(0)`, or — when the host stopped the appliance — its ending by that SIGTERM.
    pub end: Finished,
    /// The host asked the appliance to stop (`--keep-running`, then Ctrl-C).
    pub stopped: bool,
}

/// Whether the entry point ended as a stopped appliance should: by the SIGTERM it was sent, or
/// by exiting 0 or 128 + 15 (a shell's way to pass the signal on) after it.
pub fn ended_by_stop(end: Finished) -> bool {
    const SIGTERM: i32 = 15;
    matches!(
        end,
        Finished::Signaled(SIGTERM) | Finished::Exited(0) | Finished::Exited(143)
    )
}

/// The console's last lines for a failure's message, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSection(pub String);

impl ConsoleSection {
    /// The section, and for an empty console why a refused image leaves it so.
    fn with_firmware_note(&self) -> String {
        if self.0.trim().is_empty() {
            format!("{self}: the RELEASE firmware stops without a word when a hash does not match")
        } else {
            self.to_string()
        }
    }
}

/// QEMU's stderr, or a word on its silence: a "QEMU" that fails without a word may be no QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuStderr(pub String);

impl fmt::Display for QemuStderr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.trim().is_empty() {
            f.write_str(
                "it printed nothing on stderr; check that --qemu names a working qemu-system-x86_64",
            )
        } else {
            f.write_str(&self.0)
        }
    }
}

impl fmt::Display for ConsoleSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neutral: an empty console is the firmware's silence only when QEMU ran and the kernel
        // never started (that reason says so); a QEMU that failed at once printed nothing either.
        if self.0.trim().is_empty() {
            f.write_str("the console stayed empty")
        } else {
            write!(f, "last console lines:\n{}", self.0)
        }
    }
}

/// The line in which the kernel said why it stopped, if it did, as a sentence to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSaid(pub Option<String>);

impl fmt::Display for KernelSaid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(line) => write!(f, " The kernel said: {line}"),
            None => Ok(()),
        }
    }
}

/// Why a run failed: one variant per reason, each with what its message names. The channel
/// errors are part of the sentence, not a `#[source]`: the reason reads as one line.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    #[error(
        "the firmware refused the image: the kernel never started. In a measured launch this means the kernel, initrd \
         or command line QEMU was given does not match the SHA-256 in the SEV hashes table, i.e. {} was changed \
         after it was built (or the firmware is not an AmdSev OVMF). Rebuild with `cargo xtask build {recipe}`.\n{}",
        image.display(),
        console.with_firmware_note()
    )]
    KernelNeverStarted {
        image: PathBuf,
        recipe: String,
        console: ConsoleSection,
    },
    #[error("the guest refused to run the appliance: {message}\n{console}")]
    GuestRefused {
        message: String,
        console: ConsoleSection,
    },
    #[error("the guest attested, then stopped: {message}\n{console}")]
    GuestStopped {
        message: String,
        console: ConsoleSection,
    },
    #[error("the guest did not finish within {timeout_secs} s and was stopped.\n{console}")]
    TimedOut {
        timeout_secs: u64,
        console: ConsoleSection,
    },
    #[error("QEMU failed ({status}): {qemu_stderr}\n{console}")]
    QemuFailed {
        status: ExitStatus,
        qemu_stderr: QemuStderr,
        console: ConsoleSection,
    },
    #[error("the guest kernel panicked before it attested ({channel}).{kernel_said}\n{console}")]
    PanickedBeforeAttesting {
        channel: ChannelError,
        kernel_said: KernelSaid,
        console: ConsoleSection,
    },
    #[error("the guest did not attest: {channel}.{kernel_said}\n{console}")]
    NotAttested {
        channel: ChannelError,
        kernel_said: KernelSaid,
        console: ConsoleSection,
    },
    #[error(
        "the guest attested, but the run ended without its report that the appliance's entry point finished \
         ({channel}): the guest rebooted, panicked or powered off early (dm-verity's restart_on_corruption reboots on a \
         corrupted block). That is not a successful run.{kernel_said}\n{console}"
    )]
    EndedUnfinished {
        channel: ChannelError,
        kernel_said: KernelSaid,
        console: ConsoleSection,
    },
    #[error("the appliance failed: its entry point {end}.\n{console}")]
    ApplianceFailed {
        end: Finished,
        console: ConsoleSection,
    },
    #[error("the guest kernel panicked after the entry point ended.\n{console}")]
    PanickedAfterEntry { console: ConsoleSection },
}

/// The verdict on a run (see the module docs for the order of the reasons).
pub fn judge(run: RunEnd, context: &RunContext<'_>) -> Result<Passed, RunFailure> {
    let RunEnd {
        outcome,
        console: ConsoleEnd { tail, signs },
        conversation,
        stop_sent,
        ..
    } = run;
    let console = ConsoleSection(tail);
    let kernel_said = KernelSaid(signs.kernel_said);
    match (outcome, conversation) {
        (Outcome::KernelNeverStarted { .. }, _) => Err(RunFailure::KernelNeverStarted {
            image: context.image.to_owned(),
            recipe: context.recipe.to_owned(),
            console,
        }),
        (_, Err(ChannelError::Guest { message })) => {
            Err(RunFailure::GuestRefused { message, console })
        }
        (_, Ok((_, Err(ChannelError::Guest { message })))) => {
            Err(RunFailure::GuestStopped { message, console })
        }
        (Outcome::TimedOut { .. }, _) => Err(RunFailure::TimedOut {
            timeout_secs: context.timeout_secs,
            console,
        }),
        (
            Outcome::Crashed {
                status,
                qemu_stderr,
                ..
            },
            _,
        ) => Err(RunFailure::QemuFailed {
            status,
            qemu_stderr: QemuStderr(qemu_stderr),
            console,
        }),
        (Outcome::GuestPanicked { .. }, Err(channel)) => Err(RunFailure::PanickedBeforeAttesting {
            channel,
            kernel_said,
            console,
        }),
        (Outcome::Exited, Err(channel)) => Err(RunFailure::NotAttested {
            channel,
            kernel_said,
            console,
        }),
        (_, Ok((_, Err(channel)))) => Err(RunFailure::EndedUnfinished {
            channel,
            kernel_said,
            console,
        }),
        (_, Ok((_, Ok(end)))) if !(end.is_success() || stop_sent && ended_by_stop(end)) => {
            Err(RunFailure::ApplianceFailed { end, console })
        }
        (Outcome::GuestPanicked { .. }, Ok(_)) => Err(RunFailure::PanickedAfterEntry { console }),
        (Outcome::Exited, Ok((attested, Ok(end)))) => Ok(Passed {
            attested,
            end,
            stopped: stop_sent,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::console::Signs;
    use snpkit_wire::frame::{Evidence, Hello, Provider, REPORT_LEN};
    use std::os::unix::process::ExitStatusExt;

    const TAIL: &str = "[ 1.0] snpkit-init: starting\n[ 2.0] the last line";
    const CORRUPTED: &str = "device-mapper: verity: 254:0: data block 5 is corrupted";

    fn context() -> RunContext<'static> {
        RunContext {
            image: std::path::Path::new("/images/hello"),
            recipe: "hello",
            timeout_secs: 45,
        }
    }

    fn attested() -> Attested {
        Attested {
            hello: Hello {
                protocol: snpkit_wire::frame::FRAME_VERSION,
                provider: Provider::EmulatedPsp,
            },
            evidence: Evidence {
                report: Box::new([7; REPORT_LEN]),
                public_key: [9; 32],
                certs: Vec::new(),
            },
        }
    }

    fn end(outcome: Outcome, said: Option<&str>, conversation: Conversation) -> RunEnd {
        RunEnd {
            outcome,
            console: ConsoleEnd {
                tail: TAIL.into(),
                signs: Signs {
                    kernel_started: true,
                    kernel_said: said.map(str::to_owned),
                    ..Signs::default()
                },
            },
            conversation,
            app_log: None,
            stop_sent: false,
        }
    }

    fn tail() -> String {
        TAIL.into()
    }

    fn guest(message: &str) -> ChannelError {
        ChannelError::Guest {
            message: message.into(),
        }
    }

    fn closed() -> ChannelError {
        ChannelError::Closed {
            waiting_for: "the guest's final status",
        }
    }

    fn failure(run: RunEnd) -> RunFailure {
        match judge(run, &context()) {
            Ok(passed) => panic!("passed: {passed:?}"),
            Err(f) => f,
        }
    }

    fn message(run: RunEnd) -> String {
        failure(run).to_string()
    }

    #[test]
    fn only_an_attested_run_whose_entry_point_exited_0_passes() {
        let passed = judge(
            end(
                Outcome::Exited,
                None,
                Ok((attested(), Ok(Finished::Exited(0)))),
            ),
            &context(),
        )
        .unwrap();
        assert_eq!(passed.end, Finished::Exited(0));
        assert_eq!(passed.attested, attested());
    }

    #[test]
    fn a_stopped_appliance_passes_only_if_it_ended_by_the_stop() {
        let stopped = |f: Finished, stop_sent: bool| {
            let run = RunEnd {
                stop_sent,
                ..end(Outcome::Exited, None, Ok((attested(), Ok(f))))
            };
            judge(run, &context())
        };
        let passed = stopped(Finished::Signaled(15), true).unwrap();
        assert!(passed.stopped);
        assert!(stopped(Finished::Exited(143), true).is_ok());
        // SIGKILL after the grace period, or a failure of its own: not a clean stop.
        assert!(matches!(
            stopped(Finished::Signaled(9), true),
            Err(RunFailure::ApplianceFailed { .. })
        ));
        assert!(stopped(Finished::Exited(1), true).is_err());
        // Without a Stop, SIGTERM is someone else's doing.
        assert!(stopped(Finished::Signaled(15), false).is_err());
    }

    #[test]
    fn a_silent_firmware_names_the_image_and_the_rebuild() {
        let quiet = RunEnd {
            console: ConsoleEnd::default(),
            ..end(
                Outcome::KernelNeverStarted {
                    console_tail: String::new(),
                },
                None,
                Err(closed()),
            )
        };
        assert_eq!(
            message(quiet),
            "the firmware refused the image: the kernel never started. In a measured launch this means the kernel, \
             initrd or command line QEMU was given does not match the SHA-256 in the SEV hashes table, i.e. \
             /images/hello was changed after it was built (or the firmware is not an AmdSev OVMF). Rebuild with \
             `cargo xtask build hello`.\nthe console stayed empty: the RELEASE firmware stops without a word when \
             a hash does not match"
        );
        // Even with evidence in hand: a run whose kernel never started cannot be believed.
        let f = failure(end(
            Outcome::KernelNeverStarted {
                console_tail: tail(),
            },
            None,
            Ok((attested(), Ok(Finished::Exited(0)))),
        ));
        assert!(matches!(f, RunFailure::KernelNeverStarted { .. }), "{f:?}");
        assert!(
            f.to_string()
                .ends_with(&format!("last console lines:\n{TAIL}"))
        );
    }

    #[test]
    fn the_guest_s_own_words_come_before_the_host_s_view() {
        // Before attesting: whatever QEMU did afterwards (here: timed out).
        let f = failure(end(
            Outcome::TimedOut {
                console_tail: tail(),
            },
            None,
            Err(guest(
                "dm-verity: reading data block 3 (byte 12288): hash mismatch",
            )),
        ));
        assert!(matches!(f, RunFailure::GuestRefused { .. }), "{f:?}");
        assert_eq!(
            f.to_string(),
            format!(
                "the guest refused to run the appliance: dm-verity: reading data block 3 (byte 12288): hash \
                 mismatch\nlast console lines:\n{TAIL}"
            )
        );
        // After attesting.
        let f = failure(end(
            Outcome::Exited,
            None,
            Ok((attested(), Err(guest("the entry point is missing")))),
        ));
        assert_eq!(
            f.to_string(),
            format!(
                "the guest attested, then stopped: the entry point is missing\nlast console lines:\n{TAIL}"
            )
        );
    }

    #[test]
    fn a_timeout_names_the_deadline() {
        let f = failure(end(
            Outcome::TimedOut {
                console_tail: tail(),
            },
            None,
            Err(closed()),
        ));
        assert_eq!(
            f.to_string(),
            format!(
                "the guest did not finish within 45 s and was stopped.\nlast console lines:\n{TAIL}"
            )
        );
    }

    #[test]
    fn a_crashed_qemu_names_its_status_and_stderr() {
        let f = failure(end(
            Outcome::Crashed {
                status: ExitStatus::from_raw(1 << 8),
                console_tail: tail(),
                qemu_stderr: "qemu: could not load kernel".into(),
            },
            None,
            Ok((attested(), Ok(Finished::Exited(0)))),
        ));
        assert_eq!(
            f.to_string(),
            format!(
                "QEMU failed (exit status: 1): qemu: could not load kernel\nlast console lines:\n{TAIL}"
            )
        );
    }

    /// `boot --qemu /bin/false`: QEMU's failure, never the firmware's.
    #[test]
    fn a_silent_qemu_that_fails_at_once_is_not_blamed_on_the_firmware() {
        let f = failure(end(
            Outcome::Crashed {
                status: ExitStatus::from_raw(1 << 8),
                console_tail: String::new(),
                qemu_stderr: String::new(),
            },
            None,
            Err(closed()),
        ));
        let text = f.to_string();
        assert!(
            text.starts_with(
                "QEMU failed (exit status: 1): it printed nothing on stderr; check that --qemu names \
                 a working qemu-system-x86_64\n"
            ),
            "{text}"
        );
        assert!(!text.contains("firmware"), "{text}");
        assert_eq!(
            ConsoleSection(String::new()).to_string(),
            "the console stayed empty"
        );
    }

    #[test]
    fn runs_without_evidence_say_what_the_kernel_said() {
        let panicked = || Outcome::GuestPanicked {
            console_tail: tail(),
        };
        let said = "Kernel panic - not syncing: VFS: Unable to mount root fs";
        let f = failure(end(panicked(), Some(said), Err(closed())));
        assert_eq!(
            f.to_string(),
            format!(
                "the guest kernel panicked before it attested (the guest closed the channel while the host waited \
                 for the guest's final status). The kernel said: {said}\nlast console lines:\n{TAIL}"
            )
        );
        let f = failure(end(Outcome::Exited, Some(CORRUPTED), Err(closed())));
        assert!(matches!(f, RunFailure::NotAttested { .. }), "{f:?}");
        assert_eq!(
            f.to_string(),
            format!(
                "the guest did not attest: the guest closed the channel while the host waited for the guest's final \
                 status. The kernel said: {CORRUPTED}\nlast console lines:\n{TAIL}"
            )
        );
        // Nothing said: nothing appended.
        let f = failure(end(Outcome::Exited, None, Err(closed())));
        assert!(f.to_string().starts_with(
            "the guest did not attest: the guest closed the channel while the host waited for the guest's final \
             status.\nlast console lines:"
        ));
    }

    #[test]
    fn evidence_without_the_entry_point_s_end_is_a_failure() {
        // dm-verity's restart_on_corruption after the guest attested: QEMU exits 0 (-no-reboot).
        let f = failure(end(
            Outcome::Exited,
            Some(CORRUPTED),
            Ok((attested(), Err(closed()))),
        ));
        assert!(matches!(f, RunFailure::EndedUnfinished { .. }), "{f:?}");
        assert_eq!(
            f.to_string(),
            format!(
                "the guest attested, but the run ended without its report that the appliance's entry point \
                 finished (the guest closed the channel while the host waited for the guest's final status): the \
                 guest rebooted, panicked or powered off early (dm-verity's restart_on_corruption reboots on a \
                 corrupted block). That is not a successful run. The kernel said: {CORRUPTED}\nlast console \
                 lines:\n{TAIL}"
            )
        );
        // The same after a panic.
        let f = failure(end(
            Outcome::GuestPanicked {
                console_tail: tail(),
            },
            None,
            Ok((attested(), Err(closed()))),
        ));
        assert!(matches!(f, RunFailure::EndedUnfinished { .. }), "{f:?}");
    }

    #[test]
    fn an_entry_point_that_failed_fails_the_run() {
        for (finished, words) in [
            (Finished::Exited(3), "exited with status 3"),
            (Finished::Signaled(9), "was killed by signal 9"),
        ] {
            let f = failure(end(Outcome::Exited, None, Ok((attested(), Ok(finished)))));
            assert_eq!(
                f.to_string(),
                format!(
                    "the appliance failed: its entry point {words}.\nlast console lines:\n{TAIL}"
                )
            );
        }
        // Its failure comes before a later panic.
        let f = failure(end(
            Outcome::GuestPanicked {
                console_tail: tail(),
            },
            None,
            Ok((attested(), Ok(Finished::Exited(1)))),
        ));
        assert!(matches!(f, RunFailure::ApplianceFailed { .. }), "{f:?}");
    }

    #[test]
    fn a_panic_after_a_clean_end_still_fails() {
        let f = failure(end(
            Outcome::GuestPanicked {
                console_tail: tail(),
            },
            Some("Kernel panic - not syncing: Attempted to kill init!"),
            Ok((attested(), Ok(Finished::Exited(0)))),
        ));
        assert_eq!(
            f.to_string(),
            format!(
                "the guest kernel panicked after the entry point ended.\nlast console lines:\n{TAIL}"
            )
        );
    }
}
