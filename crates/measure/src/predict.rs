//! The prediction of one image: the launch digest of every launch configuration, as
//! `expected.json` holds them, computed from the bytes of the image's files.
//!
//! One function for both writers of `expected.json`: `cargo xtask build`, which predicts from the
//! bytes it is about to write (so the prediction lands in the image folder in the same atomic swap),
//! and `cargo xtask measure <recipe>`, which predicts again from the files of the folder.

use crate::config::{ConfigError, launch_config_from};
use crate::error::MeasureError;
use crate::hashes::{CmdlineError, KernelHashes};
use crate::launch::{Firmware, launch_digest};
use crate::ovmf::{Ovmf, OvmfError};
use snpkit_bundle::{EXPECTED_SCHEMA, Expected, ExpectedConfig, LaunchSpec, MeasuredFiles};

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error("the firmware cannot be measured")]
    Firmware(#[source] OvmfError),
    #[error("the kernel command line cannot be hashed")]
    Cmdline(#[source] CmdlineError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("measuring launch config {name:?}")]
    Digest {
        name: String,
        #[source]
        source: MeasureError,
    },
}

/// `expected.json` for the image of `recipe` made of `files`, one digest per config of `launch`
/// (in that order).
pub fn predict(
    recipe: &str,
    files: &MeasuredFiles<'_>,
    launch: &[LaunchSpec],
) -> Result<Expected, PredictError> {
    let ovmf = Ovmf::parse(files.firmware).map_err(PredictError::Firmware)?;
    let hashes = KernelHashes::compute(files.kernel, files.initrd, files.cmdline)
        .map_err(PredictError::Cmdline)?;
    let firmware = Firmware::measure(&ovmf);
    let configs = launch
        .iter()
        .map(|spec| {
            let config = launch_config_from(spec)?;
            let digest = launch_digest(&firmware, Some(&hashes), &config).map_err(|source| {
                PredictError::Digest {
                    name: spec.name.clone(),
                    source,
                }
            })?;
            Ok(ExpectedConfig {
                launch: spec.clone(),
                measurement: digest.to_hex(),
            })
        })
        .collect::<Result<_, PredictError>>()?;
    Ok(Expected {
        schema: EXPECTED_SCHEMA,
        recipe: recipe.to_owned(),
        inputs: files.inputs(),
        configs,
    })
}
