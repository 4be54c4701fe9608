//! `cargo xtask measure`: the SNP launch digest, with sev-snp-measure's flags, or for every launch
//! config of a built recipe (writing `images/<recipe>/expected.json`).

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use snpkit_bundle::{ImageDir, LaunchSpec, Limit, MeasuredFiles};
use snpkit_fsguard::Bounded;
use snpkit_measure::{
    Ec2VmsaRdx, GuestFeatures, KernelStreams, LaunchConfig, LaunchDigest, Ovmf, SizedStream, Svsm,
    SvsmConfig, VcpuType, Vmm,
};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    #[value(name = "snp")]
    Snp,
    /// Only the digest of the OVMF's own pages (to pass later as --snp-ovmf-hash).
    #[value(name = "snp:ovmf-hash")]
    OvmfHash,
    /// COCONUT-SVSM with OVMF (needs --svsm and --vars-size or --vars-file).
    #[value(name = "snp:svsm")]
    Svsm,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Hex,
    Base64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ec2Rdx {
    /// RDX = 0: matches real AWS reports, the sev crate and sev-snp-measure ≤ 0.0.12.
    #[value(name = "0")]
    Zero,
    /// RDX = 0x600: sev-snp-measure 0.0.13's EC2 VMSA.
    #[value(name = "0x600")]
    Value0x600,
}

/// Flags as sev-snp-measure 0.0.13 spells them (same defaults: `--vmm-type QEMU`,
/// `--guest-features 0x1`, hex output), plus `--ec2-vmsa-rdx` and the recipe form. A flag the
/// chosen mode would ignore is an error, never silently dropped.
#[derive(clap::Args)]
pub struct Args {
    /// Measure images/<RECIPE>/ for every launch config of its manifest and write expected.json.
    recipe: Option<String>,
    /// Where built images live.
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// What to measure [default: snp].
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    #[arg(long, value_name = "N")]
    vcpus: Option<u32>,
    /// QEMU CPU model, e.g. EPYC-v4, EPYC-Milan, EPYC-Genoa, EPYC-Turin.
    #[arg(long, value_name = "CPUTYPE", conflicts_with_all = ["vcpu_sig", "vcpu_family"])]
    vcpu_type: Option<String>,
    /// Raw CPUID Fn0000_0001 EAX signature (decimal or 0x…), e.g. 0xa00f11 for `-cpu host` on a Milan.
    #[arg(long, value_name = "VALUE", value_parser = parse_u32, conflicts_with = "vcpu_family")]
    vcpu_sig: Option<u32>,
    /// CPUID family (with --vcpu-model and --vcpu-stepping), e.g. 25 for Milan and Genoa.
    #[arg(long, value_name = "FAMILY", value_parser = parse_u32, requires_all = ["vcpu_model", "vcpu_stepping"])]
    vcpu_family: Option<u32>,
    #[arg(long, value_name = "MODEL", value_parser = parse_u32, requires = "vcpu_family")]
    vcpu_model: Option<u32>,
    #[arg(long, value_name = "STEPPING", value_parser = parse_u32, requires = "vcpu_family")]
    vcpu_stepping: Option<u32>,
    /// QEMU, gce, ec2 (EC2 with RDX = 0 in its VMSAs, as real AWS reports match) or
    /// ec2-rdx-0x600 (sev-snp-measure 0.0.13's EC2 VMSA); case is ignored [default: QEMU].
    #[arg(long, value_name = "VMMTYPE")]
    vmm_type: Option<String>,
    /// The RDX of EC2's initial VMSAs (only with --vmm-type ec2) [default: 0]. RDX = 0 is what real
    /// AWS reports match; sev-snp-measure 0.0.13 computes 0x600, so pass `--ec2-vmsa-rdx 0x600`
    /// to get its EC2 digests.
    #[arg(long, value_enum, value_name = "RDX")]
    ec2_vmsa_rdx: Option<Ec2Rdx>,
    #[arg(long, value_name = "PATH")]
    ovmf: Option<PathBuf>,
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    #[arg(long, value_name = "PATH", requires = "kernel")]
    initrd: Option<PathBuf>,
    /// Kernel command line, hashed exactly as given plus a NUL (never trimmed; any bytes but NUL).
    #[arg(
        long,
        value_name = "CMDLINE",
        requires = "kernel",
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(OsString)
    )]
    append: Option<OsString>,
    /// SEV_FEATURES of every VMSA; bit 0 (SNPActive) must be set [default: 0x1].
    #[arg(long, value_name = "VALUE", value_parser = parse_u64)]
    guest_features: Option<u64>,
    /// Precomputed OVMF hash (hex, from --mode snp:ovmf-hash); --ovmf then only gives metadata.
    #[arg(long, value_name = "HASH")]
    snp_ovmf_hash: Option<String>,
    /// How to print the digest [default: hex].
    #[arg(long, value_enum)]
    output_format: Option<OutputFormat>,
    #[arg(long, value_name = "PATH")]
    svsm: Option<PathBuf>,
    #[arg(long, value_name = "SIZE", conflicts_with = "vars_file")]
    vars_size: Option<u64>,
    #[arg(long, value_name = "PATH")]
    vars_file: Option<PathBuf>,
    /// Also write the SEV hashes page QEMU would build (for an emulated launch) to this file.
    #[arg(long, value_name = "PATH", requires = "kernel")]
    write_hashes_page: Option<PathBuf>,
}

impl Args {
    fn mode(&self) -> Mode {
        self.mode.unwrap_or(Mode::Snp)
    }

    /// The flags given, by name, for telling the user which ones a mode cannot use.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--vcpus", self.vcpus.is_some()),
            ("--vcpu-type", self.vcpu_type.is_some()),
            ("--vcpu-sig", self.vcpu_sig.is_some()),
            ("--vcpu-family", self.vcpu_family.is_some()),
            ("--vmm-type", self.vmm_type.is_some()),
            ("--ec2-vmsa-rdx", self.ec2_vmsa_rdx.is_some()),
            ("--ovmf", self.ovmf.is_some()),
            ("--kernel", self.kernel.is_some()),
            ("--guest-features", self.guest_features.is_some()),
            ("--snp-ovmf-hash", self.snp_ovmf_hash.is_some()),
            ("--svsm", self.svsm.is_some()),
            ("--vars-size", self.vars_size.is_some()),
            ("--vars-file", self.vars_file.is_some()),
            ("--write-hashes-page", self.write_hashes_page.is_some()),
        ];
        flags
            .into_iter()
            .filter_map(|(name, given)| given.then_some(name))
            .collect()
    }

    /// Refuses flags that the recipe form or the chosen mode would not use.
    fn check_flags(&self) -> anyhow::Result<()> {
        if self.recipe.is_some() && (self.mode.is_some() || self.output_format.is_some()) {
            bail!(
                "--mode and --output-format cannot be used with measuring a recipe: expected.json holds the snp mode's \
                 digests, in hex"
            );
        }
        let (what, unused): (&str, Vec<&str>) = match (&self.recipe, self.mode()) {
            (Some(_), _) => (
                "measuring a recipe (its launch configs come from the image's manifest)",
                [&["--ovmf"], LAUNCH_FLAGS_BUT_OVMF].concat(),
            ),
            (None, Mode::OvmfHash) => (
                "--mode snp:ovmf-hash (it hashes the OVMF's own pages only)",
                LAUNCH_FLAGS_BUT_OVMF.to_vec(),
            ),
            (None, Mode::Snp) => (
                "--mode snp (only snp:svsm uses them)",
                vec!["--svsm", "--vars-size", "--vars-file"],
            ),
            (None, Mode::Svsm) => (
                "--mode snp:svsm (the SVSM launch has no hashes table and no precomputed OVMF hash)",
                vec!["--kernel", "--snp-ovmf-hash", "--ec2-vmsa-rdx"],
            ),
        };
        let bad: Vec<&str> = self
            .given()
            .into_iter()
            .filter(|f| unused.contains(f))
            .collect();
        if !bad.is_empty() {
            bail!("{} cannot be used with {what}", bad.join(", "));
        }
        Ok(())
    }
}

/// The flags that describe one launch, but for the OVMF: measuring a recipe (its manifest gives
/// the launches) and `--mode snp:ovmf-hash` (the OVMF alone) use none of them.
const LAUNCH_FLAGS_BUT_OVMF: &[&str] = &[
    "--vcpus",
    "--vcpu-type",
    "--vcpu-sig",
    "--vcpu-family",
    "--vmm-type",
    "--ec2-vmsa-rdx",
    "--kernel",
    "--guest-features",
    "--snp-ovmf-hash",
    "--svsm",
    "--vars-size",
    "--vars-file",
    "--write-hashes-page",
];

pub(crate) fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a number (decimal or 0x-prefixed hex)"))
}

pub(crate) fn parse_u32(s: &str) -> Result<u32, String> {
    parse_u64(s)?
        .try_into()
        .map_err(|_| format!("{s} does not fit in 32 bits"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.check_flags()?;
    if let Some(recipe) = &args.recipe {
        let images = args
            .images
            .clone()
            .map_or_else(crate::cli::default_images, Ok)?;
        return measure_recipe(&images, recipe);
    }
    let digest = measure_flags(&args)?;
    println!(
        "{}",
        match args.output_format.unwrap_or(OutputFormat::Hex) {
            OutputFormat::Hex => digest.to_hex(),
            OutputFormat::Base64 => digest.to_base64(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// All of a regular file, at most `max` bytes (`snpkit_measure::limits`); `what` names it in
/// errors (the flag, or the image file).
pub(crate) fn read(path: &Path, what: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    Ok(snpkit_fsguard::read(path, what, max)?)
}

pub(crate) fn read_ovmf(path: &Path) -> anyhow::Result<Ovmf> {
    Ovmf::parse_owned(read(path, "the OVMF", Limit::FIRMWARE.max)?)
        .with_context(|| format!("{} is not an OVMF we can measure", path.display()))
}

/// The size a regular file reports: only to size what it stands for (`--vars-file`); never a bound.
fn file_len(path: &Path, what: &str) -> anyhow::Result<u64> {
    Ok(snpkit_fsguard::open(path, what)?.reported_len())
}

/// A regular file opened for hashing, read with the bound `max` (a device or FIFO named as a
/// kernel reports size 0 and never ends), with the length it reports (which only orders the work).
fn stream(path: &Path, what: &str, max: u64) -> anyhow::Result<SizedStream<Bounded<File>>> {
    let file = snpkit_fsguard::open(path, what)?;
    Ok(SizedStream {
        len: file.reported_len(),
        reader: file.bounded(max),
    })
}

/// The VMM from `--vmm-type` (any spelling `explain` and expected.json print) and
/// `--ec2-vmsa-rdx`, which only EC2 has and which must agree with an `ec2-rdx-…` name.
fn vmm(name: Option<&str>, rdx: Option<Ec2Rdx>) -> anyhow::Result<Vmm> {
    let name = name.unwrap_or("QEMU");
    let named = Vmm::from_name(name).with_context(|| {
        format!("unknown --vmm-type {name:?}: expected QEMU, gce, ec2 or ec2-rdx-0x600")
    })?;
    let Some(rdx) = rdx else {
        return Ok(named);
    };
    let wanted = Vmm::Ec2(match rdx {
        Ec2Rdx::Zero => Ec2VmsaRdx::Zero,
        Ec2Rdx::Value0x600 => Ec2VmsaRdx::Value0x600,
    });
    match named {
        Vmm::Ec2(_) if name.eq_ignore_ascii_case("ec2") => Ok(wanted),
        Vmm::Ec2(_) if named == wanted => Ok(named),
        Vmm::Ec2(_) => bail!(
            "--vmm-type {name} already names the EC2 VMSA's RDX, and --ec2-vmsa-rdx says otherwise: give one of them"
        ),
        _ => bail!(
            "--ec2-vmsa-rdx applies to EC2 launches only, not to --vmm-type {name}: drop it or use --vmm-type ec2"
        ),
    }
}

fn vcpu_type(args: &Args, vmm: Vmm) -> anyhow::Result<VcpuType> {
    // sev-snp-measure's precedence: family/model/stepping, then signature, then type name.
    if let (Some(f), Some(m), Some(s)) = (args.vcpu_family, args.vcpu_model, args.vcpu_stepping) {
        return Ok(VcpuType::from_family_model_stepping(f, m, s)?);
    }
    if let Some(sig) = args.vcpu_sig {
        return Ok(VcpuType::Signature(sig));
    }
    if let Some(name) = &args.vcpu_type {
        return Ok(VcpuType::from_name(name)?);
    }
    if vmm == Vmm::Qemu {
        bail!(
            "missing --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping: QEMU puts the CPU signature in every VMSA"
        );
    }
    // EC2 and GCE VMSAs do not carry the vCPU type.
    Ok(VcpuType::Signature(0))
}

/// `--write-hashes-page` must not be one of the inputs (by any name: the same path, a symlink
/// or a hard link to it): writing the page would destroy the file being measured.
fn refuse_page_onto_inputs(args: &Args) -> anyhow::Result<()> {
    let Some(out) = &args.write_hashes_page else {
        return Ok(());
    };
    let mut inputs = Vec::new();
    for (what, path) in [
        ("--ovmf", &args.ovmf),
        ("--kernel", &args.kernel),
        ("--initrd", &args.initrd),
        ("--svsm", &args.svsm),
        ("--vars-file", &args.vars_file),
    ] {
        if let Some(path) = path
            && let Some(input) = snpkit_fsguard::Input::stat(what, path)?
        {
            inputs.push(input);
        }
    }
    Ok(snpkit_fsguard::refuse_output_onto(
        out,
        "--write-hashes-page",
        &inputs,
    )?)
}

fn measure_flags(args: &Args) -> anyhow::Result<LaunchDigest> {
    refuse_page_onto_inputs(args)?;
    let ovmf_path = args.ovmf.as_deref().context("--ovmf PATH is required")?;
    if args.mode() == Mode::OvmfHash {
        return Ok(snpkit_measure::ovmf_hash(&read_ovmf(ovmf_path)?));
    }
    let vcpus = snpkit_measure::vcpus(args.vcpus.context("--vcpus N is required")?)?;
    if args.mode() == Mode::Svsm {
        if args.kernel.is_some() {
            bail!(
                "--kernel cannot be used with --mode snp:svsm: the SVSM launch has no hashes table"
            );
        }
        let vars_size = match (&args.vars_size, &args.vars_file) {
            (Some(n), _) => *n,
            (None, Some(f)) => file_len(f, "--vars-file")?,
            (None, None) => bail!("--mode snp:svsm needs --vars-size N or --vars-file PATH"),
        };
        if args.guest_features.is_some_and(|f| f != 1) {
            eprintln!(
                "note: --guest-features is ignored in snp:svsm mode (the SVSM VMSA has SEV features 0x1)"
            );
        }
        let svsm_path = args
            .svsm
            .as_deref()
            .context("--mode snp:svsm needs --svsm PATH")?;
        let svsm = Svsm::parse(&read(svsm_path, "--svsm", Limit::FIRMWARE.max)?)
            .with_context(|| format!("{} is not an SVSM image", svsm_path.display()))?;
        if vmm(args.vmm_type.as_deref(), None)? != Vmm::Qemu {
            bail!("--mode snp:svsm is a QEMU launch: --vmm-type must be QEMU");
        }
        let config = SvsmConfig {
            vcpus,
            vcpu_type: vcpu_type(args, Vmm::Qemu)?,
            vars_size,
        };
        return Ok(snpkit_measure::svsm_launch_digest(
            &read_ovmf(ovmf_path)?,
            &svsm,
            &config,
        )?);
    }
    let vmm = vmm(args.vmm_type.as_deref(), args.ec2_vmsa_rdx)?;
    let config = LaunchConfig {
        vcpus,
        vcpu_type: vcpu_type(args, vmm)?,
        vmm,
        guest_features: GuestFeatures::new(args.guest_features.unwrap_or(1))?,
    };
    let seed = args
        .snp_ovmf_hash
        .as_deref()
        .map(LaunchDigest::from_hex)
        .transpose()
        .context("--snp-ovmf-hash")?;
    let cmdline = args.append.as_deref().map_or(&[][..], |a| a.as_bytes());
    let kernel = match &args.kernel {
        Some(kernel) => Some(KernelStreams {
            kernel: stream(kernel, "--kernel", Limit::KERNEL.max)?,
            initrd: args
                .initrd
                .as_deref()
                .map(|i| stream(i, "--initrd", Limit::INITRD.max))
                .transpose()?,
            cmdline,
        }),
        None => None,
    };
    let inputs = snpkit_measure::hash_launch_inputs(|| read_ovmf(ovmf_path), seed, kernel)?;
    if let (Some(path), Some(k)) = (&args.write_hashes_page, &inputs.kernel) {
        let page = snpkit_measure::hashes_page(&inputs.ovmf, k)?;
        page.write_to(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "hashes page written to {} (load it at GPA {:#x})",
            path.display(),
            page.gpa()
        );
    }
    Ok(snpkit_measure::launch_digest(
        &inputs.firmware(),
        inputs.kernel.as_ref(),
        &config,
    )?)
}

/// The inputs of a built image directory.
pub(crate) struct ImageInputs {
    pub image: ImageDir,
    pub ovmf: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: Vec<u8>,
    /// The manifest's launch configs (read alone: other fields of the manifest do not matter).
    pub launch: Vec<LaunchSpec>,
}

pub(crate) fn image_inputs(images: &Path, recipe: &str) -> anyhow::Result<ImageInputs> {
    let image = ImageDir::named(images, recipe)?;
    image.require()?;
    let launch = image.read_launch_specs()?;
    if launch.is_empty() {
        bail!(
            "{} has no launch configs: nothing to measure",
            image.manifest().display()
        );
    }
    Ok(ImageInputs {
        ovmf: image.firmware(),
        kernel: image.kernel(),
        initrd: image.initrd(),
        cmdline: image.read_cmdline()?,
        launch,
        image,
    })
}

/// The prediction of every launch config of `images/<recipe>/`, from the files in the folder now.
pub(crate) fn predict_image(
    images: &Path,
    recipe: &str,
) -> anyhow::Result<(ImageInputs, snpkit_bundle::Expected)> {
    let inputs = image_inputs(images, recipe)?;
    let firmware = read(&inputs.ovmf, "the image's firmware", Limit::FIRMWARE.max)?;
    let kernel = read(&inputs.kernel, "the image's kernel", Limit::KERNEL.max)?;
    let initrd = read(&inputs.initrd, "the image's initrd", Limit::INITRD.max)?;
    let files = MeasuredFiles {
        firmware: &firmware,
        kernel: &kernel,
        initrd: &initrd,
        cmdline: &inputs.cmdline,
    };
    let expected = snpkit_measure::predict(recipe, &files, &inputs.launch)
        .with_context(|| format!("measuring {}", inputs.image.path().display()))?;
    Ok((inputs, expected))
}

pub(crate) fn measure_recipe(images: &Path, recipe: &str) -> anyhow::Result<ExitCode> {
    let (inputs, expected) = predict_image(images, recipe)?;
    for c in &expected.configs {
        // Read again only to print it as the measurement did (predict has checked it).
        let config = snpkit_measure::launch_config_from(&c.launch)?;
        println!(
            "{:<16} {:>4} vCPU  {:<14} {:<14} features {:<8} {}",
            c.launch.name,
            config.vcpus,
            config.vcpu_type.to_string(),
            config.vmm.to_string(),
            config.guest_features.to_string(),
            c.measurement
        );
    }
    inputs.image.write_expected(&expected)?;
    println!("wrote {}", inputs.image.expected().display());
    Ok(ExitCode::SUCCESS)
}
