//! Helpers for booting real guests under QEMU in tests: the Debian cloud kernel (downloaded once
//! with apt into the snpkit cache, checked by SHA-256), the static guest binaries (built with
//! cargo), an initramfs assembled from files and packed with the system `cpio` + `gzip`, and
//! launch descriptions for TCG.
//!
//! Reusable from other test crates with `#[path = "…/crates/qemu/tests/support/mod.rs"] mod support;`.
//! The kernel download and the cpio packing are stand-ins until the inputs and image crates can
//! be called; what they produce is the same kind of file.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};
use snpkit_qemu::{Launch, LaunchKind};
use snpkit_wire::init::InitConfig;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The kernel the tests boot (DESIGN.md, "Facts established on this machine").
pub const KERNEL_PACKAGE: &str = "linux-image-6.12.95+deb12-cloud-amd64";
pub const KERNEL_VERSION: &str = "6.12.95-1~bpo12+1";
pub const KERNEL_DEB_SHA256: &str =
    "69c92f43b23821de79576fa4d7c86e2924ae2c1b247a47cc5ed9339e220fbcb7";
pub const KERNEL_RELEASE: &str = "6.12.95+deb12-cloud-amd64";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// snpkit's cache folder, as the builder and xtask find it.
pub fn cache_dir() -> PathBuf {
    snpkit_cache::root().expect("a cache folder: set SNPKIT_CACHE, XDG_CACHE_HOME or HOME")
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The kernel's `.deb`, from the content-addressed cache or downloaded with `apt-get download`.
pub fn kernel_deb() -> PathBuf {
    let blob = cache_dir().join("blobs/sha256").join(KERNEL_DEB_SHA256);
    if blob.is_file() && sha256_file(&blob) == KERNEL_DEB_SHA256 {
        return blob;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!("{KERNEL_PACKAGE}={KERNEL_VERSION}");
    let out = Command::new("apt-get")
        .args(["download", &spec])
        .current_dir(tmp.path())
        .output();
    let ok = matches!(&out, Ok(o) if o.status.success());
    assert!(
        ok,
        "could not download {spec} with apt-get ({out:?}): the bookworm-backports suite must be in the apt \
         sources (DESIGN.md, or `cargo xtask setup`), then `apt-get update`"
    );
    let deb = fs::read_dir(tmp.path())
        .unwrap()
        .next()
        .expect("apt-get download wrote a file")
        .unwrap()
        .path();
    let got = sha256_file(&deb);
    assert_eq!(
        got,
        KERNEL_DEB_SHA256,
        "{} has the wrong SHA-256: backports may have replaced it",
        deb.display()
    );
    fs::create_dir_all(blob.parent().unwrap()).unwrap();
    let staged = blob.with_extension(format!("tmp{}", std::process::id()));
    fs::copy(&deb, &staged).unwrap();
    fs::rename(&staged, &blob).unwrap();
    blob
}

/// The unpacked kernel package.
pub struct DebianKernel {
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>/kernel`.
    pub modules: PathBuf,
}

impl DebianKernel {
    /// A module's path inside the package, e.g. `drivers/virt/coco/tsm.ko.xz`.
    pub fn module(&self, rel: &str) -> PathBuf {
        self.modules.join(rel)
    }
}

pub fn debian_kernel() -> &'static DebianKernel {
    static KERNEL: OnceLock<DebianKernel> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let dir = cache_dir().join("test-kernel").join(KERNEL_DEB_SHA256);
        let vmlinuz = dir.join("boot").join(format!("vmlinuz-{KERNEL_RELEASE}"));
        if !vmlinuz.is_file() {
            let deb = kernel_deb();
            fs::create_dir_all(dir.parent().unwrap()).unwrap();
            let staged = tempfile::tempdir_in(dir.parent().unwrap()).unwrap();
            run(
                Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(&deb)
                    .arg(staged.path()),
                "dpkg-deb -x",
            );
            // Another test process may have won the race; its copy is as good as ours.
            let _ = fs::rename(staged.keep(), &dir);
            assert!(
                vmlinuz.is_file(),
                "{} missing after unpacking",
                vmlinuz.display()
            );
        }
        DebianKernel {
            vmlinuz,
            modules: dir.join("lib/modules").join(KERNEL_RELEASE).join("kernel"),
        }
    })
}

/// The static guest binaries.
pub struct GuestBins {
    pub init: PathBuf,
    pub testguest: PathBuf,
    /// `snpkit-init` without the attestation step, for the dm-verity root tests.
    pub verityinit: PathBuf,
    /// `snpkit-init`'s volumes step without the attestation step, for the sealed volume tests.
    pub volumeinit: PathBuf,
}

pub fn guest_binaries() -> &'static GuestBins {
    static BINS: OnceLock<GuestBins> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run(
            Command::new(cargo)
                .args([
                    "build",
                    "-p",
                    "snpkit-guest",
                    "--profile",
                    "guest",
                    "--target",
                    "x86_64-unknown-linux-gnu",
                ])
                .args(["--bin", "snpkit-init", "--example", "testguest"])
                .args(["--example", "verityinit", "--example", "volumeinit"])
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .current_dir(&root),
            "building the static guest binaries",
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let out = target.join("x86_64-unknown-linux-gnu/guest");
        GuestBins {
            init: out.join("snpkit-init"),
            testguest: out.join("examples/testguest"),
            verityinit: out.join("examples/verityinit"),
            volumeinit: out.join("examples/volumeinit"),
        }
    })
}

/// An initramfs being assembled in a directory.
pub struct Initramfs {
    dir: tempfile::TempDir,
}

impl Default for Initramfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Initramfs {
    pub fn new() -> Initramfs {
        Initramfs {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn bytes(&self, dest: &str, bytes: &[u8], mode: u32) -> &Self {
        let path = self.dir.path().join(dest.trim_start_matches('/'));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn copy(&self, src: &Path, dest: &str, mode: u32) -> &Self {
        self.bytes(
            dest,
            &fs::read(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())),
            mode,
        )
    }

    pub fn init_config(&self, config: &InitConfig) -> &Self {
        self.bytes(
            snpkit_wire::init::INIT_CONFIG_PATH,
            &serde_json::to_vec_pretty(config).unwrap(),
            0o644,
        )
    }

    /// Packs the tree as gzip'd newc into `out`.
    pub fn pack(&self, out: &Path) {
        let list = Command::new("find")
            .arg(".")
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let mut names: Vec<&[u8]> = list
            .stdout
            .split(|&b| b == b'\n')
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        let mut cpio = Command::new("cpio")
            .args(["-o", "-H", "newc", "--quiet"])
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cpio is installed (apt-get install cpio)");
        let mut stdin = cpio.stdin.take().unwrap();
        let mut input = names.join(&b'\n');
        input.push(b'\n');
        let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let archive = cpio.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(archive.status.success(), "cpio failed");
        let mut gz = Command::new("gzip")
            .args(["-n", "-c"])
            .stdin(Stdio::piped())
            .stdout(fs::File::create(out).unwrap())
            .spawn()
            .expect("gzip is installed");
        gz.stdin.take().unwrap().write_all(&archive.stdout).unwrap();
        assert!(gz.wait().unwrap().success(), "gzip failed");
    }
}

/// The modules that give the guest configfs-tsm and sev-guest, dependencies first.
pub const SNP_MODULES: &[&str] = &[
    "fs/configfs/configfs.ko.xz",
    "drivers/virt/coco/tsm.ko.xz",
    "drivers/virt/coco/sev-guest/sev-guest.ko.xz",
];

/// Copies [`SNP_MODULES`] into the initramfs under `/lib/modules/` and returns their guest paths.
pub fn add_snp_modules(initramfs: &Initramfs) -> Vec<String> {
    let kernel = debian_kernel();
    SNP_MODULES
        .iter()
        .map(|rel| {
            let dest = format!("/lib/modules/{KERNEL_RELEASE}/kernel/{rel}");
            initramfs.copy(&kernel.module(rel), &dest, 0o644);
            dest
        })
        .collect()
}

/// An unmeasured TCG launch of the Debian kernel (QEMU's default firmware, direct kernel boot).
pub fn tcg_launch(initrd: &Path, cmdline: &str, console_log: &Path, vcpus: u32) -> Launch {
    Launch {
        qemu: "qemu-system-x86_64".into(),
        kernel: debian_kernel().vmlinuz.clone(),
        initrd: initrd.to_owned(),
        cmdline: cmdline.to_owned(),
        vcpus,
        cpu_model: "EPYC-v4".into(),
        memory_mib: 512,
        console_log: console_log.to_owned(),
        disks: Vec::new(),
        volumes: Vec::new(),
        network: None,
        kind: LaunchKind::TcgUnmeasured,
    }
}

/// One TCG boot at a time: the machines have two cores shared with builds, and a boot deadline
/// means little when several guests fight for them.
pub fn boot_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Offset of REPORT_DATA in an SNP attestation report (SNP ABI spec, ATTESTATION_REPORT).
pub const REPORT_DATA_OFFSET: usize = 0x50;

/// A report with the real layout's version, policy and REPORT_DATA and nothing else: unsigned,
/// for tests of the channel only (the attest crate's emulated PSP signs real ones).
pub fn fixed_shape_report(report_data: &[u8; 64]) -> Box<[u8; snpkit_wire::frame::REPORT_LEN]> {
    let mut report = Box::new([0u8; snpkit_wire::frame::REPORT_LEN]);
    report[0..4].copy_from_slice(&3u32.to_le_bytes());
    report[8..16].copy_from_slice(&0x30000u64.to_le_bytes());
    report[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64].copy_from_slice(report_data);
    report
}
