//! A test program for the guest side of the end-to-end tests (never part of an image).
//!
//! As the appliance's entry point (argv[1]): `entry-ok ARGS…` prints a line naming its arguments
//! and `SNPKIT_TEST` and exits 0; `hang` prints a line and sleeps forever.
//! As a hostile `/init` (chosen by `snpkit.testguest=` on the kernel command line): `garbage`
//! writes bytes that are not a frame to the attest port, then powers off; `flood` announces a
//! 4 GiB frame and then writes junk for up to five seconds (its write blocks for good once the host
//! hangs up: virtio-serial waits for the host to come back), then powers off.
#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "../src/ports.rs"]
mod ports;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("entry-ok") => {
            let test = std::env::var("SNPKIT_TEST").unwrap_or_default();
            println!(
                "snpkit-testguest: entry ran with {:?}, SNPKIT_TEST={test}",
                &args[2..]
            );
        }
        Some("hang") => {
            println!("snpkit-testguest: hanging");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        _ if std::process::id() == 1 => hostile_init(),
        _ => {
            eprintln!("snpkit-testguest: unknown mode {args:?}");
            std::process::exit(2);
        }
    }
}

fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "snpkit-testguest: {text}");
}

fn hostile_init() {
    use nix::mount::{MsFlags, mount};
    // Only /init is in this initramfs (and the kernel's own /dev and /root): make mount points.
    let mounts: [(&str, &str); 3] = [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")];
    for (fstype, dir) in mounts {
        let _ = std::fs::create_dir_all(dir);
        if let Err(e) = mount(
            Some(fstype),
            dir,
            Some(fstype),
            MsFlags::empty(),
            None::<&str>,
        ) {
            say(&format!("mounting {fstype} on {dir}: {e}"));
        }
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mode = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("snpkit.testguest="))
        .unwrap_or("");
    say(&format!("hostile init, mode {mode:?}"));
    match ports::wait_for(Path::new("/"), "org.snpkit.attest", Duration::from_secs(30)) {
        Ok(Some(port)) => match std::fs::OpenOptions::new().write(true).open(&port) {
            Ok(mut port) => match mode {
                "garbage" => {
                    let _ = port.write_all(b"this is not an snpkit frame, just text\n");
                }
                "flood" => {
                    // A valid-looking Hello header announcing a 4 GiB payload, then junk.
                    let version = snpkit_wire::frame::FRAME_VERSION;
                    let _ = port.write_all(&[
                        b'S', b'N', b'P', b'K', version, 1, 0, 0, 0xff, 0xff, 0xff, 0xff,
                    ]);
                    let junk = vec![0x41u8; 64 * 1024];
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_secs(5) && port.write_all(&junk).is_ok()
                    {
                    }
                }
                other => say(&format!("unknown mode {other:?}")),
            },
            Err(e) => say(&format!("opening {}: {e}", port.display())),
        },
        other => say(&format!("no attest port: {other:?}")),
    }
    std::thread::sleep(Duration::from_secs(1));
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
}
