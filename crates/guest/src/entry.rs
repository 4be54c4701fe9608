//! The appliance's entry point, run as PID 1's child. While it runs, PID 1 reaps every process
//! that ends up orphaned to it, as init must; forwards what the entry point writes to the host as
//! `AppLog` frames (and to the console, where there is one); and listens on the attest port for
//! the host's `Stop`, which ends the entry point with SIGTERM and, after a grace period, SIGKILL
//! (only `Stop`: a host that hangs up or sends anything else is no longer listened to).
//!
//! One thread, one `poll`: the pipes, the port and a short tick for `waitpid`. A host that stops
//! reading costs the appliance its log (the forwarding stops, the pipes are still drained), never
//! its progress.
//!
//! With `[entry] user` the child drops to that account between fork and exec: supplementary
//! groups, gid, every capability out of the bounding and ambient sets, uid (which empties the
//! permitted and effective sets: the kernel's rule for a root process becoming another user),
//! no_new_privs (no setuid binary or file capability gives anything back), then the working
//! folder, entered as the user. A step that fails makes the exec fail, so the entry point never
//! runs with more than it was given.

use crate::console::say;
use crate::timed::TimedPort;
use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid};
use snpkit_wire::frame::{self, AppLog, Finished, LogStream, MAX_APPLOG_CHUNK, Message, ReadError};
use snpkit_wire::init::{Account, Entry, EntryLog};
use std::ffi::CString;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the entry point has to end after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often `waitpid` is asked while nothing else happens.
const TICK: Duration = Duration::from_millis(100);
/// How long the host may take to take one log frame.
const LOG_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One of the entry point's output pipes.
struct Pipe<R> {
    stream: LogStream,
    reader: Option<R>,
}

/// Runs the entry point to its end and says how it ended. Without a port (the test inits), its
/// output goes to the console only and nothing can stop it.
pub fn run(entry: &Entry, port: Option<&mut TimedPort>) -> Result<Finished> {
    let (program, args) = entry
        .argv
        .split_first()
        .context("the init config's entry argv is empty")?;
    let output = || match entry.log {
        EntryLog::Channel => Stdio::piped(),
        EntryLog::None => Stdio::null(),
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(&entry.env)
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output());
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
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the entry point {program}"))?;
    let pid = Pid::from_raw(child.id() as i32);
    let mut out = Pipe {
        stream: LogStream::Stdout,
        reader: child.stdout.take(),
    };
    let mut err = Pipe {
        stream: LogStream::Stderr,
        reader: child.stderr.take(),
    };
    if let Some(r) = &out.reader {
        set_nonblocking(r)?;
    }
    if let Some(r) = &err.reader {
        set_nonblocking(r)?;
    }
    let listening = port.is_some();
    let mut forward = Forward { port, listening };
    let mut kill_at: Option<Instant> = None;
    let mut buf = vec![0u8; MAX_APPLOG_CHUNK];
    loop {
        // Reap first: the entry point and any orphan that was handed to us.
        let mut ended = None;
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == pid => ended = Some(Finished::Exited(code)),
                Ok(WaitStatus::Signaled(p, signal, _)) if p == pid => {
                    ended = Some(Finished::Signaled(signal as i32));
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno).context("waiting for the entry point"),
            }
        }
        if let Some(end) = ended {
            // What it wrote last is in the pipes already; take it, but do not wait for
            // descendants that keep the pipes open.
            drain(&mut out, &mut buf, &mut forward);
            drain(&mut err, &mut buf, &mut forward);
            return Ok(end);
        }
        if let Some(at) = kill_at
            && Instant::now() >= at
        {
            say!("the entry point did not end within {STOP_GRACE:?} of SIGTERM; sending SIGKILL");
            let _ = kill(pid, Signal::SIGKILL);
            kill_at = None;
        }
        let wake = wait(&out, &err, &forward)?;
        if wake.out {
            drain(&mut out, &mut buf, &mut forward);
        }
        if wake.err {
            drain(&mut err, &mut buf, &mut forward);
        }
        if wake.port
            && let Some(port) = forward.port.as_deref_mut()
        {
            // Nothing more is read from the host either way: Stop is its one request, and after
            // anything else it is not listened to.
            forward.listening = false;
            match host_says(port) {
                HostSays::Stop => {
                    say!("the host asks the appliance to stop: sending SIGTERM");
                    let _ = kill(pid, Signal::SIGTERM);
                    kill_at = Some(Instant::now() + STOP_GRACE);
                }
                // Only an explicit Stop ends the appliance: a host that hangs up or sends garbage
                // is no longer listened to, and the appliance runs on (the host can always end
                // the VM; it cannot make the appliance stop by accident).
                HostSays::Other(what) => {
                    say!("{what}; no longer listening to the host, the appliance runs on")
                }
            }
        }
    }
}

struct Forward<'a> {
    /// Where the log goes; `None` once a write failed (the log stops, the appliance not).
    port: Option<&'a mut TimedPort>,
    /// We still read the port (false once the host has made its request).
    listening: bool,
}

struct Wake {
    out: bool,
    err: bool,
    port: bool,
}

fn set_nonblocking(fd: impl AsFd) -> Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL).context("pipe flags")?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("pipe flags")?;
    Ok(())
}

fn wait<O: AsFd, E: AsFd>(out: &Pipe<O>, err: &Pipe<E>, host: &Forward<'_>) -> Result<Wake> {
    let mut fds = Vec::with_capacity(3);
    let mut slots = [None; 3];
    if let Some(r) = &out.reader {
        slots[0] = Some(fds.len());
        fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
    }
    if let Some(r) = &err.reader {
        slots[1] = Some(fds.len());
        fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
    }
    if let Some(port) = host.port.as_deref()
        && host.listening
    {
        slots[2] = Some(fds.len());
        fds.push(PollFd::new(port.as_fd(), PollFlags::POLLIN));
    }
    let ms = u16::try_from(TICK.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => {}
        Err(errno) => return Err(errno).context("waiting for the entry point's output"),
    }
    let ready = |slot: Option<usize>| {
        slot.and_then(|i| fds[i].revents()).is_some_and(|r| {
            r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        })
    };
    Ok(Wake {
        out: ready(slots[0]),
        err: ready(slots[1]),
        port: ready(slots[2]),
    })
}

/// Reads what the pipe holds now and forwards it; closes it at its end.
fn drain<R: Read>(pipe: &mut Pipe<R>, buf: &mut [u8], fwd: &mut Forward<'_>) {
    let Some(reader) = pipe.reader.as_mut() else {
        return;
    };
    loop {
        match reader.read(buf) {
            Ok(0) => {
                pipe.reader = None;
                return;
            }
            Ok(n) => send(pipe.stream, &buf[..n], fwd),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                say!("reading the entry point's {}: {e}", pipe.stream.name());
                pipe.reader = None;
                return;
            }
        }
    }
}

fn send(stream: LogStream, bytes: &[u8], fwd: &mut Forward<'_>) {
    // The console, where there is one, shows the appliance's output as before the channel had it.
    let _ = std::io::stderr().lock().write_all(bytes);
    let Some(port) = fwd.port.as_deref_mut() else {
        return;
    };
    let message = Message::AppLog(AppLog {
        stream,
        bytes: bytes.to_vec(),
    });
    port.allow(LOG_WRITE_TIMEOUT);
    if let Err(e) = frame::write_message(port, &message) {
        say!("the host does not take the appliance's log ({e}); the rest of it is dropped");
        fwd.port = None;
        fwd.listening = false;
    }
}

enum HostSays {
    Stop,
    Other(String),
}

fn host_says(port: &mut TimedPort) -> HostSays {
    port.allow(LOG_WRITE_TIMEOUT);
    match frame::read_message(port) {
        Ok(Message::Stop) => HostSays::Stop,
        Ok(other) => HostSays::Other(format!(
            "the host sent {:?} while the appliance ran",
            other.kind()
        )),
        Err(ReadError::Closed) => HostSays::Other("the host closed the channel".into()),
        Err(e) => HostSays::Other(format!("refusing the host's frame: {e}")),
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
    let all = Pid::from_raw(-1);
    let _ = kill(all, Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    let _ = kill(all, Signal::SIGKILL);
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    fn port() -> (TimedPort, UnixStream) {
        let (ours, host) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let file = File::from(OwnedFd::from(ours));
        (TimedPort::from_file(file, Duration::from_secs(5)), host)
    }

    #[test]
    fn output_is_forwarded_in_bounded_frames_until_the_host_stops_taking_it() {
        let (mut port, mut host) = port();
        let mut fwd = Forward {
            port: Some(&mut port),
            listening: true,
        };
        let (r, mut w) = std::io::pipe().unwrap();
        set_nonblocking(&r).unwrap();
        let mut pipe = Pipe {
            stream: LogStream::Stderr,
            reader: Some(r),
        };
        w.write_all(&vec![b'x'; MAX_APPLOG_CHUNK + 10]).unwrap();
        drop(w);
        let mut buf = vec![0u8; MAX_APPLOG_CHUNK];
        drain(&mut pipe, &mut buf, &mut fwd);
        assert!(pipe.reader.is_none(), "the pipe's end closes it");
        let mut got = 0;
        while got < MAX_APPLOG_CHUNK + 10 {
            match frame::read_message(&mut host).unwrap() {
                Message::AppLog(log) => {
                    assert_eq!(log.stream, LogStream::Stderr);
                    assert!(log.bytes.len() <= MAX_APPLOG_CHUNK);
                    got += log.bytes.len();
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, MAX_APPLOG_CHUNK + 10);
        // A host that hung up: the next chunk is dropped, and so is the rest, without blocking.
        drop(host);
        send(LogStream::Stdout, b"late", &mut fwd);
        assert!(fwd.port.is_none());
    }

    #[test]
    fn the_host_stop_and_anything_else_are_told_apart() {
        let (mut port, mut host) = port();
        frame::write_message(&mut host, &Message::Stop).unwrap();
        assert!(matches!(host_says(&mut port), HostSays::Stop));
        host.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(
            matches!(host_says(&mut port), HostSays::Other(w) if w.contains("refusing the host's frame"))
        );
        let (mut port, host) = super::tests::port();
        drop(host);
        assert!(matches!(host_says(&mut port), HostSays::Other(w) if w.contains("closed")));
    }
}
