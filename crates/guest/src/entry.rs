//! The appliance's entry point, run as PID 1's child. While it runs, PID 1 reaps every process
//! that ends up orphaned to it, as init must.

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use snpkit_wire::frame::Finished;
use snpkit_wire::init::Entry;
use std::process::Command;

/// Runs the entry point to its end and says how it ended.
pub fn run(entry: &Entry) -> Result<Finished> {
    let (program, args) = entry
        .argv
        .split_first()
        .context("the init config's entry argv is empty")?;
    let child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(&entry.env)
        .spawn()
        .with_context(|| format!("starting the entry point {program}"))?;
    let pid = Pid::from_raw(child.id() as i32);
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(Finished::Exited(code)),
            Ok(WaitStatus::Signaled(p, signal, _)) if p == pid => {
                return Ok(Finished::Signaled(signal as i32));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("waiting for the entry point"),
        }
    }
}

/// Ends what the entry point left behind, so the file systems are quiet when we sync.
pub fn stop_the_rest() {
    use nix::sys::signal::{Signal, kill};
    let all = Pid::from_raw(-1);
    let _ = kill(all, Signal::SIGTERM);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = kill(all, Signal::SIGKILL);
    while let Ok(status) = waitpid(None::<Pid>, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
