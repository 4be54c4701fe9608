//! A test program for the guest side of the end-to-end tests (never part of an image).
//!
//! As the appliance's entry point (argv[1]): `entry-ok ARGS…` prints a line naming its arguments
//! and `SNPKIT_TEST` and exits 0; `hang` prints a line and sleeps forever; `volume DIR` counts
//! boots in `DIR/count` and writes (first time) or reads back `DIR/fill`, 12 MiB of a known
//! pattern, from the disk (caches dropped); `bench DIR… MIB` times sequential writes and reads.
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
        Some("volume") => volume(Path::new(args.get(2).map_or("/data", String::as_str))),
        Some("bench") => bench(&args[2..]),
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

/// The fill file's content at `offset`: distinct per 8 bytes, so a misplaced block shows.
fn pattern(offset: u64) -> [u8; 8] {
    (offset / 8)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .to_le_bytes()
}

const FILL_LEN: u64 = 12 << 20;
const CHUNK: usize = 1 << 20;

fn drop_caches() {
    nix::unistd::sync();
    if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "3") {
        say(&format!("dropping the page cache: {e}"));
    }
}

fn volume(dir: &Path) {
    use std::io::{Read, Seek};
    let count_path = dir.join("count");
    let count = std::fs::read_to_string(&count_path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let written = std::fs::File::create(&count_path).and_then(|mut f| {
        f.write_all(format!("{count}\n").as_bytes())
            .and_then(|()| f.sync_all())
    });
    if let Err(e) = written {
        say(&format!("writing {}: {e}", count_path.display()));
        std::process::exit(1);
    }
    println!("boot count: {count}");
    let fill = dir.join("fill");
    if !fill.exists() {
        let mut f = std::fs::File::create(&fill).expect("creating the fill file");
        let mut chunk = vec![0u8; CHUNK];
        for at in (0..FILL_LEN).step_by(CHUNK) {
            for (i, word) in chunk.chunks_mut(8).enumerate() {
                word.copy_from_slice(&pattern(at + 8 * i as u64));
            }
            f.write_all(&chunk).expect("writing the fill file");
        }
        f.sync_all().expect("syncing the fill file");
        say("wrote fill");
    }
    drop_caches();
    let mut f = std::fs::File::open(&fill).expect("opening the fill file");
    let mut chunk = vec![0u8; CHUNK];
    let mut at = 0u64;
    while at < FILL_LEN {
        let _ = f.seek(std::io::SeekFrom::Start(at));
        if let Err(e) = f.read_exact(&mut chunk) {
            say(&format!("fill read failed at byte {at}: {e}"));
            std::process::exit(3);
        }
        for (i, word) in chunk.chunks(8).enumerate() {
            if word != pattern(at + 8 * i as u64) {
                say(&format!("fill differs at byte {}", at + 8 * i as u64));
                std::process::exit(4);
            }
        }
        at += CHUNK as u64;
    }
    say("fill intact");
}

/// Sequential write (with fsync) and read (from the disk: caches dropped) of MIB MiB in each DIR.
fn bench(args: &[String]) {
    use std::io::Read;
    use std::time::Instant;
    let Some((mib, dirs)) = args.split_last() else {
        say("bench DIR… MIB");
        std::process::exit(2);
    };
    let mib: u64 = mib.parse().expect("MIB is a number");
    let chunk = vec![0x5au8; CHUNK];
    let mut rates = Vec::new();
    for dir in dirs {
        let path = Path::new(dir).join("bench");
        let start = Instant::now();
        let mut f = std::fs::File::create(&path).expect("creating the bench file");
        for _ in 0..mib {
            f.write_all(&chunk).expect("writing the bench file");
        }
        f.sync_all().expect("syncing the bench file");
        let write = mib as f64 / start.elapsed().as_secs_f64();
        drop(f);
        drop_caches();
        let start = Instant::now();
        let mut f = std::fs::File::open(&path).expect("opening the bench file");
        let mut buf = vec![0u8; CHUNK];
        for _ in 0..mib {
            f.read_exact(&mut buf).expect("reading the bench file");
        }
        let read = mib as f64 / start.elapsed().as_secs_f64();
        println!("bench {dir}: write {write:.2} MiB/s, read {read:.2} MiB/s ({mib} MiB)");
        rates.push((write, read));
    }
    if let [(sw, sr), (pw, pr)] = rates[..] {
        println!(
            "bench ratio {} / {}: write {:.3}, read {:.3}",
            dirs[0],
            dirs[1],
            sw / pw,
            sr / pr
        );
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
