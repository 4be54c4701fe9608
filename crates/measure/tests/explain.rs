//! `explain` finds a planted configuration, and finds nothing when an input changed.
#![allow(clippy::unwrap_used)]

mod common;

use std::num::NonZeroU32;

use common::vectors;
use snpkit_measure::{
    BootCandidate, Ec2VmsaRdx, Firmware, FirmwareCandidate, GuestFeatures, KernelHashes,
    LaunchConfig, Ovmf, SearchSpace, VcpuType, Vmm,
};

fn fixture_ovmf() -> Ovmf {
    let path = vectors().join("virtee-sev-snp-measure/tests/fixtures/ovmf_AmdSev_suffix.bin");
    Ovmf::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn space() -> SearchSpace {
    let mut s = SearchSpace::wide(&[]);
    s.vcpus = 1..=64;
    s
}

const KERNEL: &[u8] = b"a kernel image";
const INITRD: &[u8] = b"an initrd";

fn config(vcpus: u32, vcpu_type: &str, vmm: Vmm, features: u64) -> LaunchConfig {
    LaunchConfig {
        vcpus: NonZeroU32::new(vcpus).unwrap(),
        vcpu_type: VcpuType::from_name(vcpu_type).unwrap(),
        vmm,
        guest_features: GuestFeatures::new(features).unwrap(),
    }
}

#[test]
fn finds_a_planted_configuration() {
    let ovmf = fixture_ovmf();
    let firmware = Firmware::measure(&ovmf);
    let planted = config(37, "EPYC-Milan", Vmm::Qemu, 0x221);
    let hashes = KernelHashes::compute(KERNEL, INITRD, b"console=ttyS0 quiet").unwrap();
    let target = snpkit_measure::launch_digest(&firmware, Some(&hashes), &planted).unwrap();

    let fw = [FirmwareCandidate {
        label: "fixture".into(),
        firmware,
    }];
    let boots = BootCandidate::variants(KERNEL, INITRD, b"console=ttyS0 quiet");
    let found = snpkit_measure::explain(&target, &fw, &boots, &space());
    assert_eq!(found.matches.len(), 1, "{found:?}");
    let m = &found.matches[0];
    assert_eq!(m.config.vcpus.get(), 37);
    assert_eq!(m.config.vcpu_type.signature(), 0xa00f11);
    assert_eq!(m.config.vmm, Vmm::Qemu);
    assert_eq!(m.config.guest_features.bits(), 0x221);
    assert!(
        m.boot.contains("initrd as given") && m.boot.contains("cmdline as given"),
        "{}",
        m.boot
    );
    assert!(found.tried > 100_000, "{}", found.tried);
}

#[test]
fn names_the_cmdline_variant_and_the_ec2_form() {
    let ovmf = fixture_ovmf();
    let firmware = Firmware::measure(&ovmf);
    // Launched with a trailing space that the recipe's cmdline lacks, on EC2 with RDX 0.
    let planted = config(2, "EPYC-v4", Vmm::Ec2(Ec2VmsaRdx::Zero), 0x1);
    let hashes = KernelHashes::compute(KERNEL, b"", b"ro ").unwrap();
    let target = snpkit_measure::launch_digest(&firmware, Some(&hashes), &planted).unwrap();
    let fw = [FirmwareCandidate {
        label: "fixture".into(),
        firmware,
    }];
    let found = snpkit_measure::explain(
        &target,
        &fw,
        &BootCandidate::variants(KERNEL, INITRD, b"ro"),
        &space(),
    );
    assert_eq!(found.matches.len(), 1, "{found:?}");
    let m = &found.matches[0];
    assert_eq!(m.config.vmm, Vmm::Ec2(Ec2VmsaRdx::Zero));
    assert!(!m.vcpu_type_matters);
    assert!(
        m.boot.contains("no initrd") && m.boot.contains("trailing space"),
        "{}",
        m.boot
    );
}

#[test]
fn a_firmware_only_launch_is_found_too() {
    let ovmf = fixture_ovmf();
    let firmware = Firmware::measure(&ovmf);
    let planted = config(5, "EPYC-Genoa", Vmm::Gce, 0x1);
    let target = snpkit_measure::launch_digest(&firmware, None, &planted).unwrap();
    let fw = [FirmwareCandidate {
        label: "fixture".into(),
        firmware,
    }];
    let found = snpkit_measure::explain(
        &target,
        &fw,
        &BootCandidate::variants(KERNEL, INITRD, b""),
        &space(),
    );
    assert_eq!(found.matches.len(), 1, "{found:?}");
    assert_eq!(found.matches[0].config.vmm, Vmm::Gce);
    assert!(
        found.matches[0].boot.contains("no kernel hashes"),
        "{}",
        found.matches[0].boot
    );
}

#[test]
fn a_changed_initrd_matches_nothing() {
    let ovmf = fixture_ovmf();
    let firmware = Firmware::measure(&ovmf);
    let planted = config(4, "EPYC-v4", Vmm::Qemu, 0x1);
    let hashes = KernelHashes::compute(KERNEL, b"an initrd, one byte changed!", b"").unwrap();
    let target = snpkit_measure::launch_digest(&firmware, Some(&hashes), &planted).unwrap();
    let fw = [FirmwareCandidate {
        label: "fixture".into(),
        firmware,
    }];
    let found = snpkit_measure::explain(
        &target,
        &fw,
        &BootCandidate::variants(KERNEL, INITRD, b""),
        &space(),
    );
    assert!(found.matches.is_empty(), "{found:?}");
    assert!(found.tried > 0);
}

#[test]
fn a_firmware_without_kernel_hashes_is_reported_as_skipped() {
    let path = vectors().join("virtee-sev-snp-measure/tests/fixtures/ovmf_OvmfX64_suffix.bin");
    let ovmf = Ovmf::parse(&std::fs::read(path).unwrap()).unwrap();
    let fw = [FirmwareCandidate {
        label: "OvmfX64".into(),
        firmware: Firmware::measure(&ovmf),
    }];
    let target = snpkit_measure::LaunchDigest::from_bytes([1; 48]);
    let found = snpkit_measure::explain(
        &target,
        &fw,
        &BootCandidate::variants(KERNEL, INITRD, b""),
        &space(),
    );
    assert!(
        found
            .skipped
            .iter()
            .any(|s| s.contains("SNP_KERNEL_HASHES")),
        "{:?}",
        found.skipped
    );
}
