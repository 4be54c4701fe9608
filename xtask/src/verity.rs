//! `cargo xtask verity format|verify`: veritysetup's two offline commands, on snpkit_image::verity.
//!
//! `format` prints the same summary as `veritysetup format` 2.6 and writes the same bytes. Like
//! veritysetup it picks a random salt and UUID when none is given; the image builder never does
//! (it derives both from the recipe, see `snpkit_image::verity::salt_from_seed`).

use anyhow::{Context, bail};
use snpkit_fsguard::{FileId, FsError, Input};
use snpkit_image::verity::{
    self, BlockSize, Formatted, HashFormat, Salt, Superblock, TreeLayout, TreeParams, Uuid,
    VerityOptions,
};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The largest hash device `verify` reads into memory: the tree of about 128 GiB of data at
/// 4 KiB blocks and SHA-256.
const MAX_HASH_DEVICE: u64 = 1 << 30;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Compute the hash tree of DATA into HASH and print the root hash (veritysetup format).
    Format(FormatArgs),
    /// Check DATA and the tree in HASH against ROOT_HASH (veritysetup verify).
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct TreeArgs {
    /// Salt in hex, or - for none [default: 32 random bytes].
    #[arg(long, value_name = "HEX|-")]
    salt: Option<String>,
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    data_block_size: u32,
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    hash_block_size: u32,
    /// sha256, sha1 or sha512.
    #[arg(long = "hash", default_value = "sha256", value_name = "ALG")]
    hash_alg: String,
    /// 1 (default) or 0 (the original Chrome OS format).
    #[arg(long, default_value_t = 1, value_name = "0|1")]
    format: u32,
    /// Number of data blocks [default: all of DATA]; for DATA and HASH in one file.
    #[arg(long, value_name = "N")]
    data_blocks: Option<u64>,
    /// Where the superblock (or, without one, the tree) starts in HASH, in bytes.
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    hash_offset: u64,
    /// Write no superblock: the parameters must then be given again to verify or open.
    #[arg(long)]
    no_superblock: bool,
}

#[derive(clap::Args)]
struct FormatArgs {
    data: PathBuf,
    #[arg(value_name = "HASH")]
    hash_device: PathBuf,
    #[command(flatten)]
    tree: TreeArgs,
    /// UUID for the superblock [default: random].
    #[arg(long, value_name = "UUID")]
    uuid: Option<String>,
}

#[derive(clap::Args)]
struct VerifyArgs {
    data: PathBuf,
    #[arg(value_name = "HASH")]
    hash_device: PathBuf,
    root_hash: String,
    /// Only with --no-superblock are the tree options below used; otherwise the superblock says.
    #[command(flatten)]
    tree: TreeArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Format(args) => format(args),
        Command::Verify(args) => verify(args),
    }
}

fn tree_params(args: &TreeArgs, salt: Salt) -> anyhow::Result<TreeParams> {
    Ok(TreeParams {
        hash: args.hash_alg.parse()?,
        format: HashFormat::from_number(args.format)
            .with_context(|| format!("--format {} is not 0 or 1", args.format))?,
        data_block_size: BlockSize::new(args.data_block_size).context("--data-block-size")?,
        hash_block_size: BlockSize::new(args.hash_block_size).context("--hash-block-size")?,
        salt,
    })
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the kernel's RNG failed: {e}"))?;
    Ok(bytes)
}

/// The data to hash, opened: the file, how many bytes of it are hashed, and its identity (so
/// the hash device can be checked against it).
struct Data {
    file: File,
    len: u64,
    id: FileId,
}

/// The data to hash: all of `path`, or its first `data_blocks` blocks.
fn open_data(path: &Path, tree: &TreeParams, data_blocks: Option<u64>) -> anyhow::Result<Data> {
    // A regular file only: a device or FIFO reports size 0, and the tree of nothing would be
    // printed as if it were the data's.
    let data = snpkit_fsguard::open(path, "DATA")?;
    let len = data.reported_len();
    let id = data.id();
    let file = data.into_file();
    let Some(blocks) = data_blocks else {
        return Ok(Data { file, len, id });
    };
    let wanted = blocks
        .checked_mul(u64::from(tree.data_block_size.get()))
        .context("--data-blocks is too large")?;
    if wanted > len {
        bail!(
            "{} holds {len} bytes; --data-blocks {blocks} of {} bytes needs {wanted}",
            path.display(),
            tree.data_block_size
        );
    }
    Ok(Data {
        file,
        len: wanted,
        id,
    })
}

/// The hash device may be DATA itself only past the hashed bytes (veritysetup's one-file layout:
/// `--data-blocks` and `--hash-offset`); anywhere else the tree would overwrite the data it is
/// computed from. Compared by device and inode, so a symlink or hard link to DATA counts as DATA.
fn refuse_tree_onto_data(
    hash: &Path,
    data_path: &Path,
    data: &Data,
    offset: u64,
) -> anyhow::Result<()> {
    let input = Input {
        what: "the data DATA",
        path: data_path,
        id: data.id,
    };
    match snpkit_fsguard::refuse_output_onto(hash, "the hash device HASH", &[input]) {
        Err(FsError::OutputIsInput { .. }) if offset >= data.len => Ok(()),
        Err(e @ FsError::OutputIsInput { .. }) => Err(anyhow::Error::new(e).context(format!(
            "the hash tree at --hash-offset {offset} would overwrite the {} bytes of data it is \
             computed from; give another HASH file, or put the tree after the data \
             (--data-blocks N and --hash-offset {} or more)",
            data.len, data.len
        ))),
        other => Ok(other?),
    }
}

fn format(args: FormatArgs) -> anyhow::Result<ExitCode> {
    let salt = match &args.tree.salt {
        Some(hex) => Salt::from_hex(hex).context("--salt")?,
        None => Salt::new(random_bytes::<32>()?.to_vec())?,
    };
    let uuid = match &args.uuid {
        Some(text) => parse_uuid(text)?,
        None => uuid::Builder::from_random_bytes(random_bytes::<16>()?).into_uuid(),
    };
    let options = VerityOptions {
        tree: tree_params(&args.tree, salt)?,
        superblock: if args.tree.no_superblock {
            Superblock::None
        } else {
            Superblock::V1 { uuid }
        },
        hash_offset: args.tree.hash_offset,
    };
    let data = open_data(&args.data, &options.tree, args.tree.data_blocks)?;
    refuse_tree_onto_data(&args.hash_device, &args.data, &data, options.hash_offset)?;
    let formatted = verity::format_at(&data.file, data.len, &options)
        .with_context(|| format!("hashing {}", args.data.display()))?;
    write_at(
        &args.hash_device,
        options.hash_offset,
        &formatted.hash_area,
        &data,
    )?;
    print!("{}", summary(&args.hash_device, &formatted));
    Ok(ExitCode::SUCCESS)
}

/// libuuid's `uuid_parse` form, which veritysetup takes: 36 characters with hyphens.
fn parse_uuid(text: &str) -> anyhow::Result<Uuid> {
    if text.len() != 36 {
        bail!("--uuid {text:?} is not a UUID like a60c98d2-ae9b-4865-bfcb-b4e3ace11033");
    }
    Uuid::try_parse(text).with_context(|| format!("--uuid {text:?} is not a UUID"))
}

/// Writes `bytes` at `offset` of `path`, creating it if need be and leaving the rest alone (the
/// data may share the file, before the offset). The opened file is compared with the data once
/// more, so a swap since [`refuse_tree_onto_data`] looked cannot slip through.
fn write_at(path: &Path, offset: u64, bytes: &[u8], data: &Data) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {} for writing", path.display()))?;
    let opened = FileId::of_file(&file).with_context(|| format!("reading {}", path.display()))?;
    if opened == data.id && offset < data.len {
        bail!(
            "{} became the data file while it was hashed; nothing was written",
            path.display()
        );
    }
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing the hash tree to {}", path.display()))
}

/// veritysetup 2.6's summary, line for line (its `VERITY_dump`).
fn summary(hash_path: &Path, f: &Formatted) -> String {
    let tree = &f.options.tree;
    let uuid = match f.options.superblock {
        Superblock::V1 { uuid } => uuid.to_string(),
        Superblock::None => String::new(),
    };
    let mut out = format!(
        "VERITY header information for {}\n\
         UUID:            \t{uuid}\n\
         Hash type:       \t{}\n\
         Data blocks:     \t{}\n\
         Data block size: \t{}\n\
         Hash blocks:     \t{}\n\
         Hash block size: \t{}\n\
         Hash algorithm:  \t{}\n\
         Salt:            \t{}\n\
         Root hash:      \t{}\n",
        hash_path.display(),
        tree.format.number(),
        f.data_blocks,
        tree.data_block_size,
        f.hash_blocks,
        tree.hash_block_size,
        tree.hash,
        tree.salt,
        hex::encode(&f.root_hash),
    );
    // veritysetup gives the size only when the hash device is the tree's alone.
    if f.options.hash_offset == 0 {
        out.push_str(&format!(
            "Hash device size: \t{} [bytes]\n",
            (f.hash_start_block + f.hash_blocks) * u64::from(tree.hash_block_size.get())
        ));
    }
    out
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let device = snpkit_fsguard::read(&args.hash_device, "the hash device HASH", MAX_HASH_DEVICE)?;
    let layout = if args.tree.no_superblock {
        let salt = match &args.tree.salt {
            Some(hex) => Salt::from_hex(hex).context("--salt")?,
            None => bail!("--no-superblock needs --salt (HEX or -): nothing else records it"),
        };
        let tree = tree_params(&args.tree, salt)?;
        let options = VerityOptions {
            tree: tree.clone(),
            superblock: Superblock::None,
            hash_offset: args.tree.hash_offset,
        };
        let data = open_data(&args.data, &tree, args.tree.data_blocks)?;
        TreeLayout {
            data_blocks: data.len / u64::from(tree.data_block_size.get()),
            hash_start_block: options.hash_start_block()?,
            tree,
        }
    } else {
        verity::read_superblock(&device, args.tree.hash_offset)
            .with_context(|| format!("{}", args.hash_device.display()))?
            .1
    };
    let root = verity::parse_root_hash(&args.root_hash, layout.tree.hash)?;
    let data = open_data(&args.data, &layout.tree, Some(layout.data_blocks))?;
    verity::verify(data.file, &device, &layout, &root).with_context(|| {
        format!(
            "{} with {}",
            args.data.display(),
            args.hash_device.display()
        )
    })?;
    println!(
        "{} and {}: {} data blocks match root hash {}",
        args.data.display(),
        args.hash_device.display(),
        layout.data_blocks,
        hex::encode(&root)
    );
    Ok(ExitCode::SUCCESS)
}
