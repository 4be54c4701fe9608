//! `cargo xtask explain`: which launch configuration of these inputs produces this measurement?

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use snpkit_measure::{
    BootCandidate, Firmware, FirmwareCandidate, GuestFeatures, LaunchDigest, Match, SearchSpace,
    VcpuType,
};

use crate::measure::{image_inputs, parse_u32, parse_u64, read, read_ovmf};
use snpkit_bundle::Limit;

/// More family × model × stepping combinations than this is a typo, not a search.
const MAX_FMS_COMBINATIONS: usize = 4096;

#[derive(clap::Args)]
pub struct Args {
    /// Take OVMF, kernel, initrd and cmdline from images/<RECIPE>/, and add its launch configs'
    /// vCPU counts, types, VMMs and guest features to the search.
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
    /// An attestation report: the raw 1184-byte report.bin, or the 4000-byte SNP_GET_REPORT
    /// response holding one; its MEASUREMENT (and CPUID, v3+) are used.
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
    /// Try vCPU counts 1..=N (widened to cover the recipe's launch configs).
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_vcpus: u32,
    /// Try only these QEMU CPU models (names as for `measure --vcpu-type`) instead of every known
    /// model and host signature; repeatable, and adds up with --vcpu-sig and --vcpu-family.
    #[arg(long, value_name = "CPUTYPE")]
    vcpu_type: Vec<String>,
    /// Try only these raw CPUID signatures (e.g. 0xa00f12); repeatable, narrows like --vcpu-type.
    #[arg(long, value_name = "VALUE", value_parser = parse_u32)]
    vcpu_sig: Vec<u32>,
    /// Try only these CPUID families × the --vcpu-model values × the --vcpu-stepping values;
    /// each repeatable, narrows like --vcpu-type.
    #[arg(long, value_name = "FAMILY", value_parser = parse_u32, requires_all = ["vcpu_model", "vcpu_stepping"])]
    vcpu_family: Vec<u32>,
    #[arg(long, value_name = "MODEL", value_parser = parse_u32, requires = "vcpu_family")]
    vcpu_model: Vec<u32>,
    #[arg(long, value_name = "STEPPING", value_parser = parse_u32, requires = "vcpu_family")]
    vcpu_stepping: Vec<u32>,
    /// Guest feature values to try on top of the usual sets; repeatable.
    #[arg(long, value_name = "VALUE", value_parser = parse_u64)]
    guest_features: Vec<u64>,
    /// Print the result as JSON (with each hit's `measure` arguments) instead of text.
    #[arg(long)]
    json: bool,
}

/// The vCPU types given on the command line; empty if none were (the search is then wide).
fn narrowed_types(args: &Args) -> anyhow::Result<Vec<VcpuType>> {
    let mut types = Vec::new();
    for name in &args.vcpu_type {
        types.push(VcpuType::from_name(name)?);
    }
    types.extend(args.vcpu_sig.iter().map(|&s| VcpuType::Signature(s)));
    let combinations = args.vcpu_family.len() * args.vcpu_model.len() * args.vcpu_stepping.len();
    if combinations > MAX_FMS_COMBINATIONS {
        bail!(
            "{} families × {} models × {} steppings are {combinations} vCPU types to try; give at most {MAX_FMS_COMBINATIONS}",
            args.vcpu_family.len(),
            args.vcpu_model.len(),
            args.vcpu_stepping.len()
        );
    }
    for &family in &args.vcpu_family {
        for &model in &args.vcpu_model {
            for &stepping in &args.vcpu_stepping {
                types.push(VcpuType::from_family_model_stepping(
                    family, model, stepping,
                )?);
            }
        }
    }
    Ok(types)
}

/// A firmware, kernel, initrd and cmdline as found on disk.
struct Inputs {
    ovmf_paths: Vec<PathBuf>,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    cmdline: Vec<u8>,
    /// The recipe's launch configs, when a recipe was given.
    launch: Vec<snpkit_bundle::LaunchSpec>,
}

fn inputs(args: &Args) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs {
        ovmf_paths: Vec::new(),
        kernel: None,
        initrd: None,
        cmdline: Vec::new(),
        launch: Vec::new(),
    };
    if let Some(recipe) = &args.recipe {
        let images = args
            .images
            .clone()
            .map_or_else(crate::cli::default_images, Ok)?;
        let image = image_inputs(&images, recipe)?;
        inputs.ovmf_paths.push(image.ovmf);
        inputs.kernel = Some(image.kernel);
        inputs.initrd = Some(image.initrd);
        inputs.cmdline = image.cmdline;
        inputs.launch = image.launch;
    }
    inputs.ovmf_paths.extend(args.ovmf.iter().cloned());
    if inputs.ovmf_paths.is_empty() {
        bail!("give a recipe or at least one --ovmf PATH");
    }
    if args.kernel.is_some() {
        inputs.kernel = args.kernel.clone();
        inputs.initrd = args.initrd.clone();
        inputs.cmdline = match (&args.append, &args.cmdline_file) {
            (Some(a), _) => a.clone().into_bytes(),
            (None, Some(f)) => read(f, "--cmdline-file", Limit::CMDLINE.max)?,
            (None, None) => Vec::new(),
        };
    }
    Ok(inputs)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut report_types = Vec::new();
    let target = match (&args.digest, &args.report) {
        (Some(hex), _) => LaunchDigest::from_hex(hex).context("--digest")?,
        (None, Some(path)) => {
            let blob = read(path, "--report", Limit::REPORT.max)?;
            let found = snpkit_measure::find_report(&blob)
                .with_context(|| format!("{}", path.display()))?;
            if let Some(container) = found.container {
                eprintln!(
                    "{}: the report is at offset {:#x} of a {}",
                    path.display(),
                    found.offset,
                    container
                );
            }
            report_types.extend(VcpuType::from_report(found.report));
            LaunchDigest::from_report(found.report)
                .with_context(|| format!("{}", path.display()))?
        }
        (None, None) => bail!("give the measured digest with --digest HEX or --report report.bin"),
    };
    let narrowed = narrowed_types(&args)?;
    let inputs = inputs(&args)?;

    let mut space = if narrowed.is_empty() {
        SearchSpace::wide(&report_types)
    } else {
        let mut s = SearchSpace::wide(&[]);
        s.vcpu_types.clear();
        for t in &narrowed {
            s.add_vcpu_type(*t);
        }
        s
    };
    space.vcpus = 1..=args.max_vcpus.max(1);
    for f in &args.guest_features {
        space.add_guest_features(GuestFeatures::new(*f).context("--guest-features")?);
    }
    // The recipe's own launch configs are the likeliest guesses: make sure each is searched.
    for l in &inputs.launch {
        match snpkit_measure::launch_config_from(l) {
            Ok(config) => {
                let types = space.vcpu_types.clone();
                space.include(&config);
                if !narrowed.is_empty() {
                    space.vcpu_types = types;
                }
            }
            Err(e) => eprintln!("not searching the recipe's launch config: {e}"),
        }
    }

    let ovmfs = inputs
        .ovmf_paths
        .iter()
        .map(|p| read_ovmf(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let firmwares: Vec<FirmwareCandidate<'_>> = ovmfs
        .iter()
        .zip(&inputs.ovmf_paths)
        .map(|(o, p)| FirmwareCandidate {
            label: p.display().to_string(),
            firmware: Firmware::measure(o),
        })
        .collect();
    let mut input_lines = Vec::new();
    for (fw, path) in firmwares.iter().zip(&inputs.ovmf_paths) {
        input_lines.push(format!(
            "  ovmf    {}  sha256 {}  SNP pages {}",
            path.display(),
            hex::encode(Sha256::digest(fw.firmware.ovmf().bytes())),
            fw.firmware.ovmf_hash()
        ));
    }
    let boots = match &inputs.kernel {
        Some(k) => {
            let kernel_bytes = read(k, "the kernel", Limit::KERNEL.max)?;
            let initrd_bytes = match &inputs.initrd {
                Some(i) => read(i, "the initrd", Limit::INITRD.max)?,
                None => Vec::new(),
            };
            input_lines.push(format!(
                "  kernel  {}  sha256 {}",
                k.display(),
                hex::encode(Sha256::digest(&kernel_bytes))
            ));
            input_lines.push(format!(
                "  initrd  {}  sha256 {}",
                inputs
                    .initrd
                    .as_ref()
                    .map_or("(none)".into(), |p| p.display().to_string()),
                hex::encode(Sha256::digest(&initrd_bytes))
            ));
            input_lines.push(format!(
                "  cmdline {:?}",
                String::from_utf8_lossy(&inputs.cmdline)
            ));
            BootCandidate::variants(&kernel_bytes, &initrd_bytes, &inputs.cmdline)
        }
        None => vec![BootCandidate::firmware_only("no kernel (firmware only)")],
    };

    let types: Vec<String> = space.vcpu_types.iter().map(|t| t.to_string()).collect();
    eprintln!(
        "searching {} firmware × {} boot variants × vCPUs {:?} × {} vCPU types{} × {} VMM forms × {} guest feature sets",
        firmwares.len(),
        boots.len(),
        space.vcpus,
        space.vcpu_types.len(),
        if narrowed.is_empty() {
            String::new()
        } else {
            format!(" (only {})", types.join(", "))
        },
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

    let hits: Vec<Hit> = found
        .matches
        .iter()
        .map(|m| Hit::new(m, &inputs, &firmwares, &boots))
        .collect();
    let code = if hits.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    if args.json {
        let json = serde_json::json!({
            "measurement": target.to_hex(),
            "tried": found.tried,
            "matches": hits.iter().map(Hit::to_json).collect::<Vec<_>>(),
            "skipped": found.skipped,
            "vcpu_types": types,
            "guest_features": space.guest_features.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(code);
    }
    if hits.is_empty() {
        println!("no configuration of these inputs reproduces {target}");
        println!(
            "so an input differs from what was launched (or the launch used parameters outside this search). Inputs tried:"
        );
        for l in &input_lines {
            println!("{l}");
        }
        for b in &boots {
            match &b.kernel {
                Some(k) => println!(
                    "  variant {}: kernel {} initrd {} cmdline {}",
                    b.label,
                    hex::encode(k.hashes.kernel),
                    hex::encode(k.hashes.initrd),
                    hex::encode(k.hashes.cmdline)
                ),
                None => println!("  variant {}", b.label),
            }
        }
        println!("  vCPU types tried: {}", types.join(", "));
        if !narrowed.is_empty() {
            println!(
                "  (only the vCPU types given with --vcpu-type/--vcpu-sig/--vcpu-family; drop them to try every known one)"
            );
        }
        return Ok(code);
    }
    println!("{} configuration(s) reproduce {target}:", hits.len());
    for h in &hits {
        println!("{}", h.summary);
        println!("    reproduce: {}", h.command_line());
    }
    Ok(code)
}

/// One configuration that reproduces the digest, and the `measure` arguments that say so.
struct Hit {
    summary: String,
    measure_args: Vec<Vec<u8>>,
    json: serde_json::Value,
}

impl Hit {
    fn new(
        m: &Match,
        inputs: &Inputs,
        firmwares: &[FirmwareCandidate<'_>],
        boots: &[BootCandidate],
    ) -> Hit {
        let c = &m.config;
        let firmware = &inputs.ovmf_paths[m.firmware];
        let boot = &boots[m.boot];
        let vcpu_type = if m.vcpu_type_matters {
            c.vcpu_type.to_string()
        } else {
            "(any vCPU type)".into()
        };
        let summary = format!(
            "  vcpus {}  vcpu-type {}  vmm {}  guest-features {}  firmware {}  {}",
            c.vcpus, vcpu_type, c.vmm, c.guest_features, firmwares[m.firmware].label, boot.label
        );
        let mut a: Vec<Vec<u8>> = Vec::new();
        let mut flag = |name: &str, value: &[u8]| {
            a.push(name.as_bytes().to_vec());
            a.push(value.to_vec());
        };
        flag("--mode", b"snp");
        flag("--vcpus", c.vcpus.to_string().as_bytes());
        if m.vcpu_type_matters {
            match c.vcpu_type {
                VcpuType::Model(model) => flag("--vcpu-type", model.name.as_bytes()),
                VcpuType::Signature(sig) => flag("--vcpu-sig", format!("{sig:#x}").as_bytes()),
                VcpuType::FamilyModelStepping {
                    family,
                    model,
                    stepping,
                } => {
                    flag("--vcpu-family", format!("{family:#x}").as_bytes());
                    flag("--vcpu-model", format!("{model:#x}").as_bytes());
                    flag("--vcpu-stepping", stepping.to_string().as_bytes());
                }
            }
        }
        flag("--vmm-type", c.vmm.to_string().as_bytes());
        flag("--guest-features", c.guest_features.to_string().as_bytes());
        flag("--ovmf", firmware.as_os_str().as_encoded_bytes());
        if let (Some(k), Some(kernel)) = (&boot.kernel, &inputs.kernel) {
            flag("--kernel", kernel.as_os_str().as_encoded_bytes());
            if let (true, Some(initrd)) = (k.initrd, &inputs.initrd) {
                flag("--initrd", initrd.as_os_str().as_encoded_bytes());
            }
            // One argument, so that a cmdline starting with '-' or empty stays a value.
            a.push([b"--append=".as_slice(), &k.cmdline].concat());
        }
        let json = serde_json::json!({
            "vcpus": c.vcpus.get(),
            "vcpu_type": m.vcpu_type_matters.then(|| c.vcpu_type.to_string()),
            "cpuid_signature": m.vcpu_type_matters.then(|| format!("{:#x}", c.vcpu_type.signature())),
            "vmm": c.vmm.to_string(),
            "guest_features": c.guest_features.to_string(),
            "firmware": firmwares[m.firmware].label,
            "boot": boot.label,
            // Null when an argument (a path or the cmdline) is not UTF-8: use the text output.
            "measure_args": a.iter().map(|x| String::from_utf8(x.clone()).ok()).collect::<Option<Vec<_>>>(),
        });
        Hit {
            summary,
            measure_args: a,
            json,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        self.json.clone()
    }

    /// The command a shell user pastes, every argument quoted so it arrives byte for byte.
    fn command_line(&self) -> String {
        std::iter::once("cargo xtask measure".to_string())
            .chain(self.measure_args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes one argument for sh/bash: bare when it is plainly safe, in single quotes when it is
/// printable UTF-8, and in bash's `$'…'` form (with `\xNN` escapes) otherwise.
fn shell_quote(arg: &[u8]) -> String {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(b);
    if !arg.is_empty() && arg.iter().all(plain) {
        return String::from_utf8_lossy(arg).into_owned();
    }
    if let Ok(text) = std::str::from_utf8(arg)
        && !text.chars().any(char::is_control)
    {
        return format!("'{}'", text.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for &b in arg {
        match b {
            b'\'' => out.push_str(r"\'"),
            b'\\' => out.push_str(r"\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting_keeps_every_byte() {
        assert_eq!(shell_quote(b"--vcpus"), "--vcpus");
        assert_eq!(shell_quote(b"--append=ro "), "'--append=ro '");
        assert_eq!(shell_quote(b""), "''");
        assert_eq!(shell_quote(b"it's"), r"'it'\''s'");
        assert_eq!(shell_quote(b"a\nb\xff"), r"$'a\x0ab\xff'");
    }
}
