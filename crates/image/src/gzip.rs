//! gzip for the initramfs: one standard gzip member, compressed on all cores, identical bytes on
//! any number of cores.
//!
//! The input is cut into fixed 1 MiB chunks; each is deflated on its own (flate2, zlib-rs backend)
//! and ended with a sync flush, which byte-aligns it, so the chunks concatenate into one valid
//! deflate stream; the last chunk ends the stream. CRC-32s are combined. This is how pigz works,
//! minus its dictionary priming: each chunk starts with an empty window, which costs well under 1%
//! in size at 1 MiB chunks. Chunking depends only on the input, never on the thread count, so the
//! output is deterministic. A single member matters: the kernel expects every compressed member of
//! an initramfs to hold complete cpio archives, and `cpio -t` reads only the first archive.

use crate::ImageError;
use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;

/// The compression level snpkit images use. Part of the image's identity: changing it changes
/// every initrd hash and so every launch digest.
pub const LEVEL: u32 = 9;

const CHUNK: usize = 1 << 20;

/// Compresses `data` into a gzip member (RFC 1952) with mtime 0 and no file name, on all cores.
pub fn gzip(data: &[u8], level: u32) -> Result<Vec<u8>, ImageError> {
    compress(data, level, true)
}

/// The same bytes as [`gzip`], on the calling thread only: for a like-for-like comparison with
/// single-threaded compressors.
pub fn gzip_one_thread(data: &[u8], level: u32) -> Result<Vec<u8>, ImageError> {
    compress(data, level, false)
}

/// Deflates the chunks, on all cores or on this thread only, and joins them into one member.
fn compress(data: &[u8], level: u32, all_cores: bool) -> Result<Vec<u8>, ImageError> {
    let chunks = chunks(data);
    let last = chunks.len() - 1;
    let deflate = |(i, chunk): (usize, &&[u8])| part(chunk, level, i == last);
    let parts: Result<Vec<_>, ImageError> = if all_cores {
        chunks.par_iter().enumerate().map(deflate).collect()
    } else {
        chunks.iter().enumerate().map(deflate).collect()
    };
    Ok(member(parts?, data.len(), level))
}

fn chunks(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        vec![data]
    } else {
        data.chunks(CHUNK).collect()
    }
}

fn part(chunk: &[u8], level: u32, last: bool) -> Result<(Vec<u8>, crc32fast::Hasher), ImageError> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(chunk);
    Ok((deflate_chunk(chunk, level, last)?, crc))
}

/// Header, the chunks' deflate data in order, the combined CRC-32 and the length.
fn member(parts: Vec<(Vec<u8>, crc32fast::Hasher)>, len: usize, level: u32) -> Vec<u8> {
    // XFL says how hard the compressor worked (RFC 1952 §2.3.1); OS 3 = Unix, as GNU gzip writes.
    let xfl = match level {
        9 => 2,
        0 | 1 => 4,
        _ => 0,
    };
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum::<usize>() + 18);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]);
    let mut crc = crc32fast::Hasher::new();
    for (bytes, part_crc) in parts {
        out.extend_from_slice(&bytes);
        crc.combine(&part_crc);
    }
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the input length modulo 2^32 by definition.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

fn deflate_chunk(chunk: &[u8], level: u32, last: bool) -> Result<Vec<u8>, ImageError> {
    let mut c = Compress::new(Compression::new(level), false);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(chunk.len() / 2 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&chunk[consumed..], &mut out, flush)
            .map_err(|e| ImageError::Write(std::io::Error::other(e)))?;
        let done = match status {
            Status::StreamEnd => true,
            // Room left after consuming everything means the flush is complete.
            Status::Ok | Status::BufError => {
                !last && c.total_in() as usize == chunk.len() && out.len() < out.capacity()
            }
        };
        if done {
            return Ok(out);
        }
        out.reserve(out.capacity().max(4096));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Bytes that compress somewhat, like real files: a text-ish pattern with noise.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 7 == 0 {
                    (x >> 24) as u8
                } else {
                    b"snpkit initramfs "[i % 17]
                }
            })
            .collect()
    }

    #[test]
    fn round_trips_across_chunk_boundaries() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let data = sample(len);
            assert_eq!(gunzip(&gzip(&data, LEVEL).unwrap()), data, "len {len}");
        }
    }

    #[test]
    fn is_a_single_member_with_fixed_header() {
        let z = gzip(&sample(2 * CHUNK + 5), LEVEL).unwrap();
        assert_eq!(&z[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        // A single-member decoder must see the whole input (a multi-member file would stop early).
        let mut single = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut single)
            .unwrap();
        assert_eq!(single.len(), 2 * CHUNK + 5);
    }

    #[test]
    fn output_does_not_depend_on_thread_count() {
        let data = sample(5 * CHUNK + 77);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| gzip(&data, LEVEL).unwrap());
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| gzip(&data, LEVEL).unwrap());
        assert_eq!(one, four);
        assert_eq!(gzip_one_thread(&data, LEVEL).unwrap(), four);
    }
}
