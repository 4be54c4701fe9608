//! `cargo xtask verify`: judge an attestation report and print the verdict.
//!
//! Thin: reads files and flags, asks `snpkit_attest` for the verdict, prints it. Exit code 0 only
//! when every check passed, 1 for a failing verdict, 2 when the inputs could not be read.

use anyhow::{Context, bail};
use snpkit_attest::emulated::{TestChain, default_dir};
use snpkit_attest::gather::{self, MAX_CERT_FILE, MAX_REPORT_FILE, read_limited};
use snpkit_attest::kds::{Kds, KdsConfig};
use snpkit_attest::{Endorsements, Policy, Product, Reference, Trust};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use time::OffsetDateTime;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask verify hello --allow-emulated\n  \
    cargo xtask verify --report report.bin --certs certs/ --expected expected.json --nonce HEX --pubkey key.bin"
)]
pub struct Args {
    /// Verify the files of a boot run of this recipe (images/<recipe>/runs/<run>/).
    #[arg(conflicts_with = "report")]
    pub recipe: Option<String>,
    /// The run id under images/<recipe>/runs/ (default: the newest run).
    #[arg(requires = "recipe")]
    pub run: Option<String>,
    /// The raw 1184-byte report.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Folder with ark, ask, asvk, vcek, vlek (.pem or .der) and optionally crl.der.
    #[arg(long, value_name = "DIR")]
    pub certs: Option<PathBuf>,
    /// milan, genoa or turin (detected from the report or certificates when not given).
    #[arg(long, value_parser = parse_product)]
    pub product: Option<Product>,
    /// Reference values from `cargo xtask measure`.
    #[arg(long, value_name = "FILE", conflicts_with = "measurement")]
    pub expected: Option<PathBuf>,
    /// Launch config name in expected.json (default: the run's, or the only one).
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,
    /// Expected MEASUREMENT, 96 hex digits.
    #[arg(long, value_name = "HEX")]
    pub measurement: Option<String>,
    /// The 32-byte nonce sent to the guest, hex; REPORT_DATA must bind it with --pubkey.
    #[arg(
        long,
        value_name = "HEX",
        requires = "pubkey",
        conflicts_with = "report_data"
    )]
    pub nonce: Option<String>,
    /// The guest's ephemeral public key (raw bytes).
    #[arg(long, value_name = "FILE", requires = "nonce")]
    pub pubkey: Option<PathBuf>,
    /// Expected REPORT_DATA, 128 hex digits.
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Verification policy (TOML; see crates/attest/examples/policy.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Judge certificate validity at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Use only the KDS cache; name what is missing.
    #[arg(long)]
    pub offline: bool,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// Accept reports signed by this machine's emulated PSP test chain (never hardware-backed).
    #[arg(long)]
    pub allow_emulated: bool,
    /// Where the images live (for `verify <recipe>`).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// KDS base URL.
    #[arg(long, value_name = "URL", env = "SNPKIT_KDS_URL", default_value = snpkit_attest::kds::AMD_KDS)]
    pub kds_url: String,
}

fn parse_product(s: &str) -> Result<Product, String> {
    Product::from_id(s).ok_or_else(|| format!("{s:?} is not milan, genoa or turin"))
}

fn hex_array<const N: usize>(what: &str, text: &str) -> anyhow::Result<[u8; N]> {
    let bytes = hex::decode(text.trim()).with_context(|| format!("{what} is not hex"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{what} is {len} bytes, expected {N}"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match judge(&args) {
        Ok((verdict, passed)) => {
            println!("{verdict}");
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn judge(args: &Args) -> anyhow::Result<(String, bool)> {
    let mut reference = Reference {
        product: args.product,
        ..Reference::default()
    };
    let (report, mut endorsements) = match (&args.report, &args.recipe) {
        (Some(path), _) => (
            read_limited(path, "report", MAX_REPORT_FILE)?,
            Endorsements::default(),
        ),
        (None, Some(recipe)) => {
            let images = args
                .images
                .clone()
                .unwrap_or_else(|| crate::cli::workspace_root().join("images"));
            let recipe_dir = images.join(recipe);
            let runs = recipe_dir.join("runs");
            let dir = match &args.run {
                Some(id) => runs.join(id),
                None => gather::newest_run(&runs)?,
            };
            let run =
                gather::read_run(&dir).with_context(|| format!("boot run {}", dir.display()))?;
            reference.report_data =
                Some(snpkit_wire::binding::report_data(&run.nonce, &run.pubkey));
            reference.report_data_source = format!("nonce and public key of run {}", dir.display());
            if args.measurement.is_none() {
                let expected = args
                    .expected
                    .clone()
                    .unwrap_or_else(|| recipe_dir.join("expected.json"));
                let bytes = read_limited(&expected, "expected.json", 16 * 1024 * 1024)?;
                let config = args.config.as_deref().unwrap_or(&run.run.config);
                let r = gather::expected_config(&expected, &bytes, Some(config))?;
                reference.measurement = r.measurement;
                reference.launch_policy = r.launch_policy;
                reference.measurement_source = r.measurement_source;
            }
            (run.report, run.endorsements)
        }
        (None, None) => bail!("give a recipe (`verify <recipe> [<run>]`) or `--report FILE`"),
    };
    if let Some(dir) = &args.certs {
        endorsements = gather::read_certs_dir(dir)?;
    }
    if let (Some(path), None) = (&args.expected, &args.recipe) {
        let bytes = read_limited(path, "expected.json", 16 * 1024 * 1024)?;
        let r = gather::expected_config(path, &bytes, args.config.as_deref())?;
        reference.measurement = r.measurement;
        reference.launch_policy = r.launch_policy;
        reference.measurement_source = r.measurement_source;
    }
    if let Some(m) = &args.measurement {
        reference.measurement = Some(hex_array::<48>("--measurement", m)?);
        reference.measurement_source = "--measurement".into();
    }
    if let (Some(nonce), Some(pubkey)) = (&args.nonce, &args.pubkey) {
        let nonce = hex_array::<{ snpkit_wire::binding::NONCE_LEN }>("--nonce", nonce)?;
        let key = read_limited(pubkey, "public key", MAX_CERT_FILE)?;
        reference.report_data = Some(snpkit_wire::binding::report_data(&nonce, &key));
        reference.report_data_source = "--nonce/--pubkey".into();
    }
    if let Some(rd) = &args.report_data {
        reference.report_data = Some(hex_array::<64>("--report-data", rd)?);
        reference.report_data_source = "--report-data".into();
    }

    let policy = match &args.policy {
        Some(p) => {
            let text = String::from_utf8(read_limited(p, "policy", MAX_CERT_FILE)?)
                .with_context(|| format!("{} is not UTF-8 text", p.display()))?;
            Policy::from_toml(&text).with_context(|| format!("policy {}", p.display()))?
        }
        None => Policy::default(),
    };
    let now = match &args.now {
        Some(t) => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .with_context(|| {
                format!("--now {t:?} is not an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)")
            })?,
        None => OffsetDateTime::now_utc(),
    };

    let mut kds_cfg = KdsConfig::amd(args.offline)?;
    kds_cfg.base_url = args.kds_url.clone();
    let kds = Kds::new(kds_cfg)?;
    gather::complete_from_kds(&report, &mut endorsements, args.product, &kds, now);

    let test_chain = if args.allow_emulated {
        default_dir().ok().and_then(|d| TestChain::existing(&d))
    } else {
        None
    };
    let trust = Trust {
        allow_emulated: args.allow_emulated,
        emulated_roots: test_chain.as_ref().map(|c| &c.roots),
    };
    let verdict = snpkit_attest::verify(&report, &endorsements, &reference, &policy, &trust, now);
    let text = if args.json {
        verdict.to_json()
    } else {
        verdict.to_table(std::io::stdout().is_terminal())
    };
    Ok((text.trim_end().to_string(), verdict.passed))
}
