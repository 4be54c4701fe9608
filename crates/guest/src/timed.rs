//! A virtio port whose reads give up after a deadline: a host that never answers must not leave
//! PID 1 waiting forever without a word on the console.

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct TimedPort {
    file: File,
    deadline: Instant,
}

impl TimedPort {
    pub fn open(path: &Path, timeout: Duration) -> Result<TimedPort> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening virtio port {}", path.display()))?;
        Ok(TimedPort {
            file,
            deadline: Instant::now() + timeout,
        })
    }
}

impl Read for TimedPort {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if ms == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the host did not answer in time",
            ));
        }
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            }
            Ok(_) => self.file.read(buf),
            Err(errno) => Err(io::Error::from(errno)),
        }
    }
}

impl Write for TimedPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
