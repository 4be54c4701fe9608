//! The emulated PSP's test chain: an ARK → ASK → VCEK chain shaped like AMD's (RSA-4096 with
//! RSASSA-PSS/SHA-384 for ARK and ASK, an ECDSA P-384 VCEK with AMD's TCB, hwID and productName
//! extensions) and an ARK-signed CRL, with names that say it is a test chain. Generated once per
//! machine and cached: RSA-4096 key generation takes seconds.
//!
//! The cache is a private folder ([`PrivateDir`]): the keys are 0600 in a 0700 folder, checked
//! on every load and refused (with the `chmod` that fixes them) when others could read them.
//!
//! The CRL lists nothing and is current for the ARK's whole validity: AMD's CRLs expire after
//! weeks, but a test chain cached for years must keep verifying, and the verifier's CRL check
//! (issuer, ARK signature, dates, revoked serials) runs on it all the same.
//!
//! [`TestChain::forge`] makes the same shape under names of the caller's choosing, in memory: an
//! attacker's chain that copies AMD's names, for tests that show names earn no trust.

pub use super::error::EmulatedError;
pub use super::issue::{ChainNames, TEST_PRODUCT, TEST_TCB, VekSpec};

use super::error::{gen_err, io};
use super::issue::{ORG, generate, issue, name, pss_sign, x509_time};
use crate::certs::Cert;
use crate::certs::amd_ext::vek_extensions;
use crate::report::Tcb;
use crate::roots::Roots;
use crate::verifier::EMULATED_MARK;
use der::Encode;
use der::asn1::BitString;
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use sha2::Sha384;
use snpkit_fsguard::PrivateDir;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Layout version of the cache folder; bump when the chain's shape changes. v2: the keys are
/// private (v1 left them 0644 in a 0755 folder; such a chain is not used again).
pub const CACHE_VERSION: &str = "v2";

/// What the folder is, in errors.
const WHAT: &str = "the emulated PSP's test chain";

/// Certificates, keys and the CRL are a few KiB; nothing in the folder is larger.
const MAX_FILE: u64 = 64 << 10;

/// The test chain with its private keys.
pub struct TestChain {
    pub roots: Roots,
    pub vcek: Cert,
    /// The ARK-signed CRL, DER (cached as `crl.der`).
    pub crl: Vec<u8>,
    /// The subject's attributes after the CN, for VEKs issued later.
    org: String,
    ark_key: rsa::RsaPrivateKey,
    ask_key: rsa::RsaPrivateKey,
    vcek_key: p384::ecdsa::SigningKey,
    /// The chip id the test VCEK certifies (its hwID), 64 bytes.
    pub chip_id: [u8; 64],
    pub tcb: Tcb,
    pub dir: PathBuf,
}

impl std::fmt::Debug for TestChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestChain({})", self.dir.display())
    }
}

/// `test-chain/` under snpkit's cache folder (see [`snpkit_cache::root`]).
pub fn default_dir() -> Result<PathBuf, EmulatedError> {
    Ok(snpkit_cache::root()
        .ok_or(EmulatedError::NoCacheDir)?
        .join("test-chain"))
}

impl TestChain {
    /// Load the chain cached under `dir`, or generate and cache it. Safe against concurrent callers:
    /// the chain is written to a temporary folder and renamed into place.
    pub fn load_or_create(dir: &Path) -> Result<TestChain, EmulatedError> {
        let final_dir = dir.join(CACHE_VERSION);
        if final_dir.join("vcek.key").exists() {
            return TestChain::load(&final_dir);
        }
        std::fs::create_dir_all(dir).map_err(io("create the folder", dir))?;
        let tmp = dir.join(format!(
            ".tmp-{}-{:x}",
            std::process::id(),
            OsRng.next_u64()
        ));
        let written = PrivateDir::create(&tmp, WHAT)
            .map_err(EmulatedError::from)
            .and_then(|private| generate_into(&private));
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if std::fs::rename(&tmp, &final_dir).is_err() {
            // Someone else finished first; theirs wins.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        TestChain::load(&final_dir)
    }

    /// This machine's test chain under the default cache folder, loaded once per process.
    pub fn cached() -> Result<&'static TestChain, EmulatedError> {
        static CHAIN: std::sync::OnceLock<TestChain> = std::sync::OnceLock::new();
        if let Some(c) = CHAIN.get() {
            return Ok(c);
        }
        let chain = TestChain::load_or_create(&default_dir()?)?;
        Ok(CHAIN.get_or_init(|| chain))
    }

    /// The cached chain if this machine has one, without generating it (the verifier's view);
    /// one that is there but exposed or damaged is an error, not quietly no chain.
    pub fn existing(dir: &Path) -> Result<Option<TestChain>, EmulatedError> {
        let d = dir.join(CACHE_VERSION);
        if std::fs::symlink_metadata(d.join("vcek.key")).is_err() {
            return Ok(None);
        }
        TestChain::load(&d).map(Some)
    }

    fn load(dir: &Path) -> Result<TestChain, EmulatedError> {
        let private = PrivateDir::open(dir, WHAT)?;
        let read = |name: &str| private.read_public(name, name, MAX_FILE);
        let secret = |name: &str| private.read_secret(name, name, MAX_FILE);
        let damaged = |reason: String| EmulatedError::Damaged {
            path: dir.to_path_buf(),
            reason,
        };
        let cert = |name: &str| -> Result<Cert, EmulatedError> {
            Cert::decode(name, &read(name)?).map_err(|e| damaged(e.to_string()))
        };
        let ark = cert("ark.pem")?;
        let ask = cert("ask.pem")?;
        let vcek = cert("vcek.pem")?;
        let text = |name: &str| -> Result<String, EmulatedError> {
            String::from_utf8(secret(name)?).map_err(|_| damaged(format!("{name} is not text")))
        };
        let ark_key = rsa::RsaPrivateKey::from_pkcs8_pem(&text("ark.key")?)
            .map_err(|e| damaged(e.to_string()))?;
        let ask_key = rsa::RsaPrivateKey::from_pkcs8_pem(&text("ask.key")?)
            .map_err(|e| damaged(e.to_string()))?;
        let vcek_key = p384::ecdsa::SigningKey::from_pkcs8_pem(&text("vcek.key")?)
            .map_err(|e| damaged(e.to_string()))?;
        let mut chain = TestChain::assemble(
            ark,
            ask,
            vcek,
            [ark_key, ask_key],
            vcek_key,
            ORG.into(),
            true,
            dir,
        )
        .map_err(|e| damaged(e.to_string()))?;
        let crl_path = dir.join("crl.der");
        match read("crl.der") {
            Ok(der) => {
                crate::certs::crl::Crl::decode(&der).map_err(|e| damaged(e.to_string()))?;
                chain.crl = der;
            }
            // A chain cached before it came with a CRL: issue one now and keep it beside the keys.
            // Should the folder be read-only, this process still has its CRL in memory.
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => {
                chain.issue_whole_life_crl()?;
                // First writer wins (a hard link never replaces), so concurrent loaders, whose
                // randomised PSS signatures differ, all end up with the one CRL on disk.
                let tmp = dir.join(format!(
                    ".crl-{}-{:x}",
                    std::process::id(),
                    OsRng.next_u64()
                ));
                if std::fs::write(&tmp, &chain.crl).is_ok() {
                    let _ = std::fs::hard_link(&tmp, &crl_path);
                }
                let _ = std::fs::remove_file(&tmp);
                if let Ok(der) = read("crl.der")
                    && crate::certs::crl::Crl::decode(&der).is_ok()
                {
                    chain.crl = der;
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(chain)
    }

    /// The CRL the chain keeps: no entries, current for the ARK's whole validity.
    fn issue_whole_life_crl(&mut self) -> Result<(), EmulatedError> {
        let ark = &self.roots.ark;
        self.crl = self.crl(&[], ark.not_before().into(), ark.not_after().into())?;
        Ok(())
    }

    /// Put a chain together from its parts.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        ark: Cert,
        ask: Cert,
        vcek: Cert,
        [ark_key, ask_key]: [rsa::RsaPrivateKey; 2],
        vcek_key: p384::ecdsa::SigningKey,
        org: String,
        emulated: bool,
        dir: &Path,
    ) -> Result<TestChain, EmulatedError> {
        // The CRL is left empty here: the caller reads it from the cache or issues it.
        let ext = vek_extensions(&vcek).map_err(gen_err)?;
        let hw = ext.hw_id.clone().unwrap_or_default();
        let chip_id: [u8; 64] = hw
            .as_slice()
            .try_into()
            .map_err(|_| EmulatedError::Generate("hwID is not 64 bytes".into()))?;
        let (bl, tee, snp, ucode) = TEST_TCB;
        let raw = Tcb::encode(None, bl, tee, snp, ucode, TEST_PRODUCT.tcb_layout());
        Ok(TestChain {
            roots: Roots::new(TEST_PRODUCT, ark, ask, None, emulated).map_err(gen_err)?,
            vcek,
            crl: Vec::new(),
            org,
            ark_key,
            ask_key,
            vcek_key,
            chip_id,
            tcb: Tcb::decode(raw, TEST_PRODUCT.tcb_layout()),
            dir: dir.to_path_buf(),
        })
    }

    /// A chain of the same shape under `names`, generated in memory (not cached) with RSA-2048
    /// keys: a forger's chain for tests. It is trusted nowhere, whatever its names say; only a
    /// chain carrying [`EMULATED_MARK`] is ever treated as the emulated PSP's.
    pub fn forge(names: &ChainNames) -> Result<TestChain, EmulatedError> {
        let g = generate(names, 2048)?;
        let cert = |what: &str, der: Vec<u8>| Cert::from_der(what, der).map_err(gen_err);
        let emulated = [&names.ark, &names.ask, &names.vcek]
            .iter()
            .any(|n| n.contains(EMULATED_MARK));
        let mut chain = TestChain::assemble(
            cert("ark", g.ark)?,
            cert("ask", g.ask)?,
            cert("vcek", g.vcek)?,
            [g.ark_key, g.ask_key],
            g.vcek_key,
            names.org.clone(),
            emulated,
            Path::new(""),
        )?;
        chain.issue_whole_life_crl()?;
        Ok(chain)
    }

    pub(crate) fn vcek_key(&self) -> &p384::ecdsa::SigningKey {
        &self.vcek_key
    }

    /// A CRL signed by the test ARK listing `revoked`, current from `this_update` to `next_update`
    /// (for testing the CRL check, including revocation, which AMD's real CRLs cannot show).
    pub fn crl(
        &self,
        revoked: &[&Cert],
        this_update: SystemTime,
        next_update: SystemTime,
    ) -> Result<Vec<u8>, EmulatedError> {
        use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
        let alg = rsa::pss::get_default_pss_signature_algo_id::<Sha384>().map_err(gen_err)?;
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: alg.clone(),
            issuer: self.roots.ark.x509().tbs_certificate.subject.clone(),
            this_update: x509_time(this_update)?,
            next_update: Some(x509_time(next_update)?),
            revoked_certificates: (!revoked.is_empty()).then(|| {
                revoked
                    .iter()
                    .map(|c| RevokedCert {
                        serial_number: c.x509().tbs_certificate.serial_number.clone(),
                        revocation_date: c.x509().tbs_certificate.validity.not_before,
                        crl_entry_extensions: None,
                    })
                    .collect()
            }),
            crl_extensions: None,
        };
        let tbs_der = tbs.to_der().map_err(gen_err)?;
        let sig = pss_sign(&self.ark_key, &tbs_der)?;
        let list = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: alg,
            signature: BitString::from_bytes(&sig).map_err(gen_err)?,
        };
        list.to_der().map_err(gen_err)
    }
}

impl TestChain {
    /// Issue another VEK under the test ASK, with a fresh key; returns (DER, key).
    pub fn issue_vek(
        &self,
        spec: &VekSpec,
    ) -> Result<(Vec<u8>, p384::ecdsa::SigningKey), EmulatedError> {
        let key = p384::ecdsa::SigningKey::random(&mut OsRng);
        let ask_name = match &spec.issuer_cn {
            Some(cn) => name(&format!("CN={cn},{}", self.org))?,
            None => self.roots.ask.x509().tbs_certificate.subject.clone(),
        };
        Ok((issue(&self.ask_key, &ask_name, &self.org, &key, spec)?, key))
    }
}

fn pem(label: &str, der: &[u8]) -> Result<String, EmulatedError> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).map_err(gen_err)
}

fn key(k: &impl EncodePrivateKey) -> Result<String, EmulatedError> {
    Ok(k.to_pkcs8_pem(der::pem::LineEnding::LF)
        .map_err(gen_err)?
        .to_string())
}

fn generate_into(dir: &PrivateDir) -> Result<(), EmulatedError> {
    tracing::info!("generating the emulated PSP's RSA-4096 test chain (once per machine)");
    let g = generate(&ChainNames::emulated(), 4096)?;
    let public = |name: &str, text: &str| dir.write_public(name, name, text.as_bytes());
    let secret = |name: &str, text: &str| dir.write_secret(name, name, text.as_bytes());
    public("ark.pem", &pem("CERTIFICATE", &g.ark)?)?;
    public("ask.pem", &pem("CERTIFICATE", &g.ask)?)?;
    public("vcek.pem", &pem("CERTIFICATE", &g.vcek)?)?;
    secret("ark.key", &key(&g.ark_key)?)?;
    secret("ask.key", &key(&g.ask_key)?)?;
    secret("vcek.key", &key(&g.vcek_key)?)?;
    public(
        "README",
        "snpkit's emulated PSP test chain. NOT AMD. Reports signed with it prove nothing about hardware.\n\
         snpkit accepts it only with --allow-emulated, and then says EMULATED in every verdict.\n\
         The keys are 0600 in this 0700 folder; snpkit refuses them otherwise.\n\
         crl.der: the test ARK's CRL, written on first load.\n",
    )?;
    Ok(())
}
