//! Leaving: sync and power off. PID 1 must never exit, or the kernel panics ("Attempted to kill
//! init") and the panic buries the line that said why.

use crate::console::say;
use nix::sys::reboot::{RebootMode, reboot};
use std::time::Duration;

pub fn off() -> ! {
    nix::unistd::sync();
    match reboot(RebootMode::RB_POWER_OFF) {
        Ok(never) => match never {},
        Err(errno) => say!("power off failed ({errno}); halting here"),
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
