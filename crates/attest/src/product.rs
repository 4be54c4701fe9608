//! The SEV-SNP processor generations we hold AMD roots for.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An EPYC generation with SEV-SNP and its own AMD root of trust (ARK) on the KDS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Milan,
    Genoa,
    Turin,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The name AMD uses in KDS URLs and certificate names (`ARK-Milan`, `/vcek/v1/Milan/…`).
    pub fn kds_name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Lower-case name, as on the command line and in the roots folder.
    pub fn id(self) -> &'static str {
        match self {
            Product::Milan => "milan",
            Product::Genoa => "genoa",
            Product::Turin => "turin",
        }
    }

    pub fn from_id(name: &str) -> Option<Product> {
        Product::ALL
            .into_iter()
            .find(|p| p.id().eq_ignore_ascii_case(name))
    }

    /// The product whose chip reports this CPUID family and model (report v3+, 0x188/0x189).
    ///
    /// Uses the `sev` crate's table of models, which AMD's ABI documents per generation; generations
    /// we hold no roots for (Venice) come back as `None`.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match sev::Generation::identify_cpu(family, model).ok()? {
            sev::Generation::Milan => Some(Product::Milan),
            sev::Generation::Genoa => Some(Product::Genoa),
            sev::Generation::Turin => Some(Product::Turin),
            _ => None,
        }
    }

    /// Turin changed the TCB_VERSION layout (FMC first) and shortened CHIP_ID to 8 bytes.
    pub fn tcb_layout(self) -> TcbLayout {
        match self {
            Product::Milan | Product::Genoa => TcbLayout::PreTurin,
            Product::Turin => TcbLayout::Turin,
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kds_name())
    }
}

/// How the eight bytes of a TCB_VERSION are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcbLayout {
    /// Milan, Genoa: byte 0 BL, 1 TEE, 2–5 reserved, 6 SNP, 7 microcode.
    PreTurin,
    /// Turin: byte 0 FMC, 1 BL, 2 TEE, 3 SNP, 4–6 reserved, 7 microcode.
    Turin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuid_of_vector_reports_maps_to_product() {
        assert_eq!(Product::from_cpuid(0x19, 0x01), Some(Product::Milan));
        assert_eq!(Product::from_cpuid(0x19, 0x11), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x19, 0xA0), Some(Product::Genoa));
        assert_eq!(Product::from_cpuid(0x1A, 0x02), Some(Product::Turin));
        assert_eq!(Product::from_cpuid(0x17, 0x31), None);
        assert_eq!(Product::from_cpuid(0x19, 0x50), None);
    }

    #[test]
    fn ids_round_trip() {
        for p in Product::ALL {
            assert_eq!(Product::from_id(p.id()), Some(p));
        }
        assert_eq!(Product::from_id("Milan"), Some(Product::Milan));
        assert_eq!(Product::from_id("rome"), None);
    }
}
