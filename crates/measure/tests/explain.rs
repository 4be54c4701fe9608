//! `explain` finds a planted configuration, and finds nothing when an input changed.
#![allow(clippy::unwrap_used)]

mod common;

use std::num::NonZeroU32;

use common::vectors;
use snpkit_measure::{
    BootCandidate, Ec2VmsaRdx, Firmware, FirmwareCandidate, GuestFeatures, KernelHashes,
    LaunchConfig, LaunchDigest, Ovmf, SearchSpace, VcpuType, Vmm,
};

fn fixture_ovmf() -> Ovmf {
    ovmf_fixture("ovmf_AmdSev_suffix.bin")
}

fn ovmf_fixture(name: &str) -> Ovmf {
    let path = vectors()
        .join("virtee-sev-snp-measure/tests/fixtures")
        .join(name);
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
    launch(
        vcpus,
        VcpuType::from_name(vcpu_type).unwrap(),
        vmm,
        features,
    )
}

fn launch(vcpus: u32, vcpu_type: VcpuType, vmm: Vmm, features: u64) -> LaunchConfig {
    LaunchConfig {
        vcpus: NonZeroU32::new(vcpus).unwrap(),
        vcpu_type,
        vmm,
        guest_features: GuestFeatures::new(features).unwrap(),
    }
}

/// The digest of `planted` launched on `ovmf` with `hashes`, and `ovmf` as the one firmware the
/// search may try.
fn plant<'a>(
    ovmf: &'a Ovmf,
    planted: &LaunchConfig,
    hashes: Option<&KernelHashes>,
) -> (LaunchDigest, [FirmwareCandidate<'a>; 1]) {
    let firmware = Firmware::measure(ovmf);
    let target = snpkit_measure::launch_digest(&firmware, hashes, planted).unwrap();
    let fw = [FirmwareCandidate {
        label: "fixture".into(),
        firmware,
    }];
    (target, fw)
}

#[test]
fn finds_a_planted_configuration() {
    let ovmf = fixture_ovmf();
    let planted = config(37, "EPYC-Milan", Vmm::Qemu, 0x221);
    let hashes = KernelHashes::compute(KERNEL, INITRD, b"console=ttyS0 quiet").unwrap();
    let (target, fw) = plant(&ovmf, &planted, Some(&hashes));
    let boots = BootCandidate::variants(KERNEL, INITRD, b"console=ttyS0 quiet");
    let found = snpkit_measure::explain(&target, &fw, &boots, &space());
    assert_eq!(found.matches.len(), 1, "{found:?}");
    let m = &found.matches[0];
    assert_eq!(m.config.vcpus.get(), 37);
    assert_eq!(m.config.vcpu_type.signature(), 0xa00f11);
    assert_eq!(m.config.vmm, Vmm::Qemu);
    assert_eq!(m.config.guest_features.bits(), 0x221);
    let boot = &boots[m.boot];
    assert!(
        boot.label.contains("initrd as given") && boot.label.contains("cmdline as given"),
        "{}",
        boot.label
    );
    let kernel = boot.kernel.as_ref().unwrap();
    assert!(kernel.initrd);
    assert_eq!(kernel.cmdline, b"console=ttyS0 quiet");
    assert!(found.tried > 100_000, "{}", found.tried);
}

#[test]
fn names_the_cmdline_variant_and_the_ec2_form() {
    let ovmf = fixture_ovmf();
    // Launched with a trailing space that the recipe's cmdline lacks, on EC2 with RDX 0.
    let planted = config(2, "EPYC-v4", Vmm::Ec2(Ec2VmsaRdx::Zero), 0x1);
    let hashes = KernelHashes::compute(KERNEL, b"", b"ro ").unwrap();
    let (target, fw) = plant(&ovmf, &planted, Some(&hashes));
    let boots = BootCandidate::variants(KERNEL, INITRD, b"ro");
    let found = snpkit_measure::explain(&target, &fw, &boots, &space());
    assert_eq!(found.matches.len(), 1, "{found:?}");
    let m = &found.matches[0];
    assert_eq!(m.config.vmm, Vmm::Ec2(Ec2VmsaRdx::Zero));
    assert!(!m.vcpu_type_matters);
    let boot = &boots[m.boot];
    assert!(
        boot.label.contains("no initrd") && boot.label.contains("trailing space"),
        "{}",
        boot.label
    );
    // The variant says what QEMU was given, so the hit can be measured again.
    let kernel = boot.kernel.as_ref().unwrap();
    assert!(!kernel.initrd);
    assert_eq!(kernel.cmdline, b"ro ");
    assert_eq!(kernel.hashes, hashes);
}

#[test]
fn a_firmware_only_launch_is_found_too() {
    let ovmf = fixture_ovmf();
    let planted = config(5, "EPYC-Genoa", Vmm::Gce, 0x1);
    let (target, fw) = plant(&ovmf, &planted, None);
    let boots = BootCandidate::variants(KERNEL, INITRD, b"");
    let found = snpkit_measure::explain(&target, &fw, &boots, &space());
    assert_eq!(found.matches.len(), 1, "{found:?}");
    assert_eq!(found.matches[0].config.vmm, Vmm::Gce);
    let boot = &boots[found.matches[0].boot];
    assert!(boot.label.contains("no kernel hashes"), "{}", boot.label);
    assert!(boot.kernel.is_none());
}

#[test]
fn a_changed_initrd_matches_nothing() {
    let ovmf = fixture_ovmf();
    let planted = config(4, "EPYC-v4", Vmm::Qemu, 0x1);
    let hashes = KernelHashes::compute(KERNEL, b"an initrd, one byte changed!", b"").unwrap();
    let (target, fw) = plant(&ovmf, &planted, Some(&hashes));
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
    let ovmf = ovmf_fixture("ovmf_OvmfX64_suffix.bin");
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

#[test]
fn a_real_host_signature_is_in_the_wide_space() {
    let ovmf = fixture_ovmf();
    // `-cpu host` on a Turin: family 1Ah model 02h stepping 1, no QEMU model has it.
    let turin = VcpuType::from_family_model_stepping(0x1a, 0x02, 1).unwrap();
    assert_eq!(turin.signature(), 0xb00f21);
    let planted = launch(8, turin, Vmm::Qemu, 0x1);
    let hashes = KernelHashes::compute(KERNEL, INITRD, b"").unwrap();
    let (target, fw) = plant(&ovmf, &planted, Some(&hashes));
    let boots = BootCandidate::variants(KERNEL, INITRD, b"");
    let found = snpkit_measure::explain(&target, &fw, &boots, &space());
    assert_eq!(found.matches.len(), 1, "{found:?}");
    assert_eq!(found.matches[0].config.vcpu_type.signature(), 0xb00f21);
    assert_eq!(found.matches[0].config.vcpus.get(), 8);
}

#[test]
fn an_included_config_widens_the_space() {
    let ovmf = fixture_ovmf();
    // A recipe's launch config with features outside the usual sets, a raw signature and more
    // vCPUs than the search would try.
    let planted = launch(70, VcpuType::Signature(0x00a2_0f10), Vmm::Qemu, 0x1_0001);
    let hashes = KernelHashes::compute(KERNEL, INITRD, b"x").unwrap();
    let (target, fw) = plant(&ovmf, &planted, Some(&hashes));
    let boots = BootCandidate::variants(KERNEL, INITRD, b"x");
    let mut space = space();
    let before = space.size();
    assert!(
        snpkit_measure::explain(&target, &fw, &boots, &space)
            .matches
            .is_empty()
    );
    space.include(&planted);
    assert_eq!(space.vcpus, 1..=70);
    assert!(space.size() > before);
    // Including it twice adds nothing.
    let size = space.size();
    space.include(&planted);
    assert_eq!(space.size(), size);
    let found = snpkit_measure::explain(&target, &fw, &boots, &space);
    assert_eq!(found.matches.len(), 1, "{found:?}");
    assert_eq!(found.matches[0].config, planted);
}
