//! The OVMF footer table and SEV metadata parser on arbitrary bytes, and the measurement of
//! whatever it accepts: nothing may panic.
#![no_main]

use std::num::NonZeroU32;

use libfuzzer_sys::fuzz_target;
use snpkit_measure::{
    Firmware, GuestFeatures, KernelHashes, LaunchConfig, Ovmf, Svsm, SvsmConfig, VcpuType, Vmm,
};

fuzz_target!(|data: &[u8]| {
    let _ = Ovmf::parse(data);
    // Pad the front to whole pages so inputs get past the size check to the table walk: the
    // footer table and metadata are found from the end of the image.
    let mut image = vec![0u8; (4096 - data.len() % 4096) % 4096];
    image.extend_from_slice(data);
    let _ = Svsm::parse(&image);
    let Ok(ovmf) = Ovmf::parse(&image) else {
        return;
    };
    let Ok(hashes) = KernelHashes::compute(b"kernel", b"", b"cmdline") else {
        return;
    };
    let _ = snpkit_measure::hashes_page(&ovmf, &hashes);
    let firmware = Firmware::measure(&ovmf);
    let Ok(features) = GuestFeatures::new(0x21) else {
        return;
    };
    for vmm in Vmm::ALL {
        let config = LaunchConfig {
            vcpus: NonZeroU32::MIN.saturating_add(2),
            vcpu_type: VcpuType::Signature(0xa00f11),
            vmm,
            guest_features: features,
        };
        let _ = snpkit_measure::launch_digest(&firmware, Some(&hashes), &config);
        let _ = snpkit_measure::launch_digest(&firmware, None, &config);
    }
    if let Ok(svsm) = Svsm::parse(&image) {
        let config = SvsmConfig {
            vcpus: NonZeroU32::MIN,
            vcpu_type: VcpuType::Signature(0),
            vars_size: 0x84000,
        };
        let _ = snpkit_measure::svsm_launch_digest(&ovmf, &svsm, &config);
    }
});
