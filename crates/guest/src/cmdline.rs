//! The kernel command line as `/init` sees it. The image builder already refuses options that
//! bypass `/init`; refusing them here again means a kernel, firmware or boot path that adds one
//! (a built-in command line, a boot loader) still does not get past us quietly.

use anyhow::{Context, Result, bail};
use snpkit_wire::cmdline::find_bypass;

/// Stops the boot if `/proc/cmdline` carries an option that bypasses `/init`.
pub fn refuse_bypass() -> Result<()> {
    let text = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    check(&text)
}

fn check(cmdline: &str) -> Result<()> {
    if let Some(word) = find_bypass(cmdline) {
        bail!(
            "the kernel command line carries `{word}`, which would bypass snpkit's /init or open a shell; \
             the image builder never puts it there, so refusing to run the appliance"
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
        let err = check("console=ttyS0 panic=-1 systemd.debug-shell=1\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("carries `systemd.debug-shell=1`, which would bypass"),
            "{err}"
        );
        for word in [
            "init=/bin/sh",
            "rdinit=/bin/sh",
            "rd.shell",
            "rd.break",
            "single",
            "emergency",
        ] {
            let err = check(&format!("quiet {word} panic=-1")).unwrap_err();
            assert!(err.to_string().contains(&format!("`{word}`")), "{err}");
        }
    }
}
