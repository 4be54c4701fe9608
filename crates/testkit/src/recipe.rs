//! Small valid recipes (recipe.toml text) for tests that need one and then change a line or two.

/// The launch table of the fixtures: one EPYC-v4 vCPU under QEMU, SNP active, policy 0x30000
/// (SMT allowed, reserved bit 17 set, no debug), 512 MiB.
pub const LAUNCH: &str = r#"[[launch]]
name = "one"
vcpus = 1
vcpu_type = "EPYC-v4"
vmm = "qemu"
guest_features = 1
policy = 0x30000
memory_mib = 512
"#;

/// A minimal recipe named `app`: Debian's `linux-image-amd64`, the AmdSev firmware, an empty
/// cmdline, `argv0` as the entry point, `tables` (e.g. `[[files]]` or `[[directories]]`) before
/// `[entry]`, and [`LAUNCH`].
pub fn app(argv0: &str, tables: &str) -> String {
    format!(
        r#"
name = "app"
cmdline = ""
[kernel]
package = "linux-image-amd64"
[firmware]
source = "amdsev"
{tables}[entry]
argv = ["{argv0}"]
{LAUNCH}"#
    )
}
