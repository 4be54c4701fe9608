//! GUIDs in the byte order firmware and GHCB tables store them in, shared by the certificate
//! table ([`crate::certs`]) and the measurement's OVMF and hashes-page tables (`snpkit-measure`).

use std::fmt;

/// A GUID as its 16 bytes are stored in firmware and GHCB tables (EFI_GUID byte order: the first
/// three fields little-endian, the last eight bytes as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The GUID written in its canonical text form (`c0b406a4-a803-4952-9743-3fb6014cd0ae`), as
    /// specifications print them. For constants, evaluated at compile time: malformed text panics
    /// there, so never pass it text from outside.
    pub const fn from_text(text: &str) -> Guid {
        let t = text.as_bytes();
        assert!(t.len() == 36, "GUID text is 36 characters");
        // Text digits pair positions, in the order they are written.
        let mut fields = [0u8; 16];
        let mut i = 0;
        let mut out = 0;
        while i < 36 {
            if t[i] == b'-' {
                i += 1;
                continue;
            }
            fields[out] = (hex_digit(t[i]) << 4) | hex_digit(t[i + 1]);
            out += 1;
            i += 2;
        }
        // EFI byte order: data1 (4 bytes), data2 and data3 (2 bytes each) little-endian.
        let mut b = fields;
        b[0] = fields[3];
        b[1] = fields[2];
        b[2] = fields[1];
        b[3] = fields[0];
        b[4] = fields[5];
        b[5] = fields[4];
        b[6] = fields[7];
        b[7] = fields[6];
        Guid(b)
    }
}

const fn hex_digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("GUID text has a non-hex digit"),
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        for byte in &b[10..] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_in_efi_byte_order() {
        let g = Guid::from_text("96b582de-1fb2-45f7-baea-a366c55a082d");
        assert_eq!(
            g.0,
            [
                0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a,
                0x08, 0x2d
            ]
        );
        assert_eq!(g.to_string(), "96b582de-1fb2-45f7-baea-a366c55a082d");
        assert_eq!(
            Guid::from_text("96B582DE-1FB2-45F7-BAEA-A366C55A082D"),
            g,
            "upper-case digits"
        );
    }
}
