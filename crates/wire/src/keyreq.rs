//! MSG_KEY_REQ and MSG_KEY_RSP: a guest asks the PSP for a key derived from a root key the chip
//! keeps and from launch fields the guest selects (SEV-SNP firmware ABI, "MSG_KEY_REQ Message
//! Structure" and "MSG_KEY_RSP Message Structure"; Linux `SNP_GET_DERIVED_KEY`,
//! `struct snp_derived_key_req` / `struct snp_derived_key_resp` in
//! `include/uapi/linux/sev-guest.h`). The same bytes travel in the emulated PSP's
//! [`crate::frame::Kind::KeyRequest`] and [`crate::frame::Kind::KeyResponse`] frames.
//!
//! ## MSG_KEY_REQ: 32 bytes, little-endian (the kernel's `struct snp_derived_key_req`)
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0x00 | 4 | bit 0 ROOT_KEY_SEL (0: the endorsement key KEY_SEL names, 1: VMRK); bits 2:1 KEY_SEL (0: VLEK if one is installed, else VCEK; 1: VCEK; 2: VLEK; 3 reserved); bits 31:3 reserved, zero |
//! | 0x04 | 4 | reserved, zero |
//! | 0x08 | 8 | GUEST_FIELD_SELECT ([`FieldSelect`]): bit 0 guest policy, 1 image ID, 2 family ID, 3 measurement, 4 guest SVN, 5 TCB version, 6 launch mitigation vector; bits 63:7 reserved, zero |
//! | 0x10 | 4 | VMPL mixed into the key: at least the caller's VMPL, at most 3 |
//! | 0x14 | 4 | GUEST_SVN mixed into the key (if selected): at most the launch's (ID block) |
//! | 0x18 | 8 | TCB_VERSION mixed into the key (if selected): no component above the committed TCB's |
//!
//! The ABI (1.58) grew the message by LAUNCH_MIT_VECTOR at 0x20; the kernel's uapi still carries
//! 32 bytes, so a guest going through `/dev/sev-guest` cannot pass one. KEY_SEL arrived with VLEKs:
//! firmware older than that reserves bits 2:1. With KEY_SEL 0 a platform that has a VLEK installed
//! derives from the VLEK, which a cloud provider loads into many chips: a key meant for "this chip"
//! must say KEY_SEL = VCEK ([`KeySel::Vcek`]).
//!
//! ## MSG_KEY_RSP: 64 bytes (the kernel's `struct snp_derived_key_resp`)
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0x00 | 4 | STATUS: 0 success, otherwise an SEV status code ([`KeyStatus`]) |
//! | 0x04 | 28 | reserved, zero |
//! | 0x20 | 32 | DERIVED_KEY (zero unless STATUS is 0) |
//!
//! Decoding is strict both ways: a reserved bit or byte that is not zero, an unknown field bit,
//! a reserved KEY_SEL or a VMPL above 3 is an error that names it, and whatever decodes encodes to
//! the same bytes. A PSP answers such a request with STATUS = INVALID_PARAM; the emulated PSP does.

use std::fmt;
use std::ops::BitOr;

/// Size of MSG_KEY_REQ as the kernel passes it.
pub const KEY_REQUEST_LEN: usize = 32;
/// Size of MSG_KEY_RSP as the kernel returns it.
pub const KEY_RESPONSE_LEN: usize = 64;
/// Size of a derived key.
pub const DERIVED_KEY_LEN: usize = 32;
/// Highest VMPL.
pub const MAX_VMPL: u32 = 3;

/// Which root key the derivation starts from (bit 0 of the first word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootKey {
    /// The chip's endorsement key named by [`KeySel`] (VCEK or VLEK).
    Endorsement,
    /// The VM root key (a migration agent's; guests launched without one have none).
    Vmrk,
}

/// Which endorsement key (bits 2:1 of the first word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySel {
    /// The VLEK if the platform has one installed, else the VCEK.
    VlekOrVcek = 0,
    /// The VCEK: a key of this chip alone.
    Vcek = 1,
    /// The VLEK (shared by the chips a cloud provider loaded it into).
    Vlek = 2,
}

/// GUEST_FIELD_SELECT: which launch fields are mixed into the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldSelect(u64);

impl FieldSelect {
    pub const NONE: FieldSelect = FieldSelect(0);
    pub const POLICY: FieldSelect = FieldSelect(1 << 0);
    pub const IMAGE_ID: FieldSelect = FieldSelect(1 << 1);
    pub const FAMILY_ID: FieldSelect = FieldSelect(1 << 2);
    pub const MEASUREMENT: FieldSelect = FieldSelect(1 << 3);
    pub const GUEST_SVN: FieldSelect = FieldSelect(1 << 4);
    pub const TCB_VERSION: FieldSelect = FieldSelect(1 << 5);
    pub const LAUNCH_MIT_VECTOR: FieldSelect = FieldSelect(1 << 6);
    /// Every bit the ABI defines; the rest is reserved.
    pub const KNOWN: FieldSelect = FieldSelect((1 << 7) - 1);
    /// The bits in ABI order, with their names.
    pub const NAMED: [(FieldSelect, &'static str); 7] = [
        (FieldSelect::POLICY, "policy"),
        (FieldSelect::IMAGE_ID, "image_id"),
        (FieldSelect::FAMILY_ID, "family_id"),
        (FieldSelect::MEASUREMENT, "measurement"),
        (FieldSelect::GUEST_SVN, "guest_svn"),
        (FieldSelect::TCB_VERSION, "tcb_version"),
        (FieldSelect::LAUNCH_MIT_VECTOR, "launch_mit_vector"),
    ];

    /// Only the ABI's bits; `None` if any reserved bit is set.
    pub fn from_bits(bits: u64) -> Option<FieldSelect> {
        (bits & !FieldSelect::KNOWN.0 == 0).then_some(FieldSelect(bits))
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    pub const fn union(self, other: FieldSelect) -> FieldSelect {
        FieldSelect(self.0 | other.0)
    }

    pub fn contains(self, other: FieldSelect) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for FieldSelect {
    type Output = FieldSelect;
    fn bitor(self, rhs: FieldSelect) -> FieldSelect {
        FieldSelect(self.0 | rhs.0)
    }
}

impl fmt::Debug for FieldSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldSelect({self})")
    }
}

/// `policy|measurement|tcb_version`, or `none`.
impl fmt::Display for FieldSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = FieldSelect::NAMED
            .iter()
            .filter(|(bit, _)| self.contains(*bit))
            .map(|(_, name)| *name)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// Whether no component of `tcb` is above `bound`'s. TCB_VERSION components are one byte each in
/// every product's layout (Milan and Genoa: bootloader, TEE, four reserved, SNP, microcode;
/// Turin: FMC, bootloader, TEE, SNP, three reserved, microcode), so this is a byte-wise comparison
/// in any layout — and not the numeric one (a higher bootloader SPL with a lower microcode SPL is
/// not "at most").
pub fn tcb_at_most(tcb: u64, bound: u64) -> bool {
    tcb.to_le_bytes()
        .iter()
        .zip(bound.to_le_bytes())
        .all(|(t, b)| *t <= b)
}

/// A well-formed MSG_KEY_REQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRequest {
    pub root: RootKey,
    pub key_sel: KeySel,
    pub fields: FieldSelect,
    pub vmpl: u32,
    pub guest_svn: u32,
    /// A TCB_VERSION in the platform's layout (one byte per component).
    pub tcb_version: u64,
}

/// Why 32 bytes are not a well-formed MSG_KEY_REQ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRequestError {
    #[error("MSG_KEY_REQ is {KEY_REQUEST_LEN} bytes, not {found}")]
    Size { found: usize },
    #[error("MSG_KEY_REQ's first word {found:#x} sets reserved bits 31:3")]
    RootKeyReserved { found: u32 },
    #[error("MSG_KEY_REQ's KEY_SEL is 3, which the ABI reserves")]
    KeySelReserved,
    #[error("MSG_KEY_REQ's reserved word at 0x04 is {found:#x}, must be zero")]
    Reserved { found: u32 },
    #[error("MSG_KEY_REQ's GUEST_FIELD_SELECT {found:#x} sets reserved bits {bits:#x}")]
    UnknownFields { found: u64, bits: u64 },
    #[error("MSG_KEY_REQ asks for VMPL {found}; VMPLs are 0..={MAX_VMPL}")]
    Vmpl { found: u32 },
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

impl KeyRequest {
    pub fn encode(&self) -> [u8; KEY_REQUEST_LEN] {
        let mut b = [0u8; KEY_REQUEST_LEN];
        let root = match self.root {
            RootKey::Endorsement => 0u32,
            RootKey::Vmrk => 1,
        };
        let select = root | (self.key_sel as u32) << 1;
        b[0x00..0x04].copy_from_slice(&select.to_le_bytes());
        b[0x08..0x10].copy_from_slice(&self.fields.bits().to_le_bytes());
        b[0x10..0x14].copy_from_slice(&self.vmpl.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&self.guest_svn.to_le_bytes());
        b[0x18..0x20].copy_from_slice(&self.tcb_version.to_le_bytes());
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<KeyRequest, KeyRequestError> {
        if bytes.len() != KEY_REQUEST_LEN {
            return Err(KeyRequestError::Size { found: bytes.len() });
        }
        let select = u32_at(bytes, 0x00);
        if select & !0b111 != 0 {
            return Err(KeyRequestError::RootKeyReserved { found: select });
        }
        let root = if select & 1 == 0 {
            RootKey::Endorsement
        } else {
            RootKey::Vmrk
        };
        let key_sel = match (select >> 1) & 0b11 {
            0 => KeySel::VlekOrVcek,
            1 => KeySel::Vcek,
            2 => KeySel::Vlek,
            _ => return Err(KeyRequestError::KeySelReserved),
        };
        let reserved = u32_at(bytes, 0x04);
        if reserved != 0 {
            return Err(KeyRequestError::Reserved { found: reserved });
        }
        let raw_fields = u64_at(bytes, 0x08);
        let fields = FieldSelect::from_bits(raw_fields).ok_or(KeyRequestError::UnknownFields {
            found: raw_fields,
            bits: raw_fields & !FieldSelect::KNOWN.bits(),
        })?;
        let vmpl = u32_at(bytes, 0x10);
        if vmpl > MAX_VMPL {
            return Err(KeyRequestError::Vmpl { found: vmpl });
        }
        Ok(KeyRequest {
            root,
            key_sel,
            fields,
            vmpl,
            guest_svn: u32_at(bytes, 0x14),
            tcb_version: u64_at(bytes, 0x18),
        })
    }
}

/// MSG_KEY_RSP's STATUS: an SEV firmware status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyStatus(pub u32);

impl KeyStatus {
    pub const SUCCESS: KeyStatus = KeyStatus(0x00);
    /// A field of the request is out of range or reserved bits are set.
    pub const INVALID_PARAM: KeyStatus = KeyStatus(0x16);
    /// The selected root key does not exist on this platform (no VLEK installed, no VMRK).
    pub const INVALID_KEY: KeyStatus = KeyStatus(0x27);
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            KeyStatus::SUCCESS => "SUCCESS",
            KeyStatus::INVALID_PARAM => "INVALID_PARAM",
            KeyStatus::INVALID_KEY => "INVALID_KEY",
            _ => "an SEV status",
        };
        write!(f, "{:#x} ({name})", self.0)
    }
}

/// A key the PSP derived. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedKey(pub [u8; DERIVED_KEY_LEN]);

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(…)")
    }
}

/// A well-formed MSG_KEY_RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyResponse {
    Key(DerivedKey),
    /// A non-zero STATUS; the key bytes are zero.
    Refused(KeyStatus),
}

/// Why 64 bytes are not a well-formed MSG_KEY_RSP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyResponseError {
    #[error("MSG_KEY_RSP is {KEY_RESPONSE_LEN} bytes, not {found}")]
    Size { found: usize },
    #[error("MSG_KEY_RSP's reserved bytes 0x04..0x20 are not zero")]
    Reserved,
    #[error("MSG_KEY_RSP refuses with status {status} but carries key bytes")]
    KeyOnRefusal { status: KeyStatus },
}

impl KeyResponse {
    pub fn encode(&self) -> [u8; KEY_RESPONSE_LEN] {
        let mut b = [0u8; KEY_RESPONSE_LEN];
        match self {
            KeyResponse::Key(key) => b[0x20..0x40].copy_from_slice(&key.0),
            KeyResponse::Refused(status) => b[0x00..0x04].copy_from_slice(&status.0.to_le_bytes()),
        }
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<KeyResponse, KeyResponseError> {
        if bytes.len() != KEY_RESPONSE_LEN {
            return Err(KeyResponseError::Size { found: bytes.len() });
        }
        if bytes[0x04..0x20].iter().any(|&b| b != 0) {
            return Err(KeyResponseError::Reserved);
        }
        let status = KeyStatus(u32_at(bytes, 0x00));
        let mut key = [0u8; DERIVED_KEY_LEN];
        key.copy_from_slice(&bytes[0x20..0x40]);
        if status == KeyStatus::SUCCESS {
            return Ok(KeyResponse::Key(DerivedKey(key)));
        }
        if key.iter().any(|&b| b != 0) {
            return Err(KeyResponseError::KeyOnRefusal { status });
        }
        Ok(KeyResponse::Refused(status))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sealing() -> KeyRequest {
        KeyRequest {
            root: RootKey::Endorsement,
            key_sel: KeySel::Vcek,
            fields: FieldSelect::POLICY | FieldSelect::MEASUREMENT | FieldSelect::TCB_VERSION,
            vmpl: 0,
            guest_svn: 7,
            tcb_version: 0xdb18_0000_0000_0004,
        }
    }

    #[test]
    fn request_layout_is_the_kernels() {
        let b = sealing().encode();
        assert_eq!(
            &b[0..4],
            &[0b010, 0, 0, 0],
            "ROOT_KEY_SEL 0, KEY_SEL 1 (VCEK)"
        );
        assert_eq!(&b[4..8], &[0; 4]);
        assert_eq!(&b[8..16], &[0b10_1001, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..20], &[0; 4]);
        assert_eq!(&b[20..24], &[7, 0, 0, 0]);
        assert_eq!(&b[24..32], &[4, 0, 0, 0, 0, 0, 0x18, 0xdb]);
        assert_eq!(KeyRequest::decode(&b).unwrap(), sealing());
        let vmrk = KeyRequest {
            root: RootKey::Vmrk,
            key_sel: KeySel::Vlek,
            fields: FieldSelect::KNOWN,
            vmpl: 3,
            ..sealing()
        };
        let b = vmrk.encode();
        assert_eq!(b[0], 0b101);
        assert_eq!(b[8], 0x7f);
        assert_eq!(KeyRequest::decode(&b).unwrap(), vmrk);
    }

    #[test]
    fn every_reserved_bit_of_the_request_is_refused() {
        let good = sealing().encode();
        for bit in 3..32 {
            let mut b = good;
            b[0..4].copy_from_slice(&(0b010u32 | 1 << bit).to_le_bytes());
            assert!(matches!(
                KeyRequest::decode(&b),
                Err(KeyRequestError::RootKeyReserved { .. })
            ));
        }
        let mut b = good;
        b[0] = 0b110;
        assert_eq!(KeyRequest::decode(&b), Err(KeyRequestError::KeySelReserved));
        for at in 4..8 {
            let mut b = good;
            b[at] = 1;
            assert!(matches!(
                KeyRequest::decode(&b),
                Err(KeyRequestError::Reserved { .. })
            ));
        }
        for bit in 7..64 {
            let mut b = good;
            let fields = 0b10_1001u64 | 1 << bit;
            b[8..16].copy_from_slice(&fields.to_le_bytes());
            assert_eq!(
                KeyRequest::decode(&b),
                Err(KeyRequestError::UnknownFields {
                    found: fields,
                    bits: 1 << bit
                })
            );
        }
        let mut b = good;
        b[16] = 4;
        assert_eq!(
            KeyRequest::decode(&b),
            Err(KeyRequestError::Vmpl { found: 4 })
        );
        assert_eq!(
            KeyRequest::decode(&good[..31]),
            Err(KeyRequestError::Size { found: 31 })
        );
    }

    #[test]
    fn response_layout_and_strictness() {
        let key = KeyResponse::Key(DerivedKey([0xab; 32]));
        let b = key.encode();
        assert_eq!(&b[..32], &[0; 32]);
        assert_eq!(&b[32..], &[0xab; 32]);
        assert_eq!(KeyResponse::decode(&b).unwrap(), key);
        let refused = KeyResponse::Refused(KeyStatus::INVALID_PARAM);
        let b = refused.encode();
        assert_eq!(&b[..4], &[0x16, 0, 0, 0]);
        assert_eq!(KeyResponse::decode(&b).unwrap(), refused);
        let mut bad = b;
        bad[40] = 1;
        assert_eq!(
            KeyResponse::decode(&bad),
            Err(KeyResponseError::KeyOnRefusal {
                status: KeyStatus::INVALID_PARAM
            })
        );
        for at in 4..32 {
            let mut bad = key.encode();
            bad[at] = 1;
            assert_eq!(KeyResponse::decode(&bad), Err(KeyResponseError::Reserved));
        }
        assert_eq!(
            KeyResponse::decode(&[0; 65]),
            Err(KeyResponseError::Size { found: 65 })
        );
        assert_eq!(format!("{:?}", DerivedKey([1; 32])), "DerivedKey(…)");
        assert_eq!(KeyStatus(0x16).to_string(), "0x16 (INVALID_PARAM)");
    }

    #[test]
    fn field_select_names_and_bits() {
        assert_eq!(
            sealing().fields.to_string(),
            "policy|measurement|tcb_version"
        );
        assert_eq!(FieldSelect::NONE.to_string(), "none");
        assert_eq!(FieldSelect::from_bits(0x80), None);
        assert_eq!(FieldSelect::from_bits(0x7f), Some(FieldSelect::KNOWN));
        let all = FieldSelect::NAMED
            .iter()
            .fold(FieldSelect::NONE, |acc, (bit, _)| acc | *bit);
        assert_eq!(all, FieldSelect::KNOWN);
    }

    /// xorshift64*, as in `frame.rs`.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn accepted_bytes_are_canonical() {
        for seed in 1..20_000u64 {
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut req = [0u8; KEY_REQUEST_LEN];
            let mut rsp = [0u8; KEY_RESPONSE_LEN];
            // Sparse bytes, so the valid shapes come up often.
            for b in req.iter_mut().chain(rsp.iter_mut()) {
                if next(&mut state).is_multiple_of(4) {
                    *b = next(&mut state) as u8 & 0x0f;
                }
            }
            if let Ok(r) = KeyRequest::decode(&req) {
                assert_eq!(r.encode(), req);
            }
            if let Ok(r) = KeyResponse::decode(&rsp) {
                assert_eq!(r.encode(), rsp);
            }
        }
    }
}
