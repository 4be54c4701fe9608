//! Shared by the integration tests: the vendored vectors and the genuine reports in them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use snpkit_attest::{CrlInput, Endorsements, Policy, Product, Reference, Trust, Verdict};
use time::OffsetDateTime;
use time::macros::datetime;

pub use snpkit_testkit::vectors::read;

/// A real report from tests/vectors/README.md that verifies with its own VEK.
pub struct Genuine {
    pub name: &'static str,
    pub report: &'static str,
    pub vek: &'static str,
    pub product: Product,
    pub version: u32,
    pub vlek: bool,
    pub vmpl: u32,
    /// The report's guest policy allows debugging (go-sev-guest's test report does).
    pub debug: bool,
    /// Inside every certificate's validity (and the CRL's, when there is one).
    pub now: OffsetDateTime,
    /// The ARK-signed CRL checked with this report, where a vendored one is current at `now`.
    pub crl: Option<&'static str>,
}

const T: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
/// Inside the Milan CRL's validity (2026-06-22 to 2026-08-08) and every Milan VCEK's.
const C: OffsetDateTime = datetime!(2026-07-01 00:00 UTC);
pub const MILAN_CRL: &str = "automata-network-atakit/crates/atakit-attestation/testdata/fedora-oci-gcp-n2d-standard-4/milan.crl.der";

pub const GENUINE: &[Genuine] = &[
    milan(
        "virtee milan v2",
        "virtee-sev/derived/report_milan.bin",
        "virtee-sev/tests/certs_data/vcek_milan.der",
        2,
    ),
    Genuine {
        debug: true,
        ..milan(
            "go-sev-guest milan v2",
            "google-go-sev-guest/verify/testdata/attestation.bin",
            "google-go-sev-guest/verify/testdata/vcek.testcer",
            2,
        )
    },
    milan(
        "trustee milan v2",
        "confidential-containers-trustee/deps/verifier/test_data/snp/test-report.bin",
        "confidential-containers-trustee/deps/verifier/test_data/snp/test-vcek.der",
        2,
    ),
    Genuine {
        vlek: true,
        vmpl: 1,
        now: datetime!(2025-06-01 00:00 UTC),
        crl: None,
        ..milan(
            "trustee AWS VLEK v3",
            "confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek-report.bin",
            "confidential-containers-trustee/deps/verifier/test_data/snp/test-vlek.der",
            3,
        )
    },
    without_crl(
        "trustee e2e genoa v3",
        "confidential-containers-trustee/derived/e2e-evidence.report.bin",
        "confidential-containers-trustee/derived/e2e-evidence.vcek.der",
        Product::Genoa,
        3,
    ),
    milan(
        "azure hcl milan v2",
        "confidential-containers-trustee/derived/hcl-report.snp-report.bin",
        "confidential-containers-trustee/derived/az-hcl-report.vcek.pem",
        2,
    ),
    milan(
        "azure evidence v0",
        "confidential-containers-trustee/derived/az-evidence-v0.snp-report.bin",
        "confidential-containers-trustee/derived/az-evidence-v0.json.vcek.pem",
        3,
    ),
    milan(
        "azure evidence v1",
        "confidential-containers-trustee/derived/az-evidence-v1.snp-report.bin",
        "confidential-containers-trustee/derived/az-evidence-v1.json.vcek.der",
        3,
    ),
    milan(
        "azure evidence v2",
        "confidential-containers-trustee/derived/az-evidence-v2.snp-report.bin",
        "confidential-containers-trustee/derived/az-evidence-v2.json.vcek.der",
        3,
    ),
    without_crl(
        "azure genoa",
        "confidential-containers-trustee/derived/az-evidence-genoa.snp-report.bin",
        "confidential-containers-trustee/derived/az-evidence-genoa.json.vcek.pem",
        Product::Genoa,
        3,
    ),
    milan(
        "oak cb",
        "project-oak-oak/derived/cb.report.bin",
        "project-oak-oak/derived/cb.vcek.der",
        3,
    ),
    milan(
        "oak milan_oc_release",
        "project-oak-oak/derived/milan_oc_release.report.bin",
        "project-oak-oak/derived/milan_oc_release.vcek.der",
        3,
    ),
    milan(
        "oak milan_oc_staging",
        "project-oak-oak/derived/milan_oc_staging.report.bin",
        "project-oak-oak/derived/milan_oc_staging.vcek.der",
        3,
    ),
    milan(
        "oak milan_rk_release",
        "project-oak-oak/derived/milan_rk_release.report.bin",
        "project-oak-oak/derived/milan_rk_release.vcek.der",
        3,
    ),
    milan(
        "oak milan_rk_staging",
        "project-oak-oak/derived/milan_rk_staging.report.bin",
        "project-oak-oak/derived/milan_rk_staging.vcek.der",
        3,
    ),
    without_crl(
        "oak genoa v5",
        "project-oak-oak/derived/genoa_oc.report.bin",
        "project-oak-oak/derived/genoa_oc.vcek.der",
        Product::Genoa,
        5,
    ),
    without_crl(
        "oak turin v5",
        "project-oak-oak/derived/turin_oc.report.bin",
        "project-oak-oak/derived/turin_oc.vcek.der",
        Product::Turin,
        5,
    ),
    milan(
        "gcp v5",
        "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp.bin",
        "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-vcek.pem",
        5,
    ),
    Genuine {
        vmpl: 1,
        ..milan(
            "gcp v5 reportdata",
            "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-reportdata.bin",
            "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-vcek.pem",
            5,
        )
    },
    Genuine {
        vmpl: 1,
        ..milan(
            "gcp v5 x25519",
            "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-x25519-bound.bin",
            "canvasxyz-teekit/packages/qvl/test/sampleQuotes/sev-gcp-x25519-vcek.pem",
            5,
        )
    },
];

/// A Milan report signed by its VCEK, no debugging, VMPL 0, checked at `C` with the vendored
/// Milan CRL: what most of the table is; the rows say only how they differ.
const fn milan(
    name: &'static str,
    report: &'static str,
    vek: &'static str,
    version: u32,
) -> Genuine {
    Genuine {
        name,
        report,
        vek,
        product: Product::Milan,
        version,
        vlek: false,
        vmpl: 0,
        debug: false,
        now: C,
        crl: Some(MILAN_CRL),
    }
}

/// A report of a product no vendored CRL covers, checked at `T` (revocation then opted out).
const fn without_crl(
    name: &'static str,
    report: &'static str,
    vek: &'static str,
    product: Product,
    version: u32,
) -> Genuine {
    Genuine {
        product,
        now: T,
        crl: None,
        ..milan(name, report, vek, version)
    }
}

pub fn genuine(name: &str) -> &'static Genuine {
    GENUINE
        .iter()
        .find(|g| g.name == name)
        .expect("known vector")
}

impl Genuine {
    pub fn report_bytes(&self) -> Vec<u8> {
        read(self.report)
    }

    pub fn endorsements(&self) -> Endorsements {
        let vek = read(self.vek);
        let mut e = Endorsements::default();
        if self.vlek {
            e.vlek = Some(vek);
        } else {
            e.vcek = Some(vek);
        }
        if let Some(crl) = self.crl {
            e.crl = CrlInput::Given(read(crl));
        }
        e
    }

    /// Reference values equal to what the report says: the verdict must then pass.
    pub fn reference(&self) -> Reference {
        let r = snpkit_attest::report::parse(&self.report_bytes()).expect("genuine report parses");
        Reference {
            product: None,
            measurement: Some(r.measurement),
            report_data: Some(r.report_data),
            launch_policy: None,
            report_data_source: format!("vector {}", self.name),
            measurement_source: format!("vector {}", self.name),
            configs: Vec::new(),
        }
    }

    /// A policy this report meets (debug/migration as the report has them, VMPL as it has it).
    /// Reports without a vendored CRL current at `now` opt out of revocation checking, explicitly;
    /// the others keep the default, which requires the CRL.
    pub fn policy(&self) -> Policy {
        Policy {
            vmpl: self.vmpl,
            allow_debug: self.debug,
            require_crl: self.crl.is_some(),
            ..Policy::default()
        }
    }

    /// The genuine inputs of a verification, which pass.
    pub fn inputs(&self) -> Inputs {
        Inputs {
            report: self.report_bytes(),
            endorsements: self.endorsements(),
            reference: self.reference(),
            policy: self.policy(),
            now: self.now,
        }
    }

    /// Verifies the genuine inputs after `change` (a test's one lie or two).
    pub fn verify_changed(&self, change: impl FnOnce(&mut Inputs)) -> Verdict {
        let mut i = self.inputs();
        change(&mut i);
        snpkit_attest::verify(
            &i.report,
            &i.endorsements,
            &i.reference,
            &i.policy,
            &Trust::default(),
            i.now,
        )
    }

    pub fn verify(&self) -> Verdict {
        self.verify_changed(|_| {})
    }
}

/// What a verification takes besides the trust settings.
pub struct Inputs {
    pub report: Vec<u8>,
    pub endorsements: Endorsements,
    pub reference: Reference,
    pub policy: Policy,
    pub now: OffsetDateTime,
}

/// Assert that the verdict failed, and failed (among others perhaps) on `check`.
pub fn assert_fails_on(v: &Verdict, check: &str, context: &str) {
    assert!(
        !v.passed,
        "{context}: verdict passed but {check} should fail:\n{}",
        v.to_table(false)
    );
    let c = v
        .check(check)
        .unwrap_or_else(|| panic!("{context}: no check named {check}:\n{}", v.to_table(false)));
    assert!(
        !c.passed,
        "{context}: {check} passed:\n{}",
        v.to_table(false)
    );
}
