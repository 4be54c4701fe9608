//! TCB_VERSION: the security patch levels of the firmware components, as one little-endian u64.

use crate::product::TcbLayout;
use serde::Serialize;
use std::fmt;

/// A decoded TCB_VERSION. `fmc` exists on Turin only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tcb {
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
    /// The raw 64-bit value, as in the report.
    pub raw: u64,
}

impl Tcb {
    pub fn decode(raw: u64, layout: TcbLayout) -> Tcb {
        let b = raw.to_le_bytes();
        match layout {
            TcbLayout::PreTurin => Tcb {
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
                raw,
            },
            TcbLayout::Turin => Tcb {
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
                raw,
            },
        }
    }

    /// Bytes of the raw value that no component uses in this layout; real firmware leaves them zero.
    pub fn reserved_bits(raw: u64, layout: TcbLayout) -> u64 {
        match layout {
            TcbLayout::PreTurin => raw & 0x0000_FFFF_FFFF_0000,
            TcbLayout::Turin => raw & 0x00FF_FFFF_0000_0000,
        }
    }

    /// Build the raw value from components (used by the emulated PSP).
    pub fn encode(
        fmc: Option<u8>,
        bootloader: u8,
        tee: u8,
        snp: u8,
        microcode: u8,
        layout: TcbLayout,
    ) -> u64 {
        let mut b = [0u8; 8];
        match layout {
            TcbLayout::PreTurin => {
                b[0] = bootloader;
                b[1] = tee;
                b[6] = snp;
                b[7] = microcode;
            }
            TcbLayout::Turin => {
                b[0] = fmc.unwrap_or(0);
                b[1] = bootloader;
                b[2] = tee;
                b[3] = snp;
                b[7] = microcode;
            }
        }
        u64::from_le_bytes(b)
    }

    /// The components by name, in the order AMD lists them in KDS URLs and certificates.
    pub fn components(&self) -> Vec<(&'static str, u8)> {
        let mut v = Vec::with_capacity(5);
        if let Some(fmc) = self.fmc {
            v.push(("fmc", fmc));
        }
        v.extend([
            ("bootloader", self.bootloader),
            ("tee", self.tee),
            ("snp", self.snp),
            ("microcode", self.microcode),
        ]);
        v
    }
}

impl fmt::Display for Tcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc={fmc} ")?;
        }
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_milan_and_turin_layouts_from_vectors() {
        // trustee test-report reported_tcb and oak turin_oc reported_tcb (REPORTS-VERIFIED.txt).
        let milan = Tcb::decode(0x7308000000000003, TcbLayout::PreTurin);
        assert_eq!(
            (
                milan.fmc,
                milan.bootloader,
                milan.tee,
                milan.snp,
                milan.microcode
            ),
            (None, 3, 0, 8, 115)
        );
        let turin = Tcb::decode(0x4700000002000100, TcbLayout::Turin);
        assert_eq!(
            (
                turin.fmc,
                turin.bootloader,
                turin.tee,
                turin.snp,
                turin.microcode
            ),
            (Some(0), 1, 0, 2, 71)
        );
    }

    #[test]
    fn encode_inverts_decode() {
        for layout in [TcbLayout::PreTurin, TcbLayout::Turin] {
            let raw = Tcb::encode(Some(4), 3, 2, 9, 200, layout);
            let t = Tcb::decode(raw, layout);
            assert_eq!((t.bootloader, t.tee, t.snp, t.microcode), (3, 2, 9, 200));
            assert_eq!(Tcb::reserved_bits(raw, layout), 0);
        }
    }
}
