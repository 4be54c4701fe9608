//! Reading a stream into whole buffers: what `Read::read_exact` does not say (how much arrived
//! before the end), which the frame reader needs, and the read-ahead thread that lets the host's
//! streaming hashers (the dm-verity tree, the launch's kernel and initrd) hash one buffer while
//! the next is read.

use std::io::{ErrorKind, Read};
use std::sync::mpsc::sync_channel;

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

/// Reads `reader` to its end on a thread of its own, into `buffers` recycled buffers of `chunk`
/// bytes, and hands each filled part to `f` on the calling thread, in order, so that reading
/// overlaps what `f` does (hashing). Every part but the last is exactly `chunk` bytes; none is
/// empty. Returns how many bytes were read. A panic of the reading thread is passed on.
pub fn read_ahead<R: Read + Send>(
    mut reader: R,
    chunk: usize,
    buffers: usize,
    mut f: impl FnMut(&[u8]),
) -> std::io::Result<u64> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(buffers);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(buffers);
        for _ in 0..buffers {
            // Cannot fail: the receiver is alive and the channel has room for every buffer.
            let _ = empty_tx.send(vec![0u8; chunk]);
        }
        let read = scope.spawn(move || -> std::io::Result<u64> {
            let mut total = 0u64;
            while let Ok(mut buf) = empty_rx.recv() {
                let filled = read_full(&mut reader, &mut buf)?;
                total += filled as u64;
                let end = filled < buf.len();
                if filled > 0 && full_tx.send((buf, filled)).is_err() {
                    break;
                }
                if end {
                    break;
                }
            }
            Ok(total)
        });
        for (buf, filled) in full_rx {
            f(&buf[..filled]);
            let _ = empty_tx.send(buf);
        }
        match read.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn read_ahead_hands_over_every_byte_in_order_in_whole_chunks() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for (chunk, buffers) in [(1, 1), (7, 2), (4096, 4), (10_000, 3), (20_000, 2)] {
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            let total = read_ahead(&data[..], chunk, buffers, |part| {
                got.extend_from_slice(part);
                sizes.push(part.len());
            })
            .unwrap();
            assert_eq!(total, data.len() as u64);
            assert_eq!(got, data, "chunk {chunk}");
            let (last, rest) = sizes.split_last().unwrap();
            assert!(rest.iter().all(|&n| n == chunk) && *last > 0 && *last <= chunk);
        }
        let total = read_ahead(&[][..], 16, 2, |_| panic!("no part of nothing")).unwrap();
        assert_eq!(total, 0);
    }

    #[test]
    fn read_ahead_passes_on_a_read_error() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut seen = 0;
        let err = read_ahead(Failing(100), 64, 2, |part| seen += part.len()).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert_eq!(
            seen, 64,
            "the whole chunk read before the error is handed over"
        );
    }
}
