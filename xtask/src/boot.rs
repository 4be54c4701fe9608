//! `cargo xtask boot <recipe>`: start a built image under QEMU and bring back a nonce-bound report.
//!
//! Boots exactly what is in `images/<recipe>/` (never rebuilds) with one of the image's launch
//! configurations, so the QEMU argv and the predicted digest come from the same description.
//! On an SNP host the real PSP measures and signs. Everywhere else the launch is EMULATED: QEMU's
//! TCG runs the same AmdSev firmware, kernel, initrd and command line, and we load the SEV hashes
//! page ourselves (QEMU only writes it when SEV is on). The page holds the hashes the image was
//! built with (from its manifest), so the firmware itself refuses a kernel, initrd or command line
//! changed since: the check a malicious host meets on hardware when it hands the guest other files
//! than the measured table names. The emulated PSP then computes the launch digest from what
//! QEMU was given — the firmware file, the page file at the loader's address, the `-smp` count
//! and `-cpu` model — and signs with the test chain.
//!
//! Whether the run passed is `snpkit_qemu::judge`'s decision (a positive signal only: the guest
//! attested and then said that the appliance's entry point exited 0); the emulated PSP's digest
//! is `snpkit_measure::given_launch_digest`'s, its answer `snpkit_attest::emulated::answer`.
//!
//! Sealed volumes (the manifest's `volumes`) are attached read-write, each as the virtio disk with
//! serial `snpkit-vol-<name>`: `images/<recipe>/volumes/<name>.img`, or the file `--volume
//! NAME=PATH` names, created sparse at the volume's size when there is none and never truncated.
//!
//! Secrets (the manifest's `secrets`, issue 11): the guest asks a key broker for them once it has
//! attested, through the host, which relays its requests to `--kbs URL` (`snpkit_qemu::relay`)
//! and sees only the challenge, the evidence and ciphertext sealed to a key inside the guest. An
//! image with secrets is refused before QEMU starts when no broker is given; run.json records
//! the broker's URL, nothing else of the exchange.
//!
//! Only QEMU launch configurations are booted: a config with `vmm = "ec2"` or `"gce"` predicts a
//! launch in that cloud, which QEMU does not perform, so the emulated PSP would sign a digest for a
//! launch that never happened. `guest_features` cannot be chosen on QEMU's command line (KVM
//! sets the VMSAs' SEV_FEATURES on an SNP host, see `snpkit_qemu::launch`); it is part of the
//! prediction, and the emulated PSP signs the config's value.

use crate::{boot_id, boot_service, cli};
use anyhow::{Context, bail};
use snpkit_attest::emulated::{ChipSecret, GuestContext, ReportFields, TestChain};
use snpkit_attest::report::layout::MEASUREMENT;
use snpkit_bundle::{
    CertName, HostData, ImageDir, ImageLayout, LaunchSpec, Manifest, RUN_SCHEMA, RunDir, RunLaunch,
    RunRecord, files, prepare_volume,
};
use snpkit_measure::{
    GivenLaunch, KernelHashes, LaunchDigest, Vmm, cmdline_hash, given_launch_digest, hashes_page,
};
use snpkit_qemu::{
    HttpRelay, Launch, LaunchKind, Passed, PspAnswer, PspRequest, Relay, RunContext, SnpHostCaps,
    VolumeDisk,
};
use snpkit_wire::certs::{CertEntry, GUID_ARK, GUID_ASK, GUID_VCEK, GUID_VLEK};
use snpkit_wire::frame::Nonce;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT_SECS: u64 = 180;
const KERNEL_TIMEOUT_SECS: u64 = 30;
const QEMU: &str = "qemu-system-x86_64";

/// How the image is launched.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LaunchChoice {
    /// Real SEV-SNP: needs an SNP host.
    Snp,
    /// TCG, test keys, never hardware.
    Emulated,
}

#[derive(clap::Args)]
pub struct Args {
    /// Recipe whose image (images/<recipe>/) to boot.
    pub recipe: String,
    /// `snp` (real SEV-SNP: needs an SNP host) or `emulated` (TCG, test keys, never hardware).
    /// Default: snp on an SNP host, else emulated.
    #[arg(long, value_enum)]
    pub launch: Option<LaunchChoice>,
    /// Launch configuration of the recipe [default: the first].
    #[arg(long)]
    pub config: Option<String>,
    /// Seconds the guest has to attest and power off.
    #[arg(long, default_value_t = TIMEOUT_SECS)]
    pub timeout: u64,
    /// Seconds the kernel has to show a sign of life on the console; a measured launch whose
    /// firmware refused the image stays silent.
    #[arg(long, default_value_t = KERNEL_TIMEOUT_SECS)]
    pub kernel_timeout: u64,
    /// The QEMU binary.
    #[arg(long, default_value = QEMU)]
    pub qemu: PathBuf,
    /// HOST_DATA for this launch (64 hex digits), reported as-is [default: the config's
    /// `host_data`, else none].
    #[arg(long, value_name = "HEX")]
    pub host_data: Option<HostData>,
    /// Print run.json on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Attach another file as sealed volume NAME instead of images/<recipe>/volumes/NAME.img
    /// (created sparse at the volume's size if it does not exist; never truncated). Repeatable.
    #[arg(long = "volume", value_name = "NAME=PATH", value_parser = parse_volume_override)]
    pub volumes: Vec<VolumeOverride>,
    /// Keep the appliance up (a service behind its `[network]` forwards) until Ctrl-C (SIGINT or
    /// SIGTERM) or its entry point's end; Ctrl-C stops it cleanly: SIGTERM to the entry point, a
    /// grace period, sync, power-off. The run has no deadline then (`--timeout` is ignored);
    /// a second Ctrl-C leaves at once.
    #[arg(long)]
    pub keep_running: bool,
    /// Print where the boot's seconds went: when each stage's first console line arrived (host
    /// clock from QEMU's start), and when QEMU exited.
    #[arg(long)]
    pub timing: bool,
    /// Key broker (KBS) to relay the guest's secret requests to, e.g. http://127.0.0.1:8080.
    /// Required when the recipe has [[secrets]]; the host sees only the challenge, the evidence
    /// and ciphertext sealed to a key inside the guest.
    #[arg(long, value_name = "URL")]
    pub kbs: Option<String>,
    /// Write every frame relayed between the guest and the broker, both ways, to FILE.
    #[arg(long, value_name = "FILE", requires = "kbs")]
    pub relay_capture: Option<PathBuf>,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

impl Args {
    /// `boot <recipe>` with every flag at its default, on `dirs`.
    pub fn new(recipe: &str, dirs: cli::Dirs) -> Args {
        Args {
            recipe: recipe.to_owned(),
            launch: None,
            config: None,
            timeout: TIMEOUT_SECS,
            kernel_timeout: KERNEL_TIMEOUT_SECS,
            qemu: QEMU.into(),
            host_data: None,
            json: false,
            volumes: Vec::new(),
            keep_running: false,
            timing: false,
            kbs: None,
            relay_capture: None,
            dirs,
        }
    }
}

/// `--volume NAME=PATH`: the file to attach as volume NAME.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeOverride {
    pub name: String,
    pub path: PathBuf,
}

fn parse_volume_override(s: &str) -> Result<VolumeOverride, String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=PATH (e.g. --volume data=/srv/data.img)"))?;
    snpkit_wire::volume::check_name(name).map_err(|e| e.to_string())?;
    if path.is_empty() {
        return Err(format!("--volume {name}= names no file"));
    }
    Ok(VolumeOverride {
        name: name.to_owned(),
        path: path.into(),
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let run = boot(&args)?;
    let r = &run.record;
    if args.json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        if r.launch.is_emulated() {
            println!(
                "EMULATED LAUNCH — NOT HARDWARE-BACKED: the report is signed by snpkit's test chain"
            );
        }
        // Every record `boot` writes has these; they are optional only for records made by hand.
        println!(
            "booted {} ({}, {} vCPU {}) in {:.1} s; the guest attested with provider {}",
            r.recipe,
            r.config,
            r.vcpus.unwrap_or_default(),
            r.vcpu_type.as_deref().unwrap_or_default(),
            r.boot_seconds.unwrap_or_default(),
            r.provider
        );
        println!(
            "  measurement {}",
            r.measurement.as_deref().unwrap_or_default()
        );
        println!("  run {}", run.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub struct Run {
    pub dir: PathBuf,
    pub record: RunRecord,
}

/// Boots the image and writes `images/<recipe>/runs/<id>/`.
pub fn boot(args: &Args) -> anyhow::Result<Run> {
    let image = ImageDir::named(&args.dirs.images()?, &args.recipe)?;
    let (manifest, manifest_sha256) = image.read_manifest_hashed()?;
    let recipe_dir = args.dirs.recipes()?.join(&args.recipe);
    let sources = [
        recipe_dir.join(snpkit_recipe::RECIPE_FILE),
        recipe_dir.join(snpkit_recipe::LOCK_FILE),
    ];
    if let Some(newer) = image.built_before(&sources)? {
        bail!(
            "{} changed after {} was built: the image is stale, and its runs would vouch for a \
             recipe it was not made from; run `cargo xtask build {}` first",
            newer.display(),
            image.path().display(),
            args.recipe
        );
    }
    let config = pick_config(&manifest, args.config.as_deref())?;
    let measure_config = snpkit_measure::launch_config_from(config)?;
    if measure_config.vmm != Vmm::Qemu {
        bail!(
            "launch configuration {:?} is a prediction for vmm = \"{}\", and `cargo xtask boot` launches QEMU only: \
             booting it here would have the PSP sign a digest for a launch that never happened. Boot the image in \
             that cloud and check its report with `cargo xtask verify --report …`; here, pick a configuration with \
             vmm = \"qemu\" (--config; the image has: {})",
            config.name,
            measure_config.vmm,
            manifest.launch_names()
        );
    }
    let snp_host = match args.launch {
        Some(LaunchChoice::Snp) => {
            // QEMU first: its advice (what to install) holds whatever the host turns out to be.
            snpkit_qemu::check_snp_qemu(&args.qemu)?;
            Some(snpkit_qemu::detect_snp_host()?)
        }
        Some(LaunchChoice::Emulated) => None,
        None => snpkit_qemu::detect_snp_host().ok(),
    };

    let relay = boot_service::relay(
        &manifest,
        &args.recipe,
        args.kbs.as_deref(),
        args.relay_capture.as_deref(),
    )?;

    // Read before the run starts: a half-signed or malformed identity is refused up front.
    let given = boot_id::given(&image, config, args.host_data)?;
    if let Some(line) = given.describe() {
        eprintln!("{line}");
    }

    let volumes = volumes(&image, &manifest, &args.volumes)?;
    let run = image.start_run()?;
    let mut app_log = None;
    let result = boot_in(
        args,
        &image,
        &manifest,
        Chosen {
            config,
            measure_config: &measure_config,
            given: &given,
            snp_host,
            volumes,
            relay,
        },
        run.dir(),
        &mut app_log,
    );
    // The appliance's last lines, made printable (the bytes are the guest's): after the run's
    // summary when it passed, inside the error when it did not (so the error comes first).
    let app_log_text = app_log
        .as_ref()
        .map(boot_service::app_log_section)
        .unwrap_or_default();
    match result {
        Ok(mut record) => {
            record.manifest_sha256 = Some(manifest_sha256.to_hex());
            let dir = run.finish(&record)?.path().to_owned();
            eprint!("{app_log_text}");
            Ok(Run { dir, record })
        }
        Err(e) => {
            let kept = run.fail();
            Err(anyhow::anyhow!(
                "{e:#}\n{app_log_text}(the run's console log is kept in {})",
                kept.console_log().display()
            ))
        }
    }
}

fn pick_config<'a>(manifest: &'a Manifest, name: Option<&str>) -> anyhow::Result<&'a LaunchSpec> {
    manifest.launch_spec(name).with_context(|| match name {
        None => "the image has no launch configurations".to_string(),
        Some(n) => format!(
            "the image has no launch configuration {n:?}; it has: {}",
            manifest.launch_names()
        ),
    })
}

/// The hashes the image was built with, from its manifest (not from the files, which the host
/// may have changed since).
fn built_hashes(manifest: &Manifest) -> anyhow::Result<KernelHashes> {
    let sum = |name: &str| -> anyhow::Result<[u8; 32]> {
        Ok(manifest
            .artifact(name)
            .with_context(|| format!("the manifest lists no {name}"))?
            .sha256
            .0)
    };
    Ok(KernelHashes {
        kernel: sum(files::KERNEL)?,
        initrd: sum(files::INITRD)?,
        cmdline: cmdline_hash(manifest.cmdline.as_bytes())?,
    })
}

/// Each of the image's volumes as a disk to attach: its file in the image folder, or the one
/// `--volume` names; created sparse at its size when there is none, never truncated.
fn volumes(
    image: &ImageDir,
    manifest: &Manifest,
    overrides: &[VolumeOverride],
) -> anyhow::Result<Vec<VolumeDisk>> {
    for (i, o) in overrides.iter().enumerate() {
        if manifest.volume(&o.name).is_none() {
            let names: Vec<&str> = manifest.volumes.iter().map(|v| v.name.as_str()).collect();
            bail!(
                "--volume {}=…: the image has no volume {:?} ({})",
                o.name,
                o.name,
                if names.is_empty() {
                    "its recipe has no [[volumes]]".to_owned()
                } else {
                    format!("it has: {}", names.join(", "))
                }
            );
        }
        if overrides[..i].iter().any(|p| p.name == o.name) {
            bail!("--volume {}= is given twice", o.name);
        }
    }
    manifest
        .volumes
        .iter()
        .map(|v| {
            let path = match overrides.iter().find(|o| o.name == v.name) {
                Some(o) => o.path.clone(),
                None => image.volume(&v.name)?,
            };
            let bytes = v
                .size_mib
                .checked_mul(1 << 20)
                .with_context(|| format!("volume {}: {} MiB", v.name, v.size_mib))?;
            let file = prepare_volume(&path, bytes)
                .with_context(|| format!("preparing volume {}", v.name))?;
            if file.created {
                eprintln!(
                    "volume {}: created {} ({} MiB, sparse); the guest formats it on this boot",
                    v.name,
                    path.display(),
                    v.size_mib
                );
            }
            Ok(VolumeDisk {
                name: v.name.clone(),
                path,
            })
        })
        .collect()
}

/// What `boot` chose before the run started.
struct Chosen<'a> {
    config: &'a LaunchSpec,
    measure_config: &'a snpkit_measure::LaunchConfig,
    given: &'a boot_id::Given,
    snp_host: Option<SnpHostCaps>,
    volumes: Vec<VolumeDisk>,
    relay: Option<HttpRelay>,
}

fn boot_in(
    args: &Args,
    image: &ImageDir,
    manifest: &Manifest,
    chosen: Chosen<'_>,
    work: &RunDir,
    app_log_end: &mut Option<snpkit_qemu::AppLogEnd>,
) -> anyhow::Result<RunRecord> {
    let Chosen {
        config,
        measure_config,
        given,
        snp_host,
        volumes,
        relay,
    } = chosen;
    let firmware_path = image.firmware();
    let cmdline = String::from_utf8(image.read_cmdline()?)
        .with_context(|| format!("{} is not UTF-8", image.cmdline().display()))?;
    let kind = match snp_host {
        None => {
            let ovmf = crate::measure::read_ovmf(&firmware_path)?;
            let page = hashes_page(&ovmf, &built_hashes(manifest)?)?;
            let page_path = work.hashes_page();
            page.write_to(&page_path)?;
            LaunchKind::Emulated(snpkit_qemu::EmulatedLaunch {
                firmware: firmware_path.clone(),
                hashes_page: page_path,
                hashes_page_gpa: page.gpa(),
            })
        }
        Some(host) => {
            if given.signed.is_some() {
                let predicted = image
                    .read_expected()?
                    .config(Some(&config.name))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", image.expected().display()))?
                    .measurement
                    .clone();
                let mut ld = [0u8; 48];
                hex::decode_to_slice(&predicted, &mut ld).with_context(|| {
                    format!(
                        "{}: the prediction of {:?}",
                        image.expected().display(),
                        config.name
                    )
                })?;
                given.check_before_snp(&ld, config.policy)?;
            }
            LaunchKind::Snp(snpkit_qemu::SnpLaunch {
                firmware: firmware_path.clone(),
                policy: config.policy,
                host,
                host_data: given.host_data.map(|h| h.0),
                id_block: given.snp_id_block()?,
            })
        }
    };
    let emulated = snp_host.is_none();
    let launch = Launch {
        qemu: args.qemu.clone(),
        kernel: image.kernel(),
        initrd: image.initrd(),
        cmdline,
        vcpus: config.vcpus,
        cpu_model: config.vcpu_type.clone(),
        memory_mib: config.memory_mib,
        console_log: work.console_log(),
        disks: disks(image, manifest),
        volumes,
        network: manifest.network.as_ref().map(boot_service::nic),
        kind,
    };

    // The emulated PSP measures what QEMU was given: the firmware and page files, and the
    // vCPUs of the launch description the argv is made from; then LAUNCH_FINISH checks the ID
    // block against that digest, before the guest starts.
    let psp = match &launch.kind {
        LaunchKind::Emulated(emu) => {
            let chain = TestChain::cached()?;
            let secret = ChipSecret::cached()?;
            let measurement = emulated_measurement(&launch, emu, measure_config)?;
            let mut fields = ReportFields::new(*measurement.as_bytes(), [0; 64], config.policy);
            given.emulated_finish(&mut fields)?;
            Some((chain, secret, fields))
        }
        _ => None,
    };

    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness for the nonce: {e}"))?;
    let nonce = Nonce(nonce);
    let started = std::time::Instant::now();
    // Kept running, the appliance has no deadline: ten years stands for none.
    let deadline = if args.keep_running {
        Duration::from_secs(10 * 365 * 24 * 3600)
    } else {
        Duration::from_secs(args.timeout)
    };
    let mut session = snpkit_qemu::Session {
        app_log: Some(
            snpkit_qemu::AppLogSink::create(&work.appliance_log())
                .with_context(|| format!("creating {}", work.appliance_log().display()))?,
        ),
        ..Default::default()
    };
    if args.keep_running {
        let (up_tx, up_rx) = std::sync::mpsc::channel();
        session.attested = Some(up_tx);
        session.stop = Some(crate::stop::on_ctrl_c()?);
        let forwards = launch.network.as_ref().map(|n| n.forwards.clone());
        std::thread::spawn(move || {
            if up_rx.recv().is_ok() {
                boot_service::announce_up(forwards.as_deref());
            }
        });
    }
    let mut vm = snpkit_qemu::spawn(&launch, deadline)?;
    vm.kernel_must_start_within(Duration::from_secs(args.kernel_timeout.min(args.timeout)));
    let server = match &psp {
        Some((chain, secret, fields)) => {
            let channel = vm.emulated_psp_channel();
            let (chain, secret) = (*chain, *secret);
            let fields = fields.clone();
            // The key requests see the launch the reports describe.
            let guest = GuestContext::of_launch(&fields, chain.tcb.raw);
            Some(channel.map(|c| {
                snpkit_qemu::serve_emulated_psp(c, move |req| match req {
                    PspRequest::Report(req) => Ok(PspAnswer::Report(
                        snpkit_attest::emulated::answer(chain, &fields, &req),
                    )),
                    PspRequest::Key(raw) => Ok(PspAnswer::Key(
                        snpkit_attest::emulated::key::answer(secret, &guest, &raw.0),
                    )),
                })
            }))
        }
        None => None,
    };
    let broker = relay.as_ref().map(|r| r.base().to_owned());
    session.relay = relay.map(|r| Box::new(r) as Box<dyn Relay>);
    let mut ended = snpkit_qemu::converse_in(vm, &nonce, session);
    let app_log = ended.app_log.take();
    app_log_end.clone_from(&app_log);
    let boot_seconds = started.elapsed().as_secs_f64();
    if args.timing {
        boot_service::show_timing(&ended.console.signs.marks, boot_seconds);
    }
    if let Some(Ok(handle)) = server {
        let _ = handle.join();
    }

    let context = RunContext {
        image: image.path(),
        recipe: &manifest.recipe,
        timeout_secs: args.timeout,
    };
    let Passed {
        attested,
        end,
        stopped,
    } = snpkit_qemu::judge(ended, &context)?;
    let evidence = &attested.evidence;
    work.write_report(&evidence.report[..])?;
    work.write_pubkey(&evidence.public_key)?;
    work.write_nonce(&nonce.0)?;
    let (host_data, signed) = given.record();
    let run_launch = if emulated {
        RunLaunch::Emulated
    } else {
        RunLaunch::Snp
    };
    write_certs(work, run_launch, &evidence.certs)?;
    Ok(RunRecord {
        schema: RUN_SCHEMA,
        recipe: manifest.recipe.clone(),
        config: config.name.clone(),
        launch: run_launch,
        emulated: Some(emulated),
        nonce: hex::encode(nonce.0),
        pubkey: hex::encode(evidence.public_key),
        entry: Some(end.to_string()),
        provider: format!("{:?}", attested.hello.provider),
        measurement: Some(hex::encode(&evidence.report[MEASUREMENT])),
        // Set by the caller, from the manifest bytes it read.
        manifest_sha256: None,
        vcpus: Some(launch.vcpus),
        vcpu_type: Some(launch.cpu_model.clone()),
        boot_seconds: Some(boot_seconds),
        host_data,
        signed,
        stopped: stopped.then_some(true),
        appliance_log: app_log.map(|l| snpkit_bundle::RunAppLog {
            bytes: l.bytes,
            left_out: l.left_out,
        }),
        broker,
    })
}

/// A dm-verity image's root filesystem and hash tree, as `/dev/vda` and `/dev/vdb`.
fn disks(image: &ImageDir, manifest: &Manifest) -> Vec<PathBuf> {
    match manifest.layout {
        ImageLayout::Verity => vec![image.rootfs(), image.verity()],
        ImageLayout::Initramfs => Vec::new(),
    }
}

/// The launch digest the emulated PSP reports: from the firmware and page files QEMU was given,
/// the launch description's vCPU count and `-cpu` model, and the config's guest features.
fn emulated_measurement(
    launch: &Launch,
    emu: &snpkit_qemu::EmulatedLaunch,
    config: &snpkit_measure::LaunchConfig,
) -> anyhow::Result<LaunchDigest> {
    Ok(given_launch_digest(GivenLaunch {
        firmware: snpkit_fsguard::read(
            &emu.firmware,
            "the firmware",
            snpkit_bundle::Limit::FIRMWARE.max,
        )?,
        hashes_page: snpkit_fsguard::read(&emu.hashes_page, "the hashes page", 4096)?,
        hashes_page_gpa: emu.hashes_page_gpa,
        vcpus: launch.vcpus,
        cpu_model: &launch.cpu_model,
        guest_features: config.guest_features,
    })?)
}

/// Writes the provider's certificates: a real PSP's as snpguest names them (certs/ark.pem, …), the
/// emulated PSP's under names no AMD tool reads (emulated-certs/emulated-ark.pem, …).
fn write_certs(dir: &RunDir, launch: RunLaunch, certs: &[CertEntry]) -> anyhow::Result<()> {
    for c in certs {
        let name = match c.guid {
            g if g == GUID_ARK => CertName::Ark,
            g if g == GUID_ASK => CertName::Ask,
            g if g == GUID_VCEK => CertName::Vcek,
            g if g == GUID_VLEK => CertName::Vlek,
            _ => continue,
        };
        let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &c.data)
            .map_err(|e| anyhow::anyhow!("encoding the {} certificate as PEM: {e}", name.stem()))?;
        dir.write_cert(launch, name, pem.as_bytes())?;
    }
    Ok(())
}
