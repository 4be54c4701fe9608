//! The kernel command line as `/init` sees it. The image builder already refuses a command line
//! that bypasses `/init` or that its readers could read differently; judging `/proc/cmdline`
//! again, with the same tokenizer and rules (`snpkit_wire::cmdline::check`), means a kernel,
//! firmware or boot path that adds an option (a built-in command line, a boot loader, a
//! bootconfig) still does not get past us quietly.

use anyhow::{Result, bail};

/// `/proc/cmdline` is the kernel's copy: 2 KiB on x86, more with a bootconfig; anything beyond
/// this is not a command line.
const MAX_CMDLINE: u64 = 64 * 1024;

/// The kernel command line, read with a bound (procfs files report size 0).
pub fn read() -> Result<String> {
    Ok(snpkit_fsguard::read_string(
        std::path::Path::new("/proc/cmdline"),
        "the kernel command line",
        MAX_CMDLINE,
    )?)
}

/// Stops the boot if `/proc/cmdline` carries an option that bypasses `/init`, or bytes its
/// readers disagree on.
pub fn refuse_bypass() -> Result<()> {
    check(&read()?)
}

fn check(cmdline: &str) -> Result<()> {
    // procfs ends the line with a newline of its own.
    let line = cmdline.strip_suffix('\n').unwrap_or(cmdline);
    if let Err(problem) = snpkit_wire::cmdline::check(line.as_bytes(), false) {
        bail!(
            "the kernel command line is refused: {problem}; the image builder never puts that \
             there, so refusing to run the appliance"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bypass_options_stop_the_boot_with_their_name() {
        assert!(check("console=ttyS0 panic=-1 snpkit.appliance=hello\n").is_ok());
        assert!(check("console=ttyS0 panic=-1 initrd=initrd").is_ok());
        let err = check("console=ttyS0 panic=-1 systemd.debug-shell=1\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("`systemd.debug-shell=1` would bypass"),
            "{err}"
        );
        for word in [
            "init=/bin/sh",
            "rdinit=/bin/sh",
            "\"init=/bin/sh\"",
            "-- init=/bin/sh",
            "rd.shell",
            "rd.break",
            "single",
            "emergency",
        ] {
            let err = check(&format!("quiet {word} panic=-1")).unwrap_err();
            assert!(err.to_string().contains("bypass"), "{err}");
        }
        // Bytes that split words for the kernel and not for a naive reader.
        for line in ["quiet\x0binit=/bin/sh", "quiet\u{a0}init=/bin/sh", "a\tb"] {
            let err = check(line).unwrap_err();
            assert!(err.to_string().contains("refused"), "{err}");
        }
    }
}
