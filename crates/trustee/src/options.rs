//! What the operator decides for an export.

/// Choices the image cannot make for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Export one launch config of `expected.json`; all of them when `None`.
    pub config: Option<String>,
    /// Whether the fleet's hosts run with SMT enabled (PLATFORM_INFO bit 0).
    pub smt_enabled: Option<bool>,
    /// Whether the fleet's hosts run with TSME enabled (PLATFORM_INFO bit 1).
    pub tsme_enabled: Option<bool>,
}
