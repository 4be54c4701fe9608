//! The dm-verity parameters of a verity root, as the image builder puts them on the kernel command
//! line and `/init` reads them back.
//!
//! The command line is measured (its SHA-256 is in the SEV hashes table), so one token there binds
//! every block of the root filesystem to the launch digest. The token is
//!
//! ```text
//! snpkit.verity=format=1,hash=sha256,data_block=4096,hash_block=4096,data_blocks=N,hash_start=N,root=HEX,salt=HEX|-,on_corruption=panic|restart,check=full|lazy
//! ```
//!
//! with the keys in exactly this order, lowercase hex, no spaces: one spelling per value, so
//! [`VerityParams::parse`] and [`VerityParams::to_cmdline_arg`] are inverse and a token that is
//! not in canonical form is refused rather than guessed at. The kernel leaves `snpkit.verity=`
//! alone (a dotted name is a module parameter; no module is called `snpkit`) and does not pass it
//! to init, so `/init` reads it from `/proc/cmdline`.
//!
//! Options that weaken dm-verity (`ignore_corruption`, `check_at_most_once`, `ignore_zero_blocks`,
//! forward error correction) have no spelling here at all: a corrupted block either panics or
//! restarts the machine. `check=full` makes `/init` read the whole device once before mounting
//! it, so a flipped byte anywhere stops the boot with a message, not only when the appliance
//! happens to read that block.
//!
//! [`dm_table`] turns the parameters into the target line of the kernel's
//! `Documentation/admin-guide/device-mapper/verity.rst`. [`tree_level_blocks`] is the geometry of
//! the hash tree (cryptsetup's `lib/verity/verity_hash.c`), shared by the image builder that writes
//! the tree and the guest that checks the hash device is large enough.

use std::fmt;
use std::str::FromStr;

/// The kernel command line parameter.
pub const CMDLINE_KEY: &str = "snpkit.verity";

/// Longest salt veritysetup's superblock can hold (its `salt[256]` field).
pub const MAX_SALT_LEN: usize = 256;

/// Smallest and largest block sizes we accept. dm-verity needs a block to fit a page (4 KiB on
/// x86-64); veritysetup refuses anything below 512.
pub const MIN_BLOCK_SIZE: u32 = 512;
pub const MAX_BLOCK_SIZE: u32 = 4096;

/// The hash of the tree; named as the kernel's crypto API and veritysetup name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    pub const ALL: [HashAlgorithm; 3] = [Self::Sha1, Self::Sha256, Self::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgorithm {
    type Err = VerityParamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| VerityParamError::UnknownAlgorithm { found: s.into() })
    }
}

/// The hash format ("hash type" to veritysetup, "version" to the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFormat {
    /// 0: the original Chrome OS format: digest = H(block ‖ salt), digests packed in a hash block.
    ChromeOs,
    /// 1: digest = H(salt ‖ block), each digest in a power-of-two slot. veritysetup's default.
    V1,
}

impl HashFormat {
    pub fn number(self) -> u32 {
        match self {
            Self::ChromeOs => 0,
            Self::V1 => 1,
        }
    }

    pub fn from_number(n: u32) -> Option<Self> {
        match n {
            0 => Some(Self::ChromeOs),
            1 => Some(Self::V1),
            _ => None,
        }
    }
}

/// What the kernel does when a block does not match its hash. Both stop the appliance; the
/// kernel's default (return EIO and let the program carry on) and `ignore_corruption` are not
/// offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Corruption {
    Panic,
    Restart,
}

impl Corruption {
    pub const ALL: [Corruption; 2] = [Self::Panic, Self::Restart];

    /// The spelling on the command line and in recipe.toml.
    pub fn name(self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::Restart => "restart",
        }
    }

    /// The dm-verity optional parameter.
    pub fn dm_option(self) -> &'static str {
        match self {
            Self::Panic => "panic_on_corruption",
            Self::Restart => "restart_on_corruption",
        }
    }
}

/// How much `/init` reads before it mounts the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootCheck {
    /// Read every block once through the verity device; any corruption stops the boot with a message.
    Full,
    /// Read nothing ahead: a corrupted block stops the appliance when it is first read.
    Lazy,
}

impl BootCheck {
    pub const ALL: [BootCheck; 2] = [Self::Full, Self::Lazy];

    /// The spelling on the command line and in recipe.toml.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Lazy => "lazy",
        }
    }
}

/// The fields of one dm-verity parameter set as the builder knows them, unchecked;
/// [`VerityParams::new`] checks them. (Not the recipe's `[verity]` choices, which are
/// `snpkit_recipe::VeritySpec`: these are what a built tree came out as.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityFields {
    pub format: HashFormat,
    pub hash: HashAlgorithm,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    /// Number of data blocks protected (the data device may be larger).
    pub data_blocks: u64,
    /// Where the tree starts on the hash device, in hash blocks (after the superblock, if any).
    pub hash_start_block: u64,
    pub root_hash: Vec<u8>,
    /// Empty for no salt (`-`).
    pub salt: Vec<u8>,
    pub corruption: Corruption,
    pub check: BootCheck,
}

/// Checked dm-verity parameters: block sizes, lengths and counts are consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityParams(VerityFields);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerityParamError {
    #[error(
        "no {CMDLINE_KEY}= on the kernel command line; a verity root needs one (the image builder writes it)"
    )]
    Missing,
    #[error(
        "{CMDLINE_KEY}= appears more than once on the kernel command line; exactly one is allowed"
    )]
    Duplicate,
    #[error("malformed kernel command line token {found:?}: expected {CMDLINE_KEY}=key=value,…")]
    Malformed { found: String },
    #[error("{CMDLINE_KEY}: field {position} should be {expected}=…, found {found:?}")]
    Field {
        position: usize,
        expected: &'static str,
        found: String,
    },
    #[error(
        "{CMDLINE_KEY}: {found:?} is refused: a corrupted block must stop the appliance, not be ignored or checked only once"
    )]
    Weakening { found: String },
    #[error("{CMDLINE_KEY}: unexpected trailing field {found:?}")]
    Trailing { found: String },
    #[error("{CMDLINE_KEY}: {field}={found:?} is not {expected}")]
    BadValue {
        field: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("unsupported hash algorithm {found:?}: use sha256 (default), sha1 or sha512")]
    UnknownAlgorithm { found: String },
    #[error("{field} {found} is not a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}")]
    BlockSize { field: &'static str, found: u32 },
    #[error("the root hash is {found} bytes; {hash} needs {expected}")]
    RootHashLength {
        hash: HashAlgorithm,
        expected: usize,
        found: usize,
    },
    #[error("the salt is {found} bytes; at most {MAX_SALT_LEN} are allowed")]
    SaltTooLong { found: usize },
    #[error("data_blocks is 0; a verity device protects at least one block")]
    NoDataBlocks,
    #[error("{what} overflows 64 bits")]
    Overflow { what: &'static str },
}

impl VerityParams {
    pub fn new(spec: VerityFields) -> Result<Self, VerityParamError> {
        check_block_size("data_block", spec.data_block_size)?;
        check_block_size("hash_block", spec.hash_block_size)?;
        if spec.root_hash.len() != spec.hash.digest_len() {
            return Err(VerityParamError::RootHashLength {
                hash: spec.hash,
                expected: spec.hash.digest_len(),
                found: spec.root_hash.len(),
            });
        }
        if spec.salt.len() > MAX_SALT_LEN {
            return Err(VerityParamError::SaltTooLong {
                found: spec.salt.len(),
            });
        }
        if spec.data_blocks == 0 {
            return Err(VerityParamError::NoDataBlocks);
        }
        spec.data_blocks
            .checked_mul(u64::from(spec.data_block_size))
            .ok_or(VerityParamError::Overflow {
                what: "the data size",
            })?;
        let tree = tree_level_blocks(
            spec.hash.digest_len(),
            spec.hash_block_size,
            spec.data_blocks,
        )
        .iter()
        .sum::<u64>();
        spec.hash_start_block
            .checked_add(tree)
            .and_then(|end| end.checked_mul(u64::from(spec.hash_block_size)))
            .ok_or(VerityParamError::Overflow {
                what: "the hash device size",
            })?;
        Ok(Self(spec))
    }

    pub fn fields(&self) -> &VerityFields {
        &self.0
    }

    /// Bytes of the data device that the verity device exposes.
    pub fn data_len(&self) -> u64 {
        // Cannot overflow: checked in `new`.
        self.0.data_blocks * u64::from(self.0.data_block_size)
    }

    /// Length of the verity device in 512-byte sectors, as a device-mapper table wants it.
    pub fn sectors(&self) -> u64 {
        self.data_len() / 512
    }

    /// The hash device must hold at least this many bytes (superblock area plus tree).
    pub fn hash_device_min_len(&self) -> u64 {
        let tree: u64 = tree_level_blocks(
            self.0.hash.digest_len(),
            self.0.hash_block_size,
            self.0.data_blocks,
        )
        .iter()
        .sum();
        (self.0.hash_start_block + tree) * u64::from(self.0.hash_block_size)
    }

    /// The one command line token, `snpkit.verity=…`, with no spaces.
    pub fn to_cmdline_arg(&self) -> String {
        let s = &self.0;
        format!(
            "{CMDLINE_KEY}=format={},hash={},data_block={},hash_block={},data_blocks={},hash_start={},root={},salt={},on_corruption={},check={}",
            s.format.number(),
            s.hash,
            s.data_block_size,
            s.hash_block_size,
            s.data_blocks,
            s.hash_start_block,
            hex_lower(&s.root_hash),
            salt_text(&s.salt),
            s.corruption.name(),
            s.check.name(),
        )
    }

    /// Finds the one `snpkit.verity=` token in a kernel command line and parses it strictly.
    pub fn parse(cmdline: &str) -> Result<Self, VerityParamError> {
        let mut found = None;
        for token in cmdline.split_ascii_whitespace() {
            let Some(value) = verity_token(token)? else {
                continue;
            };
            if found.replace(value).is_some() {
                return Err(VerityParamError::Duplicate);
            }
        }
        parse_value(found.ok_or(VerityParamError::Missing)?)
    }
}

/// `Some(value)` for our token; an error for anything that looks like a mangled version of it.
fn verity_token(token: &str) -> Result<Option<&str>, VerityParamError> {
    if let Some(value) = token
        .strip_prefix(CMDLINE_KEY)
        .and_then(|rest| rest.strip_prefix('='))
    {
        return Ok(Some(value));
    }
    // The kernel also treats `-` and `_` alike in parameter names, and accepts quoted tokens.
    let normalised = token.trim_matches('"').replace('-', "_");
    if normalised.starts_with("snpkit.verity") {
        return Err(VerityParamError::Malformed {
            found: token.into(),
        });
    }
    Ok(None)
}

const KEYS: [&str; 10] = [
    "format",
    "hash",
    "data_block",
    "hash_block",
    "data_blocks",
    "hash_start",
    "root",
    "salt",
    "on_corruption",
    "check",
];

const WEAKENING: [&str; 6] = [
    "ignore_corruption",
    "check_at_most_once",
    "ignore_zero_blocks",
    "use_fec_from_device",
    "ignore",
    "once",
];

fn parse_value(value: &str) -> Result<VerityParams, VerityParamError> {
    let mut fields = value.split(',');
    let mut values = [""; KEYS.len()];
    for (position, (key, slot)) in KEYS.iter().zip(values.iter_mut()).enumerate() {
        let field = fields.next().unwrap_or_default();
        refuse_weakening(field)?;
        *slot = field
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .ok_or_else(|| VerityParamError::Field {
                position: position + 1,
                expected: key,
                found: field.into(),
            })?;
    }
    if let Some(extra) = fields.next() {
        refuse_weakening(extra)?;
        return Err(VerityParamError::Trailing {
            found: extra.into(),
        });
    }
    let [
        format,
        hash,
        data_block,
        hash_block,
        data_blocks,
        hash_start,
        root,
        salt,
        corruption,
        check,
    ] = values;
    let format = match format {
        "0" => HashFormat::ChromeOs,
        "1" => HashFormat::V1,
        other => return Err(bad("format", other, "0 or 1")),
    };
    let hash: HashAlgorithm = hash.parse()?;
    let corruption = Corruption::ALL
        .into_iter()
        .find(|c| c.name() == corruption)
        .ok_or_else(|| bad("on_corruption", corruption, "panic or restart"))?;
    let check = BootCheck::ALL
        .into_iter()
        .find(|c| c.name() == check)
        .ok_or_else(|| bad("check", check, "full or lazy"))?;
    let salt = if salt == "-" {
        Vec::new()
    } else {
        let bytes = hex_strict("salt", salt)?;
        if bytes.is_empty() {
            return Err(bad("salt", salt, "lowercase hex or - for none"));
        }
        bytes
    };
    VerityParams::new(VerityFields {
        format,
        hash,
        data_block_size: int("data_block", data_block)?,
        hash_block_size: int("hash_block", hash_block)?,
        data_blocks: int("data_blocks", data_blocks)?,
        hash_start_block: int("hash_start", hash_start)?,
        root_hash: hex_strict("root", root)?,
        salt,
        corruption,
        check,
    })
}

fn refuse_weakening(field: &str) -> Result<(), VerityParamError> {
    let lower = field.to_ascii_lowercase();
    let (key, value) = lower.split_once('=').unwrap_or((&lower, ""));
    if WEAKENING.contains(&key) || WEAKENING.contains(&value) {
        return Err(VerityParamError::Weakening {
            found: field.into(),
        });
    }
    Ok(())
}

fn bad(field: &'static str, found: &str, expected: &'static str) -> VerityParamError {
    VerityParamError::BadValue {
        field,
        found: found.into(),
        expected,
    }
}

/// Decimal without sign, leading zeros or a plus: one spelling per number.
fn int<T: FromStr>(field: &'static str, text: &str) -> Result<T, VerityParamError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(bad(field, text, "a decimal number"));
    }
    text.parse()
        .map_err(|_| bad(field, text, "a decimal number that fits"))
}

fn hex_strict(field: &'static str, text: &str) -> Result<Vec<u8>, VerityParamError> {
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if !text.len().is_multiple_of(2) || !text.bytes().all(lower_hex) {
        return Err(bad(
            field,
            text,
            "lowercase hex with an even number of digits",
        ));
    }
    let nibble = |b: u8| {
        if b.is_ascii_digit() {
            b - b'0'
        } else {
            b - b'a' + 10
        }
    };
    Ok(text
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]))
        .collect())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn salt_text(salt: &[u8]) -> String {
    if salt.is_empty() {
        "-".into()
    } else {
        hex_lower(salt)
    }
}

fn check_block_size(field: &'static str, size: u32) -> Result<(), VerityParamError> {
    if !size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&size) {
        return Err(VerityParamError::BlockSize { field, found: size });
    }
    Ok(())
}

/// Number of hash blocks in each level of the tree, from the level just above the data (index 0)
/// to the top level (one block). Empty for a single data block: its digest is the root hash.
///
/// A hash block holds 2^⌊log2(hash_block_size / digest_len)⌋ digests in both formats
/// (cryptsetup's `hash_levels`). The caller guarantees `digest_len <= hash_block_size` and
/// `data_blocks >= 1`.
pub fn tree_level_blocks(digest_len: usize, hash_block_size: u32, data_blocks: u64) -> Vec<u64> {
    let per_block_bits = (hash_block_size as usize / digest_len.max(1))
        .max(1)
        .ilog2();
    let mut levels = Vec::new();
    let mut blocks = data_blocks.max(1);
    while blocks > 1 {
        // Rounding up: a partly filled hash block still takes a whole block.
        blocks = blocks.div_ceil(1u64 << per_block_bits);
        levels.push(blocks);
    }
    levels
}

/// A dm-verity target: the `<start> <length> verity <params>` line of a device-mapper table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmTarget {
    /// Length in 512-byte sectors (the target starts at sector 0).
    pub sectors: u64,
    /// Always `verity`.
    pub target_type: &'static str,
    /// Everything after the target type.
    pub params: String,
}

impl fmt::Display for DmTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0 {} {} {}", self.sectors, self.target_type, self.params)
    }
}

/// How the table's corruption handling is chosen for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableMode {
    /// As the parameters say: panic or restart on a corrupted block. The device the appliance runs on.
    Enforcing,
    /// Return EIO on a corrupted block (dm-verity's default), so `/init` can read the whole device,
    /// name the first bad block and power off; nothing ever runs from such a device.
    Probe,
}

/// The dm-verity target for `params` on `data_dev` and `hash_dev` (`/dev/vda` or `major:minor`):
/// `1 <dev> <hash_dev> <data_block_size> <hash_block_size> <num_data_blocks> <hash_start_block>
/// <algorithm> <digest> <salt> [1 panic_on_corruption|restart_on_corruption]`.
pub fn dm_target(
    params: &VerityParams,
    data_dev: &str,
    hash_dev: &str,
    mode: TableMode,
) -> DmTarget {
    let s = params.fields();
    let mut line = format!(
        "{} {data_dev} {hash_dev} {} {} {} {} {} {} {}",
        s.format.number(),
        s.data_block_size,
        s.hash_block_size,
        s.data_blocks,
        s.hash_start_block,
        s.hash,
        hex_lower(&s.root_hash),
        salt_text(&s.salt),
    );
    if mode == TableMode::Enforcing {
        line.push_str(" 1 ");
        line.push_str(s.corruption.dm_option());
    }
    DmTarget {
        sectors: params.sectors(),
        target_type: "verity",
        params: line,
    }
}

/// The whole table line, as `dmsetup create --readonly --table` takes it.
pub fn dm_table(params: &VerityParams, data_dev: &str, hash_dev: &str) -> String {
    dm_target(params, data_dev, hash_dev, TableMode::Enforcing).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ROOT: &str = "4392712ba01368efdf14b05c76f9e4df0d53664630b5d48632ed17a137f39076";
    const SALT: &str = "1234000000000000000000000000000000000000000000000000000000000000";

    fn spec() -> VerityFields {
        VerityFields {
            format: HashFormat::V1,
            hash: HashAlgorithm::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 262_144,
            hash_start_block: 1,
            root_hash: hex_strict("root", ROOT).unwrap(),
            salt: hex_strict("salt", SALT).unwrap(),
            corruption: Corruption::Panic,
            check: BootCheck::Full,
        }
    }

    fn token() -> String {
        VerityParams::new(spec()).unwrap().to_cmdline_arg()
    }

    #[test]
    fn token_is_one_word_in_canonical_order() {
        assert_eq!(
            token(),
            format!(
                "snpkit.verity=format=1,hash=sha256,data_block=4096,hash_block=4096,data_blocks=262144,hash_start=1,root={ROOT},salt={SALT},on_corruption=panic,check=full"
            )
        );
        assert!(!token().contains(char::is_whitespace));
    }

    #[test]
    fn parse_inverts_to_cmdline_arg() {
        let mut variants = vec![spec()];
        let mut s = spec();
        s.format = HashFormat::ChromeOs;
        s.hash = HashAlgorithm::Sha1;
        s.root_hash = vec![0xab; 20];
        s.salt = Vec::new();
        s.corruption = Corruption::Restart;
        s.check = BootCheck::Lazy;
        s.hash_start_block = 0;
        s.data_block_size = 512;
        s.hash_block_size = 1024;
        variants.push(s);
        let mut s = spec();
        s.hash = HashAlgorithm::Sha512;
        s.root_hash = vec![0x01; 64];
        s.salt = vec![0xff; MAX_SALT_LEN];
        variants.push(s);
        for spec in variants {
            let params = VerityParams::new(spec).unwrap();
            let line = format!("console=hvc0 quiet {} panic=-1", params.to_cmdline_arg());
            assert_eq!(VerityParams::parse(&line).unwrap(), params);
        }
    }

    #[test]
    fn dm_table_matches_the_kernel_documentation_example() {
        // Documentation/admin-guide/device-mapper/verity.rst, "Example":
        // dmsetup create vroot --readonly --table "0 2097152 verity 1 /dev/sda1 /dev/sda2 4096 4096
        //   262144 1 sha256 4392712b…9076 1234000000…0000"
        // plus the corruption option we always add.
        let params = VerityParams::new(spec()).unwrap();
        assert_eq!(
            dm_table(&params, "/dev/sda1", "/dev/sda2"),
            format!(
                "0 2097152 verity 1 /dev/sda1 /dev/sda2 4096 4096 262144 1 sha256 {ROOT} {SALT} 1 panic_on_corruption"
            )
        );
        let mut s = spec();
        s.salt.clear();
        s.corruption = Corruption::Restart;
        let target = dm_target(
            &VerityParams::new(s).unwrap(),
            "254:0",
            "254:16",
            TableMode::Enforcing,
        );
        assert_eq!(target.sectors, 2_097_152);
        assert_eq!(
            target.params,
            format!("1 254:0 254:16 4096 4096 262144 1 sha256 {ROOT} - 1 restart_on_corruption")
        );
        let probe = dm_target(
            &VerityParams::new(spec()).unwrap(),
            "a",
            "b",
            TableMode::Probe,
        );
        assert_eq!(
            probe.params,
            format!("1 a b 4096 4096 262144 1 sha256 {ROOT} {SALT}")
        );
    }

    fn parse_err(token: &str) -> VerityParamError {
        VerityParams::parse(&format!("quiet {token}")).unwrap_err()
    }

    fn with(key: &str, value: &str) -> String {
        let t = token();
        let start = t.find(&format!("{key}=")).unwrap();
        let end = t[start..].find(',').map_or(t.len(), |e| start + e);
        format!("{}{key}={value}{}", &t[..start], &t[end..])
    }

    #[test]
    fn missing_and_duplicate_tokens_are_refused() {
        assert_eq!(
            VerityParams::parse("quiet console=hvc0").unwrap_err(),
            VerityParamError::Missing
        );
        assert_eq!(
            VerityParams::parse("").unwrap_err(),
            VerityParamError::Missing
        );
        let t = token();
        assert_eq!(
            VerityParams::parse(&format!("{t} quiet {t}")).unwrap_err(),
            VerityParamError::Duplicate
        );
        assert!(matches!(
            parse_err("snpkit.verity"),
            VerityParamError::Malformed { .. }
        ));
        assert!(matches!(
            parse_err(&format!("\"{t}\"")),
            VerityParamError::Malformed { .. }
        ));
        assert!(matches!(
            parse_err(&t.replace("snpkit.verity", "snpkit.ver-ity")),
            VerityParamError::Malformed { .. } | VerityParamError::Missing
        ));
        assert!(matches!(
            parse_err(&t.replace("snpkit.verity", "snpkit.verity_x")),
            VerityParamError::Malformed { .. }
        ));
    }

    #[test]
    fn weakening_options_are_refused_by_name() {
        let t = token();
        for extra in [
            "ignore_corruption",
            "check_at_most_once",
            "ignore_zero_blocks",
            "use_fec_from_device=/dev/vdc",
        ] {
            assert!(
                matches!(
                    parse_err(&format!("{t},{extra}")),
                    VerityParamError::Weakening { .. }
                ),
                "{extra}"
            );
        }
        assert!(matches!(
            parse_err(&with("on_corruption", "ignore")),
            VerityParamError::Weakening { .. }
        ));
        assert!(matches!(
            parse_err(&with("on_corruption", "eio")),
            VerityParamError::BadValue {
                field: "on_corruption",
                ..
            }
        ));
        assert!(matches!(
            parse_err(&format!("{t},foo=1")),
            VerityParamError::Trailing { .. }
        ));
    }

    #[test]
    fn fields_must_be_present_in_order() {
        let t = token();
        // Drop `check=full`.
        let short = &t[..t.rfind(',').unwrap()];
        assert_eq!(
            parse_err(short),
            VerityParamError::Field {
                position: 10,
                expected: "check",
                found: String::new()
            }
        );
        let swapped = t.replace("format=1,hash=sha256", "hash=sha256,format=1");
        assert!(matches!(
            parse_err(&swapped),
            VerityParamError::Field {
                position: 1,
                expected: "format",
                ..
            }
        ));
        assert!(matches!(
            parse_err("snpkit.verity="),
            VerityParamError::Field { position: 1, .. }
        ));
    }

    #[test]
    fn bad_values_are_refused() {
        let cases = [
            ("format", "2"),
            ("hash", "md5"),
            ("hash", "SHA256"),
            ("data_block", "4095"),
            ("data_block", "8192"),
            ("data_block", "256"),
            ("hash_block", "04096"),
            ("data_blocks", "0"),
            ("data_blocks", "+5"),
            ("data_blocks", "-5"),
            ("data_blocks", "18446744073709551616"),
            ("data_blocks", "18446744073709551615"),
            ("hash_start", ""),
            ("root", &ROOT[..62]),
            ("root", &ROOT.to_uppercase()),
            ("root", &format!("{ROOT}00")),
            ("root", "zz"),
            ("root", &ROOT[..63]),
            ("salt", "abc"),
            ("salt", ""),
            ("salt", &"00".repeat(MAX_SALT_LEN + 1)),
            ("salt", "AB"),
            ("check", "none"),
            ("check", ""),
        ];
        for (key, value) in cases {
            assert!(
                VerityParams::parse(&with(key, value)).is_err(),
                "{key}={value} was accepted"
            );
        }
        // A sha1-sized root hash with sha256.
        assert_eq!(
            parse_err(&with("root", &"ab".repeat(20))),
            VerityParamError::RootHashLength {
                hash: HashAlgorithm::Sha256,
                expected: 32,
                found: 20
            }
        );
    }

    #[test]
    fn the_geometry_matches_veritysetup() {
        // Vectors in tests/vectors/dm-verity/generated: 1 MiB at 4096 = 256 blocks, sha256 → 2 + 1
        // blocks; 300 blocks of 512 with sha256 (16 per hash block) → 19 + 2 + 1.
        assert_eq!(tree_level_blocks(32, 4096, 256), vec![2, 1]);
        assert_eq!(tree_level_blocks(32, 512, 300), vec![19, 2, 1]);
        assert_eq!(tree_level_blocks(20, 4096, 256), vec![2, 1]);
        assert_eq!(tree_level_blocks(32, 4096, 1), Vec::<u64>::new());
        assert_eq!(tree_level_blocks(32, 4096, 128), vec![1]);
        assert_eq!(tree_level_blocks(32, 4096, 129), vec![2, 1]);
        // 8 MiB of zeros at 4096 with a superblock: 73728 bytes = (1 + 17) blocks.
        assert_eq!(tree_level_blocks(32, 4096, 2048), vec![16, 1]);
        let mut s = spec();
        s.data_blocks = 2048;
        assert_eq!(VerityParams::new(s).unwrap().hash_device_min_len(), 73_728);
        // The largest count must not overflow the level computation.
        assert_eq!(tree_level_blocks(64, 512, u64::MAX).len(), 22);
    }

    #[test]
    fn sizes_that_overflow_are_refused() {
        let mut s = spec();
        s.data_blocks = u64::MAX / 4096 + 1;
        assert!(matches!(
            VerityParams::new(s),
            Err(VerityParamError::Overflow { .. })
        ));
        let mut s = spec();
        s.hash_start_block = u64::MAX - 1;
        assert!(matches!(
            VerityParams::new(s),
            Err(VerityParamError::Overflow { .. })
        ));
    }

    #[test]
    fn random_cmdlines_never_panic() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let base = token();
        for _ in 0..20_000 {
            let mut bytes = base.clone().into_bytes();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[i] = next() as u8 & 0x7f,
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, b",=0a -"[(next() % 6) as usize]),
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(params) = VerityParams::parse(&text) {
                // Whatever is accepted is canonical.
                let again = params.to_cmdline_arg();
                assert!(text.split_ascii_whitespace().any(|t| t == again), "{text}");
            }
        }
    }
}
