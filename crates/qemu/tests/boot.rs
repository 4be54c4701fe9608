//! Real boots under QEMU TCG: the Debian cloud kernel, our static `/init`, and the host side of
//! the channel. No OVMF: QEMU's default firmware boots the kernel directly, so nothing is
//! measured here (the emulated launch adds the AmdSev firmware and the hashes page on top).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use snpkit_qemu::channel::ChannelError;
use snpkit_qemu::{Outcome, PspAnswer, PspRequest, attest, finish, serve_emulated_psp, spawn};
use snpkit_wire::binding::report_data;
use snpkit_wire::certs::{CertEntry, GUID_VCEK};
use snpkit_wire::frame::{self, Finished, Kind, Message, Nonce, Provider, ReportResponse};
use snpkit_wire::init::{Entry, INIT_SCHEMA, InitConfig, Root};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

/// Generous: a TCG boot to power-off takes about 5 s here, longer on a busy machine.
const DEADLINE: Duration = Duration::from_secs(90);
const CMDLINE: &str = "console=ttyS0 panic=-1";

fn config(argv: &[&str], modules: Vec<String>) -> InitConfig {
    InitConfig {
        schema: INIT_SCHEMA,
        appliance: "boot-test".into(),
        entry: Entry {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::from([("SNPKIT_TEST".to_owned(), "yes".to_owned())]),
            log: Default::default(),
            user: None,
            workdir: None,
        },
        modules,
        root: Root::Initramfs,
        volumes: Vec::new(),
        secrets: vec![],
        network: None,
    }
}

/// Our `/init` with the SNP modules and the test program as entry point.
fn snpkit_initrd(dir: &Path, entry: &[&str]) -> std::path::PathBuf {
    let bins = guest_binaries();
    let initramfs = Initramfs::new();
    initramfs
        .copy(&bins.init, "/init", 0o755)
        .copy(&bins.testguest, "/bin/testguest", 0o755);
    let modules = add_snp_modules(&initramfs);
    initramfs.init_config(&config(entry, modules));
    let out = dir.join("initrd.cpio.gz");
    initramfs.pack(&out);
    out
}

/// The test program itself as a hostile `/init`.
fn hostile_initrd(dir: &Path) -> std::path::PathBuf {
    let initramfs = Initramfs::new();
    initramfs.copy(&guest_binaries().testguest, "/init", 0o755);
    let out = dir.join("initrd.cpio.gz");
    initramfs.pack(&out);
    out
}

fn console(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap()).replace('\r', "")
}

#[test]
fn guest_attests_through_the_emulated_psp_and_runs_its_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = snpkit_initrd(dir.path(), &["/bin/testguest", "entry-ok", "one two"]);
    let log = dir.path().join("console.log");
    let _lock = boot_lock();
    let mut vm = spawn(&tcg_launch(&initrd, CMDLINE, &log, 2), DEADLINE).unwrap();
    let psp = vm.emulated_psp_channel().unwrap();
    let vcek = CertEntry {
        guid: GUID_VCEK,
        data: b"test VCEK, not a certificate".to_vec(),
    };
    let certs = vec![vcek.clone()];
    let server = serve_emulated_psp(psp, move |req| {
        let PspRequest::Report(req) = req else {
            return Err("this test serves reports only".into());
        };
        assert_eq!(req.vmpl, 0);
        Ok(PspAnswer::Report(ReportResponse {
            report: fixed_shape_report(&req.report_data),
            certs: certs.clone(),
        }))
    });
    let mut channel = vm.attest_channel().unwrap();
    let nonce = Nonce(*b"a fresh nonce from the host side");
    let attested = attest(&mut channel, &nonce).unwrap();
    let attested_after = vm.elapsed();
    let started = Instant::now() - attested_after;
    // The guest's last word: how the entry point ended. Hanging up lets it power off at once.
    let end = finish(&mut channel);
    drop(channel);
    let outcome = vm.wait();
    assert_eq!(end.unwrap(), Finished::Exited(0));
    let total = started.elapsed();
    let text = console(&log);
    assert_eq!(outcome, Outcome::Exited, "console:\n{text}");
    eprintln!("TCG boot (2 vCPUs): evidence after {attested_after:?}, powered off after {total:?}");

    assert_eq!(attested.hello.provider, Provider::EmulatedPsp);
    let expected = report_data(&nonce.0, &attested.evidence.public_key);
    let got = &attested.evidence.report[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64];
    assert_eq!(
        got,
        &expected[..],
        "REPORT_DATA binds the nonce and the guest's public key"
    );
    assert_ne!(attested.evidence.public_key, [0u8; 32]);
    assert_eq!(attested.evidence.certs, vec![vcek]);
    assert_eq!(
        server.join().unwrap().unwrap(),
        1,
        "exactly one report was asked for"
    );

    // The compressed modules were loaded by the kernel; sev-guest has no device under TCG, and
    // configfs-tsm without a provider was passed over for the emulated PSP.
    assert!(text.contains("snpkit-init: loaded /lib/modules/6.12.95+deb12-cloud-amd64/kernel/drivers/virt/coco/tsm.ko.xz"), "{text}");
    assert!(
        text.contains("sev-guest.ko.xz: no such device on this machine, not loaded"),
        "{text}"
    );
    assert!(
        text.contains("snpkit-init: report provider: EMULATED PSP"),
        "{text}"
    );
    assert!(
        text.contains("snpkit-testguest: entry ran with [\"one two\"], SNPKIT_TEST=yes"),
        "{text}"
    );
    assert!(
        text.contains("snpkit-init: entry point /bin/testguest exited with status 0"),
        "{text}"
    );
    assert!(text.contains("snpkit-init: powering off"), "{text}");
}

#[test]
fn a_guest_that_hangs_is_killed_at_the_deadline_with_its_console_tail() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = snpkit_initrd(dir.path(), &["/bin/testguest", "hang"]);
    let log = dir.path().join("console.log");
    let _lock = boot_lock();
    // Long enough for the boot and the attestation before the hang on a loaded 2-core machine
    // (30 s was seen to expire before the guest's first report request), short enough that the
    // suite does not wait the full DEADLINE.
    let deadline = Duration::from_secs(60);
    let mut vm = spawn(&tcg_launch(&initrd, CMDLINE, &log, 1), deadline).unwrap();
    let server = serve_emulated_psp(vm.emulated_psp_channel().unwrap(), |req| {
        let PspRequest::Report(req) = req else {
            return Err("this test serves reports only".into());
        };
        Ok(PspAnswer::Report(ReportResponse {
            report: fixed_shape_report(&req.report_data),
            certs: vec![],
        }))
    });
    attest(&mut vm.attest_channel().unwrap(), &Nonce([1; 32])).unwrap();
    let start = Instant::now();
    let outcome = vm.wait();
    let Outcome::TimedOut { console_tail } = outcome else {
        panic!("expected a timeout, got {outcome:?}")
    };
    assert!(
        console_tail.contains("snpkit-testguest: hanging"),
        "{console_tail}"
    );
    assert!(console_tail.lines().count() <= 30);
    // QEMU is gone: the PSP's connection closed, so its thread ended.
    assert_eq!(server.join().unwrap().unwrap(), 1);
    assert!(start.elapsed() < deadline + Duration::from_secs(10));
}

#[test]
fn a_guest_that_sends_garbage_is_a_clear_host_error() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = hostile_initrd(dir.path());
    let log = dir.path().join("console.log");
    let _lock = boot_lock();
    let mut vm = spawn(
        &tcg_launch(
            &initrd,
            &format!("{CMDLINE} snpkit.testguest=garbage"),
            &log,
            1,
        ),
        DEADLINE,
    )
    .unwrap();
    let err = attest(&mut vm.attest_channel().unwrap(), &Nonce([1; 32])).unwrap_err();
    let text = err.to_string()
        + &std::error::Error::source(&err)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
    assert!(
        matches!(
            err,
            ChannelError::Malformed {
                source: frame::FrameError::BadMagic { .. },
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("not the magic \"SNPK\""), "{text}");
    assert_eq!(vm.wait(), Outcome::Exited);
}

#[test]
fn a_guest_that_floods_the_channel_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = hostile_initrd(dir.path());
    let log = dir.path().join("console.log");
    let _lock = boot_lock();
    let cmdline = format!("{CMDLINE} snpkit.testguest=flood");
    let mut vm = spawn(&tcg_launch(&initrd, &cmdline, &log, 1), DEADLINE).unwrap();
    let pid = vm.pid().unwrap();
    let mut channel = vm.attest_channel().unwrap();
    let err = attest(&mut channel, &Nonce([1; 32])).unwrap_err();
    let refused_after = vm.elapsed();
    let console = console(&log);
    let too_long = matches!(
        err,
        ChannelError::Malformed {
            source: frame::FrameError::TooLong { .. },
            ..
        }
    );
    assert!(too_long, "{err:?}\nconsole:\n{console}");
    assert!(
        console.contains("hostile init, mode \"flood\""),
        "{console}"
    );
    // Refused from the 12-byte header, long before the deadline (a TCG boot takes seconds).
    assert!(
        refused_after < DEADLINE / 2,
        "refused only after {refused_after:?}"
    );
    // The flooding guest now blocks in write(); dropping the VM kills QEMU and leaves nothing behind.
    drop(channel);
    drop(vm);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU (pid {pid}) outlived its Vm"
    );
}

#[test]
fn a_wrong_sized_nonce_is_refused_by_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = snpkit_initrd(dir.path(), &["/bin/testguest", "entry-ok"]);
    let log = dir.path().join("console.log");
    let _lock = boot_lock();
    let mut vm = spawn(&tcg_launch(&initrd, CMDLINE, &log, 1), DEADLINE).unwrap();
    let _psp = vm.emulated_psp_channel().unwrap();
    let mut channel = vm.attest_channel().unwrap();
    let hello = frame::read_message(&mut channel).unwrap();
    assert!(matches!(hello, Message::Hello(_)), "{hello:?}");
    // The typed API cannot make this frame; a hostile host can.
    let short = frame::encode_raw(Kind::Nonce, &[7; 31]).unwrap();
    std::io::Write::write_all(&mut channel, &short).unwrap();
    let answer = frame::read_message(&mut channel).unwrap();
    let Message::Error(message) = answer else {
        panic!("expected the guest's error, got {answer:?}")
    };
    assert!(
        message
            .0
            .contains("the host's nonce is 31 bytes; a nonce is exactly 32 bytes"),
        "{}",
        message.0
    );
    // The guest waits for us to hang up before it powers off, so its error cannot be lost.
    drop(channel);
    let hung_up = Instant::now();
    assert_eq!(vm.wait(), Outcome::Exited);
    assert!(
        hung_up.elapsed() < Duration::from_secs(8),
        "the guest powered off {:?} after the hang-up, not at once",
        hung_up.elapsed()
    );
    let text = console(&log);
    assert!(
        text.contains("snpkit-init: fatal: refusing the host's nonce frame: the host's nonce is 31 bytes; a nonce is exactly 32 bytes"),
        "{text}"
    );
    assert!(
        !text.contains("entry point"),
        "the entry point must not run after a failed attestation:\n{text}"
    );
}
