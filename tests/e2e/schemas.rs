//! The published JSON schemas (docs/schemas/, draft 2020-12) against real outputs: the verdicts
//! `verify --json` prints (genuine, emulated, input error), `run.json` as `boot` writes it
//! (`RunRecord::to_json`), and what `build --json` prints for a built image and a failed build.
//!
//! Each schema pins its fields (`required`, `additionalProperties: false`), and every output is
//! also checked with each of its keys renamed in turn: a field renamed in the code fails here.

use crate::support::{Sandbox, root, run, strs};
use crate::verify::{Files, against_expected, emulated_images, xtask_verify};
use serde_json::Value;
use snpkit_bundle::{RUN_SCHEMA, RunLaunch, RunRecord, RunSigned};
use snpkit_testkit::vectors::read as vector;

fn validator(name: &str) -> jsonschema::Validator {
    let path = root().join("docs/schemas").join(name);
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    jsonschema::draft202012::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a draft 2020-12 schema: {e}"));
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `json` is valid, and would not be with any one of its keys (at any depth) renamed.
fn assert_pinned(schema: &jsonschema::Validator, json: &Value, what: &str) {
    let errors: Vec<String> = schema
        .iter_errors(json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{json:#}");
    let mut renamed = 0;
    for_each_key(json, &mut Vec::new(), &mut |path| {
        let mut bad = json.clone();
        rename(&mut bad, path);
        assert!(
            !schema.is_valid(&bad),
            "{what}: the schema still accepts it with {path:?} renamed"
        );
        renamed += 1;
    });
    assert!(renamed > 0, "{what}: no keys");
}

/// A step into a JSON value: an object's key or an array's index.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn for_each_key(v: &Value, at: &mut Vec<Step>, f: &mut dyn FnMut(&[Step])) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                at.push(Step::Key(k.clone()));
                f(at);
                for_each_key(inner, at, f);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                at.push(Step::Index(i));
                for_each_key(inner, at, f);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Renames the key at the end of `path` to `<key>_renamed`.
fn rename(v: &mut Value, path: &[Step]) {
    let (last, parents) = path.split_last().expect("a key");
    let mut cur = v;
    for step in parents {
        cur = match step {
            Step::Key(k) => &mut cur[k.as_str()],
            Step::Index(i) => &mut cur[*i],
        };
    }
    let (Step::Key(k), Value::Object(map)) = (last, cur) else {
        panic!("not a key: {path:?}");
    };
    let inner = map.remove(k).expect("the key");
    map.insert(format!("{k}_renamed"), inner);
}

fn stdout_json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn verdicts_match_the_published_schema() {
    let schema = validator("verdict.schema.json");
    let f = Files::new();
    let cache = f.path("cache");

    // A genuine report (tests/vectors) judged against an expected.json: passes, names its config.
    let r = snpkit_attest::report::parse(&vector(crate::verify::OAK_CB)).unwrap();
    let mut other = r.measurement;
    other[0] ^= 1;
    let mut args = against_expected(
        &f,
        &[("A", other, r.policy), ("B", r.measurement, r.policy)],
    );
    args.push("--json".into());
    let o = xtask_verify(&strs(&args), &cache);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let genuine = stdout_json(&o);
    assert_eq!(genuine["config"], "B");
    assert_pinned(&schema, &genuine, "a genuine verdict");

    // The same report matching no config: a failing verdict.
    let mut args = against_expected(&f, &[("A", other, r.policy)]);
    args.push("--json".into());
    let o = xtask_verify(&strs(&args), &cache);
    assert_eq!(o.status.code(), Some(1));
    assert_pinned(&schema, &stdout_json(&o), "a failing verdict");

    // An input that cannot be read: exit 2, most checks not evaluated.
    let o = xtask_verify(&["--report", "/nonexistent/report.bin", "--json"], &cache);
    assert_eq!(o.status.code(), Some(2));
    let input = stdout_json(&o);
    assert_eq!(input["product"], Value::Null);
    assert_pinned(&schema, &input, "an input error");

    // An emulated run: the warning is part of the format too.
    let (images, _) = emulated_images(&f);
    let o = xtask_verify(
        &["hello", "--images", &images, "--allow-emulated", "--json"],
        &cache,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let emulated = stdout_json(&o);
    assert_eq!(emulated["emulated"], true);
    assert_pinned(&schema, &emulated, "an emulated verdict");

    // The schema lists the checks the verifier has, in its order.
    let text = std::fs::read_to_string(root().join("docs/schemas/verdict.schema.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let listed: Vec<&str> = doc["$defs"]["check"]["properties"]["name"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(listed, snpkit_attest::verdict::CHECKS);
}

#[test]
fn run_records_match_the_published_schema() {
    let schema = validator("run.schema.json");
    let full = RunRecord {
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
        host_data: Some("55".repeat(32)),
        signed: Some(RunSigned {
            id_key_digest: "66".repeat(48),
            author_key_digest: Some("77".repeat(48)),
        }),
        stopped: Some(true),
        appliance_log: Some(snpkit_bundle::RunAppLog {
            bytes: 120,
            left_out: 0,
        }),
        broker: Some("http://127.0.0.1:8080".into()),
    };
    let minimal = RunRecord {
        launch: RunLaunch::Snp,
        emulated: None,
        entry: None,
        measurement: None,
        manifest_sha256: None,
        vcpus: None,
        vcpu_type: None,
        boot_seconds: None,
        host_data: None,
        signed: None,
        stopped: None,
        appliance_log: None,
        broker: None,
        ..full.clone()
    };
    for (what, record) in [("a full run.json", &full), ("a minimal run.json", &minimal)] {
        let json: Value = serde_json::from_str(&record.to_json()).unwrap();
        assert_pinned(&schema, &json, what);
    }
    // What the reader refuses, the schema refuses too.
    let mut contradicts: Value = serde_json::from_str(&full.to_json()).unwrap();
    contradicts["launch"] = "snp".into();
    assert!(!schema.is_valid(&contradicts));
}

#[test]
fn build_summaries_match_the_published_schema() {
    let schema = validator("build-summary.schema.json");
    let sb = Sandbox::with_recipe("hello");
    let o = run(&mut sb.xtask(&["build", "hello", "--json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let built = stdout_json(&o);
    assert_eq!(built["recipe"], "hello");
    assert_pinned(&schema, &built, "a built image");

    // A failed build prints {"error": …} on stdout.
    std::fs::write(sb.recipe_file("hello"), b"[not a recipe").unwrap();
    let o = run(&mut sb.xtask(&["build", "hello", "--json"]));
    assert!(!o.status.success());
    let failed = stdout_json(&o);
    assert_eq!(failed["error"]["kind"], "recipe_syntax");
    assert_pinned(&schema, &failed, "a failed build");
}
