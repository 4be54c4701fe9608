//! `cargo xtask verify`: judge an attestation report and print the verdict.
//!
//! Thin: reads files and flags, asks `snpkit_attest` for the verdict, prints it. Exit code 0 only
//! when every check passed, 1 for a failing verdict, 2 when the inputs could not be read. Unreadable
//! inputs still get a verdict (table or JSON, on stdout) whose `input` check names the file or flag
//! and the problem, so CI parsing the JSON never sees an empty answer; stderr says it too.

use snpkit_attest::emulated::{TestChain, default_dir};
use snpkit_attest::gather::{self, MAX_CERT_FILE, MAX_REPORT_FILE};
use snpkit_attest::kds::{Kds, KdsConfig};
use snpkit_attest::{Endorsements, Policy, Product, Reference, Trust, Verdict};
use snpkit_bundle::{Expected, ImageDir, RunId};
use snpkit_fsguard::read as read_limited;
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
    /// Folder with ark, ask, asvk, vcek, vlek (.pem or .der) and optionally crl.der or crl.pem.
    #[arg(long, value_name = "DIR")]
    pub certs: Option<PathBuf>,
    /// The ARK-signed CRL to check the chain against (PEM or DER), instead of the KDS's.
    #[arg(long, value_name = "FILE", conflicts_with = "no_crl")]
    pub crl: Option<PathBuf>,
    /// Do not check revocation when no CRL is given (policy require_crl = false); the verdict then
    /// says "skipped by policy". Without it, no CRL at hand fails the verdict.
    #[arg(long)]
    pub no_crl: bool,
    /// milan, genoa or turin (detected from the report or certificates when not given).
    #[arg(long, value_parser = parse_product)]
    pub product: Option<Product>,
    /// Reference values: an expected.json (as `cargo xtask build` and `measure` write it).
    #[arg(long, value_name = "FILE", conflicts_with = "measurement")]
    pub expected: Option<PathBuf>,
    /// Hold the report to this launch config of expected.json. Without it, the report passes
    /// with any of its configs whose MEASUREMENT and guest policy it has, and the verdict names
    /// the one it matched.
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
    /// The guest's ephemeral public key: raw bytes (a run's pubkey.bin) or hex text (its pubkey).
    #[arg(long, value_name = "FILE", requires = "nonce")]
    pub pubkey: Option<PathBuf>,
    /// Expected REPORT_DATA, 128 hex digits.
    #[arg(long, value_name = "HEX", conflicts_with = "report_data_file")]
    pub report_data: Option<String>,
    /// Expected REPORT_DATA from a file: snpguest's 64-byte request file, or 128 hex digits.
    #[arg(long, value_name = "FILE", conflicts_with = "nonce")]
    pub report_data_file: Option<PathBuf>,
    /// Verification policy (TOML; see crates/attest/examples/policy.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Require the launch's ID block signed by this ID key (P-384 public key, PEM or DER):
    /// ID_KEY_DIGEST must be its digest. With no expected measurement, the measurement then
    /// passes by signature.
    #[arg(long, value_name = "FILE")]
    pub id_key: Option<PathBuf>,
    /// Require the launch's ID key certified by this author key (P-384 public key, PEM or DER):
    /// AUTHOR_KEY_DIGEST must be its digest. With no expected measurement, the measurement then
    /// passes by signature.
    #[arg(long, value_name = "FILE")]
    pub author_key: Option<PathBuf>,
    /// Require FAMILY_ID (32 hex digits or a UUID, as in the recipe's [identity]).
    #[arg(long, value_name = "ID")]
    pub family_id: Option<String>,
    /// Require IMAGE_ID (32 hex digits or a UUID).
    #[arg(long, value_name = "ID")]
    pub image_id: Option<String>,
    /// Require HOST_DATA (64 hex digits), what the launcher bound into the report.
    #[arg(long, value_name = "HEX")]
    pub host_data: Option<snpkit_bundle::HostData>,
    /// Require GUEST_SVN of at least N (the policy's min_guest_svn).
    #[arg(long, value_name = "N")]
    pub min_guest_svn: Option<u32>,
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

impl Args {
    /// `verify <recipe> --images <images> [--allow-emulated]`: the newest boot run, every other
    /// flag at its default (the KDS URL from `SNPKIT_KDS_URL`, as on the command line).
    pub fn newest_run(recipe: &str, images: PathBuf, allow_emulated: bool) -> Args {
        Args {
            recipe: Some(recipe.to_owned()),
            run: None,
            report: None,
            certs: None,
            crl: None,
            no_crl: false,
            product: None,
            expected: None,
            config: None,
            measurement: None,
            nonce: None,
            pubkey: None,
            report_data: None,
            report_data_file: None,
            policy: None,
            id_key: None,
            author_key: None,
            family_id: None,
            image_id: None,
            host_data: None,
            min_guest_svn: None,
            now: None,
            offline: false,
            json: false,
            allow_emulated,
            images: Some(images),
            kds_url: std::env::var("SNPKIT_KDS_URL")
                .unwrap_or_else(|_| snpkit_attest::kds::AMD_KDS.to_owned()),
        }
    }
}

fn parse_product(s: &str) -> Result<Product, String> {
    Product::from_id(s).ok_or_else(|| format!("{s:?} is not milan, genoa or turin"))
}

/// An input that could not be had: which file or flag, and what was wrong, in a sentence that
/// stands on its own (it names the file or flag itself).
struct InputError {
    what: String,
    problem: String,
}

/// `map_err` for a library step that reads `what`: the library's error names the file, and its
/// chain of causes is the problem.
fn bad<E: std::error::Error + Send + Sync + 'static>(
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> InputError {
    let what = what.to_string();
    move |e| InputError {
        what,
        problem: error_chain(e),
    }
}

/// A problem found here, about a file or flag the message does not name yet.
fn input_err(what: impl std::fmt::Display, problem: impl std::fmt::Display) -> InputError {
    let what = what.to_string();
    let problem = format!("{what}: {problem}");
    InputError { what, problem }
}

fn hex_array<const N: usize>(what: &str, text: &str) -> Result<[u8; N], InputError> {
    let bytes = hex::decode(text.trim()).map_err(|e| input_err(what, format!("not hex ({e})")))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| input_err(what, format!("{len} bytes, expected {N}")))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (verdict, code) = match judge(&args) {
        Ok(v) => {
            let code = if v.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
            (v, code)
        }
        Err(err) => {
            eprintln!("error: {}", err.problem);
            (
                Verdict::input_error(err.what, err.problem),
                ExitCode::from(2),
            )
        }
    };
    let text = if args.json {
        verdict.to_json()
    } else {
        verdict.to_table(std::io::stdout().is_terminal())
    };
    println!("{}", text.trim_end());
    Ok(code)
}

fn path_text(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn judge(args: &Args) -> Result<Verdict, InputError> {
    let mut reference = Reference {
        product: args.product,
        ..Reference::default()
    };
    // The config a run's record says it booted: said beside the verdict when the report matched
    // another (the record is the host's word, the report the PSP's).
    let mut run_config = None;
    let (report, mut endorsements) = match (&args.report, &args.recipe) {
        (Some(path), _) => (
            read_limited(path, "report", MAX_REPORT_FILE).map_err(bad(path_text(path)))?,
            Endorsements::default(),
        ),
        (None, Some(recipe)) => {
            let images = match args.images.clone() {
                Some(images) => images,
                None => crate::cli::default_images().map_err(|e| InputError {
                    what: "the project".to_owned(),
                    problem: format!("{e:#}"),
                })?,
            };
            let image = ImageDir::named(&images, recipe).map_err(bad("recipe"))?;
            let (dir, why) = match &args.run {
                Some(id) => (
                    image.run(&RunId::parse(id).map_err(bad("run"))?),
                    "named on the command line".to_owned(),
                ),
                None => {
                    let dir = image.newest_run().map_err(bad(path_text(&image.runs())))?;
                    let passed_over = image.unfinished_since(&dir);
                    let why = if passed_over.is_empty() {
                        "the newest finished run".to_owned()
                    } else {
                        format!(
                            "the newest finished run; newer runs that did not finish (no evidence, \
                             their folders keep the console log) were passed over: {}",
                            passed_over.join(", ")
                        )
                    };
                    (dir, why)
                }
            };
            // Said before anything is judged, so no verdict leaves the reader guessing which run.
            eprintln!("verify: judging run {} ({why})", dir.path().display());
            let run = gather::read_run(&dir)
                .map_err(bad(format!("boot run {}", dir.path().display())))?;
            if args.measurement.is_none() && args.expected.is_none() {
                refuse_other_image(&image, &dir, &run.run)?;
            }
            reference.report_data =
                Some(snpkit_wire::binding::report_data(&run.nonce, &run.pubkey));
            reference.report_data_source = format!(
                "nonce and public key of run {} ({why})",
                dir.path().display()
            );
            if args.measurement.is_none() {
                let (path, expected) = match &args.expected {
                    Some(path) => (
                        path.clone(),
                        Expected::read_given(path).map_err(bad(path_text(path)))?,
                    ),
                    None => (
                        image.expected(),
                        image
                            .read_expected()
                            .map_err(bad(path_text(&image.expected())))?,
                    ),
                };
                let r = gather::expected_config(&path, &expected, args.config.as_deref())
                    .map_err(bad(path_text(&path)))?;
                reference.configs = r.configs;
                reference.measurement_source = r.measurement_source;
                run_config = Some(run.run.config.clone());
            }
            (run.report, run.endorsements)
        }
        (None, None) => {
            return Err(input_err(
                "arguments",
                "give a recipe (`verify <recipe> [<run>]`) or `--report FILE`",
            ));
        }
    };
    if let Some(dir) = &args.certs {
        endorsements = gather::read_certs_dir(dir).map_err(bad(path_text(dir)))?;
    }
    if let Some(path) = &args.crl {
        endorsements.crl = gather::read_crl_file(path).map_err(bad(path_text(path)))?;
    }
    if let (Some(path), None) = (&args.expected, &args.recipe) {
        let expected = Expected::read_given(path).map_err(bad(path_text(path)))?;
        let r = gather::expected_config(path, &expected, args.config.as_deref())
            .map_err(bad(path_text(path)))?;
        reference.configs = r.configs;
        reference.measurement_source = r.measurement_source;
    }
    if let Some(m) = &args.measurement {
        reference.measurement = Some(hex_array::<48>("--measurement", m)?);
        reference.measurement_source = "--measurement".into();
    }
    if let (Some(nonce), Some(pubkey)) = (&args.nonce, &args.pubkey) {
        let nonce = hex_array::<{ snpkit_wire::binding::NONCE_LEN }>("--nonce", nonce)?;
        let (key, form) = gather::parse_pubkey(
            read_limited(pubkey, "public key", MAX_CERT_FILE).map_err(bad(path_text(pubkey)))?,
        );
        // Both forms `boot` writes are accepted; which one was read is said, never guessed at.
        eprintln!(
            "verify: --pubkey {} read as {form}: a {}-byte key",
            pubkey.display(),
            key.len()
        );
        reference.report_data = Some(snpkit_wire::binding::report_data(&nonce, &key));
        reference.report_data_source = format!("--nonce/--pubkey ({form})");
    }
    if let Some(path) = &args.report_data_file {
        let bytes = read_limited(path, "REPORT_DATA file", 1024).map_err(bad(path_text(path)))?;
        let (data, form) = report_data_file(&bytes).ok_or_else(|| {
            input_err(
                path_text(path),
                format!(
                    "{} bytes are neither 64 raw bytes (snpguest's request file) nor 128 hex digits",
                    bytes.len()
                ),
            )
        })?;
        eprintln!(
            "verify: --report-data-file {} read as {form}",
            path.display()
        );
        reference.report_data = Some(data);
        reference.report_data_source = format!("--report-data-file ({form})");
    }
    if let Some(rd) = &args.report_data {
        reference.report_data = Some(hex_array::<64>("--report-data", rd)?);
        reference.report_data_source = "--report-data".into();
    }

    let mut policy = match &args.policy {
        Some(p) => {
            let bytes = read_limited(p, "policy", MAX_CERT_FILE).map_err(bad(path_text(p)))?;
            let text =
                String::from_utf8(bytes).map_err(|_| input_err(path_text(p), "not UTF-8 text"))?;
            Policy::from_toml(&text).map_err(|e| input_err(path_text(p), error_chain(e)))?
        }
        None => Policy::default(),
    };
    if args.no_crl {
        policy.require_crl = false;
    }
    signer_flags(args, &mut policy)?;
    let now = match &args.now {
        Some(t) => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                input_err(
                    "--now",
                    format!("{t:?} is not an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)"),
                )
            })?,
        None => OffsetDateTime::now_utc(),
    };

    let mut kds_cfg =
        KdsConfig::amd(args.offline).map_err(|e| input_err("KDS cache", error_chain(e)))?;
    kds_cfg.base_url = args.kds_url.clone();
    let kds = Kds::new(kds_cfg).map_err(bad("KDS client"))?;
    gather::complete_vek_from_kds(&report, &mut endorsements, args.product, &kds);
    // Opted out of revocation: a CRL given explicitly is still checked, none is fetched.
    if policy.require_crl {
        gather::complete_crl_from_kds(&report, &mut endorsements, args.product, &kds, now);
    }

    let test_chain = if args.allow_emulated {
        match default_dir() {
            // A chain that is there but exposed or damaged is said, not taken for no chain.
            Ok(d) => TestChain::existing(&d)
                .map_err(|e| input_err("the emulated PSP's test chain", error_chain(e)))?,
            Err(_) => None,
        }
    } else {
        None
    };
    if let Some(chain) = &test_chain {
        gather::complete_from_test_chain(&mut endorsements, chain);
    }
    let trust = Trust {
        allow_emulated: args.allow_emulated,
        emulated_roots: test_chain.as_ref().map(|c| &c.roots),
        memo: None,
    };
    let verdict = snpkit_attest::verify(&report, &endorsements, &reference, &policy, &trust, now);
    if let (Some(claimed), Some(matched)) = (&run_config, &verdict.config)
        && claimed != matched
    {
        eprintln!(
            "verify: the run's record says it booted launch config {claimed:?}; its report \
             matches launch config {matched:?}"
        );
    }
    Ok(verdict)
}

/// REPORT_DATA as a file holds it: 64 raw bytes (`snpguest report --random`'s request file), or
/// 128 hex digits (a trailing newline allowed). Unambiguous by length.
fn report_data_file(bytes: &[u8]) -> Option<([u8; 64], &'static str)> {
    if let Ok(raw) = <[u8; 64]>::try_from(bytes) {
        return Some((raw, "64 raw bytes"));
    }
    let text = bytes.trim_ascii_end();
    if text.len() != 128 || !text.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let decoded = hex::decode(text).ok()?;
    Some((decoded.try_into().ok()?, "hex text (128 digits)"))
}

/// A run judged against the image's own prediction must have booted this image: one made before
/// a rebuild proves nothing about what is in the folder now, even when its measurement happens to
/// match. A record without the digest (made by hand) names no image and is judged on its report.
fn refuse_other_image(
    image: &ImageDir,
    dir: &snpkit_bundle::RunDir,
    record: &snpkit_bundle::RunRecord,
) -> Result<(), InputError> {
    let Some(booted) = &record.manifest_sha256 else {
        return Ok(());
    };
    let (_, current) = image
        .read_manifest_hashed()
        .map_err(bad(path_text(&image.manifest())))?;
    if booted.eq_ignore_ascii_case(&current.to_hex()) {
        return Ok(());
    }
    Err(input_err(
        format!("boot run {}", dir.path().display()),
        format!(
            "the run booted another image (manifest sha256 {booted}), not {} as it is now ({}): the \
             image was rebuilt since, and this run's evidence is not about it. Boot it again \
             (`cargo xtask boot {}`), or judge the run against its own image's prediction with \
             --expected FILE",
            image.path().display(),
            current.to_hex(),
            image.recipe()
        ),
    ))
}

/// `--id-key`, `--author-key`, `--family-id`, `--image-id`, `--min-guest-svn` into the policy. A
/// flag that contradicts the policy file is an input error, never a silent override.
fn signer_flags(args: &Args, policy: &mut Policy) -> Result<(), InputError> {
    let set = |field: &mut Option<String>, flag: &str, key: &str, value: String| match field {
        Some(old) if !old.trim().eq_ignore_ascii_case(&value) => Err(input_err(
            flag.to_owned(),
            format!(
                "the policy file sets {key} = {old:?}, the flag says {value}: give one of them"
            ),
        )),
        _ => {
            *field = Some(value);
            Ok(())
        }
    };
    for (path, flag, key, field) in [
        (
            &args.id_key,
            "--id-key",
            "id_key_digest",
            &mut policy.id_key_digest,
        ),
        (
            &args.author_key,
            "--author-key",
            "author_key_digest",
            &mut policy.author_key_digest,
        ),
    ] {
        if let Some(path) = path {
            let key_digest = snpkit_idblock::keyfile::read_public_key(path)
                .map_err(|e| input_err(flag, error_chain(e)))?
                .digest();
            set(field, flag, key, hex::encode(key_digest))?;
        }
    }
    for (text, flag, key, field) in [
        (
            &args.family_id,
            "--family-id",
            "family_id",
            &mut policy.family_id,
        ),
        (
            &args.image_id,
            "--image-id",
            "image_id",
            &mut policy.image_id,
        ),
    ] {
        if let Some(text) = text {
            let id = snpkit_recipe::parse_id(text).ok_or_else(|| {
                input_err(
                    flag,
                    format!(
                        "{:?} is not 16 bytes: write 32 hex digits or a UUID",
                        text.chars().take(80).collect::<String>()
                    ),
                )
            })?;
            set(field, flag, key, hex::encode(id))?;
        }
    }
    if let Some(h) = &args.host_data {
        set(
            &mut policy.host_data,
            "--host-data",
            "host_data",
            h.to_hex(),
        )?;
    }
    if let Some(n) = args.min_guest_svn {
        policy.min_guest_svn = policy.min_guest_svn.max(n);
    }
    Ok(())
}

/// An error and its causes on one line (`policy: key min_abi: …`), as anyhow prints a chain.
fn error_chain<E: std::error::Error + Send + Sync + 'static>(e: E) -> String {
    format!("{:#}", anyhow::Error::new(e))
}
