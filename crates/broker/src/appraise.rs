//! Appraising an `attest` request: protocol checks, then snpkit-attest's verdict over the report,
//! its endorsements, the policy and the reference values — with REPORT_DATA recomputed from *this
//! session's* nonce and the key the guest presents, so neither a replayed report nor a swapped key
//! passes.
//!
//! Blocking (KDS fetches, signature checks): the server runs it off its async workers.

use crate::reference::{ReferenceConfig, ReferenceSet};
use crate::rules::{Rules, SignerOutcome, rule_label};
use crate::signer::Signer;
use snpkit_attest::emulated::TestChain;
use snpkit_attest::kds::Kds;
use snpkit_attest::{CrlInput, Endorsements, Policy, Reference, SignatureMemo, Trust, Verdict};
use snpkit_kbs::evidence::{self, CertKind};
use snpkit_kbs::message::Attestation;
use snpkit_kbs::{EcPublicJwk, binding};
use std::time::{Duration, Instant};

/// What the broker knows of a guest that passed.
#[derive(Debug, Clone)]
pub struct Guest {
    /// The reference configs its measurement and launch policy match (none when it passed by
    /// signature alone).
    pub configs: Vec<String>,
    pub measurement: [u8; 48],
    /// How its measurement was accepted.
    pub measured_by: MeasuredBy,
    /// Each signer rule's outcome for its report (empty without signer rules).
    pub signers: Vec<SignerOutcome>,
    /// Signed by the emulated PSP's test chain: proves nothing about hardware.
    pub emulated: bool,
    /// The key secrets are sealed to.
    pub key: EcPublicJwk,
}

/// How an attested guest's measurement was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeasuredBy {
    /// Equal to a reference config's.
    Reference,
    /// Not in the reference, but signed: these signer rules (their labels) passed it by
    /// signature.
    Signature(Vec<String>),
}

impl std::fmt::Display for MeasuredBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MeasuredBy::Reference => f.write_str("reference"),
            MeasuredBy::Signature(rules) => write!(f, "signature ({})", rules.join(", ")),
        }
    }
}

/// The outcome, with what the audit line needs either way.
#[derive(Debug)]
pub struct Appraisal {
    pub result: Result<Guest, String>,
    /// The verdict the decision rests on, when evidence got as far as the verifier: against the
    /// reference, or (for a measurement in no reference config) the first signer rule's.
    pub verdict: Option<Verdict>,
    /// The report's measurement as claimed (verified only when `result` is `Ok`).
    pub claimed_measurement: Option<[u8; 48]>,
    /// Time spent in the verifier (chain, signature, claims).
    pub verify_time: Duration,
    /// Time spent completing endorsements (KDS, cache).
    pub endorse_time: Duration,
}

/// The broker's judge: reference values, policy and trust, fixed when the broker starts.
#[derive(Debug)]
pub struct Appraiser {
    pub reference: ReferenceSet,
    pub policy: Policy,
    pub allow_emulated: bool,
    /// This machine's emulated test chain, loaded only with `allow_emulated`.
    pub test_chain: Option<TestChain>,
    /// AMD's KDS (or its cache) for a VCEK or CRL the guest did not send.
    pub kds: Option<Kds>,
    /// The VCEK and CRL signatures verified so far: each chip's chain costs its RSA checks once.
    pub memo: SignatureMemo,
}

fn refuse(reason: impl Into<String>) -> Appraisal {
    Appraisal {
        result: Err(reason.into()),
        verdict: None,
        claimed_measurement: None,
        verify_time: Duration::ZERO,
        endorse_time: Duration::ZERO,
    }
}

fn endorsements(certs: Vec<(CertKind, Vec<u8>)>) -> Endorsements {
    let mut e = Endorsements {
        crl: CrlInput::NotAtHand("the evidence carries no CRL".into()),
        ..Endorsements::default()
    };
    for (kind, bytes) in certs {
        match kind {
            CertKind::Ark => e.ark = Some(bytes),
            CertKind::Ask => e.ask = Some(bytes),
            CertKind::Vcek => e.vcek = Some(bytes),
            CertKind::Vlek => e.vlek = Some(bytes),
            CertKind::Crl => e.crl = CrlInput::Given(bytes),
        }
    }
    e
}

/// A verdict's failures in one line: `measurement: expected …, found …; emulated: …`.
pub fn failures(v: &Verdict) -> String {
    let mut parts: Vec<String> = v
        .failed()
        .filter(|c| c.evaluated)
        .take(4)
        .map(|c| {
            let mut s = format!("{}: expected {}, found {}", c.name, c.expected, c.found);
            if !c.detail.is_empty() {
                s.push_str(&format!(" ({})", c.detail));
            }
            s
        })
        .collect();
    if parts.is_empty() {
        parts.push("the verdict failed".into());
    }
    parts.join("; ")
}

impl Appraiser {
    /// The config to judge a report against: one its measurement and policy match, else one with
    /// its measurement, else the first (whose failing `measurement` check then says why).
    fn pick(&self, measurement: Option<&[u8; 48]>, policy: Option<u64>) -> &ReferenceConfig {
        let configs = &self.reference.configs;
        measurement
            .and_then(|m| {
                configs
                    .iter()
                    .find(|c| &c.measurement == m && Some(c.policy) == policy)
                    .or_else(|| configs.iter().find(|c| &c.measurement == m))
            })
            .unwrap_or(&configs[0])
    }

    /// Judges `a` against the reference and, when `rules` has signer rules, against each of them
    /// (the policy with that rule's signer keys; with no expected measurement when the report's
    /// is in no reference config, so that it can pass by signature as `verify` passes it).
    pub fn appraise(
        &self,
        a: &Attestation,
        session_nonce: &str,
        rules: Option<&Rules>,
        now: time::OffsetDateTime,
    ) -> Appraisal {
        if a.runtime_data.nonce != session_nonce {
            return refuse(
                "runtime-data.nonce is not this session's nonce (evidence from another session?)",
            );
        }
        if !a.tee_evidence.additional_evidence.is_empty() {
            return refuse(
                "additional evidence (devices besides the SNP guest) is not supported by this broker",
            );
        }
        if a.init_data.is_some() {
            return refuse(
                "init-data is not supported by this broker; bind host data through the policy's host_data",
            );
        }
        let ev = match evidence::decode(&a.tee_evidence.primary_evidence) {
            Ok(e) => e,
            Err(e) => return refuse(format!("the SNP evidence is not usable: {e}")),
        };
        let key = a.runtime_data.tee_pubkey.clone();
        let report_data = binding::report_data(session_nonce, &key, "");

        let endorse_start = Instant::now();
        let mut e = endorsements(ev.certs);
        let parsed = snpkit_attest::report::parse(&ev.report[..]).ok();
        let emulated_chain = self.test_chain.as_ref().filter(|_| self.allow_emulated);
        if let Some(chain) = emulated_chain {
            snpkit_attest::gather::complete_from_test_chain(&mut e, chain);
        }
        if let Some(kds) = &self.kds {
            snpkit_attest::gather::complete_from_kds(&ev.report[..], &mut e, None, kds, now);
        }
        let endorse_time = endorse_start.elapsed();

        let claimed = parsed.as_ref().map(|r| r.measurement);
        let in_reference = claimed
            .as_ref()
            .is_some_and(|m| self.reference.configs.iter().any(|c| &c.measurement == m));
        let config = self.pick(claimed.as_ref(), parsed.as_ref().map(|r| r.policy));
        let reference = Reference {
            product: None,
            measurement: Some(config.measurement),
            report_data: Some(report_data),
            launch_policy: Some(config.policy),
            report_data_source: "this session's nonce and the presented tee-pubkey".into(),
            measurement_source: format!(
                "{} config {:?}",
                self.reference.source.display(),
                config.name
            ),
            // The one config picked above.
            configs: Vec::new(),
        };
        let trust = Trust {
            allow_emulated: self.allow_emulated,
            emulated_roots: emulated_chain.map(|c| &c.roots),
            memo: Some(&self.memo),
        };
        let verify_start = Instant::now();
        let verdict =
            snpkit_attest::verify(&ev.report[..], &e, &reference, &self.policy, &trust, now);
        // A measurement in no reference config may still pass by signature under a signer rule:
        // the reference then expects none (nor its launch policy, which the signer vouched for).
        let signed_reference = Reference {
            measurement: None,
            launch_policy: None,
            measurement_source: "no reference config: by signature".into(),
            ..reference.clone()
        };
        let mut signers: Vec<(SignerOutcome, Option<Verdict>)> = Vec::new();
        let mut judged: Vec<(&Signer, Result<(), String>, Option<Verdict>)> = Vec::new();
        for (index, _, signer) in rules.into_iter().flat_map(Rules::signers) {
            let (result, signer_verdict) = match judged.iter().find(|(s, _, _)| *s == signer) {
                // Rules with the same signer keys share one verdict.
                Some((_, r, v)) => (r.clone(), v.clone()),
                None => {
                    let (r, v) = if in_reference && !verdict.passed {
                        (Err(failures(&verdict)), None)
                    } else if !in_reference && !signer.names_a_key() {
                        (
                            Err("the measurement is in no reference config, and the rule \
                                     requires no key that could pass it by signature"
                                .into()),
                            None,
                        )
                    } else {
                        let r = if in_reference {
                            &reference
                        } else {
                            &signed_reference
                        };
                        let v = snpkit_attest::verify(
                            &ev.report[..],
                            &e,
                            r,
                            &signer.policy(&self.policy),
                            &trust,
                            now,
                        );
                        let result = if v.passed { Ok(()) } else { Err(failures(&v)) };
                        (result, Some(v))
                    };
                    judged.push((signer, r.clone(), v.clone()));
                    (r, v)
                }
            };
            signers.push((
                SignerOutcome {
                    rule: index,
                    result,
                },
                signer_verdict,
            ));
        }
        let verify_time = verify_start.elapsed();

        let labels = |want_ok: bool| -> Vec<String> {
            signers
                .iter()
                .filter(|(o, _)| o.result.is_ok() == want_ok)
                .map(|(o, _)| {
                    let path = rules
                        .and_then(|r| r.signers().find(|(i, _, _)| *i == o.rule))
                        .map(|(_, p, _)| p)
                        .unwrap_or_default();
                    match &o.result {
                        Ok(()) => rule_label(o.rule, path),
                        Err(why) => format!("{}: {why}", rule_label(o.rule, path)),
                    }
                })
                .collect()
        };
        let (result, verdict) = match &parsed {
            Some(r) if in_reference && verdict.passed => (
                Ok(Guest {
                    configs: self
                        .reference
                        .matching(&r.measurement, r.policy)
                        .into_iter()
                        .map(|c| c.name.clone())
                        .collect(),
                    measurement: r.measurement,
                    measured_by: MeasuredBy::Reference,
                    signers: Vec::new(),
                    emulated: verdict.emulated,
                    key,
                }),
                verdict,
            ),
            Some(r) if !in_reference && signers.iter().any(|(o, _)| o.result.is_ok()) => {
                let passed = signers
                    .iter()
                    .find_map(|(o, v)| o.result.is_ok().then(|| v.clone()).flatten())
                    .unwrap_or(verdict);
                (
                    Ok(Guest {
                        configs: Vec::new(),
                        measurement: r.measurement,
                        measured_by: MeasuredBy::Signature(labels(true)),
                        signers: Vec::new(),
                        emulated: passed.emulated,
                        key,
                    }),
                    passed,
                )
            }
            Some(r) if !in_reference && !signers.is_empty() => {
                let first = signers
                    .iter()
                    .find_map(|(_, v)| v.clone())
                    .unwrap_or(verdict);
                (
                    Err(format!(
                        "the measurement {} is in no reference config of {}, and no signer rule \
                         passes it by signature: {}",
                        hex::encode(r.measurement),
                        self.reference.source.display(),
                        labels(false).join("; ")
                    )),
                    first,
                )
            }
            _ => {
                let reason = format!("the evidence failed verification: {}", failures(&verdict));
                (Err(reason), verdict)
            }
        };
        let result = result.map(|mut g| {
            g.signers = signers.into_iter().map(|(o, _)| o).collect();
            g
        });
        Appraisal {
            result,
            verdict: Some(verdict),
            claimed_measurement: claimed,
            verify_time,
            endorse_time,
        }
    }
}
