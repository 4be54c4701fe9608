//! `cargo xtask kbs serve …`: the key broker (snpkit-broker) on a port, for guests that speak
//! Trustee's KBS protocol. Thin: flags become a `snpkit_broker::Config`.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve /kbs/v0/auth, /kbs/v0/attest and /kbs/v0/resource/<repo>/<type>/<tag>, releasing
    /// DIR/<repo>/<type>/<tag> only to guests whose evidence passes against the reference.
    Serve(Box<ServeArgs>),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: SocketAddr,
    /// The resources folder: DIR/<repo>/<type>/<tag>, one file per secret.
    #[arg(long, value_name = "DIR")]
    resources: PathBuf,
    /// The image's reference values: images/<recipe>/expected.json.
    #[arg(long, value_name = "FILE")]
    reference: PathBuf,
    /// Verification policy (TOML, as for `cargo xtask verify --policy`).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Release rules (TOML, see crates/broker/examples/rules.toml): which configs, measurements or
    /// ID-block signers (author or ID key, family, image, minimum SVN: verify's signer checks) may
    /// have which resources. Without it, every guest that passes verification may have every
    /// resource.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Accept evidence signed by this machine's emulated PSP test chain (testing only; every
    /// decision on such evidence is marked EMULATED).
    #[arg(long)]
    allow_emulated: bool,
    /// TLS certificate chain (PEM); with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); with --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Append audit lines (JSON) to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Use only the KDS cache for VCEKs and CRLs the guests do not send.
    #[arg(long)]
    offline: bool,
    /// Seconds a challenge's nonce may be answered.
    #[arg(long, default_value_t = 60)]
    nonce_ttl: u64,
    /// Seconds an attested session may fetch resources.
    #[arg(long, default_value_t = 300)]
    session_ttl: u64,
    /// Open sessions at most.
    #[arg(long, default_value_t = 10_000)]
    max_sessions: usize,
    /// Largest resource file, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_resource: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve(a) => serve(*a),
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let limits = snpkit_broker::Limits {
        nonce_ttl: Duration::from_secs(a.nonce_ttl),
        session_ttl: Duration::from_secs(a.session_ttl),
        max_sessions: a.max_sessions,
        max_resource: a.max_resource,
        ..snpkit_broker::Limits::default()
    };
    let broker = snpkit_broker::Broker::new(snpkit_broker::Config {
        resources: a.resources,
        reference: a.reference,
        policy: a.policy,
        rules: a.rules,
        allow_emulated: a.allow_emulated,
        test_chain_dir: None,
        endorsers: if a.offline {
            snpkit_broker::Endorsers::CacheOnly
        } else {
            snpkit_broker::Endorsers::Kds
        },
        limits,
        audit: match a.audit {
            Some(p) => snpkit_broker::AuditTo::File(p),
            None => snpkit_broker::AuditTo::Stderr,
        },
        tls: a
            .tls_cert
            .zip(a.tls_key)
            .map(|(cert, key)| snpkit_broker::TlsFiles { cert, key }),
    })
    .context("starting the broker")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let server = broker.serve(a.listen).await.context("listening")?;
        let r = broker.reference();
        let scheme = if broker.uses_tls() { "https" } else { "http" };
        eprintln!("snpkit broker on {scheme}://{}", server.local_addr);
        eprintln!(
            "  reference: {} (recipe {}, configs: {})",
            r.source.display(),
            r.recipe,
            r.names()
        );
        eprintln!("  resources: {}", broker.resources().display());
        match broker.rules() {
            Some(rules) => eprintln!(
                "  rules: {} ({} rules)",
                rules.source().display(),
                rules.len()
            ),
            None => eprintln!("  rules: none: every verified guest may have every resource"),
        }
        if broker.allows_emulated() {
            let bar = "!".repeat(snpkit_attest::EMULATED_BANNER.chars().count() + 8);
            eprintln!("{bar}\n!!! {} !!!\n{bar}", snpkit_attest::EMULATED_BANNER);
            eprintln!(
                "  --allow-emulated: evidence signed by this machine's test chain is accepted"
            );
        }
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        eprintln!("stopping");
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
