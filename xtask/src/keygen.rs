//! `cargo xtask keygen --out FILE`: a new P-384 key to sign ID blocks with (an ID key) or to
//! certify ID keys with (an author key). Written as PKCS#8 PEM, mode 0600, never over an existing
//! file; the public key is written beside it (`FILE` with the extension `pub.pem`: `id.pem` →
//! `id.pub.pem`, mode 0644, never over a file either) and printed with its digest (what reports
//! carry as ID_KEY_DIGEST or AUTHOR_KEY_DIGEST), for verifiers (`verify --author-key`).

use anyhow::{Context, bail};
use snpkit_idblock::{SigningKey, keyfile};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the private key (PKCS#8 PEM, mode 0600); an existing file is never replaced.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let public_path = args.out.with_extension("pub.pem");
    if public_path == args.out {
        bail!(
            "{} would be both the private and the public key file: choose a name ending in something other than .pub.pem",
            args.out.display()
        );
    }
    // Checked before the private key is written, so a refusal leaves nothing behind.
    if std::fs::symlink_metadata(&public_path).is_ok() {
        bail!(
            "{} (where the public key goes) already exists; choose another --out (a file is never overwritten)",
            public_path.display()
        );
    }
    let key = SigningKey::generate();
    let public = key.public_key();
    let pem = public.to_spki_pem().context("encoding the public key")?;
    keyfile::write_new_signing_key(&args.out, &key)?;
    println!(
        "wrote {} (P-384 private key, PKCS#8 PEM, mode 0600)",
        args.out.display()
    );
    write_new_public(&public_path, &pem)?;
    println!(
        "wrote {} (its public key, for verifiers)",
        public_path.display()
    );
    println!(
        "key digest (SHA-384 of the SNP public key; ID_KEY_DIGEST or AUTHOR_KEY_DIGEST in reports): {}",
        hex::encode(public.digest())
    );
    print!("public key, for verifiers:\n{pem}");
    Ok(ExitCode::SUCCESS)
}

/// A new file holding `pem`, mode 0644 (public), created only if the name is free.
fn write_new_public(path: &std::path::Path, pem: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(pem.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
