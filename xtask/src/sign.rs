//! `cargo xtask sign <recipe> --id-key FILE [--author-key FILE]`: an ID block and its ID auth for
//! every launch config of a built image, written to `images/<recipe>/id/` through the bundle.
//!
//! Each block vouches for the config's predicted launch digest and policy, with the recipe's
//! `[identity]` (family ID, image ID, guest SVN). What is signed is `expected.json`'s prediction,
//! but only once it is predicted again from the folder's files and found the same: a stale
//! prediction (files changed after the build, or configs edited) would have the owner vouch for
//! digests no launch of this image computes, and the PSP would refuse every launch with it.
//! Signatures are deterministic (RFC 6979): signing the same image again gives the same bytes.

use crate::{cli, measure};
use anyhow::{Context, bail};
use snpkit_bundle::{IdPair, ImageDir};
use snpkit_idblock::{IdAuth, IdBlock, SigningKey, keyfile};
use snpkit_recipe::Recipe;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe name (its image must be built: images/<recipe>/).
    pub recipe: String,
    /// The P-384 ID key that signs each ID block (PKCS#8 or SEC1, PEM or DER; mode 0600).
    #[arg(long, value_name = "FILE")]
    pub id_key: PathBuf,
    /// The P-384 author key that certifies the ID key (optional; same formats).
    #[arg(long, value_name = "FILE")]
    pub author_key: Option<PathBuf>,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let recipe = Recipe::load_named(&args.dirs.recipes()?, &args.recipe)?;
    let Some(identity) = recipe.identity else {
        bail!(
            "recipe {:?} has no [identity] table: add one with family_id, image_id and guest_svn (see docs/recipes.md) before signing",
            args.recipe
        );
    };
    let images = args.dirs.images()?;
    let image = ImageDir::new(&images, &recipe.name);
    image.require()?;
    let written = image.read_expected().with_context(|| {
        format!(
            "nothing to sign: run `cargo xtask build {}` (or `cargo xtask measure {}`) first",
            recipe.name, recipe.name
        )
    })?;
    let (_, fresh) = measure::predict_image(&images, &recipe.name)?;
    if let Some(why) = written.differs_from(&fresh) {
        bail!(
            "{} is stale: {why}; rebuild the image (`cargo xtask build {}`) or predict again (`cargo xtask measure {}`), then sign",
            image.expected().display(),
            recipe.name,
            recipe.name
        );
    }
    let id_key = keyfile::read_signing_key(&args.id_key)?;
    let author_key: Option<SigningKey> = args
        .author_key
        .as_deref()
        .map(keyfile::read_signing_key)
        .transpose()?;

    let mut signed = Vec::with_capacity(fresh.configs.len());
    for config in &fresh.configs {
        let mut launch_digest = [0u8; 48];
        hex::decode_to_slice(&config.measurement, &mut launch_digest).with_context(|| {
            format!(
                "the prediction of {:?} is not 96 hex digits",
                config.launch.name
            )
        })?;
        let block = IdBlock {
            launch_digest,
            family_id: identity.family_id,
            image_id: identity.image_id,
            guest_svn: identity.guest_svn,
            policy: config.launch.policy,
        };
        let auth = IdAuth::sign(&block, &id_key);
        let auth = match &author_key {
            Some(author) => auth.certify(author),
            None => auth,
        };
        signed.push((config, block.encode(), auth.encode()));
    }
    let pairs: Vec<IdPair<'_>> = signed
        .iter()
        .map(|(config, block, auth)| IdPair {
            config: &config.launch.name,
            block,
            auth: &auth[..],
        })
        .collect();
    image.write_id(&pairs)?;

    for (config, _, _) in &signed {
        println!(
            "{:<16} policy {:#x}  LD {}",
            config.launch.name, config.launch.policy, config.measurement
        );
    }
    println!(
        "family {}  image {}  guest SVN {}",
        hex::encode(identity.family_id),
        hex::encode(identity.image_id),
        identity.guest_svn
    );
    println!(
        "ID key digest     {}",
        hex::encode(id_key.public_key().digest())
    );
    match &author_key {
        Some(author) => println!(
            "author key digest {}",
            hex::encode(author.public_key().digest())
        ),
        None => println!("author key        none (the ID key is not certified)"),
    }
    println!(
        "wrote {} ({} launch configs)",
        image.id_dir().display(),
        signed.len()
    );
    Ok(ExitCode::SUCCESS)
}
