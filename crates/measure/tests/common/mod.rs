//! Shared by the vector and differential tests: a sev-snp-measure command line, and what our
//! library computes for it.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use snpkit_measure::{
    Ec2VmsaRdx, Firmware, GuestFeatures, KernelHashes, LaunchConfig, LaunchDigest, Ovmf, Svsm,
    SvsmConfig, VcpuType, Vmm,
};

pub use snpkit_testkit::vectors::dir as vectors;

#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub mode: String,
    pub vcpus: Option<u32>,
    pub vcpu_type: Option<String>,
    pub vcpu_sig: Option<u32>,
    pub vcpu_fms: Option<(u32, u32, u32)>,
    pub vmm: Option<String>,
    pub ovmf: PathBuf,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub guest_features: Option<u64>,
    pub snp_ovmf_hash: Option<String>,
    pub svsm: Option<PathBuf>,
    pub vars_size: Option<u64>,
    pub base64: bool,
    /// Our extra: which EC2 VMSA to use (sev-snp-measure 0.0.13 has only 0x600).
    pub ec2_rdx: Option<Ec2VmsaRdx>,
}

fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

impl Invocation {
    /// Parses sev-snp-measure's flags (paths relative to `base`).
    pub fn parse(args: &[String], base: &Path) -> Invocation {
        let mut inv = Invocation::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().unwrap().clone();
            match flag.as_str() {
                "--mode" => inv.mode = value(),
                "--vcpus" => inv.vcpus = Some(num(&value()) as u32),
                "--vcpu-type" => inv.vcpu_type = Some(value()),
                "--vcpu-sig" => inv.vcpu_sig = Some(num(&value()) as u32),
                "--vcpu-family" => inv.vcpu_fms.get_or_insert((0, 0, 0)).0 = num(&value()) as u32,
                "--vcpu-model" => inv.vcpu_fms.get_or_insert((0, 0, 0)).1 = num(&value()) as u32,
                "--vcpu-stepping" => inv.vcpu_fms.get_or_insert((0, 0, 0)).2 = num(&value()) as u32,
                "--vmm-type" => inv.vmm = Some(value()),
                "--ovmf" => inv.ovmf = base.join(value()),
                "--kernel" => inv.kernel = Some(base.join(value())),
                "--initrd" => inv.initrd = Some(base.join(value())),
                "--append" => inv.append = Some(value()),
                "--guest-features" => inv.guest_features = Some(num(&value())),
                "--snp-ovmf-hash" => inv.snp_ovmf_hash = Some(value()),
                "--svsm" => inv.svsm = Some(base.join(value())),
                "--vars-size" => inv.vars_size = Some(num(&value())),
                "--output-format" => inv.base64 = value() == "base64",
                other => panic!("unexpected flag {other}"),
            }
        }
        inv
    }

    /// The command line for sev-snp-measure.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["--mode".to_string(), self.mode.clone()];
        let mut push = |f: &str, v: String| {
            a.push(f.into());
            a.push(v);
        };
        if let Some(v) = self.vcpus {
            push("--vcpus", v.to_string());
        }
        if let Some(v) = &self.vcpu_type {
            push("--vcpu-type", v.clone());
        }
        if let Some(v) = self.vcpu_sig {
            push("--vcpu-sig", format!("{v:#x}"));
        }
        if let Some((f, m, s)) = self.vcpu_fms {
            push("--vcpu-family", f.to_string());
            push("--vcpu-model", m.to_string());
            push("--vcpu-stepping", s.to_string());
        }
        if let Some(v) = &self.vmm {
            push("--vmm-type", v.clone());
        }
        push("--ovmf", self.ovmf.display().to_string());
        if let Some(v) = &self.kernel {
            push("--kernel", v.display().to_string());
        }
        if let Some(v) = &self.initrd {
            push("--initrd", v.display().to_string());
        }
        if let Some(v) = &self.append {
            // `--append=…`: a value starting with '-' must not be taken for a flag.
            a.push(format!("--append={v}"));
        }
        if let Some(v) = self.guest_features {
            a.push("--guest-features".into());
            a.push(format!("{v:#x}"));
        }
        if let Some(v) = &self.snp_ovmf_hash {
            a.push("--snp-ovmf-hash".into());
            a.push(v.clone());
        }
        if let Some(v) = &self.svsm {
            a.push("--svsm".into());
            a.push(v.display().to_string());
        }
        if let Some(v) = self.vars_size {
            a.push("--vars-size".into());
            a.push(v.to_string());
        }
        if self.base64 {
            a.push("--output-format".into());
            a.push("base64".into());
        }
        a
    }

    fn vcpu_type(&self) -> VcpuType {
        if let Some((f, m, s)) = self.vcpu_fms {
            VcpuType::from_family_model_stepping(f, m, s).unwrap()
        } else if let Some(sig) = self.vcpu_sig {
            VcpuType::Signature(sig)
        } else if let Some(t) = &self.vcpu_type {
            VcpuType::from_name(t).unwrap()
        } else {
            // EC2/GCE: the VMSA ignores it.
            VcpuType::Signature(0)
        }
    }

    fn vmm(&self) -> Vmm {
        match self.vmm.as_deref().unwrap_or("QEMU") {
            "QEMU" => Vmm::Qemu,
            "gce" => Vmm::Gce,
            "ec2" => Vmm::Ec2(self.ec2_rdx.unwrap_or(Ec2VmsaRdx::Value0x600)),
            other => panic!("vmm {other}"),
        }
    }

    /// What our library computes, formatted as sev-snp-measure prints it; errors as text.
    pub fn ours(&self) -> Result<String, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let ovmf = Ovmf::parse(&read(&self.ovmf)?).map_err(|e| e.to_string())?;
        let digest = match self.mode.as_str() {
            "snp:ovmf-hash" => snpkit_measure::ovmf_hash(&ovmf),
            "snp:svsm" => {
                let svsm =
                    Svsm::parse(&read(self.svsm.as_ref().unwrap())?).map_err(|e| e.to_string())?;
                let config = SvsmConfig {
                    vcpus: snpkit_measure::vcpus(self.vcpus.unwrap()).map_err(|e| e.to_string())?,
                    vcpu_type: self.vcpu_type(),
                    vars_size: self.vars_size.unwrap(),
                };
                snpkit_measure::svsm_launch_digest(&ovmf, &svsm, &config)
                    .map_err(|e| e.to_string())?
            }
            "snp" => {
                let firmware = match &self.snp_ovmf_hash {
                    Some(h) => Firmware::with_ovmf_hash(
                        &ovmf,
                        LaunchDigest::from_hex(h).map_err(|e| e.to_string())?,
                    ),
                    None => Firmware::measure(&ovmf),
                };
                let kernel = match &self.kernel {
                    None => None,
                    Some(k) => {
                        let initrd = match &self.initrd {
                            Some(i) => read(i)?,
                            None => Vec::new(),
                        };
                        let cmdline = self.append.clone().unwrap_or_default();
                        Some(
                            KernelHashes::compute(&read(k)?, &initrd, cmdline.as_bytes())
                                .map_err(|e| e.to_string())?,
                        )
                    }
                };
                let config = LaunchConfig {
                    vcpus: snpkit_measure::vcpus(self.vcpus.unwrap()).map_err(|e| e.to_string())?,
                    vcpu_type: self.vcpu_type(),
                    vmm: self.vmm(),
                    guest_features: GuestFeatures::new(self.guest_features.unwrap_or(1))
                        .map_err(|e| e.to_string())?,
                };
                snpkit_measure::launch_digest(&firmware, kernel.as_ref(), &config)
                    .map_err(|e| e.to_string())?
            }
            other => return Err(format!("mode {other} is not ours")),
        };
        Ok(if self.base64 {
            digest.to_base64()
        } else {
            digest.to_hex()
        })
    }
}
