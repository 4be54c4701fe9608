//! device-mapper through its ioctls on `/dev/mapper/control` (`include/uapi/linux/dm-ioctl.h`),
//! enough to create, load, resume and remove a one-target device, read-only (dm-verity) or
//! writable (a sealed volume's dm-integrity and dm-crypt).
//!
//! Written here rather than taken from the `devicemapper` crate: that crate is sound, but it pulls
//! in `bitflags`, `semver`, `serde`, `retry`, `env_logger`-style logging and more into a static
//! PID 1 that needs five ioctls, and it wants udev-style `/dev/mapper/<name>` nodes that no one
//! makes here. The buffers are built and read as bytes by safe code (layouts tested below); the
//! unsafe part is the ioctl calls alone, through nix's wrappers.
//!
//! Sequence (what `dmsetup create --readonly --table …` does): DM_VERSION, DM_DEV_CREATE (the
//! reply carries the device number), DM_TABLE_LOAD with DM_READONLY_FLAG (dm-verity refuses a
//! writable table), DM_DEV_SUSPEND without DM_SUSPEND_FLAG, which resumes: the loaded table goes
//! live and `/dev/dm-<minor>` appears (devtmpfs; we mknod it if it has not).

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag, major, makedev, minor, mknod};
use snpkit_wire::verity::DmTarget;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `sizeof(struct dm_ioctl)`.
pub const DM_IOCTL_LEN: usize = 312;
/// `sizeof(struct dm_target_spec)`.
pub const DM_TARGET_SPEC_LEN: usize = 40;
const DM_NAME_LEN: usize = 128;
const DM_UUID_LEN: usize = 129;
const DM_MAX_TYPE_NAME: usize = 16;

/// The interface version we speak; the kernel accepts any request with its own major version and
/// a minor version no newer than its own.
const DM_VERSION: [u32; 3] = [4, 0, 0];

const DM_READONLY_FLAG: u32 = 1 << 0;

/// `struct dm_ioctl`.
#[repr(C)]
pub struct DmIoctl {
    pub version: [u32; 3],
    pub data_size: u32,
    pub data_start: u32,
    pub target_count: u32,
    pub open_count: i32,
    pub flags: u32,
    pub event_nr: u32,
    pub padding: u32,
    pub dev: u64,
    pub name: [u8; DM_NAME_LEN],
    pub uuid: [u8; DM_UUID_LEN],
    pub data: [u8; 7],
}

/// `struct dm_target_spec`, followed in the buffer by the NUL-terminated parameter string.
/// [`table_load_buffer`] writes these bytes itself; the struct is the reference the layout tests pin.
#[cfg_attr(not(test), allow(dead_code))]
#[repr(C)]
pub struct DmTargetSpec {
    pub sector_start: u64,
    pub length: u64,
    pub status: i32,
    pub next: u32,
    pub target_type: [u8; DM_MAX_TYPE_NAME],
}

const DM_IOCTL_TYPE: u8 = 0xfd;
// _IOWR(DM_IOCTL, DM_*_CMD, struct dm_ioctl): the size is always the header's, whatever follows.
nix::ioctl_readwrite!(dm_version, DM_IOCTL_TYPE, 0, DmIoctl);
nix::ioctl_readwrite!(dm_dev_create, DM_IOCTL_TYPE, 3, DmIoctl);
nix::ioctl_readwrite!(dm_dev_remove, DM_IOCTL_TYPE, 4, DmIoctl);
nix::ioctl_readwrite!(dm_dev_suspend, DM_IOCTL_TYPE, 6, DmIoctl);
nix::ioctl_readwrite!(dm_table_load, DM_IOCTL_TYPE, 9, DmIoctl);

#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("device-mapper name {name:?} is empty, too long or not plain text")]
    BadName { name: String },
    #[error("dm target parameters are too long or contain a NUL")]
    BadParams,
    #[error("opening {path} (is dm-mod loaded?)")]
    Control {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{ioctl} on {name:?} failed: {errno} (the kernel log says why)")]
    Ioctl {
        ioctl: &'static str,
        name: String,
        errno: Errno,
    },
    #[error("the kernel's device-mapper speaks version {found:?}; we need {}.x", DM_VERSION[0])]
    Version { found: [u32; 3] },
    #[error("making the device node {path}")]
    Node {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

/// A header with the fields every request sets.
fn header(name: &str, data_size: usize, flags: u32, target_count: u32) -> Result<Vec<u8>, DmError> {
    let bad = || DmError::BadName { name: name.into() };
    if name.is_empty() || name.len() >= DM_NAME_LEN || name.contains(['\0', '/']) {
        return Err(bad());
    }
    let mut h = vec![0u8; DM_IOCTL_LEN];
    for (i, v) in DM_VERSION.iter().enumerate() {
        h[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    let data_size = u32::try_from(data_size).map_err(|_| DmError::BadParams)?;
    h[12..16].copy_from_slice(&data_size.to_ne_bytes());
    h[16..20].copy_from_slice(&(DM_IOCTL_LEN as u32).to_ne_bytes());
    h[20..24].copy_from_slice(&target_count.to_ne_bytes());
    h[28..32].copy_from_slice(&flags.to_ne_bytes());
    h[48..48 + name.len()].copy_from_slice(name.as_bytes());
    Ok(h)
}

/// The DM_TABLE_LOAD buffer for one read-only target: header, `dm_target_spec`, parameters, NUL,
/// padded to 8 bytes (the kernel wants each spec 8-byte aligned).
#[cfg_attr(not(test), allow(dead_code))]
pub fn table_load_buffer(name: &str, target: &DmTarget) -> Result<Vec<u8>, DmError> {
    table_load_buffer_with(name, target, DM_READONLY_FLAG)
}

fn table_load_buffer_with(name: &str, target: &DmTarget, flags: u32) -> Result<Vec<u8>, DmError> {
    if target.params.contains('\0') || target.target_type.len() >= DM_MAX_TYPE_NAME {
        return Err(DmError::BadParams);
    }
    let spec_len = (DM_TARGET_SPEC_LEN + target.params.len() + 1).next_multiple_of(8);
    let total = DM_IOCTL_LEN + spec_len;
    let mut buf = header(name, total, flags, 1)?;
    buf.resize(total, 0);
    let spec = &mut buf[DM_IOCTL_LEN..];
    // sector_start 0, status 0.
    spec[8..16].copy_from_slice(&target.sectors.to_ne_bytes());
    let next = u32::try_from(spec_len).map_err(|_| DmError::BadParams)?;
    spec[20..24].copy_from_slice(&next.to_ne_bytes());
    spec[24..24 + target.target_type.len()].copy_from_slice(target.target_type.as_bytes());
    spec[DM_TARGET_SPEC_LEN..DM_TARGET_SPEC_LEN + target.params.len()]
        .copy_from_slice(target.params.as_bytes());
    Ok(buf)
}

/// The reply fields we read.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    version: [u32; 3],
    dev: u64,
}

fn reply(buf: &[u8]) -> Reply {
    let u32_at = |at: usize| u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    let mut dev = [0u8; 8];
    dev.copy_from_slice(&buf[40..48]);
    Reply {
        version: [u32_at(0), u32_at(4), u32_at(8)],
        dev: u64::from_ne_bytes(dev),
    }
}

type IoctlFn = unsafe fn(i32, *mut DmIoctl) -> nix::Result<i32>;

/// Runs one ioctl on `buf` (a header and its data) and returns the reply header's fields.
fn call(
    control: &File,
    ioctl: IoctlFn,
    label: &'static str,
    name: &str,
    buf: &[u8],
) -> Result<Reply, DmError> {
    // An 8-byte aligned copy, so the kernel (and nix's pointer type) see a proper `dm_ioctl`.
    let mut words = vec![0u64; buf.len().div_ceil(8)];
    for (word, chunk) in words.iter_mut().zip(buf.chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(bytes);
    }
    // SAFETY: `words` is a live, 8-byte aligned allocation of at least `data_size` bytes (the
    // header says `buf.len()`, and `words` holds that rounded up to 8, never less than the
    // 312-byte header). The kernel reads and writes only within `data_size` and does not keep the
    // pointer after the call returns.
    #[allow(unsafe_code)]
    let result = unsafe { ioctl(control.as_raw_fd(), words.as_mut_ptr().cast::<DmIoctl>()) };
    result.map_err(|errno| DmError::Ioctl {
        ioctl: label,
        name: name.into(),
        errno,
    })?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(reply(&bytes))
}

/// `/dev/mapper/control`, made from `/sys/class/misc/device-mapper/dev` if devtmpfs has not.
pub fn open_control(dev: &Path, sys: &Path) -> Result<File, DmError> {
    let path = dev.join("mapper/control");
    if !path.exists() {
        let numbers = std::fs::read_to_string(sys.join("class/misc/device-mapper/dev")).map_err(
            |source| DmError::Control {
                path: path.clone(),
                source,
            },
        )?;
        let (maj, min) = parse_dev_numbers(&numbers).ok_or_else(|| DmError::Control {
            path: path.clone(),
            source: std::io::Error::other(format!("unreadable device numbers {numbers:?}")),
        })?;
        let _ = std::fs::create_dir_all(dev.join("mapper"));
        make_node(&path, SFlag::S_IFCHR, maj, min)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| DmError::Control { path, source })
}

/// `"major:minor\n"` as sysfs writes it.
pub fn parse_dev_numbers(text: &str) -> Option<(u64, u64)> {
    let (maj, min) = text.trim().split_once(':')?;
    Some((maj.parse().ok()?, min.parse().ok()?))
}

fn make_node(path: &Path, kind: SFlag, maj: u64, min: u64) -> Result<(), DmError> {
    match mknod(
        path,
        kind,
        Mode::from_bits_truncate(0o600),
        makedev(maj, min),
    ) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(source) => Err(DmError::Node {
            path: path.into(),
            source,
        }),
    }
}

/// A live device-mapper device.
#[derive(Debug)]
pub struct DmDevice {
    /// `/dev/dm-<minor>`.
    pub node: PathBuf,
    /// `major:minor`, as another target's table names it.
    #[allow(
        dead_code,
        reason = "verityinit includes this file and opens no volume"
    )]
    pub numbers: String,
}

/// Creates the read-only device `name` with one `target` and makes it live.
pub fn create(
    control: &File,
    dev: &Path,
    name: &str,
    target: &DmTarget,
) -> Result<DmDevice, DmError> {
    create_with(control, dev, name, target, DM_READONLY_FLAG)
}

/// Creates the writable device `name` with one `target` and makes it live.
#[allow(
    dead_code,
    reason = "verityinit includes this file and opens no volume"
)]
pub fn create_writable(
    control: &File,
    dev: &Path,
    name: &str,
    target: &DmTarget,
) -> Result<DmDevice, DmError> {
    create_with(control, dev, name, target, 0)
}

fn create_with(
    control: &File,
    dev: &Path,
    name: &str,
    target: &DmTarget,
    flags: u32,
) -> Result<DmDevice, DmError> {
    let version = call(
        control,
        dm_version,
        "DM_VERSION",
        name,
        &header(name, DM_IOCTL_LEN, 0, 0)?,
    )?;
    if version.version[0] != DM_VERSION[0] {
        return Err(DmError::Version {
            found: version.version,
        });
    }
    let created = call(
        control,
        dm_dev_create,
        "DM_DEV_CREATE",
        name,
        &header(name, DM_IOCTL_LEN, 0, 0)?,
    )?;
    let loaded = table_load_buffer_with(name, target, flags).and_then(|buf| {
        call(control, dm_table_load, "DM_TABLE_LOAD", name, &buf)?;
        // DM_DEV_SUSPEND without DM_SUSPEND_FLAG resumes: the loaded table goes live.
        call(
            control,
            dm_dev_suspend,
            "DM_DEV_SUSPEND (resume)",
            name,
            &header(name, DM_IOCTL_LEN, 0, 0)?,
        )
    });
    if let Err(err) = loaded {
        let _ = remove(control, name);
        return Err(err);
    }
    // huge_encode_dev in the kernel is glibc's makedev encoding.
    let (maj, min) = (major(created.dev), minor(created.dev));
    let node = dev.join(format!("dm-{min}"));
    if !node.exists() {
        make_node(&node, SFlag::S_IFBLK, maj, min)?;
    }
    Ok(DmDevice {
        node,
        numbers: format!("{maj}:{min}"),
    })
}

/// Removes the device `name` (it must not be open or mounted).
pub fn remove(control: &File, name: &str) -> Result<(), DmError> {
    call(
        control,
        dm_dev_remove,
        "DM_DEV_REMOVE",
        name,
        &header(name, DM_IOCTL_LEN, 0, 0)?,
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn struct_layouts_match_the_kernel_uapi() {
        assert_eq!(size_of::<DmIoctl>(), DM_IOCTL_LEN);
        assert_eq!(align_of::<DmIoctl>(), 8);
        assert_eq!(offset_of!(DmIoctl, data_size), 12);
        assert_eq!(offset_of!(DmIoctl, data_start), 16);
        assert_eq!(offset_of!(DmIoctl, target_count), 20);
        assert_eq!(offset_of!(DmIoctl, flags), 28);
        assert_eq!(offset_of!(DmIoctl, dev), 40);
        assert_eq!(offset_of!(DmIoctl, name), 48);
        assert_eq!(offset_of!(DmIoctl, uuid), 176);
        assert_eq!(offset_of!(DmIoctl, data), 305);
        assert_eq!(size_of::<DmTargetSpec>(), DM_TARGET_SPEC_LEN);
        assert_eq!(offset_of!(DmTargetSpec, length), 8);
        assert_eq!(offset_of!(DmTargetSpec, next), 20);
        assert_eq!(offset_of!(DmTargetSpec, target_type), 24);
    }

    #[test]
    fn ioctl_numbers_are_iowr_0xfd_with_the_header_size() {
        // _IOWR(0xfd, n, struct dm_ioctl): dir 3 << 30 | 312 << 16 | 0xfd << 8 | n.
        let code = |n| nix::request_code_readwrite!(DM_IOCTL_TYPE, n, DM_IOCTL_LEN);
        assert_eq!(code(0), 0xc138_fd00); // DM_VERSION
        assert_eq!(code(3), 0xc138_fd03); // DM_DEV_CREATE
        assert_eq!(code(4), 0xc138_fd04); // DM_DEV_REMOVE
        assert_eq!(code(6), 0xc138_fd06); // DM_DEV_SUSPEND
        assert_eq!(code(9), 0xc138_fd09); // DM_TABLE_LOAD
    }

    #[test]
    fn table_load_buffer_bytes() {
        let target = DmTarget {
            sectors: 2048,
            target_type: "verity",
            params: "1 254:0 254:16 4096 4096 256 1 sha256 ab - 1 panic_on_corruption".into(),
        };
        let buf = table_load_buffer("snpkit-root", &target).unwrap();
        let params_len = target.params.len(); // 66
        let spec_len = (40 + params_len + 1).next_multiple_of(8); // 112
        assert_eq!(buf.len(), 312 + spec_len);
        let u32_at = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap());
        assert_eq!([u32_at(0), u32_at(4), u32_at(8)], [4, 0, 0]);
        assert_eq!(u32_at(12) as usize, buf.len(), "data_size");
        assert_eq!(u32_at(16), 312, "data_start");
        assert_eq!(u32_at(20), 1, "target_count");
        assert_eq!(u32_at(28), DM_READONLY_FLAG, "flags");
        assert_eq!(&buf[48..60], b"snpkit-root\0");
        assert!(buf[60..305].iter().all(|&b| b == 0), "name tail and uuid");
        assert_eq!(u64_at(312), 0, "sector_start");
        assert_eq!(u64_at(320), 2048, "length");
        assert_eq!(u32_at(328), 0, "status");
        assert_eq!(u32_at(332) as usize, spec_len, "next");
        assert_eq!(&buf[336..352], b"verity\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(&buf[352..352 + params_len], target.params.as_bytes());
        assert!(
            buf[352 + params_len..].iter().all(|&b| b == 0),
            "NUL and padding"
        );
        assert_eq!(buf.len() % 8, 0);
    }

    #[test]
    fn writable_tables_carry_no_readonly_flag() {
        let target = DmTarget {
            sectors: 8,
            target_type: "integrity",
            params: "254:16 8 32 J 1 block_size:4096".into(),
        };
        let ro = table_load_buffer("v", &target).unwrap();
        let rw = table_load_buffer_with("v", &target, 0).unwrap();
        assert_eq!(
            u32::from_ne_bytes(ro[28..32].try_into().unwrap()),
            DM_READONLY_FLAG
        );
        assert_eq!(u32::from_ne_bytes(rw[28..32].try_into().unwrap()), 0);
        assert_eq!(ro[32..], rw[32..], "only the flags differ");
    }

    #[test]
    fn bad_names_and_params_are_refused() {
        let target = |params: &str| DmTarget {
            sectors: 8,
            target_type: "verity",
            params: params.into(),
        };
        for name in ["", "a/b", "nul\0", &"x".repeat(128)] {
            assert!(matches!(
                table_load_buffer(name, &target("1")),
                Err(DmError::BadName { .. })
            ));
        }
        assert!(table_load_buffer(&"x".repeat(127), &target("1")).is_ok());
        assert!(matches!(
            table_load_buffer("ok", &target("1\x002")),
            Err(DmError::BadParams)
        ));
    }

    #[test]
    fn replies_and_sysfs_numbers_are_read() {
        let mut buf = header("x", DM_IOCTL_LEN, 0, 0).unwrap();
        buf[40..48].copy_from_slice(&makedev(254, 3).to_ne_bytes());
        let r = reply(&buf);
        assert_eq!(r.version, [4, 0, 0]);
        assert_eq!((major(r.dev), minor(r.dev)), (254, 3));
        assert_eq!(parse_dev_numbers("10:236\n"), Some((10, 236)));
        assert_eq!(parse_dev_numbers("10-236"), None);
        assert_eq!(parse_dev_numbers("a:1"), None);
    }
}
