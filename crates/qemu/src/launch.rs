//! One launch description → QEMU's argv, for an SNP host and for the emulated launch.
//!
//! The same [`Launch`] gives the same kernel, initrd, command line, vCPU count and `-cpu` model to
//! both, so the launch digest predicted for a launch config is the one QEMU produces (SNPGuard's
//! pitfall: predicting for one vCPU type while the launcher lets `-cpu` change).
//!
//! What the argv cannot choose: the VMSAs' SEV_FEATURES (a launch config's `guest_features`).
//! On an SNP host KVM sets them — QEMU's `sev-snp-guest` goes through KVM_SEV_INIT2 and asks for
//! no optional features, so they are SNPActive (0x1) alone; kernels before 6.10, or QEMU's
//! `legacy-vm-type` path for the older SEV types, let KVM add DebugSwap where the CPU has it. So
//! `guest_features` is part of the *prediction*, not of the launch: a config whose value differs
//! from what this host's KVM sets predicts a digest the PSP will not report, which verification
//! shows as a measurement mismatch and `cargo xtask explain` traces to the features. Likewise the
//! VMM: this crate only launches QEMU, so configs predicting EC2 or GCE launches are not booted.

use crate::host::SnpHostCaps;
use base64::Engine;
use snpkit_wire::frame::{ATTEST_PORT, EMULATED_PSP_PORT};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Everything QEMU is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// `qemu-system-x86_64`, or a path to it.
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The exact command line (what is hashed, without the NUL QEMU adds).
    pub cmdline: String,
    pub vcpus: u32,
    /// `-cpu` model, e.g. `EPYC-v4`; it decides the VMSAs' CPUID signature.
    pub cpu_model: String,
    pub memory_mib: u32,
    /// Where the serial console is written (capped; see `console.rs`).
    pub console_log: PathBuf,
    /// Read-only virtio disks, in order (`/dev/vda`, `/dev/vdb`, …): a dm-verity appliance's root
    /// filesystem and hash tree. Not measured: the root hash on the measured command line is what
    /// binds them.
    pub disks: Vec<PathBuf>,
    /// Sealed volumes: read-write virtio disks after the read-only ones, each with the serial
    /// `snpkit-vol-<name>` by which `/init` finds it (the host names disks; the guest checks the
    /// volume's header, not the serial, before it trusts one).
    pub volumes: Vec<VolumeDisk>,
    /// The appliance's NIC, if it has a network: the same on SNP and emulated launches.
    pub network: Option<Nic>,
    pub kind: LaunchKind,
}

/// A virtio NIC on QEMU's user network with `restrict=on`: the guest cannot open a connection
/// out (not to the host, not beyond); only the forwards reach in, each from 127.0.0.1 alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Where the forwards deliver: the guest's static address (inside QEMU's 10.0.2.0/24).
    pub guest_address: std::net::Ipv4Addr,
    pub forwards: Vec<HostForward>,
}

/// One `hostfwd=`: host `127.0.0.1:<host_port>` → guest `<guest_port>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostForward {
    pub udp: bool,
    pub host_port: u16,
    pub guest_port: u16,
}

/// A sealed volume's file, attached read-write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDisk {
    /// The volume's name (1 to 9 of `a-z0-9-`, `snpkit_wire::volume::check_name`).
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchKind {
    /// SEV-SNP under KVM on an SNP host: the real PSP measures and signs.
    Snp(SnpLaunch),
    /// The emulated launch under TCG: the same firmware checks the hashes page we load; the host's
    /// emulated PSP signs with test keys. EMULATED: never evidence of hardware.
    Emulated(EmulatedLaunch),
    /// TCG with QEMU's default firmware (SeaBIOS) booting the kernel directly: nothing is measured
    /// or checked. For testing the guest's `/init` and the channel without OVMF; the guest reaches
    /// its report through the emulated PSP port, as in the emulated launch.
    TcgUnmeasured,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpLaunch {
    /// The AmdSev OVMF (`-bios`, a single stateless file: a pflash VARS store is not measured).
    pub firmware: PathBuf,
    /// Guest policy (e.g. 0x30000).
    pub policy: u64,
    pub host: SnpHostCaps,
    /// HOST_DATA: 32 bytes the host chooses, reported as-is.
    pub host_data: Option<[u8; 32]>,
    pub id_block: Option<IdBlock>,
}

/// An ID block and its authentication structure (SNP ABI spec, SNP_LAUNCH_FINISH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdBlock {
    pub block: Box<[u8; 96]>,
    pub auth: Box<[u8; 4096]>,
    /// Whether `auth` carries an author key (QEMU's `author-key-enabled`).
    pub author_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedLaunch {
    /// The same AmdSev OVMF as on hardware.
    pub firmware: PathBuf,
    /// The SEV hashes-table page built by `snpkit-measure`, loaded where the firmware looks for it.
    pub hashes_page: PathBuf,
    /// GPA of OVMF's SNP_KERNEL_HASHES section.
    pub hashes_page_gpa: u64,
}

/// Host ends of the serial console and the virtio-serial ports (unix sockets QEMU connects to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sockets {
    /// The serial console: we copy it into [`Launch::console_log`] ourselves, capped, rather than
    /// let QEMU write a file the guest can grow without bound.
    pub console: PathBuf,
    pub attest: PathBuf,
    /// The emulated PSP's port; required by emulated and unmeasured launches, refused for SNP.
    pub emulated_psp: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgvError {
    #[error("a launch needs at least one vCPU")]
    NoVcpus,
    #[error("a launch needs memory (memory_mib is 0)")]
    NoMemory,
    #[error("the -cpu model is empty; name one (e.g. EPYC-v4): it is part of the measurement")]
    NoCpuModel,
    #[error("the kernel command line contains a NUL byte, which QEMU would cut it at")]
    NulInCmdline,
    #[error("{what} launches need the emulated PSP's socket")]
    MissingPspSocket { what: &'static str },
    #[error("volume {name:?} cannot be attached")]
    BadVolumeName {
        name: String,
        #[source]
        source: snpkit_wire::volume::NameError,
    },
    #[error("volume {name:?} is attached twice")]
    VolumeTwice { name: String },
    #[error(
        "an SNP launch must not offer the emulated PSP's port: the guest would have no reason to use it"
    )]
    PspSocketOnSnp,
    #[error("forward {host_port} → {guest_port}: port 0 is not a port")]
    PortZero { host_port: u16, guest_port: u16 },
    #[error("host port {host_port} is forwarded twice")]
    ForwardTwice { host_port: u16 },
}

fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_owned()
}

/// QEMU option values are comma-separated; a comma inside a value is written twice.
fn escaped(path: &Path) -> OsString {
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

fn opt(prefix: &str, path: &Path, suffix: &str) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(escaped(path));
    s.push(suffix);
    s
}

fn virtio_serial(args: &mut Vec<OsString>, sockets: &Sockets, device_suffix: &str) {
    args.push(os("-device"));
    args.push(os(format!("virtio-serial-pci,id=vser0{device_suffix}")));
    let mut ports: Vec<(&str, &Path, &str)> = vec![("attest", &sockets.attest, ATTEST_PORT)];
    if let Some(psp) = &sockets.emulated_psp {
        ports.push(("psp", psp, EMULATED_PSP_PORT));
    }
    for (id, path, name) in ports {
        // QEMU connects to the host's listening socket at startup (client mode), so nothing the
        // guest writes can be lost before the host is there.
        args.push(os("-chardev"));
        args.push(opt(&format!("socket,id={id},path="), path, ""));
        args.push(os("-device"));
        args.push(os(format!(
            "virtserialport,bus=vser0.0,chardev={id},name={name}"
        )));
    }
}

/// The argv (without the program) for `launch`, with its ports on `sockets`.
pub fn argv(launch: &Launch, sockets: &Sockets) -> Result<Vec<OsString>, ArgvError> {
    if launch.vcpus == 0 {
        return Err(ArgvError::NoVcpus);
    }
    if launch.memory_mib == 0 {
        return Err(ArgvError::NoMemory);
    }
    if launch.cpu_model.trim().is_empty() {
        return Err(ArgvError::NoCpuModel);
    }
    if launch.cmdline.contains('\0') {
        return Err(ArgvError::NulInCmdline);
    }
    for (i, v) in launch.volumes.iter().enumerate() {
        snpkit_wire::volume::check_name(&v.name).map_err(|source| ArgvError::BadVolumeName {
            name: v.name.clone(),
            source,
        })?;
        if launch.volumes[..i].iter().any(|w| w.name == v.name) {
            return Err(ArgvError::VolumeTwice {
                name: v.name.clone(),
            });
        }
    }
    match (&launch.kind, &sockets.emulated_psp) {
        (LaunchKind::Snp(_), Some(_)) => return Err(ArgvError::PspSocketOnSnp),
        (LaunchKind::Emulated(_), None) => {
            return Err(ArgvError::MissingPspSocket { what: "emulated" });
        }
        (LaunchKind::TcgUnmeasured, None) => {
            return Err(ArgvError::MissingPspSocket {
                what: "unmeasured TCG",
            });
        }
        _ => {}
    }
    let mem = launch.memory_mib;
    let mut a: Vec<OsString> = Vec::new();
    match &launch.kind {
        LaunchKind::Snp(snp) => {
            a.extend(
                [
                    "-machine",
                    "q35,confidential-guest-support=sev0,memory-backend=ram1",
                    "-enable-kvm",
                ]
                .map(os),
            );
            a.push(os("-object"));
            a.push(os(format!(
                "memory-backend-memfd,id=ram1,size={mem}M,share=true,prealloc=false"
            )));
            let mut sev = format!(
                "sev-snp-guest,id=sev0,cbitpos={},reduced-phys-bits={},policy={:#x},kernel-hashes=on",
                snp.host.cbitpos(),
                snp.host.reduced_phys_bits(),
                snp.policy
            );
            let b64 = base64::engine::general_purpose::STANDARD;
            if let Some(data) = &snp.host_data {
                sev.push_str(&format!(",host-data={}", b64.encode(data)));
            }
            if let Some(id) = &snp.id_block {
                sev.push_str(&format!(
                    ",id-block={},id-auth={}",
                    b64.encode(&id.block[..]),
                    b64.encode(&id.auth[..])
                ));
                if id.author_key {
                    sev.push_str(",author-key-enabled=on");
                }
            }
            a.push(os("-object"));
            a.push(os(sev));
            a.push(os("-bios"));
            a.push(os(&snp.firmware));
        }
        LaunchKind::Emulated(emu) => {
            a.extend(["-machine", "q35", "-accel", "tcg"].map(os));
            a.push(os("-bios"));
            a.push(os(&emu.firmware));
            a.push(os("-device"));
            a.push(opt(
                "loader,file=",
                &emu.hashes_page,
                &format!(",addr={:#x},force-raw=on", emu.hashes_page_gpa),
            ));
        }
        LaunchKind::TcgUnmeasured => a.extend(["-machine", "q35", "-accel", "tcg"].map(os)),
    }
    a.extend(
        [
            "-cpu",
            &launch.cpu_model,
            "-smp",
            &launch.vcpus.to_string(),
            "-m",
            &format!("{mem}M"),
        ]
        .map(os),
    );
    a.push(os("-kernel"));
    a.push(os(&launch.kernel));
    a.push(os("-initrd"));
    a.push(os(&launch.initrd));
    a.push(os("-append"));
    a.push(os(&launch.cmdline));
    a.extend(["-nodefaults", "-display", "none", "-no-reboot", "-chardev"].map(os));
    a.push(opt("socket,id=console,path=", &sockets.console, ""));
    a.extend(["-serial", "chardev:console"].map(os));
    // SNP guests refuse virtio devices that do not go through the DMA API (bounce buffers in
    // shared memory); QEMU forces it for confidential guests, saying it keeps it explicit.
    let device_suffix = match launch.kind {
        LaunchKind::Snp(_) => ",disable-legacy=on,iommu_platform=on",
        _ => "",
    };
    for (i, disk) in launch.disks.iter().enumerate() {
        a.push(os("-drive"));
        a.push(opt(
            &format!("if=none,id=disk{i},format=raw,readonly=on,file="),
            disk,
            "",
        ));
        a.push(os("-device"));
        a.push(os(format!("virtio-blk-pci,drive=disk{i}{device_suffix}")));
    }
    for (i, v) in launch.volumes.iter().enumerate() {
        a.push(os("-drive"));
        a.push(opt(
            &format!("if=none,id=vol{i},format=raw,file="),
            &v.path,
            "",
        ));
        a.push(os("-device"));
        a.push(os(format!(
            "virtio-blk-pci,drive=vol{i},serial={}{device_suffix}",
            snpkit_wire::volume::serial_for(&v.name)
        )));
    }
    if let Some(nic) = &launch.network {
        a.push(os("-netdev"));
        a.push(os(netdev(nic)?));
        a.push(os("-device"));
        a.push(os(format!("virtio-net-pci,netdev=net0{device_suffix}")));
    }
    virtio_serial(&mut a, sockets, device_suffix);
    Ok(a)
}

/// `user,id=net0,restrict=on,hostfwd=…`: the host side of every forward is 127.0.0.1, written
/// here and nowhere else (the descriptions carry ports only).
fn netdev(nic: &Nic) -> Result<String, ArgvError> {
    let mut s = String::from("user,id=net0,restrict=on");
    for (i, f) in nic.forwards.iter().enumerate() {
        if f.host_port == 0 || f.guest_port == 0 {
            return Err(ArgvError::PortZero {
                host_port: f.host_port,
                guest_port: f.guest_port,
            });
        }
        if nic.forwards[..i]
            .iter()
            .any(|g| g.udp == f.udp && g.host_port == f.host_port)
        {
            return Err(ArgvError::ForwardTwice {
                host_port: f.host_port,
            });
        }
        let proto = if f.udp { "udp" } else { "tcp" };
        s.push_str(&format!(
            ",hostfwd={proto}:127.0.0.1:{}-{}:{}",
            f.host_port, nic.guest_address, f.guest_port
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn launch(kind: LaunchKind) -> Launch {
        Launch {
            qemu: "qemu-system-x86_64".into(),
            kernel: "/img/vmlinuz".into(),
            initrd: "/img/initrd.cpio.gz".into(),
            cmdline: "console=ttyS0 quiet ".into(),
            vcpus: 4,
            cpu_model: "EPYC-v4".into(),
            memory_mib: 2048,
            console_log: "/run/x/console.log".into(),
            disks: Vec::new(),
            volumes: Vec::new(),
            network: None,
            kind,
        }
    }

    fn sockets(psp: bool) -> Sockets {
        Sockets {
            console: "/tmp/s/console.sock".into(),
            attest: "/tmp/s/attest.sock".into(),
            emulated_psp: psp.then(|| "/tmp/s/psp.sock".into()),
        }
    }

    fn text(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_str().unwrap().to_owned())
            .collect()
    }

    fn snp() -> SnpLaunch {
        SnpLaunch {
            firmware: "/img/OVMF.fd".into(),
            policy: 0x30000,
            host: SnpHostCaps::assume(51, 1),
            host_data: None,
            id_block: None,
        }
    }

    #[test]
    fn snp_argv_is_exactly_this() {
        let got = text(&argv(&launch(LaunchKind::Snp(snp())), &sockets(false)).unwrap());
        let want = [
            "-machine",
            "q35,confidential-guest-support=sev0,memory-backend=ram1",
            "-enable-kvm",
            "-object",
            "memory-backend-memfd,id=ram1,size=2048M,share=true,prealloc=false",
            "-object",
            "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x30000,kernel-hashes=on",
            "-bios",
            "/img/OVMF.fd",
            "-cpu",
            "EPYC-v4",
            "-smp",
            "4",
            "-m",
            "2048M",
            "-kernel",
            "/img/vmlinuz",
            "-initrd",
            "/img/initrd.cpio.gz",
            "-append",
            "console=ttyS0 quiet ",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-chardev",
            "socket,id=console,path=/tmp/s/console.sock",
            "-serial",
            "chardev:console",
            "-device",
            "virtio-serial-pci,id=vser0,disable-legacy=on,iommu_platform=on",
            "-chardev",
            "socket,id=attest,path=/tmp/s/attest.sock",
            "-device",
            "virtserialport,bus=vser0.0,chardev=attest,name=org.snpkit.attest",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn snp_host_data_and_id_block_are_base64() {
        let mut s = snp();
        s.host_data = Some([0xff; 32]);
        s.id_block = Some(IdBlock {
            block: Box::new([0; 96]),
            auth: Box::new([0; 4096]),
            author_key: true,
        });
        let got = text(&argv(&launch(LaunchKind::Snp(s)), &sockets(false)).unwrap());
        let sev = got.iter().find(|a| a.starts_with("sev-snp-guest")).unwrap();
        assert!(
            sev.contains(",host-data=//////////////////////////////////////////8=,"),
            "{sev}"
        );
        assert!(
            sev.contains(&format!(",id-block={},", "A".repeat(128))),
            "{sev}"
        );
        assert!(sev.ends_with(",author-key-enabled=on"));
        // 96 bytes → 128 base64 characters; 4096 → 5464.
        let field = |name: &str| {
            sev.split(',')
                .find_map(|f| f.strip_prefix(name))
                .unwrap()
                .len()
        };
        assert_eq!((field("id-block="), field("id-auth=")), (128, 5464));
    }

    #[test]
    fn emulated_argv_loads_the_hashes_page_under_tcg() {
        let emu = EmulatedLaunch {
            firmware: "/img/OVMF.fd".into(),
            hashes_page: "/run/x/hashes,page.bin".into(),
            hashes_page_gpa: 0x80_6000,
        };
        let got = text(&argv(&launch(LaunchKind::Emulated(emu)), &sockets(true)).unwrap());
        let want_head = [
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-bios",
            "/img/OVMF.fd",
            "-device",
        ];
        assert_eq!(&got[..7], &want_head);
        // The comma in the path is doubled so QEMU does not read it as the next option.
        assert_eq!(
            got[7],
            "loader,file=/run/x/hashes,,page.bin,addr=0x806000,force-raw=on"
        );
        assert!(!got.iter().any(|a| a.contains("sev") || a == "-enable-kvm"));
        let tail = &got[got.len() - 10..];
        assert_eq!(
            tail,
            [
                "-device",
                "virtio-serial-pci,id=vser0",
                "-chardev",
                "socket,id=attest,path=/tmp/s/attest.sock",
                "-device",
                "virtserialport,bus=vser0.0,chardev=attest,name=org.snpkit.attest",
                "-chardev",
                "socket,id=psp,path=/tmp/s/psp.sock",
                "-device",
                "virtserialport,bus=vser0.0,chardev=psp,name=org.snpkit.emulated-psp",
            ]
        );
    }

    #[test]
    fn same_guest_inputs_in_both_launches() {
        let emu = EmulatedLaunch {
            firmware: "/img/OVMF.fd".into(),
            hashes_page: "/p".into(),
            hashes_page_gpa: 0,
        };
        let a = text(&argv(&launch(LaunchKind::Snp(snp())), &sockets(false)).unwrap());
        let b = text(&argv(&launch(LaunchKind::Emulated(emu)), &sockets(true)).unwrap());
        let from = |v: &[String]| v[v.iter().position(|x| x == "-cpu").unwrap()..][..12].to_vec();
        assert_eq!(from(&a), from(&b));
    }

    #[test]
    fn bad_descriptions_are_refused() {
        let mut l = launch(LaunchKind::TcgUnmeasured);
        assert_eq!(
            argv(&l, &sockets(false)),
            Err(ArgvError::MissingPspSocket {
                what: "unmeasured TCG"
            })
        );
        assert_eq!(
            argv(&launch(LaunchKind::Snp(snp())), &sockets(true)),
            Err(ArgvError::PspSocketOnSnp)
        );
        l.vcpus = 0;
        assert_eq!(argv(&l, &sockets(true)), Err(ArgvError::NoVcpus));
        l.vcpus = 1;
        l.memory_mib = 0;
        assert_eq!(argv(&l, &sockets(true)), Err(ArgvError::NoMemory));
        l.memory_mib = 1;
        l.cpu_model = " ".into();
        assert_eq!(argv(&l, &sockets(true)), Err(ArgvError::NoCpuModel));
        l.cpu_model = "max".into();
        l.cmdline = "a\0b".into();
        assert_eq!(argv(&l, &sockets(true)), Err(ArgvError::NulInCmdline));
    }

    #[test]
    fn disks_are_read_only_virtio_in_order() {
        let mut l = launch(LaunchKind::TcgUnmeasured);
        l.disks = vec!["/img/rootfs.img".into(), "/img/a,b.verity".into()];
        let sockets = Sockets {
            console: "/s/c".into(),
            attest: "/s/a".into(),
            emulated_psp: Some("/s/p".into()),
        };
        let a: Vec<String> = argv(&l, &sockets)
            .unwrap()
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let drives: Vec<&String> = a.iter().filter(|s| s.starts_with("if=none")).collect();
        assert_eq!(
            drives,
            [
                "if=none,id=disk0,format=raw,readonly=on,file=/img/rootfs.img",
                "if=none,id=disk1,format=raw,readonly=on,file=/img/a,,b.verity"
            ]
        );
        let d0 = a
            .iter()
            .position(|s| s == "virtio-blk-pci,drive=disk0")
            .unwrap();
        let d1 = a
            .iter()
            .position(|s| s == "virtio-blk-pci,drive=disk1")
            .unwrap();
        assert!(d0 < d1, "the data disk comes first, so it is /dev/vda");
    }
}

#[cfg(test)]
mod volume_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A TCG launch of stand-in files with these disks; the other test modules start from it.
    pub(super) fn launch(volumes: Vec<VolumeDisk>, disks: Vec<PathBuf>) -> Launch {
        Launch {
            qemu: "qemu-system-x86_64".into(),
            kernel: "/k".into(),
            initrd: "/i".into(),
            cmdline: String::new(),
            vcpus: 1,
            cpu_model: "EPYC-v4".into(),
            memory_mib: 512,
            console_log: "/c".into(),
            disks,
            volumes,
            network: None,
            kind: LaunchKind::TcgUnmeasured,
        }
    }

    fn vol(name: &str, path: &str) -> VolumeDisk {
        VolumeDisk {
            name: name.into(),
            path: path.into(),
        }
    }

    fn sockets() -> Sockets {
        Sockets {
            console: "/s/c".into(),
            attest: "/s/a".into(),
            emulated_psp: Some("/s/p".into()),
        }
    }

    #[test]
    fn volumes_are_writable_disks_with_their_serial_after_the_read_only_ones() {
        let l = launch(
            vec![
                vol("data", "/img/volumes/data.img"),
                vol("log", "/v/a,b.img"),
            ],
            vec!["/img/rootfs.img".into()],
        );
        let a: Vec<String> = argv(&l, &sockets())
            .unwrap()
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let drives: Vec<&String> = a.iter().filter(|s| s.starts_with("if=none")).collect();
        assert_eq!(
            drives,
            [
                "if=none,id=disk0,format=raw,readonly=on,file=/img/rootfs.img",
                "if=none,id=vol0,format=raw,file=/img/volumes/data.img",
                "if=none,id=vol1,format=raw,file=/v/a,,b.img",
            ]
        );
        let devices: Vec<&String> = a.iter().filter(|s| s.starts_with("virtio-blk")).collect();
        assert_eq!(
            devices,
            [
                "virtio-blk-pci,drive=disk0",
                "virtio-blk-pci,drive=vol0,serial=snpkit-vol-data",
                "virtio-blk-pci,drive=vol1,serial=snpkit-vol-log",
            ]
        );
    }

    #[test]
    fn snp_volumes_go_through_the_iommu_like_every_device() {
        let mut l = launch(vec![vol("data", "/d.img")], Vec::new());
        l.kind = LaunchKind::Snp(SnpLaunch {
            firmware: "/f".into(),
            policy: 0x30000,
            host: SnpHostCaps::assume(51, 1),
            host_data: None,
            id_block: None,
        });
        let s = Sockets {
            emulated_psp: None,
            ..sockets()
        };
        let a = argv(&l, &s).unwrap();
        assert!(a.iter().any(|x| x
            == "virtio-blk-pci,drive=vol0,serial=snpkit-vol-data,disable-legacy=on,iommu_platform=on"));
    }

    #[test]
    fn names_that_cannot_be_a_serial_or_repeat_are_refused() {
        for bad in ["", "data,x", "toolongname", "Data"] {
            let err = argv(&launch(vec![vol(bad, "/d")], Vec::new()), &sockets()).unwrap_err();
            assert!(matches!(err, ArgvError::BadVolumeName { .. }), "{bad:?}");
        }
        let twice = launch(vec![vol("data", "/a"), vol("data", "/b")], Vec::new());
        assert_eq!(
            argv(&twice, &sockets()),
            Err(ArgvError::VolumeTwice {
                name: "data".into()
            })
        );
    }
}

#[cfg(test)]
mod network_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn launch(kind: LaunchKind, forwards: Vec<HostForward>) -> Launch {
        Launch {
            network: Some(Nic {
                guest_address: std::net::Ipv4Addr::new(10, 0, 2, 15),
                forwards,
            }),
            kind,
            ..super::volume_tests::launch(Vec::new(), Vec::new())
        }
    }

    fn sockets(psp: bool) -> Sockets {
        Sockets {
            console: "/s/c".into(),
            attest: "/s/a".into(),
            emulated_psp: psp.then(|| "/s/p".into()),
        }
    }

    fn tcp(host_port: u16, guest_port: u16) -> HostForward {
        HostForward {
            udp: false,
            host_port,
            guest_port,
        }
    }

    fn nic_args(a: &[OsString]) -> Vec<String> {
        let a: Vec<String> = a.iter().map(|s| s.to_str().unwrap().to_owned()).collect();
        let i = a.iter().position(|s| s == "-netdev").unwrap();
        a[i..i + 4].to_vec()
    }

    #[test]
    fn the_nic_is_restricted_and_forwards_from_loopback_only() {
        let udp = HostForward {
            udp: true,
            host_port: 5353,
            guest_port: 53,
        };
        let l = launch(LaunchKind::TcgUnmeasured, vec![tcp(8080, 80), udp]);
        assert_eq!(
            nic_args(&argv(&l, &sockets(true)).unwrap()),
            [
                "-netdev",
                "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:8080-10.0.2.15:80,hostfwd=udp:127.0.0.1:5353-10.0.2.15:53",
                "-device",
                "virtio-net-pci,netdev=net0",
            ]
        );
    }

    #[test]
    fn snp_gets_the_same_nic_through_the_iommu() {
        let snp = LaunchKind::Snp(SnpLaunch {
            firmware: "/f".into(),
            policy: 0x30000,
            host: crate::host::SnpHostCaps::assume(51, 1),
            host_data: None,
            id_block: None,
        });
        let a = nic_args(&argv(&launch(snp, vec![tcp(8080, 80)]), &sockets(false)).unwrap());
        let b = nic_args(
            &argv(
                &launch(LaunchKind::TcgUnmeasured, vec![tcp(8080, 80)]),
                &sockets(true),
            )
            .unwrap(),
        );
        assert_eq!(a[1], b[1]);
        assert_eq!(
            a[3],
            "virtio-net-pci,netdev=net0,disable-legacy=on,iommu_platform=on"
        );
    }

    #[test]
    fn no_network_means_no_nic_and_bad_forwards_are_refused() {
        let mut l = launch(LaunchKind::TcgUnmeasured, vec![]);
        l.network = None;
        let a = argv(&l, &sockets(true)).unwrap();
        assert!(
            !a.iter()
                .any(|s| s == "-netdev" || s.to_string_lossy().contains("net0"))
        );
        // QEMU would add a NIC of its own without -nodefaults; it stays.
        assert!(a.iter().any(|s| s == "-nodefaults"));
        let l = launch(LaunchKind::TcgUnmeasured, vec![tcp(0, 80)]);
        assert_eq!(
            argv(&l, &sockets(true)),
            Err(ArgvError::PortZero {
                host_port: 0,
                guest_port: 80
            })
        );
        let l = launch(
            LaunchKind::TcgUnmeasured,
            vec![tcp(8080, 80), tcp(8080, 81)],
        );
        assert_eq!(
            argv(&l, &sockets(true)),
            Err(ArgvError::ForwardTwice { host_port: 8080 })
        );
    }
}
