//! A virtio port whose reads and writes give up at a deadline: a host that never answers, or that
//! stops reading, must not leave PID 1 blocked forever without a word on the console.
//!
//! The port is opened `O_NONBLOCK` and every transfer waits in `poll` first. A blocking write is
//! not an option: virtio-console's blocking write spins in the kernel until the host has taken
//! the buffer, which a host that stopped reading never does.

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct TimedPort {
    file: File,
    deadline: Instant,
}

/// What the port saw while waiting for the host to hang up.
#[derive(Debug, PartialEq, Eq)]
pub enum Hangup {
    /// The host closed its end.
    Closed,
    /// The wait ended first.
    TimedOut,
}

impl TimedPort {
    /// Opens the port; transfers must be done within `timeout` (see [`TimedPort::allow`]).
    pub fn open(path: &Path, timeout: Duration) -> Result<TimedPort> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("opening virtio port {}", path.display()))?;
        Ok(TimedPort::from_file(file, timeout))
    }

    /// A port over an already open, non-blocking file.
    pub fn from_file(file: File, timeout: Duration) -> TimedPort {
        TimedPort {
            file,
            deadline: Instant::now() + timeout,
        }
    }

    /// The port's descriptor, to wait on it beside others.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Gives the next transfers `timeout` from now.
    pub fn allow(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
    }

    /// Waits for `events` until the deadline. `Interrupted` asks the caller to try again (a poll
    /// that ended early, or a signal); `TimedOut` says the host took too long.
    fn wait(&self, events: PollFlags, late: &'static str) -> io::Result<PollFlags> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if ms == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, late));
        }
        let mut fds = [PollFd::new(self.file.as_fd(), events)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            }
            Ok(_) => Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
            Err(errno) => Err(io::Error::from(errno)),
        }
    }

    /// After our last message: waits until the host closes its end (it does once it has read
    /// that message), so powering off cannot overtake the message on its way out of QEMU.
    pub fn wait_for_hangup(&mut self, timeout: Duration) -> Hangup {
        self.allow(timeout);
        let mut sink = [0u8; 256];
        loop {
            match self.read(&mut sink) {
                Ok(0) => return Hangup::Closed,
                // Anything more the host says is of no interest now.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Hangup::TimedOut,
                // Any other error means the other end is gone too.
                Err(_) => return Hangup::Closed,
            }
        }
    }
}

fn retry_on_would_block(result: io::Result<usize>) -> io::Result<usize> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(io::Error::from(io::ErrorKind::Interrupted))
        }
        other => other,
    }
}

impl Read for TimedPort {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.wait(PollFlags::POLLIN, "the host did not answer in time")?;
        retry_on_would_block(self.file.read(buf))
    }
}

impl Write for TimedPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let ready = self.wait(PollFlags::POLLOUT, "the host stopped reading")?;
        if ready.contains(PollFlags::POLLHUP) && !ready.contains(PollFlags::POLLOUT) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the host closed the port",
            ));
        }
        retry_on_would_block(self.file.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    fn pair(timeout: Duration) -> (TimedPort, UnixStream) {
        let (ours, host) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let file = File::from(OwnedFd::from(ours));
        (TimedPort::from_file(file, timeout), host)
    }

    #[test]
    fn transfers_pass_through() {
        let (mut port, mut host) = pair(Duration::from_secs(5));
        port.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        host.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        host.write_all(b"back").unwrap();
        let mut got = [0u8; 4];
        port.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"back");
    }

    #[test]
    fn a_silent_host_ends_a_read_at_the_deadline() {
        let (mut port, _host) = pair(Duration::from_millis(300));
        let start = Instant::now();
        let mut buf = [0u8; 4];
        let err = port.read_exact(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(err.to_string(), "the host did not answer in time");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_host_that_stops_reading_ends_a_write_at_the_deadline() {
        let (mut port, _host) = pair(Duration::from_millis(300));
        let start = Instant::now();
        // Far more than a socket buffer holds; nobody reads it.
        let err = port.write_all(&vec![0x41; 16 << 20]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(err.to_string(), "the host stopped reading");
        assert!(start.elapsed() < Duration::from_secs(3));
        // A new allowance lets the port be used again once the host reads.
        port.allow(Duration::from_secs(5));
    }

    #[test]
    fn hangup_is_seen_at_once_and_its_absence_at_the_deadline() {
        let (mut port, host) = pair(Duration::from_secs(5));
        let start = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(host);
        });
        assert_eq!(
            port.wait_for_hangup(Duration::from_secs(10)),
            Hangup::Closed
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();

        let (mut port, _host) = pair(Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(
            port.wait_for_hangup(Duration::from_millis(200)),
            Hangup::TimedOut
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
