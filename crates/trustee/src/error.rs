/// Why an image's reference values cannot be written for Trustee.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("expected.json lists no launch config: build the image again")]
    NoConfigs,
    #[error(
        "expected.json has no launch config named {0:?}: pass one of its names to --config, or none for all"
    )]
    NoSuchConfig(String),
    #[error(
        "launch config {config:?} has guest policy {policy:#x}, which {what}: Trustee's default policy never \
         appraises such a guest as affirming, so no secret would ever be released to it; clear the bit in the \
         recipe's [[launch]] policy"
    )]
    Refused {
        config: String,
        policy: u64,
        what: &'static str,
    },
    #[error(
        "the launch configs differ in {field} ({first_config:?}: {first}, {other_config:?}: {other}), but Trustee's \
         default policy compares it to a single reference value: export one config with --config NAME"
    )]
    Disagree {
        field: &'static str,
        first_config: String,
        first: String,
        other_config: String,
        other: String,
    },
    #[error("resource {0:?} is not a KBS resource path <repository>/<type>/<tag>")]
    Resource(String),
    #[error("measurement {0:?} of expected.json is not 96 hex digits")]
    Measurement(String),
}
