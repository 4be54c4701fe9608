//! "Why doesn't my measurement match?": search the launch parameters for ones that reproduce a digest.
//!
//! The digest is a hash chain, so everything before the part that varies is computed once:
//! the OVMF pages once per firmware, the metadata pages (with the hashes page) once per firmware ×
//! boot variant × VMM, the two VMSA page hashes once per vCPU type × guest features, and then
//! each vCPU count costs one PAGE_INFO update (two SHA-384 blocks) on top of the previous count.

use std::ops::RangeInclusive;

use crate::config::{GuestFeatures, LaunchConfig, Vmm};
use crate::digest::{Gctx, LaunchDigest};
use crate::error::MeasureError;
use crate::hashes::{KernelHashes, cmdline_hash, hashes_page, sha256};
use crate::launch::{Firmware, VmsaHashes, metadata_pages};
use crate::vcpu::{CPU_MODELS, HOST_CPUS, VcpuType};

/// A firmware to try, with a label for the output (its file name, say).
#[derive(Debug, Clone)]
pub struct FirmwareCandidate<'a> {
    pub label: String,
    pub firmware: Firmware<'a>,
}

/// One way the kernel, initrd and cmdline may have reached QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootCandidate {
    /// What this variant is, e.g. `cmdline with a trailing space`.
    pub label: String,
    /// `None`: no hashes table (QEMU without `kernel-hashes=on`, or no `-kernel`).
    pub kernel: Option<KernelBoot>,
}

/// What QEMU was given in a direct kernel boot: enough to measure the variant again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBoot {
    pub hashes: KernelHashes,
    /// False when the variant leaves the initrd out (QEMU without `-initrd`).
    pub initrd: bool,
    /// The command line exactly as hashed (QEMU adds the NUL).
    pub cmdline: Vec<u8>,
}

impl BootCandidate {
    /// The given inputs and the variants people meet: without the initrd, and cmdlines with a
    /// trailing space, trimmed (as the `sev` crate hashes it), with/without a trailing newline,
    /// empty; and the launch without kernel hashes at all.
    pub fn variants(kernel: &[u8], initrd: &[u8], cmdline: &[u8]) -> Vec<BootCandidate> {
        let (kernel_hash, initrd_hash) = std::thread::scope(|s| {
            let k = s.spawn(|| sha256(kernel));
            let i = sha256(initrd);
            (k.join().unwrap_or_else(|_| sha256(kernel)), i)
        });
        let mut cmdlines: Vec<(String, Vec<u8>)> =
            vec![("cmdline as given".into(), cmdline.to_vec())];
        let mut push = |label: &str, c: Vec<u8>| {
            if !cmdlines.iter().any(|(_, have)| *have == c) {
                cmdlines.push((label.into(), c));
            }
        };
        push("cmdline with a trailing space", [cmdline, b" "].concat());
        push(
            "cmdline trimmed of surrounding whitespace",
            cmdline.trim_ascii().to_vec(),
        );
        push("cmdline with a trailing newline", [cmdline, b"\n"].concat());
        push(
            "cmdline without its trailing newline",
            cmdline.strip_suffix(b"\n").unwrap_or(cmdline).to_vec(),
        );
        push("empty cmdline", Vec::new());
        let empty = sha256(b"");
        let mut initrds = vec![("initrd as given", initrd_hash, true)];
        if initrd_hash != empty {
            initrds.push(("no initrd", empty, false));
        }
        let mut out = Vec::new();
        for (initrd_label, initrd, with_initrd) in &initrds {
            for (cmdline_label, c) in &cmdlines {
                // A cmdline with a NUL cannot have been passed by QEMU: not a candidate.
                let Ok(cmdline_hash) = cmdline_hash(c) else {
                    continue;
                };
                out.push(BootCandidate {
                    label: format!("kernel as given, {initrd_label}, {cmdline_label}"),
                    kernel: Some(KernelBoot {
                        hashes: KernelHashes {
                            kernel: kernel_hash,
                            initrd: *initrd,
                            cmdline: cmdline_hash,
                        },
                        initrd: *with_initrd,
                        cmdline: c.clone(),
                    }),
                });
            }
        }
        out.push(BootCandidate::firmware_only(
            "no kernel hashes table (kernel-hashes=off or no -kernel)",
        ));
        out
    }

    /// A launch without a hashes table: the SNP_KERNEL_HASHES pages are measured as zero pages.
    pub fn firmware_only(label: &str) -> BootCandidate {
        BootCandidate {
            label: label.into(),
            kernel: None,
        }
    }
}

/// The launch parameters to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSpace {
    pub vcpus: RangeInclusive<u32>,
    /// Tried for QEMU launches; EC2 and GCE VMSAs do not depend on the vCPU type.
    pub vcpu_types: Vec<VcpuType>,
    pub vmms: Vec<Vmm>,
    pub guest_features: Vec<GuestFeatures>,
}

/// Feature bits seen in practice on top of SNPActive: DebugSwap (KVM's default with the newer
/// init path), PreventHostIBS, BTBIsolation, SecureTSC, VmsaRegProt, SmtProtection.
const FEATURE_BITS: [u64; 6] = [0x20, 0x40, 0x80, 0x200, 0x4000, 0x8000];

impl SearchSpace {
    /// vCPUs 1..=512, one type per distinct CPU signature of QEMU's named models and of the real
    /// hosts in [`HOST_CPUS`] (as `-cpu host` passes them on), plus `extra_types`; every VMM and
    /// EC2 form; SNPActive with every combination of [`FEATURE_BITS`].
    pub fn wide(extra_types: &[VcpuType]) -> Self {
        let mut space = SearchSpace {
            vcpus: 1..=512,
            vcpu_types: Vec::new(),
            vmms: Vmm::ALL.to_vec(),
            guest_features: Vec::new(),
        };
        let named = CPU_MODELS.iter().map(|m| VcpuType::Model(*m));
        let hosts = HOST_CPUS.iter().map(|m| VcpuType::FamilyModelStepping {
            family: m.family,
            model: m.model,
            stepping: m.stepping,
        });
        for t in named.chain(hosts).chain(extra_types.iter().copied()) {
            space.add_vcpu_type(t);
        }
        for mask in 0..1u64 << FEATURE_BITS.len() {
            let bits = FEATURE_BITS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .fold(GuestFeatures::SNP_ACTIVE, |acc, (_, b)| acc | b);
            if let Ok(f) = GuestFeatures::new(bits) {
                space.add_guest_features(f);
            }
        }
        space
    }

    /// Adds a vCPU type unless one with the same CPUID signature (the only thing the VMSA keeps
    /// of it) is already there.
    pub fn add_vcpu_type(&mut self, vcpu_type: VcpuType) {
        if !self
            .vcpu_types
            .iter()
            .any(|have| have.signature() == vcpu_type.signature())
        {
            self.vcpu_types.push(vcpu_type);
        }
    }

    pub fn add_guest_features(&mut self, features: GuestFeatures) {
        if !self.guest_features.contains(&features) {
            self.guest_features.push(features);
        }
    }

    /// Makes sure `config` itself is searched: its vCPU count, type, VMM and guest features.
    pub fn include(&mut self, config: &LaunchConfig) {
        let n = config.vcpus.get();
        self.vcpus = (*self.vcpus.start()).min(n)..=(*self.vcpus.end()).max(n);
        self.add_vcpu_type(config.vcpu_type);
        if !self.vmms.contains(&config.vmm) {
            self.vmms.push(config.vmm);
        }
        self.add_guest_features(config.guest_features);
    }

    /// How many configurations a search of one firmware × boot variant tries.
    pub fn size(&self) -> u64 {
        let vcpus = vcpu_bounds(self).map_or(0, |(first, last)| u64::from(last - first + 1));
        let types: u64 = self
            .vmms
            .iter()
            .map(|v| match v {
                Vmm::Qemu => self.vcpu_types.len() as u64,
                _ => 1,
            })
            .sum();
        vcpus * types * self.guest_features.len() as u64
    }
}

/// A configuration that reproduces the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Index into the firmwares given to [`explain`].
    pub firmware: usize,
    /// Index into the boot variants given to [`explain`].
    pub boot: usize,
    pub config: LaunchConfig,
    /// False for EC2 and GCE, whose VMSAs ignore the vCPU type.
    pub vcpu_type_matters: bool,
}

/// What the search found and how much it tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    pub matches: Vec<Match>,
    /// Configurations whose digest was computed and compared.
    pub tried: u64,
    /// Firmware × boot variants that could not be tried, and why.
    pub skipped: Vec<String>,
}

/// Searches `space` over every firmware × boot variant for configurations whose digest is `target`.
pub fn explain(
    target: &LaunchDigest,
    firmwares: &[FirmwareCandidate<'_>],
    boots: &[BootCandidate],
    space: &SearchSpace,
) -> Explanation {
    let mut out = Explanation::default();
    let Some((first, last)) = vcpu_bounds(space) else {
        return out;
    };
    let target = target.as_bytes();
    for (fw_index, fw) in firmwares.iter().enumerate() {
        let ovmf = fw.firmware.ovmf();
        for (boot_index, boot) in boots.iter().enumerate() {
            let page = match boot
                .kernel
                .as_ref()
                .map(|k| hashes_page(ovmf, &k.hashes))
                .transpose()
            {
                Ok(page) => page,
                Err(e) => {
                    out.skipped
                        .push(format!("{} with {}: {e}", fw.label, boot.label));
                    continue;
                }
            };
            for &vmm in &space.vmms {
                let mut base = Gctx::from_seed(&fw.firmware.ovmf_hash());
                if let Err(e) = metadata_pages(&mut base, ovmf.sections(), page.as_ref(), vmm) {
                    out.skipped
                        .push(format!("{} with {}: {e}", fw.label, boot.label));
                    continue;
                }
                // EC2 and GCE VMSAs carry no CPU signature: one type stands for all.
                let any_type = [space
                    .vcpu_types
                    .first()
                    .copied()
                    .unwrap_or(VcpuType::Signature(0))];
                let types: &[VcpuType] = if vmm == Vmm::Qemu {
                    &space.vcpu_types
                } else {
                    &any_type
                };
                for &vcpu_type in types {
                    for &guest_features in &space.guest_features {
                        let mut config = LaunchConfig {
                            vcpus: crate::config::ONE,
                            vcpu_type,
                            vmm,
                            guest_features,
                        };
                        let vmsas = match VmsaHashes::snp(ovmf, &config) {
                            Ok(v) => v,
                            Err(e) => {
                                out.skipped.push(format!("{}: {e}", fw.label));
                                continue;
                            }
                        };
                        let mut gctx = base;
                        for n in 1..=last {
                            if n > 1 && vmsas.ap.is_none() {
                                out.skipped.push(format!(
                                    "{}: {}",
                                    fw.label,
                                    MeasureError::ZeroResetEip { vcpus: n }
                                ));
                                break;
                            }
                            vmsas.add(&mut gctx, n - 1);
                            if n < first {
                                continue;
                            }
                            out.tried += 1;
                            if gctx.ld() == target {
                                config.vcpus =
                                    crate::config::vcpus(n).unwrap_or(crate::config::ONE);
                                out.matches.push(Match {
                                    firmware: fw_index,
                                    boot: boot_index,
                                    config,
                                    vcpu_type_matters: vmm == Vmm::Qemu,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out.skipped.dedup();
    out
}

/// The vCPU counts to try, clamped to what a launch can have; `None` if there are none.
fn vcpu_bounds(space: &SearchSpace) -> Option<(u32, u32)> {
    let first = (*space.vcpus.start()).max(1);
    let last = (*space.vcpus.end()).min(crate::config::MAX_VCPUS);
    (first <= last).then_some((first, last))
}
