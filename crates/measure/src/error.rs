//! Why a launch digest or a hashes page cannot be computed: one error for both, since the
//! hashes page is part of the launch digest and both read the same OVMF sections.

/// Why a launch digest cannot be computed for these inputs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MeasureError {
    #[error(
        "this OVMF has no SNP_KERNEL_HASHES section, so the firmware would not bind kernel, initrd and cmdline to the \
         measurement (anyone could swap them); use an AmdSev OVMF (`cargo xtask ovmf` builds one)"
    )]
    NoKernelHashesSection,
    #[error(
        "this OVMF has an SNP_KERNEL_HASHES section but no SEV hashes table entry (GUID 7255371f-…) in its footer table"
    )]
    NoHashTableEntry,
    #[error(
        "the OVMF's SEV hashes table area (base {base:#x}, size {size:#x}) is one QEMU refuses: base 0 or smaller than the table"
    )]
    HashTableArea { base: u32, size: u32 },
    #[error(
        "the SEV hashes table would sit at offset {offset:#x} of a {section_size:#x}-byte SNP_KERNEL_HASHES section, past its end"
    )]
    HashTableOutsideSection { offset: usize, section_size: u32 },
    #[error(
        "the OVMF's SNP_KERNEL_HASHES section is {size:#x} bytes; it must be one 4 KiB page to carry the hashes table \
         (every AmdSev OVMF has one page, and sev-snp-measure refuses other sizes): this firmware is malformed"
    )]
    KernelHashesSectionSize { size: u32 },
    #[error(
        "a hashes page of {found} bytes does not fit this OVMF's {expected}-byte SNP_KERNEL_HASHES section"
    )]
    HashesPageSize { expected: usize, found: usize },
    #[error(
        "the OVMF has no SEV-ES reset block (GUID 00f771de-…): SNP vCPUs cannot be started with it"
    )]
    NoResetBlock,
    #[error(
        "the OVMF's SEV-ES reset address is 0, so the {vcpus} vCPUs beyond the first have nowhere to start"
    )]
    ZeroResetEip { vcpus: u32 },
    #[error("the OVMF variable store size {vars_size:#x} is not a whole number of 4 KiB pages")]
    VarsSize { vars_size: u64 },
    #[error(
        "the SVSM image ({svsm_len:#x} bytes) does not fit below the OVMF at {ovmf_gpa:#x} and its {vars_size:#x}-byte variable store"
    )]
    SvsmPlacement {
        svsm_len: usize,
        ovmf_gpa: u64,
        vars_size: u64,
    },
}
