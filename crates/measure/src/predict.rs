//! Reference values of a built image: one launch digest per launch configuration.
//!
//! What `cargo xtask measure <recipe>` writes into `expected.json`. The firmware's pages and the
//! hashes table are the same for every configuration, so they are hashed once; each configuration
//! adds only its VMSAs. Where the values are written is the caller's business.

use crate::config::{ConfigError, LaunchConfig, launch_config_from};
use crate::digest::LaunchDigest;
use crate::error::MeasureError;
use crate::hashes::{CmdlineError, KernelHashes};
use crate::launch::{Firmware, launch_digest};
use crate::ovmf::Ovmf;

/// The bytes of a built image that its launch digest covers.
#[derive(Debug, Clone, Copy)]
pub struct ImageBytes<'a> {
    pub ovmf: &'a Ovmf,
    pub kernel: &'a [u8],
    pub initrd: &'a [u8],
    /// The command line as QEMU is given it (hashed raw, plus a NUL).
    pub cmdline: &'a [u8],
}

/// The reference value of one launch configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction {
    /// The configuration as the digest reads it.
    pub config: LaunchConfig,
    pub digest: LaunchDigest,
}

/// Why an image's reference values cannot be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PredictError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error("measuring launch config {name:?}")]
    Measure {
        name: String,
        #[source]
        source: MeasureError,
    },
}

/// One [`Prediction`] per entry of `launches`, in their order. Every configuration is checked
/// before anything is hashed, so a recipe typo costs nothing.
pub fn predict(
    image: &ImageBytes<'_>,
    launches: &[snpkit_recipe::LaunchConfig],
) -> Result<Vec<Prediction>, PredictError> {
    let configs = launches
        .iter()
        .map(launch_config_from)
        .collect::<Result<Vec<_>, _>>()?;
    let hashes = KernelHashes::compute(image.kernel, image.initrd, image.cmdline)?;
    let firmware = Firmware::measure(image.ovmf);
    launches
        .iter()
        .zip(configs)
        .map(|(launch, config)| {
            let digest = launch_digest(&firmware, Some(&hashes), &config).map_err(|source| {
                PredictError::Measure {
                    name: launch.name.clone(),
                    source,
                }
            })?;
            Ok(Prediction { config, digest })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::tests::{amdsev_like, image};

    fn launch(name: &str, vcpus: u32, vmm: &str) -> snpkit_recipe::LaunchConfig {
        snpkit_recipe::LaunchConfig {
            name: name.into(),
            vcpus,
            vcpu_type: "EPYC-Milan".into(),
            vmm: vmm.into(),
            guest_features: 0x1,
            policy: 0x30000,
            memory_mib: 1024,
        }
    }

    fn bytes(ovmf: &Ovmf) -> ImageBytes<'_> {
        ImageBytes {
            ovmf,
            kernel: b"kernel bytes",
            initrd: b"initrd bytes",
            cmdline: b"console=hvc0 ro ",
        }
    }

    #[test]
    fn one_digest_per_config_in_order() {
        let ovmf = Ovmf::parse(&amdsev_like(0x1000)).unwrap();
        let launches = [
            launch("qemu-2", 2, "qemu"),
            launch("aws", 4, "ec2"),
            launch("qemu-1", 1, "qemu"),
        ];
        let got = predict(&bytes(&ovmf), &launches).unwrap();
        assert_eq!(got.len(), 3);
        let hashes =
            KernelHashes::compute(b"kernel bytes", b"initrd bytes", b"console=hvc0 ro ").unwrap();
        for (p, l) in got.iter().zip(&launches) {
            let config = launch_config_from(l).unwrap();
            assert_eq!(p.config, config);
            let alone = launch_digest(&Firmware::measure(&ovmf), Some(&hashes), &config).unwrap();
            assert_eq!(p.digest, alone, "{}", l.name);
        }
        let distinct: std::collections::BTreeSet<String> =
            got.iter().map(|p| p.digest.to_hex()).collect();
        assert_eq!(distinct.len(), 3);
        // The command line is hashed raw: a trailing space is part of it.
        let trimmed = ImageBytes {
            cmdline: b"console=hvc0 ro",
            ..bytes(&ovmf)
        };
        assert_ne!(predict(&trimmed, &launches[..1]).unwrap()[0], got[0]);
    }

    #[test]
    fn errors_name_the_config() {
        let ovmf = Ovmf::parse(&amdsev_like(0x1000)).unwrap();
        let mut bad = launch("milan-2", 2, "qemu");
        bad.vcpu_type = "EPYC-Nope".into();
        let err = predict(&bytes(&ovmf), &[launch("ok", 1, "qemu"), bad])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("milan-2") && err.contains("vcpu_type") && err.contains("EPYC-Nope"),
            "{err}"
        );

        let nul = ImageBytes {
            cmdline: b"console=hvc0\0",
            ..bytes(&ovmf)
        };
        assert_eq!(
            predict(&nul, &[launch("ok", 1, "qemu")]).unwrap_err(),
            PredictError::Cmdline(CmdlineError::Nul { position: 12 })
        );

        // A firmware without the SNP_KERNEL_HASHES section cannot bind the kernel.
        let plain = Ovmf::parse(&image(&[], None)).unwrap();
        let err = predict(&bytes(&plain), &[launch("qemu-1", 1, "qemu")]).unwrap_err();
        assert!(
            matches!(&err, PredictError::Measure { name, .. } if name == "qemu-1"),
            "{err:?}"
        );
    }
}
