//! The launch digest of a launch as the VMM was given it: what an emulated PSP reports.
//!
//! A PSP measures what is loaded, not what a recipe predicts. So the emulated PSP's digest comes
//! from exactly what QEMU was handed — the firmware file, the hashes-page file and the address it
//! was loaded at, the vCPU count and the `-cpu` model of its command line — and never from the
//! launch configuration, except for the guest features, which no QEMU option sets (KVM does, on
//! hardware). A prediction that disagrees with this digest then fails verification, as it would
//! on hardware.

use crate::config::{ConfigError, GuestFeatures, LaunchConfig, Vmm, vcpus};
use crate::digest::LaunchDigest;
use crate::error::MeasureError;
use crate::hashes::HashesPage;
use crate::launch::{Firmware, launch_digest_with_page};
use crate::ovmf::{Ovmf, OvmfError};
use crate::vcpu::{VcpuType, VcpuTypeError};

/// What an emulated launch gave QEMU, as bytes and command-line values.
#[derive(Debug, Clone)]
pub struct GivenLaunch<'a> {
    /// The firmware file (`-bios`).
    pub firmware: Vec<u8>,
    /// The hashes-page file (`-device loader,file=…`).
    pub hashes_page: Vec<u8>,
    /// Where the loader put the page (`addr=…`).
    pub hashes_page_gpa: u64,
    /// `-smp`.
    pub vcpus: u32,
    /// `-cpu`.
    pub cpu_model: &'a str,
    /// SEV_FEATURES of the VMSAs: the launch configuration's, since no QEMU option sets them.
    pub guest_features: GuestFeatures,
}

/// Why no digest can be computed for a launch as it was given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GivenLaunchError {
    #[error(transparent)]
    Firmware(#[from] OvmfError),
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error(
        "the hashes page is loaded at {loaded:#x}, but the firmware looks for it at {expected:#x}: the firmware \
         would not see it"
    )]
    PageAddress { loaded: u64, expected: u64 },
    #[error("-smp {given}")]
    Vcpus {
        given: u32,
        #[source]
        source: ConfigError,
    },
    #[error("-cpu {given}")]
    CpuModel {
        given: String,
        #[source]
        source: VcpuTypeError,
    },
}

/// The launch digest of `given`, as a PSP would compute it from what was loaded.
pub fn given_launch_digest(given: GivenLaunch<'_>) -> Result<LaunchDigest, GivenLaunchError> {
    let ovmf = Ovmf::parse_owned(given.firmware)?;
    let page = HashesPage::from_bytes(&ovmf, given.hashes_page)?;
    if page.gpa() != given.hashes_page_gpa {
        return Err(GivenLaunchError::PageAddress {
            loaded: given.hashes_page_gpa,
            expected: page.gpa(),
        });
    }
    let config = LaunchConfig {
        vcpus: vcpus(given.vcpus).map_err(|source| GivenLaunchError::Vcpus {
            given: given.vcpus,
            source,
        })?,
        vcpu_type: VcpuType::from_name(given.cpu_model).map_err(|source| {
            GivenLaunchError::CpuModel {
                given: given.cpu_model.to_owned(),
                source,
            }
        })?,
        vmm: Vmm::Qemu,
        guest_features: given.guest_features,
    };
    let firmware = Firmware::measure(&ovmf);
    Ok(launch_digest_with_page(&firmware, Some(&page), &config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashes::{KernelHashes, hashes_page};
    use crate::launch::launch_digest;
    use crate::ovmf::tests::amdsev_like;

    fn features() -> GuestFeatures {
        GuestFeatures::new(0x1).unwrap()
    }

    /// The launch `boot` gives QEMU for these hashes, with 2 vCPUs of `cpu_model`.
    fn given<'a>(hashes: &KernelHashes, cpu_model: &'a str) -> GivenLaunch<'a> {
        let firmware = amdsev_like(0x1000);
        let page = hashes_page(&Ovmf::parse(&firmware).unwrap(), hashes).unwrap();
        GivenLaunch {
            hashes_page: page.as_bytes().to_vec(),
            hashes_page_gpa: page.gpa(),
            firmware,
            vcpus: 2,
            cpu_model,
            guest_features: features(),
        }
    }

    #[test]
    fn the_digest_is_the_prediction_for_what_was_given() {
        let hashes = KernelHashes::compute(b"kernel", b"initrd", b"console=hvc0 ").unwrap();
        let ovmf = Ovmf::parse(&amdsev_like(0x1000)).unwrap();
        let predict = |vcpus: u32, model: &str| {
            let config = LaunchConfig {
                vcpus: crate::vcpus(vcpus).unwrap(),
                vcpu_type: VcpuType::from_name(model).unwrap(),
                vmm: Vmm::Qemu,
                guest_features: features(),
            };
            launch_digest(&Firmware::measure(&ovmf), Some(&hashes), &config).unwrap()
        };
        let digest = given_launch_digest(given(&hashes, "EPYC-Milan")).unwrap();
        assert_eq!(digest, predict(2, "EPYC-Milan"));
        // What QEMU was given decides, not what was predicted: another -cpu or -smp, another digest.
        assert_ne!(digest, predict(2, "EPYC-v4"));
        assert_ne!(digest, predict(1, "EPYC-Milan"));
        let mut one = given(&hashes, "EPYC-Milan");
        one.vcpus = 1;
        assert_eq!(given_launch_digest(one).unwrap(), predict(1, "EPYC-Milan"));
        // A page with other hashes (a kernel changed after the build) gives another digest.
        let other = KernelHashes::compute(b"kernel!", b"initrd", b"console=hvc0 ").unwrap();
        assert_ne!(
            given_launch_digest(given(&other, "EPYC-Milan")).unwrap(),
            digest
        );
    }

    #[test]
    fn a_launch_the_firmware_would_not_see_is_refused() {
        let hashes = KernelHashes::compute(b"k", b"i", b"c").unwrap();
        let mut moved = given(&hashes, "EPYC-Milan");
        moved.hashes_page_gpa += 0x1000;
        let err = given_launch_digest(moved).unwrap_err();
        assert_eq!(
            err,
            GivenLaunchError::PageAddress {
                loaded: 0x811000,
                expected: 0x810000
            }
        );
        assert!(err.to_string().contains("loaded at 0x811000"), "{err}");

        let mut short = given(&hashes, "EPYC-Milan");
        short.hashes_page.truncate(100);
        assert_eq!(
            given_launch_digest(short).unwrap_err(),
            GivenLaunchError::Measure(MeasureError::HashesPageSize {
                expected: 4096,
                found: 100
            })
        );

        let mut garbage = given(&hashes, "EPYC-Milan");
        garbage.firmware = vec![0x5a; 8192];
        assert!(matches!(
            given_launch_digest(garbage).unwrap_err(),
            GivenLaunchError::Firmware(_)
        ));
    }

    #[test]
    fn bad_command_line_values_are_named() {
        let hashes = KernelHashes::compute(b"k", b"i", b"c").unwrap();
        let mut none = given(&hashes, "EPYC-Milan");
        none.vcpus = 0;
        let err = given_launch_digest(none).unwrap_err();
        assert!(
            matches!(err, GivenLaunchError::Vcpus { given: 0, .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "-smp 0");
        let err = given_launch_digest(given(&hashes, "EPYC-Nope")).unwrap_err();
        assert_eq!(err.to_string(), "-cpu EPYC-Nope");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("EPYC-Nope"), "{source}");
    }
}
