//! Round trips of every file of the folder through [`ImageDir`], and what hostile files get.
#![allow(clippy::unwrap_used)]

use crate::*;
use std::path::Path;

fn image() -> (tempfile::TempDir, ImageDir) {
    let images = tempfile::tempdir().unwrap();
    std::fs::create_dir(images.path().join("hello")).unwrap();
    let image = ImageDir::new(images.path(), "hello");
    (images, image)
}

fn expected() -> Expected {
    Expected {
        schema: EXPECTED_SCHEMA,
        recipe: "hello".into(),
        inputs: MeasuredFiles {
            firmware: b"ovmf",
            kernel: b"kernel",
            initrd: b"initrd",
            cmdline: b"cmdline",
        }
        .inputs(),
        configs: ["qemu-1", "qemu-4"]
            .iter()
            .map(|n| ExpectedConfig {
                launch: launch_spec_example(n),
                measurement: "5a".repeat(48),
            })
            .collect(),
    }
}

/// `expected.json` exactly as `snpkit-measure` wrote it while the type lived there.
const EXPECTED_TEXT: &str = r#"{
  "schema": 1,
  "recipe": "demo",
  "inputs": [
    {
      "name": "cmdline",
      "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "size": 0
    }
  ],
  "configs": [
    {
      "launch": {
        "name": "milan-2",
        "vcpus": 2,
        "vcpu_type": "EPYC-Milan",
        "vmm": "qemu",
        "guest_features": 1,
        "policy": 196608,
        "memory_mib": 1024
      },
      "measurement": "00"
    }
  ]
}
"#;

#[test]
fn measured_files_are_listed_in_expected_json_order() {
    let names: Vec<String> = expected().inputs.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["ovmf", "kernel", "initrd", "cmdline"]);
    assert_eq!(expected().inputs[1], ExpectedInput::of("kernel", b"kernel"));
}

#[test]
fn expected_json_keeps_its_bytes() {
    let parsed = Expected::from_json(Path::new("e"), EXPECTED_TEXT.as_bytes()).unwrap();
    assert_eq!(parsed.to_json(), EXPECTED_TEXT);
    assert_eq!(parsed.inputs[0], ExpectedInput::of("cmdline", b""));
}

#[test]
fn every_file_round_trips_through_the_folder() {
    let (_keep, image) = image();
    let manifest = crate::manifest::tests::verity_manifest();
    std::fs::write(image.manifest(), manifest.to_json()).unwrap();
    let (read, digest) = image.read_manifest_hashed().unwrap();
    assert_eq!(read, manifest);
    assert_eq!(digest, Sha256Sum::of(manifest.to_json().as_bytes()));
    assert_eq!(image.read_launch_specs().unwrap(), manifest.launch);

    image.write_expected(&expected()).unwrap();
    assert_eq!(image.read_expected().unwrap(), expected());
    assert_eq!(Expected::read_given(&image.expected()).unwrap(), expected());

    std::fs::write(image.cmdline(), b"console=hvc0 ").unwrap();
    assert_eq!(image.read_cmdline().unwrap(), b"console=hvc0 ");

    let run = image.start_run().unwrap();
    let record = crate::run_record::tests::record();
    let done = run.finish(&record).unwrap();
    assert_eq!(image.newest_run().unwrap().read_record().unwrap(), record);
    assert!(done.path().starts_with(image.runs()));
}

#[test]
fn every_path_is_inside_the_folder_under_its_one_name() {
    let image = ImageDir::new(Path::new("/i"), "r");
    let paths = [
        (image.manifest(), "/i/r/manifest.json"),
        (image.expected(), "/i/r/expected.json"),
        (image.kernel(), "/i/r/vmlinuz"),
        (image.initrd(), "/i/r/initrd.cpio.gz"),
        (image.cmdline(), "/i/r/cmdline"),
        (image.firmware(), "/i/r/OVMF.fd"),
        (image.rootfs(), "/i/r/rootfs.img"),
        (image.verity(), "/i/r/rootfs.verity"),
        (image.runs(), "/i/r/runs"),
    ];
    for (path, want) in paths {
        assert_eq!(path, Path::new(want));
    }
    let run = image.run(&RunId::parse("7").unwrap());
    let paths = [
        (run.record(), "/i/r/runs/7/run.json"),
        (run.report(), "/i/r/runs/7/report.bin"),
        (run.pubkey(), "/i/r/runs/7/pubkey.bin"),
        (run.pubkey_hex(), "/i/r/runs/7/pubkey"),
        (run.nonce(), "/i/r/runs/7/nonce"),
        (run.console_log(), "/i/r/runs/7/console.log"),
        (run.hashes_page(), "/i/r/runs/7/hashes-page.bin"),
        (run.cert(CertName::Ark), "/i/r/runs/7/certs/ark.pem"),
        (run.cert(CertName::Vlek), "/i/r/runs/7/certs/vlek.pem"),
    ];
    for (path, want) in paths {
        assert_eq!(path, Path::new(want));
    }
}

#[test]
fn a_missing_image_or_prediction_names_the_command_that_makes_it() {
    let images = tempfile::tempdir().unwrap();
    let gone = ImageDir::new(images.path(), "gone");
    for err in [
        gone.read_manifest().unwrap_err(),
        gone.read_launch_specs().unwrap_err(),
        gone.require().unwrap_err(),
    ] {
        assert!(err.to_string().contains("cargo xtask build gone"), "{err}");
    }
    let (_keep, image) = image();
    let err = image.read_expected().unwrap_err().to_string();
    assert!(
        err.contains("expected.json is missing") && err.contains("cargo xtask measure hello"),
        "{err}"
    );
}

/// The launch array alone: `measure` works on manifests with fields it does not know.
#[test]
fn launch_specs_are_read_from_any_manifest_with_a_launch_array() {
    let (_keep, image) = image();
    let spec = launch_spec_example("milan-2");
    let text = serde_json::json!({"recipe": "x", "launch": [spec], "other": true}).to_string();
    std::fs::write(image.manifest(), &text).unwrap();
    assert_eq!(image.read_launch_specs().unwrap(), [spec]);
    assert!(
        image.read_manifest().is_err(),
        "the whole manifest is strict"
    );
    std::fs::write(image.manifest(), r#"{"launch": [{"name": "x"}]}"#).unwrap();
    let err = image.read_launch_specs().unwrap_err().to_string();
    assert!(err.contains("manifest with a \"launch\" array"), "{err}");
}

/// Table of hostile folder files: each is refused with its reason, none hangs or fills memory.
#[test]
fn hostile_files_in_the_folder_are_refused() {
    type Setup = fn(&Path);
    let fifo: Setup =
        |p| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let zero: Setup = |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap();
    let folder: Setup = |p| std::fs::create_dir(p).unwrap();
    let huge: Setup = |p| {
        let f = std::fs::File::create(p).unwrap();
        f.set_len(Limit::MANIFEST.max + 1).unwrap();
    };
    let not_json: Setup = |p| std::fs::write(p, b"\xff\xfe not json").unwrap();
    let schema_2: Setup = |p| {
        let mut m = crate::manifest::tests::verity_manifest();
        m.schema = 2;
        let mut e = serde_json::to_value(expected()).unwrap();
        e["schema"] = 2.into();
        let text = if p.ends_with(files::MANIFEST) {
            m.to_json()
        } else {
            e.to_string()
        };
        std::fs::write(p, text).unwrap();
    };
    let cases: [(&str, Setup, &str); 6] = [
        ("FIFO", fifo, "a FIFO"),
        ("/dev/zero", zero, "a character device"),
        ("folder", folder, "a folder"),
        ("sparse 16 MiB + 1", huge, "at most 16777216 bytes"),
        ("not JSON", not_json, "is not a valid"),
        ("schema 2", schema_2, "schema 2"),
    ];
    for (name, setup, needle) in cases {
        let (_keep, image) = image();
        setup(&image.manifest());
        setup(&image.expected());
        let results = [
            image.read_manifest().map(|_| ()),
            image.read_expected().map(|_| ()),
        ];
        for result in results {
            let err = result.unwrap_err().to_string();
            assert!(err.contains(needle), "{name}: {err}");
        }
        // Only the launch array is read: a newer schema's launch configs still read.
        if name != "schema 2" {
            let err = image.read_launch_specs().unwrap_err().to_string();
            assert!(err.contains(needle), "{name}: {err}");
        }
    }
}

#[test]
fn a_config_is_chosen_by_name_or_by_being_the_only_one() {
    let mut e = expected();
    assert_eq!(e.config(Some("qemu-4")).unwrap().launch.name, "qemu-4");
    assert_eq!(
        e.config(None).unwrap_err().to_string(),
        "it has several launch configs (qemu-1, qemu-4): pass --config NAME"
    );
    assert_eq!(
        e.config(Some("x")).unwrap_err().to_string(),
        "it has no launch config named \"x\" (it has: qemu-1, qemu-4)"
    );
    e.configs.truncate(1);
    assert_eq!(e.config(None).unwrap().launch.name, "qemu-1");
    e.configs.clear();
    assert_eq!(e.config(None).unwrap_err(), ConfigChoice::Empty);
}
