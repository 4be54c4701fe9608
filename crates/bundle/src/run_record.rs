//! `run.json`: what one boot run was, written by `cargo xtask boot` and read by `verify`.

use crate::BundleError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Current schema version of `run.json`.
pub const RUN_SCHEMA: u32 = 1;

/// One boot run. `boot` writes every field; a reader needs only those without `Option` (the ones
/// verification uses: which config, the nonce and key REPORT_DATA binds). The others describe the
/// run for people and are absent from records made by hand (a report brought from elsewhere, put
/// into a run folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    pub recipe: String,
    /// The launch config's name in expected.json.
    pub config: String,
    pub launch: RunLaunch,
    /// Says again what `launch` says, for readers that look for a flag; must agree with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulated: Option<bool>,
    /// The nonce sent to the guest (hex).
    pub nonce: String,
    /// The guest's ephemeral public key (hex).
    pub pubkey: String,
    /// How the appliance's entry point ended, as the guest reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// What the guest said its provider was: a log line, never evidence.
    pub provider: String,
    /// MEASUREMENT in the report (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
    /// SHA-256 of the `manifest.json` the run booted (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_seconds: Option<f64>,
    /// HOST_DATA the launch was given (hex), when it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_data: Option<String>,
    /// The signed identity the launch was given (`id/<config>.*`), when it was given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<RunSigned>,
    /// The host stopped the appliance (`boot --keep-running`, then Ctrl-C): its entry point was
    /// sent SIGTERM, and `entry` says how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<bool>,
    /// What arrived of the entry point's output (`appliance.log`), when the run collected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance_log: Option<RunAppLog>,
    /// The key broker the host relayed the guest's secret requests to (`boot --kbs URL`): its
    /// URL only, never what passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
}

/// The size of a run's `appliance.log`, for people and for tests that it arrived whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunAppLog {
    /// Bytes the guest sent.
    pub bytes: u64,
    /// Bytes past the file's cap, left out of it (but for its kept tail).
    pub left_out: u64,
}

/// What a run's ID block said of itself, for people: the key digests the PSP then reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSigned {
    /// SHA-384 of the ID key (hex).
    pub id_key_digest: String,
    /// SHA-384 of the author key (hex), when one certified the ID key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_key_digest: Option<String>,
}

/// Who measured and signed: the real PSP, or snpkit's emulated one (never hardware-backed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunLaunch {
    Snp,
    Emulated,
}

impl RunLaunch {
    pub fn is_emulated(self) -> bool {
        self == RunLaunch::Emulated
    }
}

impl RunRecord {
    /// Pretty JSON with a final newline, as written into the run folder.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses a `run.json` read from `path`, refusing other schemas and a record that contradicts
    /// itself.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<RunRecord, BundleError> {
        let record: RunRecord = crate::json::parse_versioned(
            path,
            bytes,
            "run record (run.json)",
            RUN_SCHEMA,
            |r: &RunRecord| r.schema,
        )?;
        if let Some(flag) = record.emulated
            && flag != record.launch.is_emulated()
        {
            return Err(BundleError::Inconsistent {
                path: path.to_owned(),
                why: format!(
                    "\"emulated\": {flag} contradicts \"launch\": \"{}\"",
                    if record.launch.is_emulated() {
                        "emulated"
                    } else {
                        "snp"
                    }
                ),
            });
        }
        Ok(record)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn record() -> RunRecord {
        RunRecord {
            schema: RUN_SCHEMA,
            recipe: "hello".into(),
            config: "qemu-1vcpu".into(),
            launch: RunLaunch::Emulated,
            emulated: Some(true),
            nonce: "11".repeat(32),
            pubkey: "22".repeat(32),
            entry: Some("exited with status 0".into()),
            provider: "EmulatedPsp".into(),
            measurement: Some("33".repeat(48)),
            manifest_sha256: Some("44".repeat(32)),
            vcpus: Some(1),
            vcpu_type: Some("EPYC-v4".into()),
            boot_seconds: Some(12.5),
            host_data: None,
            signed: None,
            stopped: None,
            appliance_log: None,
            broker: None,
        }
    }

    /// The writer's field order and forms, as `boot` wrote them before the record had one type.
    #[test]
    fn a_full_record_keeps_the_boot_writers_form() {
        let json = record().to_json();
        let keys: Vec<&str> = json
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "schema",
                "recipe",
                "config",
                "launch",
                "emulated",
                "nonce",
                "pubkey",
                "entry",
                "provider",
                "measurement",
                "manifest_sha256",
                "vcpus",
                "vcpu_type",
                "boot_seconds"
            ]
        );
        assert!(json.contains("\"launch\": \"emulated\",\n  \"emulated\": true,"));
        assert!(json.contains("\"boot_seconds\": 12.5\n}\n"));
        let back = RunRecord::from_json(Path::new("run.json"), json.as_bytes()).unwrap();
        assert_eq!(back, record());
        // A signed launch with host data adds two keys at the end, and reads back.
        let signed = RunRecord {
            host_data: Some("55".repeat(32)),
            signed: Some(RunSigned {
                id_key_digest: "66".repeat(48),
                author_key_digest: None,
            }),
            ..record()
        };
        let json = signed.to_json();
        assert!(json.ends_with(&format!(
            "\"host_data\": \"{}\",\n  \"signed\": {{\n    \"id_key_digest\": \"{}\"\n  }}\n}}\n",
            "55".repeat(32),
            "66".repeat(48)
        )), "{json}");
        assert_eq!(
            RunRecord::from_json(Path::new("run.json"), json.as_bytes()).unwrap(),
            signed
        );
    }

    /// A record with only what verification needs, as the verifier's tests have always written.
    #[test]
    fn a_minimal_record_reads() {
        let json = br#"{"schema": 1, "recipe": "hello", "config": "qemu-1", "launch": "snp",
            "nonce": "00", "pubkey": "01", "provider": "tsm"}"#;
        let r = RunRecord::from_json(Path::new("run.json"), json).unwrap();
        assert_eq!(r.launch, RunLaunch::Snp);
        assert_eq!((r.emulated, r.vcpus, r.entry), (None, None, None));
    }

    #[test]
    fn hostile_records_are_refused_with_the_reason() {
        let good = record().to_json();
        let cases = [
            ("\"schema\": 1", "\"schema\": 2", "schema 2"),
            (
                "\"launch\": \"emulated\"",
                "\"launch\": \"hardware\"",
                "not a valid",
            ),
            ("\"emulated\": true", "\"emulated\": false", "contradicts"),
            ("\"config\": \"qemu-1vcpu\",", "", "not a valid"),
            ("\"vcpus\": 1", "\"vcpus\": -1", "not a valid"),
            ("{", "[", "not a valid"),
        ];
        for (from, to, needle) in cases {
            assert!(good.contains(from), "test bug: {from}");
            let bad = good.replacen(from, to, 1);
            let err = RunRecord::from_json(Path::new("run.json"), bad.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{from} -> {to}: {err}");
        }
    }
}
