//! What a build is given besides the recipe: where things go, the cache, the guest `/init`, and
//! the checks and progress display that live outside this crate.

use snpkit_bundle::{Expected, LaunchSpec, MeasuredFiles};
use snpkit_inputs::Cache;
use snpkit_recipe::LaunchProblem;
use std::collections::BTreeMap;
use std::path::Path;

pub struct BuildOptions<'a> {
    /// Where image folders go (`<workspace>/images`).
    pub images_dir: &'a Path,
    pub cache: &'a Cache,
    /// The static guest `/init` binary.
    pub guest_init: &'a [u8],
    /// `SOURCE_DATE_EPOCH` from the environment, if set: it overrides the recipe's epoch.
    pub source_date_epoch: Option<&'a str>,
    /// Versions of the tools whose output lands in the image, for the manifest.
    pub tools: BTreeMap<String, String>,
    /// Checks the firmware before it is used; returns why it is unfit. Measured direct boot
    /// needs an AmdSev OVMF with an SNP_KERNEL_HASHES section (the measure crate knows how to
    /// look; this crate does not).
    pub check_firmware: &'a dyn Fn(&[u8]) -> Result<(), UnfitReason>,
    /// Checks a launch configuration the way the measurement will read it (CPU model, VMM,
    /// guest features): this crate does not know those lists, and a build whose launch
    /// configurations cannot be measured should stop before it fetches anything.
    pub check_launch: &'a dyn Fn(&LaunchSpec) -> Result<(), LaunchProblem>,
    /// The prediction of the image (recipe name, its measured files, its launch configurations):
    /// `expected.json`, written into the new image folder in the same swap as the image, so the
    /// folder never holds an image without its prediction, or with its predecessor's. The
    /// measurement computes it; this crate does not know how.
    pub predict: &'a Predict,
    pub reporter: &'a dyn Reporter,
}

/// See [`BuildOptions::predict`].
pub type Predict =
    dyn Fn(&str, &MeasuredFiles<'_>, &[LaunchSpec]) -> Result<Expected, PredictionFailed>;

/// Why the prediction could not be made (the measurement's error, with its causes).
pub type PredictionFailed = Box<dyn std::error::Error + Send + Sync>;

/// Creates one progress display per long step.
pub trait Reporter {
    fn step(&self, message: &str) -> Box<dyn snpkit_inputs::Progress + '_>;
}

/// A [`Reporter`] that shows nothing.
pub struct Silent;

impl Reporter for Silent {
    fn step(&self, _: &str) -> Box<dyn snpkit_inputs::Progress + '_> {
        Box::new(snpkit_inputs::NoProgress)
    }
}

/// Why the firmware check passed in ([`BuildOptions::check_firmware`]) refused a firmware.
pub type UnfitReason = Box<dyn std::error::Error + Send + Sync>;
