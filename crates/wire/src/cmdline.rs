//! Kernel command-line options that bypass snpkit's `/init`, shared by the recipe check (which
//! refuses to build an image with them) and `/init` itself (which refuses to go on when one shows
//! up in `/proc/cmdline` anyway: defence in depth, should a kernel or firmware add one).

/// Options that replace or bypass `/init` or ask for a shell, as their keys (before any `=`).
/// The attestation flow and the appliance's integrity live in `/init`, so none is ever allowed.
/// systemd reads `-` and `_` in a key alike, so its debug shell is listed in both spellings.
pub const BYPASS_OPTIONS: &[&str] = &[
    "init",
    "rdinit",
    "rd.shell",
    "rd.break",
    "rescue",
    "emergency",
    "single",
    "systemd.debug_shell",
    "systemd.debug-shell",
];

/// The first word of `cmdline` whose key is a bypass option.
pub fn find_bypass(cmdline: &str) -> Option<&str> {
    cmdline
        .split_ascii_whitespace()
        .find(|word| BYPASS_OPTIONS.contains(&word.split('=').next().unwrap_or(word)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_options_are_found_by_key() {
        for line in [
            "console=ttyS0 init=/bin/sh",
            "rdinit=/bin/sh quiet",
            "rd.shell",
            "rd.break=pre-mount",
            "single",
            "emergency",
            "systemd.debug-shell",
            "systemd.debug_shell=1",
            "rescue",
        ] {
            assert!(find_bypass(line).is_some(), "{line}");
        }
        assert_eq!(
            find_bypass("panic=-1 init=/bin/sh snpkit.x=1"),
            Some("init=/bin/sh")
        );
        for line in [
            "",
            "console=ttyS0 panic=-1 snpkit.appliance=hello",
            "initrd=x",
            "singleuser",
            "rd.shellx",
            "snpkit.verity=format=1,root=00",
        ] {
            assert_eq!(find_bypass(line), None, "{line}");
        }
    }
}
