//! The appliance's entry point, run as PID 1's child. While it runs, PID 1 reaps every process
//! that ends up orphaned to it, as init must.
//!
//! With `[entry] user` the child drops to that account between fork and exec: supplementary
//! groups, gid, every capability out of the bounding and ambient sets, uid (which empties the
//! permitted and effective sets: the kernel's rule for a root process becoming another user),
//! no_new_privs (no setuid binary or file capability gives anything back), then the working
//! folder, entered as the user. A step that fails makes the exec fail, so the entry point never
//! runs with more than it was given.

use anyhow::{Context, Result};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid};
use snpkit_wire::frame::Finished;
use snpkit_wire::init::{Account, Entry};
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Runs the entry point to its end and says how it ended.
pub fn run(entry: &Entry) -> Result<Finished> {
    let (program, args) = entry
        .argv
        .split_first()
        .context("the init config's entry argv is empty")?;
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(&entry.env);
    let workdir = entry
        .workdir
        .as_deref()
        .map(CString::new)
        .transpose()
        .context("the init config's entry workdir holds a NUL byte")?;
    match &entry.user {
        Some(account) => drop_to(&mut cmd, account, workdir),
        None => {
            if let Some(dir) = &entry.workdir {
                cmd.current_dir(dir);
            }
        }
    }
    let child = cmd
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

/// Makes `cmd`'s child give up root for `account` before it execs. Everything the closure uses is
/// prepared here: between fork and exec only system calls run (no allocation, no lock).
fn drop_to(cmd: &mut Command, account: &Account, workdir: Option<CString>) {
    let uid = Uid::from_raw(account.uid);
    let gid = Gid::from_raw(account.gid);
    let groups: Vec<Gid> = account.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    // An errno, not a message: nothing may allocate between fork and exec.
    let os = |e: nix::errno::Errno| std::io::Error::from_raw_os_error(e as i32);
    let drop_privileges = move || -> std::io::Result<()> {
        nix::unistd::setgroups(&groups).map_err(os)?;
        nix::unistd::setgid(gid).map_err(os)?;
        drop_bounding_set()?;
        nix::unistd::setuid(uid).map_err(os)?;
        nix::sys::prctl::set_no_new_privs().map_err(os)?;
        if let Some(dir) = &workdir {
            nix::unistd::chdir(dir.as_c_str()).map_err(os)?;
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // system calls (setgroups, setgid, prctl, setuid, chdir) on data prepared before the fork,
    // and allocates nothing.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(drop_privileges);
    }
}

/// Drops every capability from the bounding set (so no exec can regain one) and clears the
/// ambient set. nix has no wrapper for these two prctl operations.
fn drop_bounding_set() -> std::io::Result<()> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments only; no memory is passed.
        #[allow(unsafe_code)]
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            // EINVAL: past the kernel's last capability; we are done.
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(e);
        }
    }
    // SAFETY: as above.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
