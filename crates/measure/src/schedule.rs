//! The order in which a launch's files are hashed when they come as streams (`cargo xtask measure`
//! with sev-snp-measure's flags): two cores' worth of work, scheduled so that the longest part
//! never waits.
//!
//! SHA-256 of one stream cannot be split, so the larger of kernel and initrd is the critical path:
//! it streams through its own reader thread ([`sha256_stream`]) on the calling thread. The smaller
//! one and then the firmware (read, parsed and its pages hashed) go one after the other on a second
//! thread. Running all of them at once made the long stream wait for a CPU.

use std::io::Read;

use crate::digest::LaunchDigest;
use crate::hashes::{HashInputError, KernelHashes, cmdline_hash, sha256, sha256_stream};
use crate::launch::{Firmware, ovmf_hash};
use crate::ovmf::Ovmf;

/// A stream and its length. The length only orders the work: the hash covers the bytes read.
#[derive(Debug)]
pub struct SizedStream<R> {
    pub len: u64,
    pub reader: R,
}

/// A direct kernel boot's kernel, initrd and command line.
#[derive(Debug)]
pub struct KernelStreams<'a, R> {
    pub kernel: SizedStream<R>,
    /// Without an initrd QEMU hashes zero bytes for it.
    pub initrd: Option<SizedStream<R>>,
    /// Hashed raw, plus a NUL, as QEMU does.
    pub cmdline: &'a [u8],
}

/// The firmware and, for a direct kernel boot, the hashes table's values.
#[derive(Debug)]
pub struct HashedInputs {
    pub ovmf: Ovmf,
    /// The digest after the firmware's own pages (computed, or the one given).
    pub ovmf_hash: LaunchDigest,
    pub kernel: Option<KernelHashes>,
}

impl HashedInputs {
    pub fn firmware(&self) -> Firmware<'_> {
        Firmware::with_ovmf_hash(&self.ovmf, self.ovmf_hash)
    }
}

/// Hashes a launch's inputs on two threads (see the module docs). `read_ovmf` reads and parses
/// the firmware; with `given_ovmf_hash` (sev-snp-measure's `--snp-ovmf-hash`) its pages are not hashed
/// and it gives only its metadata. Errors of the firmware come before those of the kernel streams.
pub fn hash_launch_inputs<R, E>(
    read_ovmf: impl FnOnce() -> Result<Ovmf, E> + Send,
    given_ovmf_hash: Option<LaunchDigest>,
    kernel: Option<KernelStreams<'_, R>>,
) -> Result<HashedInputs, E>
where
    R: Read + Send,
    E: From<HashInputError> + Send,
{
    let firmware = move || -> Result<(Ovmf, LaunchDigest), E> {
        let ovmf = read_ovmf()?;
        let hash = given_ovmf_hash.unwrap_or_else(|| ovmf_hash(&ovmf));
        Ok((ovmf, hash))
    };
    let Some(streams) = kernel else {
        let (ovmf, ovmf_hash) = firmware()?;
        return Ok(HashedInputs {
            ovmf,
            ovmf_hash,
            kernel: None,
        });
    };
    let cmdline = cmdline_hash(streams.cmdline).map_err(HashInputError::from)?;
    let kernel = (streams.kernel.reader, Part::Kernel);
    let (big, small) = match streams.initrd {
        Some(i) if i.len > streams.kernel.len => ((i.reader, Part::Initrd), Some(kernel)),
        Some(i) => (kernel, Some((i.reader, Part::Initrd))),
        None => (kernel, None),
    };
    std::thread::scope(|s| {
        let second = s.spawn(move || -> Result<_, E> {
            let small = match small {
                Some((reader, part)) => {
                    Some((sha256_read(reader).map_err(|e| part.error(e))?, part))
                }
                None => None,
            };
            Ok((small, firmware()?))
        });
        let (big_reader, big_part) = big;
        let big = sha256_stream(big_reader).map_err(|e| big_part.error(e));
        let (small, (ovmf, ovmf_hash)) = match second.join() {
            Ok(result) => result?,
            // Only a bug of ours or of `read_ovmf` gets here: not something to turn into an error.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let big = (big?, big_part);
        let (kernel, initrd) = match (big, small) {
            ((k, Part::Kernel), Some((i, _))) | ((i, Part::Initrd), Some((k, _))) => (k, i),
            ((k, _), None) => (k, sha256(b"")),
        };
        Ok(HashedInputs {
            ovmf,
            ovmf_hash,
            kernel: Some(KernelHashes {
                kernel,
                initrd,
                cmdline,
            }),
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Kernel,
    Initrd,
}

impl Part {
    fn error(self, e: std::io::Error) -> HashInputError {
        match self {
            Part::Kernel => HashInputError::Kernel(e),
            Part::Initrd => HashInputError::Initrd(e),
        }
    }
}

/// SHA-256 of a stream read in large blocks on the calling thread (the second thread's work).
fn sha256_read(mut r: impl Read) -> std::io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut buf = vec![0u8; 256 << 10];
    let mut h = Sha256::new();
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(h.finalize().into()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::tests::amdsev_like;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error(transparent)]
        Hash(#[from] HashInputError),
        #[error("no firmware")]
        Firmware,
    }

    fn ovmf() -> Result<Ovmf, TestError> {
        Ok(Ovmf::parse(&amdsev_like(0x1000)).unwrap())
    }

    fn stream(bytes: &[u8]) -> SizedStream<&[u8]> {
        SizedStream {
            len: bytes.len() as u64,
            reader: bytes,
        }
    }

    /// A reader that fails after a few bytes.
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn streams_give_the_hashes_of_the_bytes_whichever_is_larger() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 + 7) as u8).collect();
        let small = b"small".to_vec();
        for (kernel, initrd) in [(&big, &small), (&small, &big)] {
            let got = hash_launch_inputs(
                ovmf,
                None,
                Some(KernelStreams {
                    kernel: stream(kernel),
                    initrd: Some(stream(initrd)),
                    cmdline: b"console=hvc0 ",
                }),
            )
            .unwrap();
            assert_eq!(
                got.kernel,
                Some(KernelHashes::compute(kernel, initrd, b"console=hvc0 ").unwrap())
            );
            assert_eq!(got.ovmf_hash, ovmf_hash(&got.ovmf));
        }
    }

    #[test]
    fn no_initrd_is_hashed_as_zero_bytes_and_no_kernel_as_no_table() {
        let got = hash_launch_inputs(
            ovmf,
            None,
            Some(KernelStreams {
                kernel: stream(b"k"),
                initrd: None,
                cmdline: b"",
            }),
        )
        .unwrap();
        assert_eq!(
            got.kernel,
            Some(KernelHashes::compute(b"k", b"", b"").unwrap())
        );
        let got = hash_launch_inputs::<&[u8], TestError>(ovmf, None, None).unwrap();
        assert_eq!(got.kernel, None);
    }

    #[test]
    fn a_given_ovmf_hash_is_used_as_is() {
        let seed = LaunchDigest::from_hex(&"ab".repeat(48)).unwrap();
        let got = hash_launch_inputs::<&[u8], TestError>(ovmf, Some(seed), None).unwrap();
        assert_eq!(got.ovmf_hash, seed);
        assert_eq!(got.firmware().ovmf_hash(), seed);
    }

    #[test]
    fn errors_name_the_part() {
        let broken = |initrd_len: u64| {
            hash_launch_inputs(
                ovmf,
                None,
                Some(KernelStreams {
                    kernel: SizedStream {
                        len: 10,
                        reader: Box::new(Broken) as Box<dyn Read + Send>,
                    },
                    initrd: Some(SizedStream {
                        len: initrd_len,
                        reader: Box::new(&b"initrd"[..]) as Box<dyn Read + Send>,
                    }),
                    cmdline: b"",
                }),
            )
            .unwrap_err()
        };
        // The kernel on either thread.
        for len in [1, 100] {
            assert!(
                matches!(broken(len), TestError::Hash(HashInputError::Kernel(_))),
                "initrd of {len}"
            );
        }
        let no_firmware = hash_launch_inputs(
            || Err(TestError::Firmware),
            None,
            Some(KernelStreams {
                kernel: stream(b"k"),
                initrd: None,
                cmdline: b"",
            }),
        )
        .unwrap_err();
        assert!(matches!(no_firmware, TestError::Firmware));
        let nul = hash_launch_inputs(
            ovmf,
            None,
            Some(KernelStreams {
                kernel: stream(b"k"),
                initrd: None,
                cmdline: b"a\0b",
            }),
        )
        .unwrap_err();
        assert!(matches!(nul, TestError::Hash(HashInputError::Cmdline(_))));
    }
}
