//! QEMU's own parser on our argv: the SNP launch must be accepted and fail only because this host
//! has no SEV-SNP; the emulated launch must start (paused) with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use snpkit_qemu::launch::{
    EmulatedLaunch, Launch, LaunchKind, SnpLaunch, Sockets, VolumeDisk, argv,
};
use snpkit_qemu::supervise::SpawnError;
use snpkit_qemu::{Outcome, SnpHostCaps, spawn};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What QEMU says when it could not parse or apply an option.
const PARSE_ERRORS: &[&str] = &[
    "Invalid parameter",
    "invalid option",
    "Property '",
    "Parameter '",
    "unrecognized",
];

fn file(dir: &Path, name: &str, len: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, vec![0u8; len]).unwrap();
    path
}

fn snp_launch(dir: &Path) -> Launch {
    Launch {
        qemu: "qemu-system-x86_64".into(),
        kernel: file(dir, "vmlinuz", 4096),
        initrd: file(dir, "initrd", 4096),
        cmdline: "console=ttyS0".into(),
        vcpus: 2,
        cpu_model: "EPYC-v4".into(),
        memory_mib: 512,
        console_log: dir.join("console.log"),
        disks: Vec::new(),
        // A sealed volume's read-write disk with its serial: QEMU must parse that too.
        volumes: vec![VolumeDisk {
            name: "data".into(),
            path: file(dir, "data,vol.img", 1 << 20),
        }],
        // The appliance's NIC with a forward: QEMU must parse the restricted user network too.
        network: Some(snpkit_qemu::Nic {
            guest_address: std::net::Ipv4Addr::new(10, 0, 2, 15),
            forwards: vec![snpkit_qemu::HostForward {
                udp: false,
                host_port: 18080,
                guest_port: 80,
            }],
        }),
        kind: LaunchKind::Snp(SnpLaunch {
            firmware: file(dir, "OVMF.fd", 2 << 20),
            policy: 0x30000,
            // What an EPYC host reports; this one has no SNP to ask.
            host: SnpHostCaps::assume(51, 1),
            host_data: Some([0x11; 32]),
            id_block: None,
        }),
    }
}

fn qemu_stderr(args: &[std::ffi::OsString]) -> String {
    let out = Command::new("qemu-system-x86_64")
        .args(args)
        .arg("-S")
        .stdin(Stdio::null())
        .output()
        .expect("qemu-system-x86_64 is installed (apt-get install -t bookworm-backports qemu-system-x86)");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn snp_argv_is_parsed_by_qemu_and_fails_only_for_lack_of_snp() {
    let dir = tempfile::tempdir().unwrap();
    let launch = snp_launch(dir.path());
    let vm = spawn(&launch, Duration::from_secs(30)).unwrap();
    let Outcome::Crashed {
        status,
        qemu_stderr,
        ..
    } = vm.wait()
    else {
        panic!("QEMU must refuse to run SNP here")
    };
    assert!(!status.success());
    let lower = qemu_stderr.to_lowercase();
    assert!(
        lower.contains("sev") || lower.contains("kvm") || lower.contains("confidential"),
        "{qemu_stderr}"
    );
    assert!(
        !PARSE_ERRORS.iter().any(|e| qemu_stderr.contains(e)),
        "QEMU did not parse our argv:\n{qemu_stderr}"
    );
}

#[test]
fn the_parser_check_would_catch_a_bad_option() {
    // Control for the test above: the same argv with one bad property is a parse error.
    let dir = tempfile::tempdir().unwrap();
    let sockets = Sockets {
        console: dir.path().join("c.sock"),
        attest: dir.path().join("a.sock"),
        emulated_psp: None,
    };
    let _console = UnixListener::bind(&sockets.console).unwrap();
    let _listener = UnixListener::bind(&sockets.attest).unwrap();
    let mut args = argv(&snp_launch(dir.path()), &sockets).unwrap();
    let sev = args
        .iter_mut()
        .find(|a| a.to_string_lossy().starts_with("sev-snp-guest"))
        .unwrap();
    sev.push(",kernel-hashes-typo=on");
    let stderr = qemu_stderr(&args);
    assert!(PARSE_ERRORS.iter().any(|e| stderr.contains(e)), "{stderr}");
}

#[test]
fn emulated_argv_starts_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = &support::debian_kernel().vmlinuz;
    let launch = Launch {
        qemu: "qemu-system-x86_64".into(),
        kernel: kernel.clone(),
        initrd: file(dir.path(), "initrd", 4096),
        cmdline: "console=ttyS0".into(),
        vcpus: 2,
        cpu_model: "EPYC-v4".into(),
        memory_mib: 512,
        console_log: dir.path().join("console.log"),
        disks: Vec::new(),
        volumes: vec![VolumeDisk {
            name: "data".into(),
            path: file(dir.path(), "data,vol.img", 1 << 20),
        }],
        // The appliance's NIC with a forward: QEMU must parse the restricted user network too.
        network: Some(snpkit_qemu::Nic {
            guest_address: std::net::Ipv4Addr::new(10, 0, 2, 15),
            forwards: vec![snpkit_qemu::HostForward {
                udp: false,
                host_port: 18080,
                guest_port: 80,
            }],
        }),
        kind: LaunchKind::Emulated(EmulatedLaunch {
            // Never executed: QEMU is started paused (-S).
            firmware: file(dir.path(), "OVMF.fd", 2 << 20),
            hashes_page: file(dir.path(), "hashes,page", 4096),
            hashes_page_gpa: 0x80_6000,
        }),
    };
    let sockets = Sockets {
        console: dir.path().join("c.sock"),
        attest: dir.path().join("a.sock"),
        emulated_psp: Some(dir.path().join("p.sock")),
    };
    let _console = UnixListener::bind(&sockets.console).unwrap();
    let attest = UnixListener::bind(&sockets.attest).unwrap();
    let _psp = UnixListener::bind(sockets.emulated_psp.as_ref().unwrap()).unwrap();
    let mut child = Command::new("qemu-system-x86_64")
        .args(argv(&launch, &sockets).unwrap())
        .arg("-S")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Connecting the port is the last thing QEMU does before it waits, paused.
    attest.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let connected = loop {
        if attest.accept().is_ok() {
            break true;
        }
        if start.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        connected && still_running,
        "QEMU refused the emulated argv:\n{stderr}"
    );
}

#[test]
fn missing_qemu_and_missing_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut launch = snp_launch(dir.path());
    launch.qemu = "qemu-system-x86_64-not-installed".into();
    let err = spawn(&launch, Duration::from_secs(1))
        .err()
        .expect("no such QEMU");
    assert!(matches!(err, SpawnError::QemuMissing { .. }));
    assert!(
        err.to_string()
            .contains("was not found; install QEMU ≥ 9.1 (Debian bookworm: `apt-get install -t bookworm-backports qemu-system-x86`"),
        "{err}"
    );

    let mut launch = snp_launch(dir.path());
    launch.initrd = dir.path().join("no-such-initrd");
    let err = spawn(&launch, Duration::from_secs(1))
        .err()
        .expect("no initrd");
    assert!(
        matches!(err, SpawnError::InputMissing { what: "initrd", .. }),
        "{err}"
    );
}

#[test]
fn an_old_qemu_is_refused_for_snp_before_anything_else() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("qemu-system-x86_64");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = snpkit_qemu::check_snp_qemu(&fake).unwrap_err();
    assert!(
        matches!(&err, SpawnError::QemuTooOld { found, .. } if found == "7.2"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("is QEMU 7.2; SEV-SNP launches need QEMU ≥ 9.1"),
        "{err}"
    );
    let mut launch = snp_launch(dir.path());
    launch.qemu = fake;
    let err = spawn(&launch, Duration::from_secs(1))
        .err()
        .expect("too old");
    assert!(matches!(err, SpawnError::QemuTooOld { .. }), "{err}");
}
