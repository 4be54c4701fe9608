//! The emulated PSP's MSG_KEY_REQ: the ABI's checks and refusals, then a key derived from the
//! emulated chip's secret ([`ChipSecret`]) and the launch fields the guest selected.
//!
//! **AMD's KDF is not public.** This one is our own; only its properties carry over to hardware,
//! and those are what the tests pin:
//! - the same chip, launch and request give the same key, every time;
//! - every selected field changes the key, and so do the root key, the VMPL and the chip;
//! - a field that is not selected does not take part (with nothing selected, every guest on the
//!   chip at that VMPL gets the same key);
//! - what the ABI refuses is refused with its status: a reserved bit or byte, an unknown field
//!   bit, a reserved KEY_SEL or a VMPL above 3 (INVALID_PARAM), a VMPL below the caller's, a guest
//!   SVN above the launch's, a TCB component above the committed TCB's (INVALID_PARAM), a root
//!   key the platform lacks — the emulated chip has no VLEK and the emulated launch no migration
//!   agent, hence no VMRK (INVALID_KEY).
//!
//! Keys derived here differ from a real chip's for the same inputs, so a volume sealed under
//! emulation never opens on hardware, nor the other way round.
//!
//! The derivation: HKDF-SHA-256 with the chip secret as input keying material, the salt
//! `"snpkit emulated PSP chip key v1"`, and as info `"snpkit MSG_KEY_REQ v1\0"` followed by the
//! root key (one byte, 0 for the VCEK), the VMPL (u32), GUEST_FIELD_SELECT (u64), then each
//! selected field in ABI bit order, fixed-size and little-endian: policy (u64), image ID (16),
//! family ID (16), measurement (48), the request's guest SVN (u32), the request's TCB version
//! (u64), the launch mitigation vector (u64). The field select is in the info and every field has
//! a fixed size, so two different selections or values never give the same info.
//!
//! Guest SVN and TCB version are the values the *request* names (the ABI mixes those, after
//! checking them against the launch's SVN and the committed TCB), so a guest can derive the key of
//! an older TCB after a firmware update but never of a newer one. The launch mitigation vector is
//! the launch's own: the kernel's 32-byte request has no room for the guest-provided value the
//! ABI 1.58 layout carries at 0x20. Bounds on guest SVN and TCB are checked whether or not the
//! field is selected (the ABI states them for the fields, not for the selection).

use super::chip_secret::ChipSecret;
use super::report::ReportFields;
use hkdf::Hkdf;
use sha2::Sha256;
pub use snpkit_wire::keyreq::tcb_at_most;
use snpkit_wire::keyreq::{
    DERIVED_KEY_LEN, DerivedKey, FieldSelect, KeyRequest, KeyResponse, KeySel, KeyStatus, RootKey,
};

const SALT: &[u8] = b"snpkit emulated PSP chip key v1";
const INFO_TAG: &[u8] = b"snpkit MSG_KEY_REQ v1\0";

/// The launch as the emulated PSP knows it: what a real PSP keeps in the guest's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestContext {
    pub policy: u64,
    pub image_id: [u8; 16],
    pub family_id: [u8; 16],
    /// The launch digest computed from exactly what QEMU was given.
    pub measurement: [u8; 48],
    /// The ID block's guest SVN (0 without an ID block).
    pub guest_svn: u32,
    /// The mitigation vector at launch (0: the emulated platform reports none).
    pub launch_mit_vector: u64,
    /// The VMPL the request comes from (0: no SVSM under emulation).
    pub caller_vmpl: u32,
    /// The platform's committed TCB, raw (the test chain's).
    pub committed_tcb: u64,
}

impl GuestContext {
    /// A launch without ID block, SVSM or mitigation vector.
    pub fn new(measurement: [u8; 48], policy: u64, committed_tcb: u64) -> GuestContext {
        GuestContext {
            policy,
            image_id: [0; 16],
            family_id: [0; 16],
            measurement,
            guest_svn: 0,
            launch_mit_vector: 0,
            caller_vmpl: 0,
            committed_tcb,
        }
    }

    /// The launch a report of `fields` describes (policy, IDs, measurement, guest SVN), called
    /// at VMPL 0 on a platform whose committed TCB is `committed_tcb`, so that the emulated PSP's
    /// keys and reports speak of the same guest.
    pub fn of_launch(fields: &ReportFields, committed_tcb: u64) -> GuestContext {
        GuestContext {
            policy: fields.policy,
            image_id: fields.image_id,
            family_id: fields.family_id,
            measurement: fields.measurement,
            guest_svn: fields.guest_svn,
            launch_mit_vector: 0,
            caller_vmpl: 0,
            committed_tcb,
        }
    }
}

/// Answers one MSG_KEY_REQ (the 32 bytes as the guest sent them) as a PSP would.
pub fn answer(secret: &ChipSecret, guest: &GuestContext, request: &[u8]) -> KeyResponse {
    match KeyRequest::decode(request) {
        Ok(request) => derive(secret, guest, &request),
        Err(_) => KeyResponse::Refused(KeyStatus::INVALID_PARAM),
    }
}

/// Answers a well-formed request: refusals first, then the key.
pub fn derive(secret: &ChipSecret, guest: &GuestContext, request: &KeyRequest) -> KeyResponse {
    if request.root == RootKey::Vmrk || request.key_sel == KeySel::Vlek {
        return KeyResponse::Refused(KeyStatus::INVALID_KEY);
    }
    let in_range = request.vmpl >= guest.caller_vmpl
        && request.guest_svn <= guest.guest_svn
        && tcb_at_most(request.tcb_version, guest.committed_tcb);
    if !in_range {
        return KeyResponse::Refused(KeyStatus::INVALID_PARAM);
    }
    let mut info = INFO_TAG.to_vec();
    // The VCEK: KEY_SEL 0 names it too, because the emulated chip has no VLEK.
    info.push(0);
    info.extend_from_slice(&request.vmpl.to_le_bytes());
    info.extend_from_slice(&request.fields.bits().to_le_bytes());
    let f = request.fields;
    if f.contains(FieldSelect::POLICY) {
        info.extend_from_slice(&guest.policy.to_le_bytes());
    }
    if f.contains(FieldSelect::IMAGE_ID) {
        info.extend_from_slice(&guest.image_id);
    }
    if f.contains(FieldSelect::FAMILY_ID) {
        info.extend_from_slice(&guest.family_id);
    }
    if f.contains(FieldSelect::MEASUREMENT) {
        info.extend_from_slice(&guest.measurement);
    }
    if f.contains(FieldSelect::GUEST_SVN) {
        info.extend_from_slice(&request.guest_svn.to_le_bytes());
    }
    if f.contains(FieldSelect::TCB_VERSION) {
        info.extend_from_slice(&request.tcb_version.to_le_bytes());
    }
    if f.contains(FieldSelect::LAUNCH_MIT_VECTOR) {
        info.extend_from_slice(&guest.launch_mit_vector.to_le_bytes());
    }
    let hk = Hkdf::<Sha256>::new(Some(SALT), secret.bytes());
    let mut key = [0u8; DERIVED_KEY_LEN];
    // 32 bytes is far below HKDF-SHA-256's limit of 255 × 32.
    if hk.expand(&info, &mut key).is_err() {
        return KeyResponse::Refused(KeyStatus::INVALID_PARAM);
    }
    KeyResponse::Key(DerivedKey(key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// xorshift64*, deterministic: the same cases on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes<const N: usize>(&mut self) -> [u8; N] {
            let mut b = [0u8; N];
            b.iter_mut().for_each(|x| *x = self.next() as u8);
            b
        }
    }

    const TCB: u64 = 0xdb18_0000_0000_0004; // ucode 0xdb, snp 0x18, tee 0, bootloader 4

    fn random_case(rng: &mut Rng) -> (ChipSecret, GuestContext, KeyRequest) {
        let guest = GuestContext {
            policy: rng.next(),
            image_id: rng.bytes(),
            family_id: rng.bytes(),
            measurement: rng.bytes(),
            guest_svn: 1 + (rng.next() % 100) as u32,
            launch_mit_vector: rng.next(),
            caller_vmpl: (rng.next() % 4) as u32,
            committed_tcb: TCB,
        };
        let request = KeyRequest {
            root: RootKey::Endorsement,
            key_sel: if rng.next().is_multiple_of(2) {
                KeySel::Vcek
            } else {
                KeySel::VlekOrVcek
            },
            fields: FieldSelect::from_bits(rng.next() & 0x7f).unwrap(),
            vmpl: guest.caller_vmpl + (rng.next() % u64::from(4 - guest.caller_vmpl)) as u32,
            guest_svn: (rng.next() % u64::from(guest.guest_svn + 1)) as u32,
            // Each component at most the committed one.
            tcb_version: u64::from_le_bytes(TCB.to_le_bytes().map(|b| {
                if b == 0 {
                    0
                } else {
                    (rng.next() % (u64::from(b) + 1)) as u8
                }
            })),
        };
        (ChipSecret::from_bytes(rng.bytes()), guest, request)
    }

    fn key(secret: &ChipSecret, guest: &GuestContext, request: &KeyRequest) -> [u8; 32] {
        match derive(secret, guest, request) {
            KeyResponse::Key(DerivedKey(k)) => k,
            KeyResponse::Refused(s) => panic!("refused with {s}: {request:?} {guest:?}"),
        }
    }

    /// Changes the field behind one selection bit, in the launch or in the request.
    fn mutate(bit: FieldSelect, guest: &mut GuestContext, request: &mut KeyRequest) {
        match bit {
            FieldSelect::POLICY => guest.policy ^= 1 << 16,
            FieldSelect::IMAGE_ID => guest.image_id[15] ^= 1,
            FieldSelect::FAMILY_ID => guest.family_id[0] ^= 0x80,
            FieldSelect::MEASUREMENT => guest.measurement[47] ^= 1,
            // Stays within the bound either way.
            FieldSelect::GUEST_SVN => {
                request.guest_svn = if request.guest_svn == 0 {
                    1
                } else {
                    request.guest_svn - 1
                }
            }
            FieldSelect::TCB_VERSION => {
                request.tcb_version = if request.tcb_version & 0xff == 0 {
                    request.tcb_version | 1
                } else {
                    request.tcb_version - 1
                }
            }
            FieldSelect::LAUNCH_MIT_VECTOR => guest.launch_mit_vector ^= 1 << 40,
            _ => unreachable!("one bit at a time"),
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_key() {
        let mut rng = Rng(0x5eed);
        for _ in 0..500 {
            let (secret, guest, request) = random_case(&mut rng);
            let k = key(&secret, &guest, &request);
            assert_eq!(k, key(&secret.clone(), &guest.clone(), &request));
            // Through the ABI bytes, as the frame carries them.
            assert_eq!(
                answer(&secret, &guest, &request.encode()),
                KeyResponse::Key(DerivedKey(k))
            );
        }
        // And a secret read back from its file.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chip");
        let stored = ChipSecret::load_or_create(&dir).unwrap();
        let (_, guest, request) = random_case(&mut rng);
        assert_eq!(
            key(&stored, &guest, &request),
            key(&ChipSecret::load(&dir).unwrap(), &guest, &request)
        );
    }

    #[test]
    fn every_selected_field_changes_the_key_and_no_unselected_one_does() {
        let mut rng = Rng(0xfeed);
        for _ in 0..300 {
            let (secret, guest, request) = random_case(&mut rng);
            let k = key(&secret, &guest, &request);
            for (bit, name) in FieldSelect::NAMED {
                let (mut g, mut r) = (guest.clone(), request);
                mutate(bit, &mut g, &mut r);
                let changed = key(&secret, &g, &r) != k;
                assert_eq!(
                    changed,
                    request.fields.contains(bit),
                    "{name} (selected: {}) {request:?}",
                    request.fields
                );
            }
        }
    }

    #[test]
    fn root_vmpl_selection_and_chip_change_the_key() {
        let mut rng = Rng(0xbeef);
        for _ in 0..200 {
            let (secret, guest, request) = random_case(&mut rng);
            let k = key(&secret, &guest, &request);
            assert_ne!(
                key(&ChipSecret::random(), &guest, &request),
                k,
                "another chip"
            );
            if request.vmpl < 3 {
                let r = KeyRequest {
                    vmpl: request.vmpl + 1,
                    ..request
                };
                assert_ne!(key(&secret, &guest, &r), k, "VMPL");
            }
            // Selecting one more field changes the key even when the field's value is zero.
            for (bit, name) in FieldSelect::NAMED {
                if !request.fields.contains(bit) {
                    let r = KeyRequest {
                        fields: request.fields | bit,
                        ..request
                    };
                    assert_ne!(key(&secret, &guest, &r), k, "selecting {name}");
                }
            }
            // KEY_SEL 0 is the VCEK on a chip without a VLEK: the same key as KEY_SEL 1.
            let other_sel = KeyRequest {
                key_sel: match request.key_sel {
                    KeySel::Vcek => KeySel::VlekOrVcek,
                    _ => KeySel::Vcek,
                },
                ..request
            };
            assert_eq!(key(&secret, &guest, &other_sel), k);
        }
        // Nothing selected: any two guests on the chip at the same VMPL share the key.
        let (secret, guest, mut request) = random_case(&mut rng);
        request.fields = FieldSelect::NONE;
        let mut other = guest.clone();
        other.measurement = [0x42; 48];
        other.policy ^= 0xffff;
        assert_eq!(
            key(&secret, &guest, &request),
            key(&secret, &other, &request)
        );
    }

    #[test]
    fn the_abis_refusals_carry_its_status() {
        let mut rng = Rng(0xdead);
        let invalid = KeyResponse::Refused(KeyStatus::INVALID_PARAM);
        for _ in 0..200 {
            let (secret, mut guest, request) = random_case(&mut rng);
            // A VMPL below the caller's.
            guest.caller_vmpl = 1 + (rng.next() % 3) as u32;
            let low = KeyRequest {
                vmpl: guest.caller_vmpl - 1,
                ..request
            };
            assert_eq!(
                derive(&secret, &guest, &low),
                invalid,
                "VMPL below the caller's"
            );
            guest.caller_vmpl = 0;
            // A guest SVN above the launch's.
            let svn = KeyRequest {
                guest_svn: guest.guest_svn + 1 + (rng.next() % 10) as u32,
                ..request
            };
            assert_eq!(derive(&secret, &guest, &svn), invalid, "guest SVN");
            // Any TCB component above the committed one, the others equal or below.
            for byte in 0..8 {
                let mut t = TCB.to_le_bytes();
                if t[byte] == 0xff {
                    continue;
                }
                t[byte] += 1;
                let tcb = KeyRequest {
                    tcb_version: u64::from_le_bytes(t),
                    ..request
                };
                assert_eq!(derive(&secret, &guest, &tcb), invalid, "TCB byte {byte}");
            }
        }
        let (secret, guest, request) = random_case(&mut rng);
        // Reserved bits and bytes, unknown field bits, KEY_SEL 3, VMPL 4: as bytes.
        let good = request.encode();
        let mut cases = Vec::new();
        for (at, value) in [
            (0usize, 0x08u8),
            (0, 0x06),
            (3, 0x80),
            (4, 1),
            (7, 1),
            (9, 1),
            (15, 0x80),
            (16, 4),
        ] {
            let mut b = good;
            b[at] |= value;
            cases.push(b);
        }
        for b in cases {
            assert_eq!(answer(&secret, &guest, &b), invalid, "{b:02x?}");
        }
        assert_eq!(answer(&secret, &guest, &good[..31]), invalid);
        // Root keys the emulated platform does not have.
        let vmrk = KeyRequest {
            root: RootKey::Vmrk,
            ..request
        };
        let vlek = KeyRequest {
            key_sel: KeySel::Vlek,
            ..request
        };
        for r in [vmrk, vlek] {
            assert_eq!(
                derive(&secret, &guest, &r),
                KeyResponse::Refused(KeyStatus::INVALID_KEY)
            );
        }
    }

    #[test]
    fn tcb_bounds_are_per_component() {
        assert!(tcb_at_most(TCB, TCB));
        assert!(tcb_at_most(0, TCB));
        assert!(tcb_at_most(0xda18_0000_0000_0003, TCB));
        // Numerically smaller, but the bootloader component is above the committed one.
        assert!(!tcb_at_most(0xda18_0000_0000_0005, TCB));
        assert!(!tcb_at_most(0xdc00_0000_0000_0000, TCB));
    }
}
