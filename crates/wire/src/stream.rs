//! Reading a stream into whole buffers: what `Read::read_exact` does not say (how much arrived
//! before the end). The frame reader needs it, and so do the host's streaming hashers (the
//! dm-verity tree, the launch's kernel and initrd), which read the same way.

use std::io::{ErrorKind, Read};

/// Reads until `buf` is full or the reader ends, retrying when interrupted; returns how much was
/// read (less than `buf.len()` only at the end of the stream).
pub fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
