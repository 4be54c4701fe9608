//! What can go wrong formatting or verifying a tree. A leaf of the module: it names sizes as
//! numbers rather than as `params` types, so `params` can return it without a circle.

use snpkit_wire::verity::{
    HashAlgorithm, MAX_BLOCK_SIZE, MAX_SALT_LEN, MIN_BLOCK_SIZE, VerityParamError,
};

#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error(
        "block size {found} is not a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}"
    )]
    BlockSize { found: u32 },
    #[error("the salt is {found} bytes; at most {MAX_SALT_LEN} fit in the superblock")]
    SaltTooLong { found: usize },
    #[error("{what} {found:?} is not hex: {problem}")]
    BadHex {
        what: &'static str,
        found: String,
        problem: String,
    },
    #[error("the root hash is {found} bytes; {hash} needs {expected}")]
    RootHashLength {
        hash: HashAlgorithm,
        expected: usize,
        found: usize,
    },
    #[error(
        "hash offset {offset} is not a multiple of {align} (512 with a superblock, the hash block size without)"
    )]
    HashOffset { offset: u64, align: u64 },
    #[error("the data is empty; dm-verity needs at least one block")]
    Empty,
    #[error(
        "the data is {len} bytes, not a multiple of the {block_size}-byte data block; pad it with zeros"
    )]
    NotBlockAligned { len: u64, block_size: u32 },
    #[error("the data ends after {found} bytes; the tree covers {needed}")]
    DataTooShort { needed: u64, found: u64 },
    #[error("the hash device is {found} bytes; the tree needs {needed}")]
    HashDeviceTooSmall { needed: u64, found: u64 },
    #[error("the verity superblock is corrupted or missing: {problem}")]
    Superblock { problem: String },
    #[error("sizes overflow 64 bits")]
    Overflow,
    #[error("reading the data failed")]
    Read(#[source] std::io::Error),
    #[error("the kernel parameters are invalid")]
    Params(#[source] VerityParamError),
    #[error("verification failed: {0}")]
    Corrupted(Mismatch),
}

/// Where verification found the first difference, as the kernel would name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error(
        "the root hash {expected} does not match {computed}, the {hash} of {}: a wrong root hash, or that block is corrupted",
        match top_block { Some(b) => format!("hash block {b} (the top of the tree)"), None => "data block 0 (the only one)".into() }
    )]
    RootHash {
        top_block: Option<u64>,
        expected: String,
        computed: String,
        hash: HashAlgorithm,
    },
    #[error("hash block {block} is corrupted (its digest differs from the one its parent holds)")]
    HashBlock { block: u64 },
    #[error("data block {block} (byte {offset}) is corrupted")]
    DataBlock { block: u64, offset: u64 },
    #[error("hash block {block} has non-zero bytes where no digest belongs")]
    SpareArea { block: u64 },
}
