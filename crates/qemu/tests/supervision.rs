//! No QEMU outlives us: not after a panic (Drop kills its process group), not after we are killed
//! outright (setpriv's parent-death signal), which is also what happens on Ctrl-C.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use snpkit_qemu::spawn;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const CHILD_ENV: &str = "SNPKIT_SUPERVISION_CHILD";

/// Starts a guest that boots the kernel with no usable initrd (it will sit there until killed).
fn start(dir: &Path) -> snpkit_qemu::Vm {
    let initrd = dir.join("initrd");
    std::fs::write(&initrd, b"not an initramfs").unwrap();
    spawn(
        &tcg_launch(&initrd, "console=ttyS0", &dir.join("console.log"), 1),
        Duration::from_secs(300),
    )
    .unwrap()
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        // A killed QEMU is reaped by whoever waits for it; until then it shows as a zombie.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .split(") ")
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

#[test]
fn a_panic_while_qemu_runs_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    let vm = start(dir.path());
    let pid = vm.pid().unwrap();
    if std::env::var_os(CHILD_ENV).is_some() {
        // Child mode for the test below: say who QEMU is, then wait to be killed.
        println!("QEMU_PID={pid}");
        std::thread::sleep(Duration::from_secs(300));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _vm = vm;
        panic!("the caller panics while QEMU runs");
    }));
    assert!(result.is_err());
    assert!(
        gone_within(pid, Duration::from_secs(5)),
        "QEMU {pid} survived the panic"
    );
}

#[test]
fn killing_us_outright_kills_qemu() {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "a_panic_while_qemu_runs_kills_it",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split("QEMU_PID=")
                .nth(1)
                .map(|p| p.trim().parse().unwrap())
        })
        .expect("the child test printed QEMU's pid");
    assert!(
        !gone_within(pid, Duration::from_millis(500)),
        "QEMU should be running"
    );
    child.kill().unwrap(); // SIGKILL: no Drop, no handler runs.
    child.wait().unwrap();
    assert!(
        gone_within(pid, Duration::from_secs(5)),
        "QEMU {pid} outlived the process that started it"
    );
}
