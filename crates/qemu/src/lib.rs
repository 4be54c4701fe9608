//! Launches: QEMU for SEV-SNP hosts and for the emulated launch.
//!
//! Owns the QEMU argv built from one launch description ([`launch`]), the host checks an SNP launch
//! needs ([`host`]), the supervision of the QEMU process — console log, deadline, clean shutdown, no
//! process left behind ([`supervise`]; the only code in snpkit that spawns QEMU), the serial
//! console's capped log and its watched signs (`console`) — the host side of the host ⇄ guest
//! channel ([`channel`]), the appliance's log from its frames ([`applog`]), the relay of the
//! guest's key-broker requests to `--kbs` ([`relay`]), and whether a run passed ([`verdict`]: how
//! QEMU ended, what the console showed and what the guest said, judged into [`Passed`] or a
//! [`RunFailure`]). Knows nothing of
//! report verification or of how a launch digest is computed: the emulated PSP's signer is a
//! handler passed in by the caller, and a run that passes hands its evidence on unjudged.
#![forbid(unsafe_code)]

pub mod applog;
pub mod channel;
mod console;
pub mod host;
pub mod launch;
pub mod relay;
pub mod supervise;
pub mod verdict;

pub use applog::{APPLOG_CAP, AppLogEnd, AppLogSink, printable};
pub use channel::{
    Attested, ChannelError, GuestChannel, PspAnswer, PspRequest, Stopper, attest, finish,
    finish_with, serve_emulated_psp,
};
pub use console::{Signs, TIMING_MARKS};
pub use host::{SnpHostCaps, detect_snp_host};
pub use launch::{
    ArgvError, EmulatedLaunch, HostForward, IdBlock, Launch, LaunchKind, Nic, SnpLaunch, Sockets,
    VolumeDisk, argv,
};
pub use relay::{HttpRelay, Relay};
pub use supervise::{
    ConsoleEnd, MIN_SNP_QEMU, Outcome, SpawnError, Vm, check_snp_qemu, console_tail, spawn,
};
pub use verdict::{
    APPLOG_TAIL_LINES, Passed, RunContext, RunEnd, RunFailure, Session, converse, converse_in,
    ended_by_stop, judge,
};
