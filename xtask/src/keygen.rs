//! `cargo xtask keygen --out FILE`: a new P-384 key to sign ID blocks with (an ID key) or to
//! certify ID keys with (an author key). Written as PKCS#8 PEM, mode 0600, never over an existing
//! file; the public key and its digest (what reports carry as ID_KEY_DIGEST or
//! AUTHOR_KEY_DIGEST) are printed for verifiers.

use anyhow::Context;
use snpkit_idblock::{SigningKey, keyfile};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the private key (PKCS#8 PEM, mode 0600); an existing file is never replaced.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = SigningKey::generate();
    keyfile::write_new_signing_key(&args.out, &key)?;
    let public = key.public_key();
    let pem = public.to_spki_pem().context("encoding the public key")?;
    println!(
        "wrote {} (P-384 private key, PKCS#8 PEM, mode 0600)",
        args.out.display()
    );
    println!(
        "key digest (SHA-384 of the SNP public key; ID_KEY_DIGEST or AUTHOR_KEY_DIGEST in reports): {}",
        hex::encode(public.digest())
    );
    print!("public key, for verifiers:\n{pem}");
    Ok(ExitCode::SUCCESS)
}
