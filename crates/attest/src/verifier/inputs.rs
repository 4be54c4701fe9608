//! What a verdict is judged from besides the report: the endorsements at hand (certificates
//! and CRL), the reference values, and which roots to trust.

use super::configs::ReferenceConfig;
use super::memo::SignatureMemo;
use crate::certs::Cert;
use crate::product::Product;
use crate::roots::Roots;

/// Marker in the subject names of the emulated PSP's test chain.
pub const EMULATED_MARK: &str = "snpkit-EMULATED";

/// Certificates and CRL at hand for one report, as bytes in PEM or DER.
#[derive(Debug, Clone, Default)]
pub struct Endorsements {
    pub ark: Option<Vec<u8>>,
    pub ask: Option<Vec<u8>>,
    pub asvk: Option<Vec<u8>>,
    pub vcek: Option<Vec<u8>>,
    pub vlek: Option<Vec<u8>>,
    /// Why no VCEK/VLEK could be had (KDS down, offline and not cached, …), for the verdict.
    pub vek_problem: Option<String>,
    pub crl: CrlInput,
}

/// The CRL for a verdict. Revocation is checked fail-closed: without a CRL, `chain.crl` fails
/// unless the policy opts out (`require_crl = false`), and then it says "skipped by policy".
#[derive(Debug, Clone)]
pub enum CrlInput {
    /// A CRL (PEM or DER): always checked, whatever the policy says.
    Given(Vec<u8>),
    /// No CRL, and why (offline and not cached, none in `--certs`, not wanted).
    NotAtHand(String),
    /// Fetching one failed, and why.
    Failed(String),
}

impl Default for CrlInput {
    fn default() -> CrlInput {
        CrlInput::NotAtHand("no CRL given".into())
    }
}

/// What the report must say: reference values from the build and the session.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    /// The product the caller insists on (`--product`); else detected.
    pub product: Option<Product>,
    pub measurement: Option<[u8; 48]>,
    pub report_data: Option<[u8; 64]>,
    /// The guest policy the image was launched with (expected.json's launch config), if known.
    pub launch_policy: Option<u64>,
    /// Where the expected REPORT_DATA came from, for messages (`nonce and public key of run …`).
    pub report_data_source: String,
    /// Where the expected measurement and launch policy came from (`expected.json config "hello-1"`).
    pub measurement_source: String,
    /// The launch configs the report may come from (every config of an `expected.json`, or the
    /// one `--config` names), read from `measurement_source`. When there are any, the report
    /// must match one of them in MEASUREMENT and guest policy, the verdict names the one it
    /// matched ([`crate::Verdict::config`]), and `measurement` and `launch_policy` are not used.
    pub configs: Vec<ReferenceConfig>,
}

/// Which roots to trust besides AMD's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trust<'a> {
    /// Accept the emulated PSP's test chain. The verdict then says so in every output.
    pub allow_emulated: bool,
    /// This machine's test chain (from the cache), when it exists.
    pub emulated_roots: Option<&'a Roots>,
    /// Certificate and CRL signatures verified before (a long-running verifier's); `None` checks
    /// every signature every time.
    pub memo: Option<&'a SignatureMemo>,
}

fn is_emulated_cert(bytes: &Option<Vec<u8>>) -> bool {
    bytes
        .as_ref()
        .and_then(|b| Cert::decode("certificate", b).ok())
        .is_some_and(|c| {
            c.subject_cn().is_some_and(|n| n.contains(EMULATED_MARK))
                || c.issuer_cn().is_some_and(|n| n.contains(EMULATED_MARK))
        })
}

/// Do the given certificates name the emulated PSP's test chain?
pub(crate) fn names_emulated_chain(e: &Endorsements) -> bool {
    [&e.ark, &e.ask, &e.vcek, &e.vlek]
        .into_iter()
        .any(is_emulated_cert)
}

/// Product named by a certificate's issuer or subject (`SEV-Milan`, `SEV-VLEK-Genoa`, `ARK-Turin`).
pub(crate) fn product_from_names(e: &Endorsements) -> Option<Product> {
    for bytes in [&e.vcek, &e.vlek, &e.ask, &e.asvk, &e.ark]
        .into_iter()
        .flatten()
    {
        if let Ok(c) = Cert::decode("certificate", bytes) {
            for name in [c.issuer_cn(), c.subject_cn()].into_iter().flatten() {
                if let Some(p) = Product::ALL
                    .into_iter()
                    .find(|p| name.ends_with(&format!("-{}", p.kds_name())))
                {
                    return Some(p);
                }
            }
        }
    }
    None
}
