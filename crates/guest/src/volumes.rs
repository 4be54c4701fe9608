//! Step 6 of `/init`: sealed volumes (issue 12). For each volume of the init config:
//!
//! 1. find the virtio disk whose serial is `snpkit-vol-<name>` (the host names disks; a wrong or
//!    swapped disk is caught by the header's name and key check value, not trusted);
//! 2. read its first 4 KiB: the volume header (`snpkit_wire::volume`);
//! 3. ask the PSP for the key — MSG_KEY_REQ with root VCEK (KEY_SEL = VCEK, never a VLEK shared
//!    across a fleet), GUEST_FIELD_SELECT = policy | measurement | TCB version, VMPL 0 — then
//!    HKDF-SHA-256 per volume with the name in the info;
//! 4. a blank volume is formatted: dm-integrity initialises its superblock and journal, dm-crypt
//!    (AEGIS-128, random nonces, tags in dm-integrity) goes on top, `mkfs.rs` writes ext4
//!    through it, and the header goes last, so an interrupted first boot leaves a blank header and
//!    formats again; a volume with a header has its key check value checked *before* anything is
//!    written or any device-mapper target exists: "key does not match" leaves it untouched;
//! 5. the filesystem is mounted at the volume's mount point under the appliance's root;
//! 6. at power-off ([`close`]) everything is synced and unmounted and the targets are removed.
//!
//! The binding is checked, not taken from the header: a header bound to other fields, another
//! root key or another VMPL is refused even when its key check value holds, because another image
//! on the same chip could have written one bound to nothing. Only the TCB may differ: a header
//! bound to an older TCB than the platform's committed one (a firmware update since) still opens —
//! the ABI lets a guest derive keys of older TCBs — and `/init` says so and points at re-keying; a
//! header bound to a newer TCB (older firmware, or another machine) cannot be derived and is
//! refused with that explanation.
//!
//! What a host can do, and what it gets: flip, move or replace blocks — I/O errors (a damaged
//! filesystem block fails the mount, a damaged file block fails the read with EIO); hand over
//! another image's or another machine's volume — "key does not match"; put back an older copy of
//! the whole file — not detected (no rollback protection: see the docs).

use crate::console::say;
use crate::derived_key::KeyProvider;
use crate::{dm, mkfs, provider, report};
use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use snpkit_wire::init::{Volume, VolumeKey};
use snpkit_wire::keyreq::{KeyRequest, KeySel, RootKey, tcb_at_most};
use snpkit_wire::volume::{
    self, HEADER_LEN, Header, IntegritySuperblock, SEALED_FIELDS, VolumeKeys, crypt_target,
    integrity_target,
};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a volume's disk may take to appear once virtio_blk is loaded.
const DISK_WAIT: Duration = Duration::from_secs(10);
/// How long the emulated PSP's port may take once the real providers are known to be absent.
const PSP_PORT_WAIT: Duration = Duration::from_secs(5);
/// REPORT_DATA of the report `/init` asks for to learn the platform's committed TCB.
const TCB_REPORT_DATA: [u8; 64] =
    *b"snpkit volumes: the platform's committed TCB\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
/// COMMITTED_TCB in an attestation report (version 2 and later).
const COMMITTED_TCB_AT: usize = 0x1E0;

/// Volumes that are open, for [`close`].
#[derive(Debug, Default)]
pub struct Opened {
    volumes: Vec<OpenVolume>,
}

#[derive(Debug)]
struct OpenVolume {
    name: String,
    /// The mount point inside the appliance's root (where it is once the root is `/`).
    mount: PathBuf,
    crypt: String,
    integrity: String,
}

/// Where keys come from and the TCB they may be bound to.
struct Platform {
    keys: KeyProvider,
    committed_tcb: u64,
}

/// A key from the key broker for a `kbs:` volume: the resource's bytes, wiped when dropped.
pub type BrokerKey<'a> = &'a mut dyn FnMut(&str) -> Result<zeroize::Zeroizing<Vec<u8>>>;

/// How one volume is keyed.
enum Keying<'a> {
    Sealed(&'a Platform),
    /// The broker's key (at least [`volume::MIN_BROKER_KEY_LEN`] bytes).
    Broker(zeroize::Zeroizing<Vec<u8>>),
}

impl Keying<'_> {
    fn source(&self) -> volume::KeySource {
        match self {
            Keying::Sealed(_) => volume::KeySource::Sealed,
            Keying::Broker(_) => volume::KeySource::Kbs,
        }
    }
}

/// Opens (formats on first boot) every volume and mounts it under `root`, the appliance's root
/// as it is mounted now (`/`, or `/sysroot` before the switch). `broker` fetches the keys of
/// `kbs:` volumes (through the same KBS client as the secrets).
pub fn open(volumes: &[Volume], root: &Path, broker: BrokerKey<'_>) -> Result<Opened> {
    let mut opened = Opened::default();
    if volumes.is_empty() {
        return Ok(opened);
    }
    for (i, v) in volumes.iter().enumerate() {
        volume::check_name(&v.name).context("the init config's volumes")?;
        if volumes[..i].iter().any(|w| w.name == v.name) {
            bail!("the init config names volume '{}' twice", v.name);
        }
        if !v.mount.starts_with('/') || v.mount.split('/').any(|c| c == "..") {
            bail!(
                "volume '{}': the mount point {:?} is not an absolute path without '..'",
                v.name,
                v.mount
            );
        }
    }
    let platform = if volumes.iter().any(|v| v.key == VolumeKey::Sealed) {
        Some(Platform::probe()?)
    } else {
        None
    };
    let control = dm::open_control(Path::new("/dev"), Path::new("/sys")).context("volumes")?;
    for v in volumes {
        let keying = match (&v.key, &platform) {
            (VolumeKey::Sealed, Some(platform)) => Keying::Sealed(platform),
            (VolumeKey::Sealed, None) => bail!("volume '{}': no PSP probed", v.name),
            (VolumeKey::Kbs(resource), _) => {
                let key = broker(resource).with_context(|| {
                    format!("volume '{}': its key from the broker ({resource})", v.name)
                })?;
                if key.len() < volume::MIN_BROKER_KEY_LEN {
                    bail!(
                        "volume '{}': the broker's key {resource} is {} bytes; a volume key is at least {}",
                        v.name,
                        key.len(),
                        volume::MIN_BROKER_KEY_LEN
                    );
                }
                say!("volume {}: key released by the broker ({resource})", v.name);
                Keying::Broker(key)
            }
        };
        let one =
            open_one(&control, &keying, v, root).with_context(|| format!("volume '{}'", v.name))?;
        opened.volumes.push(one);
    }
    Ok(opened)
}

impl Platform {
    fn probe() -> Result<Platform> {
        let found = provider::probe(Path::new("/"), PSP_PORT_WAIT)?;
        let keys = KeyProvider::for_report_provider(&found, Path::new("/"))?;
        let fetched = report::fetch(&found, &TCB_REPORT_DATA)
            .context("volumes: getting a report for the platform's committed TCB")?;
        let committed_tcb = committed_tcb(&fetched.report[..])?;
        say!(
            "volumes: keys from {}, platform's committed TCB {committed_tcb:#018x}",
            keys.name()
        );
        Ok(Platform {
            keys,
            committed_tcb,
        })
    }
}

fn committed_tcb(report: &[u8]) -> Result<u64> {
    let version = u32::from_le_bytes([report[0], report[1], report[2], report[3]]);
    if version < 2 {
        bail!(
            "the attestation report is version {version}; COMMITTED_TCB needs version 2 or later"
        );
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&report[COMMITTED_TCB_AT..COMMITTED_TCB_AT + 8]);
    Ok(u64::from_le_bytes(b))
}

/// The one request sealed volumes are derived with, but for the TCB.
fn sealing_request(tcb_version: u64) -> KeyRequest {
    KeyRequest {
        root: RootKey::Endorsement,
        key_sel: KeySel::Vcek,
        fields: SEALED_FIELDS,
        vmpl: 0,
        guest_svn: 0,
        tcb_version,
    }
}

fn key_select_word() -> u32 {
    let b = sealing_request(0).encode();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A volume's disk, found by its serial.
struct Disk {
    path: PathBuf,
    numbers: String,
    bytes: u64,
}

fn find_disk(name: &str) -> Result<Disk> {
    let serial = volume::serial_for(name);
    let start = Instant::now();
    loop {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/sys/block") {
            for entry in entries.flatten() {
                let Ok(s) = std::fs::read_to_string(entry.path().join("serial")) else {
                    continue;
                };
                if s.trim_end_matches(['\n', '\0']) == serial {
                    found.push(entry.path());
                }
            }
        }
        if found.len() > 1 {
            bail!(
                "{} disks carry the serial {serial}; refusing to guess",
                found.len()
            );
        }
        if let Some(sys) = found.pop() {
            let read = |attr: &str| {
                std::fs::read_to_string(sys.join(attr))
                    .with_context(|| format!("reading {}", sys.join(attr).display()))
            };
            let numbers = read("dev")?.trim().to_owned();
            let sectors: u64 = read("size")?
                .trim()
                .parse()
                .with_context(|| format!("{}/size", sys.display()))?;
            let dev = sys.file_name().map(PathBuf::from).unwrap_or_default();
            return Ok(Disk {
                path: Path::new("/dev").join(dev),
                numbers,
                bytes: sectors.saturating_mul(512),
            });
        }
        if start.elapsed() >= DISK_WAIT {
            bail!(
                "no disk with serial {serial} appeared within {DISK_WAIT:?}: is the volume attached \
                 (and virtio_blk in the init config's modules)?"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open_one(control: &File, keying: &Keying, v: &Volume, root: &Path) -> Result<OpenVolume> {
    let disk = find_disk(&v.name)?;
    let raw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk.path)
        .with_context(|| format!("opening {}", disk.path.display()))?;
    if disk.bytes < (HEADER_LEN as u64) * 2 {
        bail!("{} holds only {} bytes", disk.path.display(), disk.bytes);
    }
    let mut first = vec![0u8; HEADER_LEN];
    raw.read_exact_at(&mut first, 0)
        .with_context(|| format!("reading the header of {}", disk.path.display()))?;
    let names = DmNames::for_volume(&v.name);
    let crypt = match volume::decode(&first) {
        Ok(volume::Found::Blank) => format(control, keying, &v.name, &disk, &raw, &names)?,
        Ok(volume::Found::Header(header, kcv)) => {
            open_existing(control, keying, &v.name, &disk, &header, &kcv, &names)?
        }
        Err(e) => bail!(
            "{} (serial {}) has no usable volume header: {e}; nothing was written to it",
            disk.path.display(),
            volume::serial_for(&v.name)
        ),
    };
    let target = root.join(v.mount.trim_start_matches('/'));
    std::fs::create_dir_all(&target).with_context(|| {
        format!(
            "the mount point {} (must exist in a read-only root)",
            v.mount
        )
    })?;
    if let Err(errno) = mount(
        Some(&crypt.node),
        &target,
        Some("ext4"),
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None::<&str>,
    ) {
        let _ = dm::remove(control, &names.crypt);
        let _ = dm::remove(control, &names.integrity);
        bail!(
            "mounting its filesystem on {} failed ({errno}): where the kernel log says \
             \"INTEGRITY AEAD ERROR\", blocks of the volume failed authentication (the host changed them)",
            v.mount
        );
    }
    say!(
        "volume {}: {} (serial {}) is open: dm-integrity + dm-crypt aegis128 on {}, ext4 mounted at {}",
        v.name,
        disk.path.display(),
        volume::serial_for(&v.name),
        crypt.node.display(),
        v.mount
    );
    Ok(OpenVolume {
        name: v.name.clone(),
        mount: PathBuf::from(&v.mount),
        crypt: names.crypt,
        integrity: names.integrity,
    })
}

struct DmNames {
    integrity: String,
    crypt: String,
}

impl DmNames {
    fn for_volume(name: &str) -> DmNames {
        DmNames {
            integrity: format!("snpkit-{name}-integrity"),
            crypt: format!("snpkit-{name}"),
        }
    }
}

/// First boot: dm-integrity, dm-crypt, the filesystem, then the header.
fn format(
    control: &File,
    keying: &Keying,
    name: &str,
    disk: &Disk,
    raw: &File,
    names: &DmNames,
) -> Result<dm::DmDevice> {
    say!(
        "volume {name}: {} is blank: formatting it ({} MiB, first boot)",
        disk.path.display(),
        disk.bytes >> 20
    );
    let salt = volume::salt_for(name);
    let keys = match keying {
        Keying::Sealed(platform) => {
            let psp_key = platform
                .keys
                .derive(&sealing_request(platform.committed_tcb))?;
            volume::volume_keys(&psp_key, name, &salt)
        }
        Keying::Broker(key) => volume::broker_volume_keys(key, name, &salt),
    };
    // dm-integrity formats its superblock and journal on a zeroed area when it is first loaded;
    // a one-block table is enough for it to say how much it provides.
    dm::create_writable(
        control,
        Path::new("/dev"),
        &names.integrity,
        &integrity_target(&disk.numbers, 8),
    )
    .context("dm-integrity: initialising the volume")?;
    dm::remove(control, &names.integrity).context("dm-integrity")?;
    // dm-integrity wrote under our file's page cache, which read ahead of the header: drop it.
    nix::fcntl::posix_fadvise(
        raw,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .context("dropping the disk's cached pages")?;
    let mut sb = [0u8; 512];
    raw.read_exact_at(&mut sb, HEADER_LEN as u64)
        .context("reading dm-integrity's superblock")?;
    let sb = IntegritySuperblock::parse(&sb).context("dm-integrity's new superblock")?;
    let data_sectors = sb.provided_data_sectors / 8 * 8;
    let crypt = stack(control, disk, data_sectors, &keys, names)?;
    let device = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&crypt.node)
        .with_context(|| format!("opening {}", crypt.node.display()))?;
    let geometry = mkfs::format(
        &device,
        &mkfs::Spec {
            bytes: data_sectors * 512,
            uuid: volume::uuid_for(name),
            hash_seed: volume::hash_seed_for(name),
            label: name,
        },
    )
    .context("making the filesystem")?;
    let (header, bound) = match keying {
        Keying::Sealed(platform) => {
            let tcb = platform.committed_tcb;
            (
                Header::sealed(
                    name,
                    key_select_word(),
                    0,
                    SEALED_FIELDS,
                    tcb,
                    disk.bytes,
                    data_sectors,
                ),
                format!("bound to {SEALED_FIELDS} at TCB {tcb:#018x}"),
            )
        }
        Keying::Broker(_) => (
            Header::from_broker(name, disk.bytes, data_sectors),
            "keyed by the broker's key".to_owned(),
        ),
    };
    raw.write_all_at(&header.encode(&keys), 0)
        .and_then(|()| raw.sync_all())
        .context("writing the volume header")?;
    say!(
        "volume {name}: formatted: {} blocks of 4 KiB, {} inodes, {bound}",
        geometry.blocks,
        geometry.inodes(),
    );
    Ok(crypt)
}

/// Later boots: check the binding and the key check value, then the devices.
fn open_existing(
    control: &File,
    keying: &Keying,
    name: &str,
    disk: &Disk,
    header: &Header,
    kcv: &[u8; 32],
    names: &DmNames,
) -> Result<dm::DmDevice> {
    if header.name != name {
        bail!(
            "the disk with serial {} holds volume '{}', not '{name}': the host attached another \
             volume's file; nothing was written to it",
            volume::serial_for(name),
            header.name
        );
    }
    if header.source != keying.source() {
        bail!(
            "the volume's header says its key comes from {}, and this image's init config says \
             from {}: another image's volume, or one the host swapped in; nothing was written to it",
            header.source.name(),
            keying.source().name()
        );
    }
    if header.volume_bytes != disk.bytes {
        bail!(
            "the volume was formatted at {} bytes but its disk now holds {}: the host changed the \
             file's size; nothing was written to it",
            header.volume_bytes,
            disk.bytes
        );
    }
    let platform = match keying {
        Keying::Broker(key) => {
            let keys = volume::broker_volume_keys(key, name, &header.salt);
            if !header.key_matches(&keys, kcv) {
                bail!(
                    "the key does not match: the broker released a key other than the one this \
                     volume was formatted with; it was left untouched"
                );
            }
            return stack(control, disk, header.data_sectors, &keys, names);
        }
        Keying::Sealed(platform) => platform,
    };
    if header.fields != SEALED_FIELDS || header.key_select != key_select_word() || header.vmpl != 0
    {
        bail!(
            "the volume's key is bound to {} (key select {:#x}, VMPL {}); this /init seals to {} \
             with the VCEK at VMPL 0 only, and refuses a weaker binding another guest could have \
             made; nothing was written to it",
            header.fields,
            header.key_select,
            header.vmpl,
            SEALED_FIELDS
        );
    }
    let committed = platform.committed_tcb;
    if header.tcb_version != committed {
        if !tcb_at_most(header.tcb_version, committed) {
            bail!(
                "the volume is bound to TCB {:#018x}, and this platform's committed TCB is \
                 {committed:#018x}, lower in some component: the firmware is older than when the \
                 volume was sealed, or this is another machine; the PSP derives no key for a newer \
                 TCB. Nothing was written to it",
                header.tcb_version
            );
        }
        say!(
            "volume {name}: NOTE: sealed under TCB {:#018x}; the platform's committed TCB is now \
             {committed:#018x} (a firmware update since). Opening it with its old binding, which \
             firmware at the old TCB could also derive; re-key it to bind it to the new TCB \
             (docs/volumes.md, \"TCB updates\")",
            header.tcb_version
        );
    }
    let psp_key = platform.keys.derive(&sealing_request(header.tcb_version))?;
    let keys = volume::volume_keys(&psp_key, name, &header.salt);
    if !header.key_matches(&keys, kcv) {
        bail!(
            "the key does not match: this volume was sealed by another image (another measurement \
             or policy) or on another machine (another chip), so this guest cannot read it; it was \
             left untouched"
        );
    }
    stack(control, disk, header.data_sectors, &keys, names)
}

/// dm-integrity on the disk, dm-crypt on it; returns the dm-crypt device.
fn stack(
    control: &File,
    disk: &Disk,
    data_sectors: u64,
    keys: &VolumeKeys,
    names: &DmNames,
) -> Result<dm::DmDevice> {
    let integrity = dm::create_writable(
        control,
        Path::new("/dev"),
        &names.integrity,
        &integrity_target(&disk.numbers, data_sectors),
    )
    .context("dm-integrity")?;
    match dm::create_writable(
        control,
        Path::new("/dev"),
        &names.crypt,
        &crypt_target(&integrity.numbers, data_sectors, keys),
    ) {
        Ok(crypt) => Ok(crypt),
        Err(e) => {
            let _ = dm::remove(control, &names.integrity);
            Err(e).context("dm-crypt (are dm-crypt and aegis128 in the init config's modules?)")
        }
    }
}

/// Syncs, unmounts and removes every open volume (at power-off; problems are said, not fatal:
/// what was synced is safe, and dm-integrity's journal covers the rest).
pub fn close(opened: Opened) {
    if opened.volumes.is_empty() {
        return;
    }
    nix::unistd::sync();
    let control = match dm::open_control(Path::new("/dev"), Path::new("/sys")) {
        Ok(c) => Some(c),
        Err(e) => {
            say!("volumes: {e}; leaving the device-mapper targets to power-off");
            None
        }
    };
    for v in opened.volumes.iter().rev() {
        if let Err(errno) = umount2(&v.mount, MntFlags::empty()) {
            say!(
                "volume {}: unmounting {} failed ({errno}); it was synced",
                v.name,
                v.mount.display()
            );
            continue;
        }
        let Some(control) = &control else { continue };
        for target in [&v.crypt, &v.integrity] {
            if let Err(e) = dm::remove(control, target) {
                say!("volume {}: {e}", v.name);
            }
        }
        say!("volume {}: closed", v.name);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_sealing_request_is_vcek_policy_measurement_tcb_at_vmpl_0() {
        let r = sealing_request(0x1234);
        assert_eq!(r.key_sel, KeySel::Vcek);
        assert_eq!(r.root, RootKey::Endorsement);
        assert_eq!(r.fields.to_string(), "policy|measurement|tcb_version");
        assert_eq!((r.vmpl, r.guest_svn, r.tcb_version), (0, 0, 0x1234));
        assert_eq!(key_select_word(), 0b010);
    }

    #[test]
    fn committed_tcb_is_read_from_the_report() {
        let mut report = vec![0u8; 1184];
        report[0] = 3;
        report[0x1E0..0x1E8].copy_from_slice(&0xdb18_0000_0000_0004u64.to_le_bytes());
        assert_eq!(committed_tcb(&report).unwrap(), 0xdb18_0000_0000_0004);
        report[0] = 1;
        assert!(committed_tcb(&report).is_err());
    }

    #[test]
    fn tcb_report_data_is_64_bytes_of_text() {
        assert!(TCB_REPORT_DATA.starts_with(b"snpkit volumes"));
    }
}
