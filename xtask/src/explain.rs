//! `cargo xtask explain`: which launch configuration of these inputs produces this measurement?

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use snpkit_measure::{
    BootCandidate, Firmware, FirmwareCandidate, GuestFeatures, LaunchDigest, SearchSpace, VcpuType,
};

use crate::measure::{image_inputs, read, read_ovmf};

#[derive(clap::Args)]
pub struct Args {
    /// Take OVMF, kernel, initrd and cmdline from images/<RECIPE>/.
    recipe: Option<String>,
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// The measured digest (96 hex digits), e.g. from a report.
    #[arg(
        long,
        value_name = "HEX",
        required_unless_present = "report",
        conflicts_with = "report"
    )]
    digest: Option<String>,
    /// A raw 1184-byte attestation report; its MEASUREMENT (and CPUID, v3+) are used.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// OVMF files to try (in addition to the recipe's); repeatable.
    #[arg(long, value_name = "PATH")]
    ovmf: Vec<PathBuf>,
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    #[arg(long, value_name = "PATH", requires = "kernel")]
    initrd: Option<PathBuf>,
    #[arg(
        long,
        value_name = "CMDLINE",
        requires = "kernel",
        allow_hyphen_values = true,
        conflicts_with = "cmdline_file"
    )]
    append: Option<String>,
    /// Read the exact command line bytes from a file.
    #[arg(long, value_name = "PATH", requires = "kernel")]
    cmdline_file: Option<PathBuf>,
    /// Try vCPU counts 1..=N.
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_vcpus: u32,
    /// Extra vCPU types to try (names as for `measure --vcpu-type`); repeatable.
    #[arg(long, value_name = "CPUTYPE")]
    vcpu_type: Vec<String>,
    /// Extra guest feature values to try; repeatable.
    #[arg(long, value_name = "VALUE", value_parser = crate::measure::parse_u64)]
    guest_features: Vec<u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut extra_types = Vec::new();
    let target = match (&args.digest, &args.report) {
        (Some(hex), _) => LaunchDigest::from_hex(hex).context("--digest")?,
        (None, Some(path)) => {
            let report = read(path)?;
            extra_types.extend(VcpuType::from_report(&report));
            LaunchDigest::from_report(&report).with_context(|| format!("{}", path.display()))?
        }
        (None, None) => bail!("give the measured digest with --digest HEX or --report report.bin"),
    };
    for name in &args.vcpu_type {
        extra_types.push(VcpuType::from_name(name)?);
    }

    let mut ovmf_paths = Vec::new();
    let (mut kernel, mut initrd, mut cmdline) = (None, None, None);
    if let Some(recipe) = &args.recipe {
        let images = args
            .images
            .clone()
            .unwrap_or_else(|| crate::cli::workspace_root().join("images"));
        let inputs = image_inputs(&images, recipe)?;
        ovmf_paths.push(inputs.ovmf);
        kernel = Some(inputs.kernel);
        initrd = Some(inputs.initrd);
        cmdline = Some(inputs.cmdline);
        // The recipe's own types and features are likely guesses too.
        for l in &inputs.launch {
            extra_types.extend(VcpuType::from_name(&l.vcpu_type).ok());
        }
    }
    ovmf_paths.extend(args.ovmf.iter().cloned());
    if ovmf_paths.is_empty() {
        bail!("give a recipe or at least one --ovmf PATH");
    }
    if args.kernel.is_some() {
        kernel = args.kernel.clone();
        initrd = args.initrd.clone();
        cmdline = Some(match (&args.append, &args.cmdline_file) {
            (Some(a), _) => a.clone().into_bytes(),
            (None, Some(f)) => read(f)?,
            (None, None) => Vec::new(),
        });
    }

    let ovmfs = ovmf_paths
        .iter()
        .map(|p| read_ovmf(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let firmwares: Vec<FirmwareCandidate<'_>> = ovmfs
        .iter()
        .zip(&ovmf_paths)
        .map(|(o, p)| FirmwareCandidate {
            label: p.display().to_string(),
            firmware: Firmware::measure(o),
        })
        .collect();
    let mut input_lines = Vec::new();
    for (fw, path) in firmwares.iter().zip(&ovmf_paths) {
        input_lines.push(format!(
            "  ovmf    {}  sha256 {}  SNP pages {}",
            path.display(),
            hex::encode(Sha256::digest(fw.firmware.ovmf().bytes())),
            fw.firmware.ovmf_hash()
        ));
    }
    let boots = match &kernel {
        Some(k) => {
            let kernel_bytes = read(k)?;
            let initrd_bytes = match &initrd {
                Some(i) => read(i)?,
                None => Vec::new(),
            };
            let cmdline = cmdline.unwrap_or_default();
            input_lines.push(format!(
                "  kernel  {}  sha256 {}",
                k.display(),
                hex::encode(Sha256::digest(&kernel_bytes))
            ));
            input_lines.push(format!(
                "  initrd  {}  sha256 {}",
                initrd
                    .as_ref()
                    .map_or("(none)".into(), |p| p.display().to_string()),
                hex::encode(Sha256::digest(&initrd_bytes))
            ));
            input_lines.push(format!("  cmdline {:?}", String::from_utf8_lossy(&cmdline)));
            BootCandidate::variants(&kernel_bytes, &initrd_bytes, &cmdline)
        }
        None => vec![BootCandidate {
            label: "no kernel (firmware only)".into(),
            hashes: None,
        }],
    };

    let mut space = SearchSpace::wide(&extra_types);
    space.vcpus = 1..=args.max_vcpus.max(1);
    for f in &args.guest_features {
        let f = GuestFeatures::new(*f)?;
        if !space.guest_features.contains(&f) {
            space.guest_features.push(f);
        }
    }
    eprintln!(
        "searching {} firmware × {} boot variants × vCPUs {:?} × {} vCPU types × {} VMM forms × {} guest feature sets",
        firmwares.len(),
        boots.len(),
        space.vcpus,
        space.vcpu_types.len(),
        space.vmms.len(),
        space.guest_features.len()
    );
    let start = Instant::now();
    let found = snpkit_measure::explain(&target, &firmwares, &boots, &space);
    let secs = start.elapsed().as_secs_f64();

    for s in &found.skipped {
        eprintln!("skipped: {s}");
    }
    eprintln!(
        "tried {} configurations in {secs:.2} s ({:.0}/s)",
        found.tried,
        found.tried as f64 / secs.max(1e-9)
    );
    if found.matches.is_empty() {
        println!("no configuration of these inputs reproduces {target}");
        println!(
            "so an input differs from what was launched (or the launch used parameters outside this search). Inputs tried:"
        );
        for l in &input_lines {
            println!("{l}");
        }
        for b in &boots {
            if let Some(h) = &b.hashes {
                println!(
                    "  variant {}: kernel {} initrd {} cmdline {}",
                    b.label,
                    hex::encode(h.kernel),
                    hex::encode(h.initrd),
                    hex::encode(h.cmdline)
                );
            } else {
                println!("  variant {}", b.label);
            }
        }
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{} configuration(s) reproduce {target}:",
        found.matches.len()
    );
    for m in &found.matches {
        let vcpu_type = if m.vcpu_type_matters {
            m.config.vcpu_type.to_string()
        } else {
            "(any vCPU type)".into()
        };
        println!(
            "  vcpus {}  vcpu-type {}  vmm {}  guest-features {}  firmware {}  {}",
            m.config.vcpus, vcpu_type, m.config.vmm, m.config.guest_features, m.firmware, m.boot
        );
    }
    Ok(ExitCode::SUCCESS)
}
