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
//! A run passes only on a positive signal: the guest attested *and* then said, in its `Finished`
//! message on the attest channel, that the appliance's entry point exited 0. QEMU exiting 0 is
//! not one: with `-no-reboot` a guest that reboots (dm-verity's `restart_on_corruption`) or
//! powers off early ends QEMU the same way.
//!
//! Only QEMU launch configurations are booted: a config with `vmm = "ec2"` or `"gce"` predicts a
//! launch in that cloud, which QEMU does not perform, so the emulated PSP would sign a digest for a
//! launch that never happened. `guest_features` cannot be chosen on QEMU's command line (KVM
//! sets the VMSAs' SEV_FEATURES on an SNP host, see `snpkit_qemu::launch`); it is part of the
//! prediction, and the emulated PSP signs the config's value.

use crate::cli;
use anyhow::{Context, bail};
use snpkit_attest::emulated::{EmulatedLaunch as PspLaunch, TestChain, emulated_report};
use snpkit_image::manifest::{MANIFEST_FILE, Manifest, files};
use snpkit_measure::{
    Firmware, HashesPage, KernelHashes, LaunchDigest, VcpuType, Vmm, cmdline_hash, hashes_page,
};
use snpkit_qemu::{Attested, ChannelError, Launch, LaunchKind, Outcome, SnpHostCaps};
use snpkit_recipe::LaunchConfig;
use snpkit_wire::certs::{CertEntry, GUID_ARK, GUID_ASK, GUID_VCEK, GUID_VLEK};
use snpkit_wire::frame::{Finished, Nonce, ReportRequest, ReportResponse};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Recipe whose image (images/<recipe>/) to boot.
    pub recipe: String,
    /// `snp` (real SEV-SNP: needs an SNP host) or `emulated` (TCG, test keys, never hardware).
    /// Default: snp on an SNP host, else emulated.
    #[arg(long, value_parser = ["snp", "emulated"])]
    pub launch: Option<String>,
    /// Launch configuration of the recipe [default: the first].
    #[arg(long)]
    pub config: Option<String>,
    /// Seconds the guest has to attest and power off.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// Seconds the kernel has to show a sign of life on the console; a measured launch whose
    /// firmware refused the image stays silent.
    #[arg(long, default_value_t = 30)]
    pub kernel_timeout: u64,
    /// The QEMU binary.
    #[arg(long, default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
    /// Print run.json on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dirs: cli::Dirs,
}

/// `run.json`: what a run was, for `cargo xtask verify <recipe> <run>` and for people.
#[derive(serde::Serialize)]
pub struct RunRecord {
    pub schema: u32,
    pub recipe: String,
    pub config: String,
    /// `emulated` or `snp`.
    pub launch: String,
    pub emulated: bool,
    pub nonce: String,
    pub pubkey: String,
    /// How the appliance's entry point ended, as the guest reported it.
    pub entry: String,
    /// What the guest said its provider was: a log line, never evidence.
    pub provider: String,
    /// MEASUREMENT in the report (hex).
    pub measurement: String,
    pub manifest_sha256: String,
    pub vcpus: u32,
    pub vcpu_type: String,
    pub boot_seconds: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let run = boot(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run.record)?);
    } else {
        if run.record.emulated {
            println!(
                "EMULATED LAUNCH — NOT HARDWARE-BACKED: the report is signed by snpkit's test chain"
            );
        }
        println!(
            "booted {} ({}, {} vCPU {}) in {:.1} s; the guest attested with provider {}",
            run.record.recipe,
            run.record.config,
            run.record.vcpus,
            run.record.vcpu_type,
            run.record.boot_seconds,
            run.record.provider
        );
        println!("  measurement {}", run.record.measurement);
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
    let root = cli::workspace_root();
    let image = args.dirs.images(&root).join(&args.recipe);
    let manifest_path = image.join(MANIFEST_FILE);
    let manifest_text = snpkit_fsguard::read_string(
        &manifest_path,
        "the image's manifest",
        snpkit_measure::limits::MAX_JSON,
    )
    .with_context(|| {
        format!(
            "no image at {}: run `cargo xtask build {}` first",
            image.display(),
            args.recipe
        )
    })?;
    let manifest = Manifest::from_json(&manifest_text)
        .with_context(|| format!("{} is not a snpkit manifest", manifest_path.display()))?;
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
            config_names(&manifest)
        );
    }
    let snp_host = match args.launch.as_deref() {
        Some("snp") => {
            // QEMU first: its advice (what to install) holds whatever the host turns out to be.
            snpkit_qemu::check_snp_qemu(&args.qemu)?;
            Some(snpkit_qemu::detect_snp_host()?)
        }
        Some(_) => None,
        None => snpkit_qemu::detect_snp_host().ok(),
    };

    let runs = image.join("runs");
    std::fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    let id = run_id();
    let work = runs.join(format!("{id}.partial"));
    std::fs::create_dir_all(&work)?;
    let result = boot_in(
        args,
        &image,
        &manifest,
        config,
        &measure_config,
        snp_host,
        &work,
    );
    match result {
        Ok(mut record) => {
            record.manifest_sha256 = hex::encode(sha2::Digest::finalize(
                <sha2::Sha256 as sha2::Digest>::new_with_prefix(&manifest_text),
            ));
            std::fs::write(
                work.join("run.json"),
                serde_json::to_string_pretty(&record)? + "\n",
            )?;
            let dir = runs.join(&id);
            std::fs::rename(&work, &dir)?;
            Ok(Run { dir, record })
        }
        Err(e) => {
            let kept = runs.join(format!("{id}.failed"));
            let _ = std::fs::rename(&work, &kept);
            Err(anyhow::anyhow!(
                "{e:#}\n(the run's console log is kept in {})",
                kept.join("console.log").display()
            ))
        }
    }
}

fn config_names(manifest: &Manifest) -> String {
    manifest
        .launch
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn pick_config<'a>(manifest: &'a Manifest, name: Option<&str>) -> anyhow::Result<&'a LaunchConfig> {
    match name {
        None => manifest
            .launch
            .first()
            .with_context(|| "the image has no launch configurations".to_string()),
        Some(n) => manifest
            .launch
            .iter()
            .find(|c| c.name == n)
            .with_context(|| {
                format!(
                    "the image has no launch configuration {n:?}; it has: {}",
                    config_names(manifest)
                )
            }),
    }
}

/// Sortable, unique enough for one machine: UTC time plus the process id.
fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{:06}", now.as_secs(), std::process::id() % 1_000_000)
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

/// What the attest channel brought: the evidence, then the entry point's ending.
type Conversation = Result<(Attested, Result<Finished, ChannelError>), ChannelError>;

#[allow(clippy::too_many_arguments)]
fn boot_in(
    args: &Args,
    image: &Path,
    manifest: &Manifest,
    config: &LaunchConfig,
    measure_config: &snpkit_measure::LaunchConfig,
    snp_host: Option<SnpHostCaps>,
    work: &Path,
) -> anyhow::Result<RunRecord> {
    let firmware_path = image.join(files::FIRMWARE);
    let cmdline = snpkit_fsguard::read_string(
        &image.join(files::CMDLINE),
        "the image's cmdline",
        snpkit_measure::limits::MAX_CMDLINE_FILE,
    )?;
    let kind = match snp_host {
        None => {
            let ovmf = crate::measure::read_ovmf(&firmware_path)?;
            let page = hashes_page(&ovmf, &built_hashes(manifest)?)?;
            let page_path = work.join("hashes-page.bin");
            page.write_to(&page_path)?;
            LaunchKind::Emulated(snpkit_qemu::EmulatedLaunch {
                firmware: firmware_path.clone(),
                hashes_page: page_path,
                hashes_page_gpa: page.gpa(),
            })
        }
        Some(host) => LaunchKind::Snp(snpkit_qemu::SnpLaunch {
            firmware: firmware_path.clone(),
            policy: config.policy,
            host,
            host_data: None,
            id_block: None,
        }),
    };
    let emulated = snp_host.is_none();
    let launch = Launch {
        qemu: args.qemu.clone(),
        kernel: image.join(files::KERNEL),
        initrd: image.join(files::INITRD),
        cmdline,
        vcpus: config.vcpus,
        cpu_model: config.vcpu_type.clone(),
        memory_mib: config.memory_mib,
        console_log: work.join("console.log"),
        disks: disks(image, manifest),
        kind,
    };

    // The emulated PSP measures what QEMU was given: the firmware and page files, and the
    // vCPUs of the launch description the argv is made from.
    let psp = match &launch.kind {
        LaunchKind::Emulated(emu) => {
            let chain = TestChain::cached()?;
            let measurement = emulated_measurement(&launch, emu, measure_config)?;
            Some((chain, measurement))
        }
        _ => None,
    };

    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness for the nonce: {e}"))?;
    let nonce = Nonce(nonce);
    let started = std::time::Instant::now();
    let mut vm = snpkit_qemu::spawn(&launch, Duration::from_secs(args.timeout))?;
    vm.kernel_must_start_within(Duration::from_secs(args.kernel_timeout.min(args.timeout)));
    let server = match &psp {
        Some((chain, measurement)) => {
            let channel = vm.emulated_psp_channel();
            let (chain, measurement, policy) = (*chain, *measurement, config.policy);
            Some(channel.map(|c| {
                snpkit_qemu::serve_emulated_psp(c, move |req: ReportRequest| {
                    let mut signed =
                        PspLaunch::new(*measurement.as_bytes(), req.report_data, policy);
                    signed.vmpl = req.vmpl;
                    Ok(ReportResponse {
                        report: Box::new(emulated_report(chain, &signed)),
                        certs: test_chain_certs(chain),
                    })
                })
            }))
        }
        None => None,
    };
    // The conversation runs beside the supervisor, which must stay on this thread (QEMU's death
    // signal is tied to the spawning thread) and may end the run early; QEMU's exit closes the
    // channel and so ends the conversation. Dropping the channel after the guest's last word is
    // what lets the guest power off.
    let conversation = vm.attest_channel().map(|mut ch| {
        std::thread::spawn(move || -> Conversation {
            let attested = snpkit_qemu::attest(&mut ch, &nonce)?;
            let end = snpkit_qemu::finish(&mut ch);
            Ok((attested, end))
        })
    });
    let outcome = vm.wait();
    let conversation: Conversation = match conversation {
        Ok(handle) => handle.join().unwrap_or(Err(ChannelError::Closed {
            waiting_for: "the guest's evidence",
        })),
        Err(e) => Err(e),
    };
    let boot_seconds = started.elapsed().as_secs_f64();
    if let Some(Ok(handle)) = server {
        let _ = handle.join();
    }

    let (attested, end) = judge(args, image, manifest, work, outcome, conversation)?;
    let evidence = &attested.evidence;
    std::fs::write(work.join("report.bin"), &evidence.report[..])?;
    std::fs::write(work.join("pubkey.bin"), evidence.public_key)?;
    std::fs::write(
        work.join("pubkey"),
        format!("{}\n", hex::encode(evidence.public_key)),
    )?;
    std::fs::write(work.join("nonce"), format!("{}\n", hex::encode(nonce.0)))?;
    write_certs(&work.join("certs"), &evidence.certs)?;
    Ok(RunRecord {
        schema: 1,
        recipe: manifest.recipe.clone(),
        config: config.name.clone(),
        launch: if emulated { "emulated" } else { "snp" }.into(),
        emulated,
        nonce: hex::encode(nonce.0),
        pubkey: hex::encode(evidence.public_key),
        entry: end.to_string(),
        provider: format!("{:?}", attested.hello.provider),
        measurement: hex::encode(&evidence.report[0x90..0xC0]),
        manifest_sha256: String::new(),
        vcpus: launch.vcpus,
        vcpu_type: launch.cpu_model.clone(),
        boot_seconds,
    })
}

/// Whether the run passed: only when the guest attested and then reported that its entry point
/// exited 0, and QEMU ended cleanly. Everything else is a failure with the most specific reason
/// at hand — the guest's own words first, since a hardened image has no console to read.
fn judge(
    args: &Args,
    image: &Path,
    manifest: &Manifest,
    work: &Path,
    outcome: Outcome,
    conversation: Conversation,
) -> anyhow::Result<(Attested, Finished)> {
    let log = work.join("console.log");
    let tail_of_log = || snpkit_qemu::console_tail(&log, snpkit_qemu::supervise::TAIL_LINES);
    match (&outcome, conversation) {
        (Outcome::KernelNeverStarted { console_tail }, _) => bail!(
            "the firmware refused the image: the kernel never started. In a measured launch this means the kernel, initrd \
             or command line QEMU was given does not match the SHA-256 in the SEV hashes table, i.e. {} was changed \
             after it was built (or the firmware is not an AmdSev OVMF). Rebuild with `cargo xtask build {}`.\n{}",
            image.display(),
            manifest.recipe,
            console_section(console_tail)
        ),
        (_, Err(ChannelError::Guest { message })) => bail!(
            "the guest refused to run the appliance: {message}\n{}",
            console_section(&tail_of_log())
        ),
        (_, Ok((_, Err(ChannelError::Guest { message })))) => bail!(
            "the guest attested, then stopped: {message}\n{}",
            console_section(&tail_of_log())
        ),
        (Outcome::TimedOut { console_tail }, _) => bail!(
            "the guest did not finish within {} s and was stopped.\n{}",
            args.timeout,
            console_section(console_tail)
        ),
        (
            Outcome::Crashed {
                status,
                console_tail,
                qemu_stderr,
            },
            _,
        ) => bail!(
            "QEMU failed ({status}): {qemu_stderr}\n{}",
            console_section(console_tail)
        ),
        (Outcome::GuestPanicked { console_tail }, Err(e)) => bail!(
            "the guest kernel panicked before it attested ({e}).{}\n{}",
            kernel_reason(&log),
            console_section(console_tail)
        ),
        (Outcome::Exited, Err(e)) => bail!(
            "the guest did not attest: {e}.{}\n{}",
            kernel_reason(&log),
            console_section(&tail_of_log())
        ),
        (_, Ok((_, Err(e)))) => bail!(
            "the guest attested, but the run ended without its report that the appliance's entry point finished \
             ({e}): the guest rebooted, panicked or powered off early (dm-verity's restart_on_corruption reboots on a \
             corrupted block). That is not a successful run.{}\n{}",
            kernel_reason(&log),
            console_section(&tail_of_log())
        ),
        (_, Ok((_, Ok(end)))) if !end.is_success() => bail!(
            "the appliance failed: its entry point {end}.\n{}",
            console_section(&tail_of_log())
        ),
        (Outcome::GuestPanicked { console_tail }, Ok(_)) => bail!(
            "the guest kernel panicked after the entry point ended.\n{}",
            console_section(console_tail)
        ),
        (Outcome::Exited, Ok((attested, Ok(end)))) => Ok((attested, end)),
    }
}

/// A line in which the kernel named why it stopped (dm-verity's corruption report, a panic),
/// for runs whose guest could not say it over the channel.
fn kernel_reason(log: &Path) -> String {
    let console = std::fs::read(log).unwrap_or_default();
    let console = String::from_utf8_lossy(&console);
    let line = console.lines().find(|l| {
        (l.contains("verity") && l.contains("is corrupted"))
            || l.contains("Kernel panic - not syncing")
    });
    match line {
        Some(line) => format!(" The kernel said: {}", line.trim()),
        None => String::new(),
    }
}

/// A dm-verity image's root filesystem and hash tree, as `/dev/vda` and `/dev/vdb`.
fn disks(image: &Path, manifest: &Manifest) -> Vec<PathBuf> {
    if manifest.layout == "verity" {
        vec![image.join(files::ROOTFS), image.join(files::VERITY)]
    } else {
        Vec::new()
    }
}

/// The console's last lines for an error, or why there are none.
fn console_section(tail: &str) -> String {
    if tail.trim().is_empty() {
        "the console stayed empty: the RELEASE firmware stops without a word when a hash does not match".into()
    } else {
        format!("last console lines:\n{tail}")
    }
}

/// The launch digest the emulated PSP reports, from what QEMU was given: the firmware file, the
/// page file (which must sit at the loader's address), and the launch description's vCPU count
/// and `-cpu` model. Only `guest_features` comes from the config: no QEMU option sets it.
fn emulated_measurement(
    launch: &Launch,
    emu: &snpkit_qemu::EmulatedLaunch,
    config: &snpkit_measure::LaunchConfig,
) -> anyhow::Result<LaunchDigest> {
    let ovmf = crate::measure::read_ovmf(&emu.firmware)?;
    let page = HashesPage::from_bytes(
        &ovmf,
        snpkit_fsguard::read(&emu.hashes_page, "the hashes page", 4096)?,
    )?;
    if page.gpa() != emu.hashes_page_gpa {
        bail!(
            "the hashes page is loaded at {:#x}, but {} looks for it at {:#x}: the firmware would not see it",
            emu.hashes_page_gpa,
            emu.firmware.display(),
            page.gpa()
        );
    }
    let given = snpkit_measure::LaunchConfig {
        vcpus: snpkit_measure::vcpus(launch.vcpus)
            .with_context(|| format!("-smp {}", launch.vcpus))?,
        vcpu_type: VcpuType::from_name(&launch.cpu_model)
            .with_context(|| format!("-cpu {}", launch.cpu_model))?,
        vmm: Vmm::Qemu,
        guest_features: config.guest_features,
    };
    let fw = Firmware::measure(&ovmf);
    Ok(snpkit_measure::launch_digest_with_page(
        &fw,
        Some(&page),
        &given,
    )?)
}

fn test_chain_certs(chain: &TestChain) -> Vec<CertEntry> {
    vec![
        CertEntry {
            guid: GUID_ARK,
            data: chain.roots.ark.der().to_vec(),
        },
        CertEntry {
            guid: GUID_ASK,
            data: chain.roots.ask.der().to_vec(),
        },
        CertEntry {
            guid: GUID_VCEK,
            data: chain.vcek.der().to_vec(),
        },
    ]
}

/// Writes the provider's certificates as snpguest names them (ark.pem, ask.pem, vcek.pem/vlek.pem).
fn write_certs(dir: &Path, certs: &[CertEntry]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for c in certs {
        let name = match c.guid {
            g if g == GUID_ARK => "ark",
            g if g == GUID_ASK => "ask",
            g if g == GUID_VCEK => "vcek",
            g if g == GUID_VLEK => "vlek",
            _ => continue,
        };
        let pem = pem_encode("CERTIFICATE", &c.data);
        std::fs::write(dir.join(format!("{name}.pem")), pem)?;
    }
    Ok(())
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
