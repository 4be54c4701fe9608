//! Sealed volumes: the on-disk header `/init` writes in a volume's first block, the per-volume
//! keys, and the device-mapper tables that make every block of the volume authenticated
//! encryption in the guest's kernel.
//!
//! A volume file (a virtio disk with serial `snpkit-vol-<name>`) is laid out as:
//!
//! ```text
//! 0 ─ 4 KiB          snpkit volume header (this module), plaintext, bound to the key by its key check value
//! 4 KiB ─ end        dm-integrity (its superblock, journal, then interleaved tag and data areas)
//!                    └ dm-crypt `capi:aegis128-random`, integrity `aead` (32 bytes per 4 KiB block:
//!                      16-byte random nonce + 16-byte tag), 4 KiB sectors
//!                      └ ext4 (`snpkit-init`'s own formatter), mounted at the volume's mount point
//! ```
//!
//! **Why AEGIS-128 with random nonces** (not `gcm(aes)-random`): dm-crypt stores a fresh random
//! nonce per write beside the tag. GCM's nonce is 96 bits, and random 96-bit nonces collide with
//! probability ~n²/2⁹⁷ after n writes, which NIST caps at 2³² writes per key — 16 TiB of 4 KiB
//! writes, within reach of a busy database over the years, and a repeated GCM nonce gives away
//! the authentication key. AEGIS-128's nonce is 128 bits (~n²/2¹²⁹), it is faster than GCM with
//! AES-NI, and the Debian 6.12 cloud kernel ships it (`crypto/aegis128.ko`, and the AES-NI
//! version `arch/x86/crypto/aegis128-aesni.ko`) beside `dm-crypt` and `dm-integrity`. dm-crypt
//! authenticates the sector number with every block, so a block the host moves, flips or
//! replaces with another block's fails authentication: reading it is an I/O error, never
//! different data. Putting back an *older* version of the same block (or the whole file) is not
//! detected: there is no rollback protection (see the docs).
//!
//! ## Header: the first 4096 bytes, little-endian
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0x000 | 8 | magic `SNPKVOL\0` |
//! | 0x008 | 2 | header version, 1 |
//! | 0x00A | 1 | key source: 1 = sealed (MSG_KEY_REQ), 2 = a key broker (KBS resource; the MSG_KEY_REQ fields are zero) |
//! | 0x00B | 1 | cipher: 1 = dm-crypt `capi:aegis128-random` over dm-integrity (32-byte tags), 4 KiB blocks |
//! | 0x00C | 4 | reserved, zero |
//! | 0x010 | 4 | MSG_KEY_REQ's first word the key was derived with (root key, KEY_SEL) |
//! | 0x014 | 4 | VMPL the key was derived for |
//! | 0x018 | 8 | GUEST_FIELD_SELECT the key was derived with |
//! | 0x020 | 8 | TCB_VERSION the key was derived with: the committed TCB when the volume was formatted |
//! | 0x028 | 8 | size of the whole volume in bytes when it was formatted |
//! | 0x030 | 8 | data sectors (512 bytes) dm-integrity provides: the length of both device-mapper tables |
//! | 0x038 | 8 | reserved, zero |
//! | 0x040 | 32 | volume name, UTF-8, NUL-padded |
//! | 0x060 | 16 | filesystem UUID, derived from the name ([`uuid_for`]) |
//! | 0x070 | 32 | HKDF salt, derived from the name ([`salt_for`]) |
//! | 0x090 | 304 | reserved, zero |
//! | 0x1C0 | 32 | key check value: HMAC-SHA-256 under the volume's check key of bytes 0x000..0x1C0 |
//! | 0x1E0 | 32 | checksum: SHA-256 of bytes 0x000..0x1E0 |
//! | 0x200 | 3584 | reserved, zero |
//!
//! The checksum tells a damaged header ("corrupt") from one made with another key: a header whose
//! checksum holds but whose key check value does not was written under another key — another
//! image, another chip, another TCB binding, or a host that edited a field and recomputed the
//! checksum — and `/init` says "key does not match" and writes nothing. The key check value is
//! checked before any device-mapper target exists, so a refused volume is left untouched.
//!
//! Everything in the header is reproducible: the same chip, image and name give byte-identical
//! headers (no random UUID or salt; mkosi's `Seed=` idea).
//!
//! ## Keys
//! The PSP's derived key (32 bytes) is the input keying material of HKDF-SHA-256 with the header's
//! salt; the info is `"snpkit sealed volume v1\0" ‖ name ‖ "\0" ‖ purpose`, purpose `data` (the
//! 16-byte AEGIS-128 key) or `check` (the 32-byte key check key). A volume's name is in every key,
//! so the host cannot hand one volume's file to another volume of the same appliance.

use crate::keyreq::{DerivedKey, FieldSelect};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

/// Size of the header block.
pub const HEADER_LEN: usize = 4096;
/// The part of the header that has fields; the rest of the block is zero.
pub const HEADER_FIELDS_LEN: usize = 0x200;
pub const MAGIC: [u8; 8] = *b"SNPKVOL\0";
pub const HEADER_VERSION: u16 = 1;
/// Virtio-blk serials are at most 20 bytes: the prefix leaves 9 for the name.
pub const SERIAL_PREFIX: &str = "snpkit-vol-";
pub const MAX_NAME_LEN: usize = 9;
/// dm-integrity's superblock starts after the header (in 512-byte sectors).
pub const INTEGRITY_OFFSET_SECTORS: u64 = (HEADER_LEN / 512) as u64;
/// Per 4 KiB block: AEGIS-128's 16-byte nonce (random, stored) and 16-byte tag.
pub const TAG_SIZE: u32 = 32;
/// Filesystem, dm-crypt and dm-integrity block size.
pub const BLOCK_SIZE: u32 = 4096;
/// AEGIS-128's key size.
pub const DATA_KEY_LEN: usize = 16;
/// The fields the sealed key is bound to: this image (measurement), its policy and the platform's
/// TCB (issue 12). Not the image or family ID: images without an ID block have none.
pub const SEALED_FIELDS: FieldSelect = FieldSelect::POLICY
    .union(FieldSelect::MEASUREMENT)
    .union(FieldSelect::TCB_VERSION);

const KCV_AT: usize = 0x1C0;
const CHECKSUM_AT: usize = 0x1E0;

/// How the key of a volume is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// MSG_KEY_REQ: bound to this image on this chip.
    Sealed = 1,
    /// A key the key broker released to the attested guest (issue 11).
    Kbs = 2,
}

impl KeySource {
    pub fn name(self) -> &'static str {
        match self {
            KeySource::Sealed => "sealed (MSG_KEY_REQ)",
            KeySource::Kbs => "a key broker",
        }
    }
}

/// The encryption under the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// dm-crypt `capi:aegis128-random`, integrity `aead` (32-byte tags) on dm-integrity, 4 KiB.
    Aegis128Random = 1,
}

/// A volume header's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub source: KeySource,
    pub cipher: Cipher,
    /// MSG_KEY_REQ's first word (root key and KEY_SEL).
    pub key_select: u32,
    pub vmpl: u32,
    pub fields: FieldSelect,
    /// The TCB the key is bound to.
    pub tcb_version: u64,
    pub volume_bytes: u64,
    pub data_sectors: u64,
    pub name: String,
    pub uuid: [u8; 16],
    pub salt: [u8; 32],
}

/// What the first block of a volume holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// All zero: a new volume.
    Blank,
    /// A well-formed header (its key check value not yet checked).
    Header(Header, [u8; 32]),
}

/// Why a volume's first block is not a header this version can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("a volume header is {HEADER_LEN} bytes, not {found}")]
    Size { found: usize },
    #[error("the volume does not start with an snpkit volume header (magic {found:02x?})")]
    NotAVolume { found: [u8; 8] },
    #[error(
        "the volume header is corrupt (its checksum does not match): the host changed or damaged it"
    )]
    Checksum,
    #[error("the volume header is version {found}; this snpkit reads version {HEADER_VERSION}")]
    Version { found: u16 },
    #[error("the volume header's {field} is {found}, which this snpkit does not know")]
    Unknown { field: &'static str, found: u64 },
    #[error("the volume header's reserved bytes at {at:#x} are not zero")]
    Reserved { at: usize },
    #[error("the volume header's name is not a valid volume name: {0}")]
    Name(NameError),
    #[error("the volume header's GUEST_FIELD_SELECT {found:#x} sets reserved bits")]
    Fields { found: u64 },
    #[error(
        "the volume header's sizes do not fit ({data_sectors} data sectors in {volume_bytes} bytes)"
    )]
    Sizes {
        volume_bytes: u64,
        data_sectors: u64,
    },
}

/// Why a string is not a volume name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a volume name is 1 to {MAX_NAME_LEN} characters, {found:?} has {len}")]
    Length { found: String, len: usize },
    #[error("a volume name uses a-z, 0-9 and '-' (not first), {found:?} does not")]
    Characters { found: String },
}

/// 1 to 9 of `a-z0-9-`, not starting with `-`: fits the virtio serial, a dm name and a path.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(NameError::Length {
            found: name.into(),
            len: name.len(),
        });
    }
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !ok {
        return Err(NameError::Characters { found: name.into() });
    }
    Ok(())
}

/// The virtio-blk serial the host gives the volume's disk.
pub fn serial_for(name: &str) -> String {
    format!("{SERIAL_PREFIX}{name}")
}

fn tagged_hash(tag: &str, name: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    h.finalize().into()
}

/// The HKDF salt of volume `name`: reproducible, so headers are.
pub fn salt_for(name: &str) -> [u8; 32] {
    tagged_hash("snpkit volume salt v1", name)
}

/// The filesystem UUID of volume `name` (RFC 9562 version 8: name-derived, custom).
pub fn uuid_for(name: &str) -> [u8; 16] {
    let mut u = [0u8; 16];
    u.copy_from_slice(&tagged_hash("snpkit volume uuid v1", name)[..16]);
    u[6] = (u[6] & 0x0f) | 0x80;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// The directory hash seed of volume `name`'s filesystem (ext4's `s_hash_seed`).
pub fn hash_seed_for(name: &str) -> [u8; 16] {
    let mut u = [0u8; 16];
    u.copy_from_slice(&tagged_hash("snpkit volume hash seed v1", name)[..16]);
    u
}

/// The keys of one volume. Their bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct VolumeKeys {
    /// dm-crypt's AEGIS-128 key.
    pub data: [u8; DATA_KEY_LEN],
    /// The key check value's HMAC key.
    check: [u8; 32],
}

impl fmt::Debug for VolumeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VolumeKeys(…)")
    }
}

/// HKDF-SHA-256 from the PSP's key, with the volume's salt and name.
pub fn volume_keys(psp_key: &DerivedKey, name: &str, salt: &[u8; 32]) -> VolumeKeys {
    hkdf_keys(&psp_key.0, b"snpkit sealed volume v1\0", name, salt)
}

/// Shortest key a broker may release for a volume.
pub const MIN_BROKER_KEY_LEN: usize = 32;

/// HKDF-SHA-256 from a key broker's key (at least [`MIN_BROKER_KEY_LEN`] bytes; the caller
/// checks), with the volume's salt and name, under its own label: a broker key and a PSP key of
/// the same bytes give different volume keys.
pub fn broker_volume_keys(broker_key: &[u8], name: &str, salt: &[u8; 32]) -> VolumeKeys {
    hkdf_keys(broker_key, b"snpkit kbs volume v1\0", name, salt)
}

fn hkdf_keys(ikm: &[u8], label: &[u8], name: &str, salt: &[u8; 32]) -> VolumeKeys {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let info = |purpose: &str| {
        let mut i = label.to_vec();
        i.extend_from_slice(name.as_bytes());
        i.push(0);
        i.extend_from_slice(purpose.as_bytes());
        i
    };
    let mut data = [0u8; DATA_KEY_LEN];
    let mut check = [0u8; 32];
    // Both lengths are far below HKDF-SHA-256's limit of 8160 bytes.
    let _ = hk.expand(&info("data"), &mut data);
    let _ = hk.expand(&info("check"), &mut check);
    VolumeKeys { data, check }
}

fn kcv(keys: &VolumeKeys, fields: &[u8]) -> [u8; 32] {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&keys.check) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return [0; 32],
    };
    mac.update(&fields[..KCV_AT]);
    mac.finalize().into_bytes().into()
}

impl Header {
    /// The header of a new sealed volume (the name must pass [`check_name`]).
    #[allow(clippy::too_many_arguments)]
    pub fn sealed(
        name: &str,
        key_select: u32,
        vmpl: u32,
        fields: FieldSelect,
        tcb_version: u64,
        volume_bytes: u64,
        data_sectors: u64,
    ) -> Header {
        Header {
            source: KeySource::Sealed,
            cipher: Cipher::Aegis128Random,
            key_select,
            vmpl,
            fields,
            tcb_version,
            volume_bytes,
            data_sectors,
            name: name.into(),
            uuid: uuid_for(name),
            salt: salt_for(name),
        }
    }

    /// The header of a new volume keyed by a key broker: no MSG_KEY_REQ binding.
    pub fn from_broker(name: &str, volume_bytes: u64, data_sectors: u64) -> Header {
        Header {
            source: KeySource::Kbs,
            ..Header::sealed(name, 0, 0, FieldSelect::NONE, 0, volume_bytes, data_sectors)
        }
    }

    fn fields_bytes(&self) -> [u8; HEADER_FIELDS_LEN] {
        let mut b = [0u8; HEADER_FIELDS_LEN];
        b[0x00..0x08].copy_from_slice(&MAGIC);
        b[0x08..0x0A].copy_from_slice(&HEADER_VERSION.to_le_bytes());
        b[0x0A] = self.source as u8;
        b[0x0B] = self.cipher as u8;
        b[0x10..0x14].copy_from_slice(&self.key_select.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&self.vmpl.to_le_bytes());
        b[0x18..0x20].copy_from_slice(&self.fields.bits().to_le_bytes());
        b[0x20..0x28].copy_from_slice(&self.tcb_version.to_le_bytes());
        b[0x28..0x30].copy_from_slice(&self.volume_bytes.to_le_bytes());
        b[0x30..0x38].copy_from_slice(&self.data_sectors.to_le_bytes());
        let name = self.name.as_bytes();
        let n = name.len().min(32);
        b[0x40..0x40 + n].copy_from_slice(&name[..n]);
        b[0x60..0x70].copy_from_slice(&self.uuid);
        b[0x70..0x90].copy_from_slice(&self.salt);
        b
    }

    /// The whole header block, its key check value made with `keys`.
    pub fn encode(&self, keys: &VolumeKeys) -> Vec<u8> {
        let mut block = vec![0u8; HEADER_LEN];
        let mut f = self.fields_bytes();
        let k = kcv(keys, &f);
        f[KCV_AT..CHECKSUM_AT].copy_from_slice(&k);
        let sum: [u8; 32] = Sha256::digest(&f[..CHECKSUM_AT]).into();
        f[CHECKSUM_AT..].copy_from_slice(&sum);
        block[..HEADER_FIELDS_LEN].copy_from_slice(&f);
        block
    }

    /// Whether `keys` made this header's key check value (`kcv` from [`decode`]).
    pub fn key_matches(&self, keys: &VolumeKeys, kcv_found: &[u8; 32]) -> bool {
        let want = kcv(keys, &self.fields_bytes());
        // Not secret-dependent timing worth guarding: the value is public once written.
        want == *kcv_found
    }
}

/// Reads a volume's first block strictly.
pub fn decode(block: &[u8]) -> Result<Found, HeaderError> {
    if block.len() != HEADER_LEN {
        return Err(HeaderError::Size { found: block.len() });
    }
    if block.iter().all(|&b| b == 0) {
        return Ok(Found::Blank);
    }
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&block[..8]);
    if magic != MAGIC {
        return Err(HeaderError::NotAVolume { found: magic });
    }
    let sum: [u8; 32] = Sha256::digest(&block[..CHECKSUM_AT]).into();
    if block[CHECKSUM_AT..HEADER_FIELDS_LEN] != sum {
        return Err(HeaderError::Checksum);
    }
    let u16_at = |at: usize| u16::from_le_bytes([block[at], block[at + 1]]);
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&block[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&block[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let version = u16_at(0x08);
    if version != HEADER_VERSION {
        return Err(HeaderError::Version { found: version });
    }
    let source = match block[0x0A] {
        1 => KeySource::Sealed,
        2 => KeySource::Kbs,
        found => {
            return Err(HeaderError::Unknown {
                field: "key source",
                found: found.into(),
            });
        }
    };
    let cipher = match block[0x0B] {
        1 => Cipher::Aegis128Random,
        found => {
            return Err(HeaderError::Unknown {
                field: "cipher",
                found: found.into(),
            });
        }
    };
    for range in [
        0x0C..0x10,
        0x38..0x40,
        0x90..KCV_AT,
        HEADER_FIELDS_LEN..HEADER_LEN,
    ] {
        if let Some(i) = block[range.clone()].iter().position(|&b| b != 0) {
            return Err(HeaderError::Reserved {
                at: range.start + i,
            });
        }
    }
    let key_select = u32_at(0x10);
    if key_select & !0b111 != 0 {
        return Err(HeaderError::Unknown {
            field: "key select word",
            found: key_select.into(),
        });
    }
    let vmpl = u32_at(0x14);
    if vmpl > crate::keyreq::MAX_VMPL {
        return Err(HeaderError::Unknown {
            field: "VMPL",
            found: vmpl.into(),
        });
    }
    let raw_fields = u64_at(0x18);
    let fields =
        FieldSelect::from_bits(raw_fields).ok_or(HeaderError::Fields { found: raw_fields })?;
    let volume_bytes = u64_at(0x28);
    let data_sectors = u64_at(0x30);
    let fits = data_sectors
        .checked_mul(512)
        .is_some_and(|d| data_sectors > 0 && d < volume_bytes);
    if !fits {
        return Err(HeaderError::Sizes {
            volume_bytes,
            data_sectors,
        });
    }
    let name_field = &block[0x40..0x60];
    let len = name_field.iter().position(|&b| b == 0).unwrap_or(32);
    if name_field[len..].iter().any(|&b| b != 0) {
        return Err(HeaderError::Reserved { at: 0x40 + len });
    }
    let name = String::from_utf8_lossy(&name_field[..len]).into_owned();
    check_name(&name).map_err(HeaderError::Name)?;
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&block[0x60..0x70]);
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&block[0x70..0x90]);
    let mut kcv_found = [0u8; 32];
    kcv_found.copy_from_slice(&block[KCV_AT..CHECKSUM_AT]);
    Ok(Found::Header(
        Header {
            source,
            cipher,
            key_select,
            vmpl,
            fields,
            tcb_version: u64_at(0x20),
            volume_bytes,
            data_sectors,
            name,
            uuid,
            salt,
        },
        kcv_found,
    ))
}

/// dm-integrity's superblock (`struct superblock` in `drivers/md/dm-integrity.c`): the fields we
/// read, after the kernel formatted it. Host-written bytes, checked against what we asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegritySuperblock {
    pub version: u8,
    pub tag_size: u16,
    pub log2_sectors_per_block: u8,
    /// What dm-integrity offers above it, in 512-byte sectors.
    pub provided_data_sectors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    #[error("dm-integrity's superblock is 512 bytes, {found} given")]
    Size { found: usize },
    #[error("no dm-integrity superblock (magic {found:02x?})")]
    Magic { found: [u8; 8] },
    #[error("dm-integrity's superblock says {field} {found}, snpkit asked for {want}")]
    Mismatch {
        field: &'static str,
        found: u64,
        want: u64,
    },
}

pub const INTEGRITY_MAGIC: [u8; 8] = *b"integrt\0";

impl IntegritySuperblock {
    /// Parses the first 512 bytes of the dm-integrity area and checks it is the geometry we use.
    pub fn parse(bytes: &[u8]) -> Result<IntegritySuperblock, IntegrityError> {
        if bytes.len() != 512 {
            return Err(IntegrityError::Size { found: bytes.len() });
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[..8]);
        if magic != INTEGRITY_MAGIC {
            return Err(IntegrityError::Magic { found: magic });
        }
        let mut p = [0u8; 8];
        p.copy_from_slice(&bytes[16..24]);
        let sb = IntegritySuperblock {
            version: bytes[8],
            tag_size: u16::from_le_bytes([bytes[10], bytes[11]]),
            log2_sectors_per_block: bytes[28],
            provided_data_sectors: u64::from_le_bytes(p),
        };
        let checks: [(&'static str, u64, u64); 2] = [
            ("tag size", sb.tag_size.into(), TAG_SIZE.into()),
            (
                "log2 sectors per block",
                sb.log2_sectors_per_block.into(),
                (BLOCK_SIZE / 512).ilog2().into(),
            ),
        ];
        for (field, found, want) in checks {
            if found != want {
                return Err(IntegrityError::Mismatch { field, found, want });
            }
        }
        Ok(sb)
    }
}

/// A device-mapper target line's parts: `0 <sectors> <target_type> <params>`.
pub use crate::verity::DmTarget;

/// The dm-integrity target over `dev` (`major:minor`): external tags for dm-crypt's AEAD, a
/// journal (so a crash never leaves a block and its tag out of step), 4 KiB blocks.
pub fn integrity_target(dev: &str, data_sectors: u64) -> DmTarget {
    DmTarget {
        sectors: data_sectors,
        target_type: "integrity",
        params: format!("{dev} {INTEGRITY_OFFSET_SECTORS} {TAG_SIZE} J 1 block_size:{BLOCK_SIZE}"),
    }
}

/// The dm-crypt target over the integrity device `dev` (`major:minor`) with AEGIS-128 and
/// random nonces; the tags live in dm-integrity. Holds the key: never log it.
pub fn crypt_target(dev: &str, data_sectors: u64, keys: &VolumeKeys) -> DmTarget {
    let key: String = keys.data.iter().map(|b| format!("{b:02x}")).collect();
    DmTarget {
        sectors: data_sectors,
        target_type: "crypt",
        params: format!(
            "capi:aegis128-random {key} 0 {dev} 0 2 integrity:{TAG_SIZE}:aead sector_size:{BLOCK_SIZE}"
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(byte: u8) -> VolumeKeys {
        volume_keys(&DerivedKey([byte; 32]), "data", &salt_for("data"))
    }

    fn header() -> Header {
        Header::sealed(
            "data",
            0b010,
            0,
            SEALED_FIELDS,
            0xdb18_0000_0000_0004,
            64 << 20,
            120_000,
        )
    }

    #[test]
    fn header_round_trips_and_is_reproducible() {
        let k = keys(1);
        let block = header().encode(&k);
        assert_eq!(block.len(), HEADER_LEN);
        assert_eq!(block, header().encode(&keys(1)), "byte-identical");
        assert_eq!(&block[..8], b"SNPKVOL\0");
        assert_eq!(&block[0x40..0x45], b"data\0");
        let Found::Header(h, kcv) = decode(&block).unwrap() else {
            panic!("not a header")
        };
        assert_eq!(h, header());
        assert!(h.key_matches(&k, &kcv));
        assert!(!h.key_matches(&keys(2), &kcv), "another key");
        assert_eq!(decode(&vec![0; HEADER_LEN]).unwrap(), Found::Blank);
    }

    #[test]
    fn a_broker_keyed_header_records_its_source_and_its_keys_are_their_own() {
        let broker_key = [1u8; 40];
        let k = broker_volume_keys(&broker_key, "data", &salt_for("data"));
        let h = Header::from_broker("data", 64 << 20, 120_000);
        let block = h.encode(&k);
        assert_eq!(block[0x0A], 2, "key source 2: a key broker");
        let Found::Header(back, kcv) = decode(&block).unwrap() else {
            panic!("not a header")
        };
        assert_eq!(back.source, KeySource::Kbs);
        assert_eq!((back.key_select, back.vmpl, back.tcb_version), (0, 0, 0));
        assert!(back.key_matches(&k, &kcv));
        // The same 32 bytes as a PSP key and as a broker key give different volume keys.
        let as_psp = keys(1);
        let as_broker = broker_volume_keys(&[1u8; 32], "data", &salt_for("data"));
        assert!(!back.key_matches(&as_psp, &kcv));
        assert_ne!(as_psp.data, as_broker.data);
        let other_volume = broker_volume_keys(&broker_key, "logs", &salt_for("data"));
        assert!(
            !back.key_matches(&other_volume, &kcv),
            "HKDF per volume name"
        );
    }

    #[test]
    fn wrong_key_and_corruption_are_told_apart() {
        let block = header().encode(&keys(1));
        // A flipped byte anywhere in the fields is corruption.
        for at in [0x08usize, 0x20, 0x41, 0x75, 0x1C5, 0x1F0] {
            let mut b = block.clone();
            b[at] ^= 1;
            assert!(
                matches!(
                    decode(&b),
                    Err(HeaderError::Checksum | HeaderError::NotAVolume { .. })
                ),
                "{at:#x}"
            );
        }
        // A host that edits the TCB binding and fixes the checksum gets "key does not match".
        let mut edited = header();
        edited.tcb_version = 0;
        let mut b = edited.encode(&keys(1));
        b[0x1C0..0x1E0].copy_from_slice(&block[0x1C0..0x1E0]);
        let sum: [u8; 32] = Sha256::digest(&b[..0x1E0]).into();
        b[0x1E0..0x200].copy_from_slice(&sum);
        let Found::Header(h, kcv) = decode(&b).unwrap() else {
            panic!()
        };
        assert!(!h.key_matches(&keys(1), &kcv));
    }

    #[test]
    fn fields_are_checked() {
        let k = keys(1);
        let with = |f: &dyn Fn(&mut Header)| {
            let mut h = header();
            f(&mut h);
            decode(&h.encode(&k))
        };
        assert!(matches!(
            with(&|h| h.data_sectors = 0),
            Err(HeaderError::Sizes { .. })
        ));
        assert!(matches!(
            with(&|h| h.data_sectors = h.volume_bytes / 512),
            Err(HeaderError::Sizes { .. })
        ));
        assert!(matches!(
            with(&|h| h.data_sectors = u64::MAX),
            Err(HeaderError::Sizes { .. })
        ));
        assert!(matches!(
            with(&|h| h.name = "Data".into()),
            Err(HeaderError::Name(_))
        ));
        assert!(matches!(
            with(&|h| h.vmpl = 4),
            Err(HeaderError::Unknown { .. })
        ));
        assert!(matches!(
            with(&|h| h.key_select = 8),
            Err(HeaderError::Unknown { .. })
        ));
        // Reserved bytes, with a correct checksum.
        for at in [0x0Cusize, 0x38, 0x90, 0x1BF, 0x200, 0xFFF] {
            let mut b = header().encode(&k);
            b[at] = 1;
            let sum: [u8; 32] = Sha256::digest(&b[..0x1E0]).into();
            b[0x1E0..0x200].copy_from_slice(&sum);
            assert_eq!(decode(&b), Err(HeaderError::Reserved { at }), "{at:#x}");
        }
        let mut b = header().encode(&k);
        b[0x08] = 2;
        let sum: [u8; 32] = Sha256::digest(&b[..0x1E0]).into();
        b[0x1E0..0x200].copy_from_slice(&sum);
        assert_eq!(decode(&b), Err(HeaderError::Version { found: 2 }));
        assert_eq!(decode(&b[..100]), Err(HeaderError::Size { found: 100 }));
        let mut b = vec![0u8; HEADER_LEN];
        b[3] = 1;
        assert!(matches!(decode(&b), Err(HeaderError::NotAVolume { .. })));
    }

    #[test]
    fn names_salts_uuids_and_keys() {
        for ok in ["data", "a", "db-1", "123456789"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "-x", "Data", "a_b", "a/b", "1234567890", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(serial_for("data"), "snpkit-vol-data");
        assert!(serial_for("123456789").len() <= 20);
        assert_ne!(salt_for("a"), salt_for("b"));
        let u = uuid_for("data");
        assert_eq!(u[6] >> 4, 8);
        assert_eq!(u[8] >> 6, 0b10);
        // The name is in the keys: the same PSP key and salt, another name, other keys.
        let a = volume_keys(&DerivedKey([1; 32]), "a", &[0; 32]);
        let b = volume_keys(&DerivedKey([1; 32]), "b", &[0; 32]);
        assert_ne!(a.data, b.data);
        assert_ne!(a.data, keys(1).data);
        assert_eq!(format!("{a:?}"), "VolumeKeys(…)");
    }

    #[test]
    fn integrity_superblock_and_tables() {
        let mut sb = [0u8; 512];
        sb[..8].copy_from_slice(b"integrt\0");
        sb[8] = 5;
        sb[10..12].copy_from_slice(&32u16.to_le_bytes());
        sb[16..24].copy_from_slice(&123_456u64.to_le_bytes());
        sb[28] = 3;
        let parsed = IntegritySuperblock::parse(&sb).unwrap();
        assert_eq!(parsed.provided_data_sectors, 123_456);
        let mut bad = sb;
        bad[10] = 28;
        assert!(matches!(
            IntegritySuperblock::parse(&bad),
            Err(IntegrityError::Mismatch {
                field: "tag size",
                ..
            })
        ));
        let mut bad = sb;
        bad[0] = b'x';
        assert!(matches!(
            IntegritySuperblock::parse(&bad),
            Err(IntegrityError::Magic { .. })
        ));
        assert_eq!(
            integrity_target("254:16", 1000).to_string(),
            "0 1000 integrity 254:16 8 32 J 1 block_size:4096"
        );
        let k = keys(1);
        let line = crypt_target("253:0", 1000, &k).to_string();
        assert!(
            line.starts_with("0 1000 crypt capi:aegis128-random "),
            "{line}"
        );
        assert!(
            line.ends_with(" 0 253:0 0 2 integrity:32:aead sector_size:4096"),
            "{line}"
        );
        assert_eq!(
            line.split(' ').nth(4).unwrap().len(),
            32,
            "a 16-byte key in hex"
        );
    }
}
