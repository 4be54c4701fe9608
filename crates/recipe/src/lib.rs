//! Recipes: what an appliance is made of and how it is launched.
//!
//! Owns the `recipes/<name>/recipe.toml` format, its validation (errors name the file, the key and the
//! fix), the minijinja rendering of the kernel command line, the launch configurations, and the
//! `recipe.lock` file that pins every resolved input.
//!
//! Knows nothing of how inputs are fetched (`snpkit-inputs`), how images are laid out (`snpkit-image`),
//! or how digests are computed (`snpkit-measure`): a recipe is data.
#![forbid(unsafe_code)]

mod launch;

pub use launch::LaunchConfig;
