//! `predict`: expected.json's digests from an image's bytes, checked against sev-snp-measure's own
//! vector, and each way it can fail named.
#![allow(clippy::unwrap_used)]

mod common;

use snpkit_bundle::{LaunchSpec, MeasuredFiles};
use snpkit_measure::{PredictError, predict};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        common::vectors()
            .join("virtee-sev-snp-measure/tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn spec(name: &str, vcpus: u32, vcpu_type: &str) -> LaunchSpec {
    LaunchSpec {
        name: name.into(),
        vcpus,
        vcpu_type: vcpu_type.into(),
        vmm: "qemu".into(),
        guest_features: 0x21,
        policy: 0x30000,
        memory_mib: 512,
    }
}

/// sev-snp-measure's test_snp_default: 1 vCPU EPYC-v4, empty kernel and initrd, that command line.
const SNP_DEFAULT: &str = "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977";

#[test]
fn predicts_every_config_in_order_with_the_inputs_it_was_given() {
    let ovmf = fixture("ovmf_AmdSev_suffix.bin");
    let files = MeasuredFiles {
        firmware: &ovmf,
        kernel: b"",
        initrd: b"",
        cmdline: b"console=ttyS0 loglevel=7",
    };
    let launch = [spec("one", 1, "EPYC-v4"), spec("four", 4, "EPYC-v4")];
    let expected = predict("demo", &files, &launch).unwrap();
    assert_eq!(expected.recipe, "demo");
    assert_eq!(expected.inputs, files.inputs());
    assert_eq!(expected.configs.len(), 2);
    assert_eq!(expected.configs[0].launch, launch[0]);
    assert_eq!(expected.configs[0].measurement, SNP_DEFAULT);
    assert_ne!(expected.configs[1].measurement, SNP_DEFAULT);
    assert_eq!(expected.configs[1].launch.name, "four");
}

#[test]
fn each_failure_is_named() {
    let amdsev = fixture("ovmf_AmdSev_suffix.bin");
    let x64 = fixture("ovmf_OvmfX64_suffix.bin");
    fn files<'a>(firmware: &'a [u8], cmdline: &'a [u8]) -> MeasuredFiles<'a> {
        MeasuredFiles {
            firmware,
            kernel: b"k",
            initrd: b"i",
            cmdline,
        }
    }
    let good = [spec("one", 1, "EPYC-v4")];
    let chain = |e: &PredictError| snpkit_testkit::errors::chain_text(e);
    let cases: [(MeasuredFiles<'_>, Vec<LaunchSpec>, &str); 4] = [
        (
            files(b"not a firmware", b""),
            good.to_vec(),
            "the firmware cannot be measured",
        ),
        (
            files(&amdsev, b"a\0b"),
            good.to_vec(),
            "the kernel command line cannot be hashed",
        ),
        (
            files(&amdsev, b""),
            vec![spec("bad", 1, "Pentium")],
            "launch config \"bad\": field `vcpu_type`",
        ),
        (
            files(&x64, b""),
            good.to_vec(),
            "measuring launch config \"one\": this OVMF has no SNP_KERNEL_HASHES section",
        ),
    ];
    for (files, launch, want) in cases {
        let err = predict("demo", &files, &launch).unwrap_err();
        assert!(chain(&err).contains(want), "{}", chain(&err));
    }
}
