//! Trust anchors: AMD's ARK, ASK and ASVK per product, built in as data and pinned by fingerprint.
//!
//! The ARK is the only thing we trust; the ASK and ASVK are built in too so that a verdict never
//! depends on what the host sends, and so that a host cannot swap in another product's chain.

use crate::certs::{Cert, CertError};
use crate::product::Product;
use std::sync::OnceLock;

/// The three certificates under which VCEKs and VLEKs are issued, with their links checked: the ARK
/// is self-signed and signed the ASK and ASVK, all three may sign certificates. Only [`Roots::new`]
/// makes one, so a verdict need not check those constant signatures again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Roots {
    pub product: Product,
    pub ark: Cert,
    pub ask: Cert,
    /// VLEK signing key; the emulated test chain has none.
    pub asvk: Option<Cert>,
    /// True for the emulated PSP's test chain: it proves nothing about hardware.
    pub emulated: bool,
}

impl Roots {
    pub fn new(
        product: Product,
        ark: Cert,
        ask: Cert,
        asvk: Option<Cert>,
        emulated: bool,
    ) -> Result<Roots, CertError> {
        ark.verify_signed_by(&ark)?;
        ask.verify_signed_by(&ark)?;
        if let Some(asvk) = &asvk {
            asvk.verify_signed_by(&ark)?;
        }
        for c in [Some(&ark), Some(&ask), asvk.as_ref()]
            .into_iter()
            .flatten()
        {
            if !c.is_ca() {
                return Err(CertError::Extension {
                    what: c.label(),
                    reason: "not a CA that may sign certificates".into(),
                });
            }
        }
        Ok(Roots {
            product,
            ark,
            ask,
            asvk,
            emulated,
        })
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RootError {
    #[error("cannot decode the builtin {product} {which}")]
    Decode {
        product: Product,
        which: &'static str,
        #[source]
        source: CertError,
    },
    #[error("the builtin {product} roots do not chain")]
    Chain {
        product: Product,
        #[source]
        source: CertError,
    },
    #[error(
        "builtin {product} {which} has SHA-256 {found}, but {expected} is pinned: the build is corrupt"
    )]
    Fingerprint {
        product: Product,
        which: &'static str,
        expected: &'static str,
        found: String,
    },
}

struct Builtin {
    product: Product,
    ark: (&'static str, &'static str),
    ask: (&'static str, &'static str),
    asvk: (&'static str, &'static str),
}

const BUILTIN: [Builtin; 3] = [
    Builtin {
        product: Product::Milan,
        ark: (
            include_str!("milan/ark.pem"),
            "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
        ),
        ask: (
            include_str!("milan/ask.pem"),
            "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
        ),
        asvk: (
            include_str!("milan/asvk.pem"),
            "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
        ),
    },
    Builtin {
        product: Product::Genoa,
        ark: (
            include_str!("genoa/ark.pem"),
            "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
        ),
        ask: (
            include_str!("genoa/ask.pem"),
            "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
        ),
        asvk: (
            include_str!("genoa/asvk.pem"),
            "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
        ),
    },
    Builtin {
        product: Product::Turin,
        ark: (
            include_str!("turin/ark.pem"),
            "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
        ),
        ask: (
            include_str!("turin/ask.pem"),
            "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
        ),
        asvk: (
            include_str!("turin/asvk.pem"),
            "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
        ),
    },
];

fn load_one(
    product: Product,
    which: &'static str,
    (pem, pin): (&'static str, &'static str),
) -> Result<Cert, RootError> {
    let cert = Cert::decode(which, pem.as_bytes()).map_err(|source| RootError::Decode {
        product,
        which,
        source,
    })?;
    let found = cert.fingerprint_hex();
    if found != pin {
        return Err(RootError::Fingerprint {
            product,
            which,
            expected: pin,
            found,
        });
    }
    Ok(cert)
}

fn load(b: &Builtin) -> Result<Roots, RootError> {
    let ark = load_one(b.product, "ARK", b.ark)?;
    let ask = load_one(b.product, "ASK", b.ask)?;
    let asvk = load_one(b.product, "ASVK", b.asvk)?;
    Roots::new(b.product, ark, ask, Some(asvk), false).map_err(|source| RootError::Chain {
        product: b.product,
        source,
    })
}

/// AMD's roots for a product, decoded once and checked against the pinned fingerprints.
pub fn builtin(product: Product) -> Result<&'static Roots, RootError> {
    static CELLS: [OnceLock<Result<Roots, RootError>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = BUILTIN
        .iter()
        .position(|b| b.product == product)
        .unwrap_or(0);
    CELLS[i]
        .get_or_init(|| load(&BUILTIN[i]))
        .as_ref()
        .map_err(Clone::clone)
}

/// The pinned SHA-256 of each builtin root, for tests and `--help` texts.
pub fn pinned_fingerprints() -> Vec<(Product, &'static str, &'static str)> {
    BUILTIN
        .iter()
        .flat_map(|b| {
            [
                (b.product, "ARK", b.ark.1),
                (b.product, "ASK", b.ask.1),
                (b.product, "ASVK", b.asvk.1),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The fingerprints from tests/vectors/README.md, written out again so a change to either the
    /// table in the code or the files is caught.
    const README_PINS: [(&str, &str); 9] = [
        (
            "milan/ark.pem",
            "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
        ),
        (
            "milan/ask.pem",
            "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
        ),
        (
            "milan/asvk.pem",
            "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
        ),
        (
            "genoa/ark.pem",
            "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
        ),
        (
            "genoa/ask.pem",
            "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
        ),
        (
            "genoa/asvk.pem",
            "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
        ),
        (
            "turin/ark.pem",
            "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
        ),
        (
            "turin/ask.pem",
            "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
        ),
        (
            "turin/asvk.pem",
            "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
        ),
    ];

    #[test]
    fn root_files_have_the_readme_fingerprints() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/roots");
        for (file, pin) in README_PINS {
            let pem = std::fs::read(dir.join(file)).expect("root file");
            let der = crate::certs::to_der(file, &pem).expect("PEM");
            assert_eq!(hex::encode(Sha256::digest(&der)), pin, "{file}");
        }
        let table: Vec<&str> = pinned_fingerprints().iter().map(|p| p.2).collect();
        let readme: Vec<&str> = README_PINS.iter().map(|p| p.1).collect();
        assert_eq!(table, readme);
    }

    #[test]
    fn builtin_roots_load_and_chain() {
        for product in Product::ALL {
            let roots = builtin(product).expect("builtin roots");
            assert_eq!(
                roots.ark.subject_cn().as_deref(),
                Some(format!("ARK-{product}").as_str())
            );
            assert_eq!(
                roots.ask.subject_cn().as_deref(),
                Some(format!("SEV-{product}").as_str())
            );
            let asvk = roots.asvk.as_ref().expect("asvk");
            assert_eq!(
                asvk.subject_cn().as_deref(),
                Some(format!("SEV-VLEK-{product}").as_str())
            );
            roots
                .ark
                .verify_signed_by(&roots.ark)
                .expect("ARK self-signed");
            roots
                .ask
                .verify_signed_by(&roots.ark)
                .expect("ASK under ARK");
            asvk.verify_signed_by(&roots.ark).expect("ASVK under ARK");
            assert!(roots.ark.is_ca() && roots.ask.is_ca() && asvk.is_ca());
        }
    }

    #[test]
    fn a_tampered_root_is_refused_at_load() {
        let b = &BUILTIN[0];
        let err = load_one(b.product, "ARK", (b.ark.0, BUILTIN[1].ark.1))
            .expect_err("wrong pin must fail");
        assert!(matches!(err, RootError::Fingerprint { .. }), "{err}");
    }

    #[test]
    fn another_products_ark_did_not_sign_this_ask() {
        let milan = builtin(Product::Milan).expect("milan");
        let genoa = builtin(Product::Genoa).expect("genoa");
        assert!(milan.ask.verify_signed_by(&genoa.ark).is_err());
    }
}
