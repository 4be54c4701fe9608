//! The edge where evidence comes from files and the KDS: a `--certs` folder in snpguest's layout,
//! a boot run folder and `expected.json` (both read through `snpkit-bundle`, which owns their
//! names and formats), and the KDS for what is missing.
//!
//! ARK, ASK and ASVK are never fetched for a verdict: the builtin, pinned ones are the trust anchor,
//! and any the host supplies are only compared with them.

use crate::kds::{Kds, KdsError, KeyKind};
use crate::product::Product;
use crate::report;
use crate::verifier::{CrlInput, Endorsements, Reference, ReferenceConfig};
use snpkit_bundle::{
    BundleError, CertName, ConfigChoice, Expected, ExpectedConfig, RunDir, RunRecord, run_files,
};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Certificates are small; anything bigger is not one.
pub const MAX_CERT_FILE: u64 = 64 * 1024;
/// AMD's CRLs are a few KiB; room for many entries, but no more.
pub const MAX_CRL_FILE: u64 = 1024 * 1024;
/// A report file bigger than this is not a report (or an HCL wrapper of one).
pub const MAX_REPORT_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file, larger than its limit, unreadable: named with the path and the limit.
    #[error(transparent)]
    File(#[from] snpkit_fsguard::FsError),
    #[error("{dir} has both {a} and {b}: keep one")]
    Ambiguous { dir: PathBuf, a: String, b: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// A file of a run folder (missing, not a regular file, too large, malformed).
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

fn one_of(
    dir: &Path,
    prefix: &str,
    name: CertName,
    exts: &[&str],
    max: u64,
) -> Result<Option<Vec<u8>>, GatherError> {
    let stem = name.stem();
    // Whatever is there under the name is read (and refused if it is not a regular file): a
    // FIFO or a dangling link named vcek.pem is an error, not silently no certificate.
    let found: Vec<PathBuf> = exts
        .iter()
        .map(|e| dir.join(format!("{prefix}{stem}.{e}")))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => {
            let what = if name == CertName::Crl {
                "CRL"
            } else {
                "certificate"
            };
            Ok(Some(snpkit_fsguard::read(one, what, max)?))
        }
        [a, b, ..] => Err(GatherError::Ambiguous {
            dir: dir.to_path_buf(),
            a: a.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            b: b.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }),
    }
}

/// A `--certs` folder with snpguest's file names: ark, ask, asvk, vcek, vlek (`.pem` or `.der`),
/// and optionally `crl.der`/`crl.pem`. PEM and DER are both accepted whatever the extension says.
///
/// A run's `emulated-certs/` folder is read too: its files carry the `emulated-` prefix so that no
/// AMD tool takes them for AMD's, and reading them here changes nothing about trust (the verdict
/// still refuses the emulated chain without `--allow-emulated`).
pub fn read_certs_dir(dir: &Path) -> Result<Endorsements, GatherError> {
    let emulated = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(run_files::EMULATED_PREFIX)
            })
        })
        .unwrap_or(false);
    let prefix = if emulated {
        run_files::EMULATED_PREFIX
    } else {
        ""
    };
    read_named_certs(dir, prefix)
}

/// A folder of certificates whose file names start with `prefix` (`emulated-` for the emulated
/// PSP's, which are kept under names no AMD tool reads).
fn read_named_certs(dir: &Path, prefix: &str) -> Result<Endorsements, GatherError> {
    if !dir.is_dir() {
        return Err(GatherError::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
        });
    }
    let exts = ["pem", "der", "crt", "cer"];
    let crl = one_of(
        dir,
        prefix,
        CertName::Crl,
        &["der", "pem", "crl"],
        MAX_CRL_FILE,
    )?;
    Ok(Endorsements {
        ark: one_of(dir, prefix, CertName::Ark, &exts, MAX_CERT_FILE)?,
        ask: one_of(dir, prefix, CertName::Ask, &exts, MAX_CERT_FILE)?,
        asvk: one_of(dir, prefix, CertName::Asvk, &exts, MAX_CERT_FILE)?,
        vcek: one_of(dir, prefix, CertName::Vcek, &exts, MAX_CERT_FILE)?,
        vlek: one_of(dir, prefix, CertName::Vlek, &exts, MAX_CERT_FILE)?,
        vek_problem: None,
        crl: match crl {
            Some(b) => CrlInput::Given(b),
            None => CrlInput::NotAtHand(format!("no crl.der or crl.pem in {}", dir.display())),
        },
    })
}

/// Fill what is missing from the KDS (or its cache): the VEK ([`complete_vek_from_kds`]) and the
/// CRL ([`complete_crl_from_kds`]). What cannot be had is recorded for the verdict, never an early
/// error.
pub fn complete_from_kds(
    report_bytes: &[u8],
    e: &mut Endorsements,
    product: Option<Product>,
    kds: &Kds,
    now: OffsetDateTime,
) {
    complete_vek_from_kds(report_bytes, e, product, kds);
    complete_crl_from_kds(report_bytes, e, product, kds, now);
}

/// What the KDS is asked about for a report: its product and key kind, or `None` when it cannot
/// be asked (unparsable report, the emulated chain, an unknown product, recorded in `e`).
fn kds_subject(
    report_bytes: &[u8],
    e: &mut Endorsements,
    product: Option<Product>,
) -> Option<(report::Report, Product, KeyKind)> {
    let r = report::parse(report_bytes).ok()?;
    if crate::verifier::names_emulated_chain(e) {
        // AMD's KDS knows nothing of the test chain: there is nothing to fetch for it.
        return None;
    }
    let Some(product) = product
        .or_else(|| r.cpuid_product())
        .or_else(|| crate::verifier::product_from_names(e))
    else {
        if e.vcek.is_none() && e.vlek.is_none() {
            e.vek_problem = Some(
                "the product is unknown (version 2 report): pass --product to fetch the VCEK"
                    .into(),
            );
        }
        return None;
    };
    let kind = match r.signing_key {
        report::SigningKey::Vlek => KeyKind::Vlek,
        _ => KeyKind::Vcek,
    };
    Some((r, product, kind))
}

/// Fetch the VCEK for the report's chip and reported TCB when none is given (VLEKs are not
/// served publicly: that is recorded instead).
pub fn complete_vek_from_kds(
    report_bytes: &[u8],
    e: &mut Endorsements,
    product: Option<Product>,
    kds: &Kds,
) {
    let Some((r, product, kind)) = kds_subject(report_bytes, e, product) else {
        return;
    };
    match kind {
        KeyKind::Vcek if e.vcek.is_none() => {
            let chip = r.chip_id_for(product);
            if chip.iter().all(|&b| b == 0) {
                e.vek_problem = Some(
                    "CHIP_ID is masked, so the VCEK cannot be fetched: put vcek.pem in --certs"
                        .into(),
                );
            } else {
                match kds.vcek(product, chip, &r.tcb(r.reported_tcb, product)) {
                    Ok(der) => e.vcek = Some(der),
                    Err(err) => e.vek_problem = Some(crate::error_text(&err)),
                }
            }
        }
        KeyKind::Vlek if e.vlek.is_none() => {
            e.vek_problem = Some(
                "VLEKs are not served publicly by the KDS: put vlek.pem (from the host) in --certs"
                    .into(),
            );
        }
        _ => {}
    }
}

/// Fetch the product's CRL (from the cache while current at `now`) when none is given.
pub fn complete_crl_from_kds(
    report_bytes: &[u8],
    e: &mut Endorsements,
    product: Option<Product>,
    kds: &Kds,
    now: OffsetDateTime,
) {
    if !matches!(e.crl, CrlInput::NotAtHand(_)) {
        return;
    }
    if crate::verifier::names_emulated_chain(e) {
        e.crl = CrlInput::NotAtHand(
            "the emulated test chain has no CRL on the KDS (its own comes with --allow-emulated)"
                .into(),
        );
        return;
    }
    let Some((_, product, kind)) = kds_subject(report_bytes, e, product) else {
        return;
    };
    e.crl = match kds.crl(product, kind, now) {
        Ok(der) => CrlInput::Given(der),
        Err(err @ (KdsError::NotCached { .. } | KdsError::CacheUnusable { .. })) => {
            CrlInput::NotAtHand(crate::error_text(&err))
        }
        Err(err) => CrlInput::Failed(crate::error_text(&err)),
    };
}

/// The emulated test chain's own CRL, for endorsements that name that chain and bring no CRL.
pub fn complete_from_test_chain(e: &mut Endorsements, chain: &crate::emulated::TestChain) {
    if crate::verifier::names_emulated_chain(e) && !matches!(e.crl, CrlInput::Given(_)) {
        e.crl = CrlInput::Given(chain.crl.clone());
    }
}

/// A CRL file (`--crl FILE`), PEM or DER.
pub fn read_crl_file(path: &Path) -> Result<CrlInput, GatherError> {
    Ok(CrlInput::Given(snpkit_fsguard::read(
        path,
        "CRL",
        MAX_CRL_FILE,
    )?))
}

/// The files of one boot run, checked against each other.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub report: Vec<u8>,
    pub endorsements: Endorsements,
    pub nonce: [u8; snpkit_wire::binding::NONCE_LEN],
    pub pubkey: Vec<u8>,
    pub run: RunRecord,
}

pub fn parse_nonce(
    path: &Path,
    text: &str,
) -> Result<[u8; snpkit_wire::binding::NONCE_LEN], GatherError> {
    let invalid = |reason: String| GatherError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = hex::decode(text.trim()).map_err(|e| invalid(format!("nonce is not hex ({e})")))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        invalid(format!(
            "nonce is {} bytes, expected {}",
            b.len(),
            snpkit_wire::binding::NONCE_LEN
        ))
    })
}

/// A public key file as people hand it over: the 32 raw bytes `boot` writes as `pubkey.bin`, or
/// the hex text it writes as `pubkey` (64 digits, a trailing newline allowed). Unambiguous: a raw
/// X25519 key is 32 bytes, its hex 64. Returns the key and which form was read, to be said.
pub fn parse_pubkey(bytes: Vec<u8>) -> (Vec<u8>, &'static str) {
    const RAW: usize = 32;
    let text = bytes.trim_ascii_end();
    if text.len() == 2 * RAW
        && text.iter().all(u8::is_ascii_hexdigit)
        && let Ok(key) = hex::decode(text)
    {
        return (key, "hex text (64 digits)");
    }
    (bytes, "raw bytes")
}

/// Reads a run folder (record, nonce, public key, report, `certs/`) and checks that the record
/// names the nonce and key the files hold.
pub fn read_run(dir: &RunDir) -> Result<Run, GatherError> {
    let invalid = |path: PathBuf, reason: String| GatherError::Invalid { path, reason };
    let run = dir.read_record()?;
    let run_path = dir.record();
    let nonce_path = dir.nonce();
    let nonce_text = String::from_utf8(dir.read_nonce()?)
        .map_err(|_| invalid(nonce_path.clone(), "not text".into()))?;
    let nonce = parse_nonce(&nonce_path, &nonce_text)?;
    if hex::encode(nonce) != run.nonce.to_ascii_lowercase() {
        return Err(invalid(
            run_path,
            "its nonce differs from the nonce file".into(),
        ));
    }
    let pubkey = dir.read_pubkey()?;
    if hex::encode(&pubkey) != run.pubkey.to_ascii_lowercase() {
        return Err(invalid(
            run_path,
            format!("its pubkey differs from {}", run_files::PUBKEY),
        ));
    }
    let report = dir.read_report()?;
    // Each launch's certificates where it keeps them: an emulated run's never under AMD's names.
    let (certs, prefix) = if run.launch.is_emulated() {
        (dir.emulated_certs(), run_files::EMULATED_PREFIX)
    } else {
        (dir.certs(), "")
    };
    let endorsements = if certs.is_dir() {
        read_named_certs(&certs, prefix)?
    } else {
        Endorsements::default()
    };
    Ok(Run {
        dir: dir.path().to_path_buf(),
        report,
        endorsements,
        nonce,
        pubkey,
        run,
    })
}

/// The launch configs of an `expected.json` read from `path` a report is judged against: with a
/// name, only that one (`--config NAME`); without, every one of them, and the report passes with
/// whichever it matches (the verdict names it).
pub fn expected_config(
    path: &Path,
    expected: &Expected,
    name: Option<&str>,
) -> Result<Reference, GatherError> {
    let invalid = |reason: String| GatherError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let chosen: Vec<&ExpectedConfig> = match name {
        Some(_) => vec![
            expected
                .config(name)
                .map_err(|choice| invalid(choice.to_string()))?,
        ],
        None if expected.configs.is_empty() => {
            return Err(invalid(ConfigChoice::Empty.to_string()));
        }
        None => expected.configs.iter().collect(),
    };
    let configs = chosen
        .into_iter()
        .map(|config| {
            let measurement = hex::decode(config.measurement.trim())
                .ok()
                .and_then(|m| <[u8; 48]>::try_from(m).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "the measurement of config {:?} is not 96 hex digits",
                        config.launch.name
                    ))
                })?;
            Ok(ReferenceConfig {
                name: config.launch.name.clone(),
                measurement,
                launch_policy: config.launch.policy,
            })
        })
        .collect::<Result<Vec<_>, GatherError>>()?;
    Ok(Reference {
        measurement_source: path.display().to_string(),
        configs,
        ..Reference::default()
    })
}

#[cfg(test)]
mod tests {
    use super::{expected_config, parse_pubkey};
    use snpkit_bundle::Expected;
    use std::path::Path;

    fn expected(configs: &[(&str, &str)]) -> Expected {
        let configs: Vec<serde_json::Value> = configs
            .iter()
            .map(|(name, m)| {
                serde_json::json!({"launch": {"name": name, "vcpus": 1, "vcpu_type": "EPYC-v4",
                    "vmm": "qemu", "guest_features": 1, "policy": 0x30000, "memory_mib": 512},
                    "measurement": m})
            })
            .collect();
        let json =
            serde_json::json!({"schema": 1, "recipe": "hello", "inputs": [], "configs": configs});
        Expected::from_json(Path::new("e.json"), json.to_string().as_bytes()).expect("parses")
    }

    #[test]
    fn every_config_is_a_candidate_unless_one_is_named() {
        let (a, b) = ("aa".repeat(48), "bb".repeat(48));
        let e = expected(&[("a", &a), ("b", &b)]);
        let path = Path::new("e.json");
        let all = expected_config(path, &e, None).expect("all");
        let names: Vec<&str> = all.configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(all.configs[1].measurement, [0xBB; 48]);
        assert_eq!(all.configs[1].launch_policy, 0x30000);
        assert_eq!((all.measurement, all.launch_policy), (None, None));
        let one = expected_config(path, &e, Some("b")).expect("b");
        assert_eq!(one.configs.len(), 1);
        assert_eq!(one.configs[0].name, "b");
        let err = expected_config(path, &e, Some("c")).expect_err("no c");
        assert!(
            err.to_string().contains("no launch config named \"c\""),
            "{err}"
        );
        let err = expected_config(path, &expected(&[]), None).expect_err("empty");
        assert!(err.to_string().contains("no launch configs"), "{err}");
        let err = expected_config(path, &expected(&[("a", &a), ("b", "abc")]), None)
            .expect_err("bad hex");
        assert!(
            err.to_string().contains("config \"b\" is not 96 hex"),
            "{err}"
        );
    }

    #[test]
    fn a_pubkey_is_read_as_hex_only_when_it_is_64_hex_digits() {
        let raw = vec![0xAB; 32];
        assert_eq!(parse_pubkey(raw.clone()), (raw.clone(), "raw bytes"));
        let hex = format!("{}\n", "ab".repeat(32)).into_bytes();
        assert_eq!(parse_pubkey(hex).0, raw);
        // 32 bytes that are hex digits are still 32 raw bytes, not 16.
        let digits = "ab".repeat(16).into_bytes();
        assert_eq!(parse_pubkey(digits.clone()), (digits, "raw bytes"));
        let odd = b"abc".to_vec();
        assert_eq!(parse_pubkey(odd.clone()).0, odd);
    }
}
