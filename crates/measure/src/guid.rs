//! GUIDs in the mixed-endian byte order that firmware tables store them in (EFI_GUID: the first
//! three fields little-endian, the last eight bytes as written).

/// Builds the on-disk bytes of `d1-d2-d3-d4[0..2]-d4[2..8]`.
pub(crate) const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

/// Text form (`96b582de-1fb2-45f7-baea-a366c55a082d`) of on-disk GUID bytes, for messages.
pub(crate) fn display(bytes: &[u8; 16]) -> String {
    let d1 = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let d2 = u16::from_le_bytes([bytes[4], bytes[5]]);
    let d3 = u16::from_le_bytes([bytes[6], bytes[7]]);
    format!(
        "{d1:08x}-{d2:04x}-{d3:04x}-{}-{}",
        hex::encode(&bytes[8..10]),
        hex::encode(&bytes[10..16])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let g = guid(
            0x96b582de,
            0x1fb2,
            0x45f7,
            [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
        );
        assert_eq!(display(&g), "96b582de-1fb2-45f7-baea-a366c55a082d");
        assert_eq!(g[0], 0xde);
    }
}
