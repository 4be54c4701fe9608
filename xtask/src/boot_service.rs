//! What `boot` sets up and shows for a service beside the launch itself: the NIC from the
//! manifest's network, the relay to `--kbs` (checked before anything starts), the "appliance is
//! up" announcement of `--keep-running`, the appliance log's last lines and `--timing`'s stages.

use anyhow::bail;
use snpkit_bundle::Manifest;
use snpkit_qemu::{HostForward, HttpRelay, Nic};
use std::time::Duration;

/// The boot's stages by their first console line, on stderr.
pub fn show_timing(marks: &[(&str, Duration)], total: f64) {
    eprintln!("boot timing (host clock from QEMU's start; +stage length):");
    let mut last = 0.0;
    for (label, at) in marks {
        let at = at.as_secs_f64();
        eprintln!("  {at:6.2} s  (+{:5.2})  {label}", at - last);
        last = at;
    }
    eprintln!("  {total:6.2} s  (+{:5.2})  QEMU exited", total - last);
}

/// Says, on stderr, that a kept-running appliance is up and where to reach it.
pub fn announce_up(forwards: Option<&[HostForward]>) {
    eprintln!("the guest attested; the appliance is starting (Ctrl-C stops it cleanly)");
    for f in forwards.unwrap_or_default() {
        let proto = if f.udp { "udp" } else { "tcp" };
        eprintln!(
            "  {proto} 127.0.0.1:{} → guest port {}",
            f.host_port, f.guest_port
        );
    }
}

/// The appliance log's last lines (already printable), as lines for stderr.
pub fn app_log_section(log: &snpkit_qemu::AppLogEnd) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(e) = &log.write_error {
        let _ = writeln!(out, "could not write the run's appliance.log: {e}");
    }
    if log.bytes == 0 {
        return out;
    }
    let _ = writeln!(
        out,
        "appliance log ({} bytes{}; its last lines, control characters removed; all of it in the run's {}):",
        log.bytes,
        if log.left_out > 0 {
            format!(", {} left out of the file past its cap", log.left_out)
        } else {
            String::new()
        },
        snpkit_bundle::run_files::APPLIANCE_LOG
    );
    for line in log.tail.lines() {
        let _ = writeln!(out, "  | {line}");
    }
    out
}

/// The manifest's network as QEMU's NIC: the same forwards on SNP and emulated launches.
pub fn nic(network: &snpkit_bundle::ManifestNetwork) -> Nic {
    Nic {
        guest_address: network.address,
        forwards: network
            .forward
            .iter()
            .map(|f| HostForward {
                udp: f.protocol == snpkit_bundle::ForwardProtocol::Udp,
                host_port: f.host_port,
                guest_port: f.guest_port,
            })
            .collect(),
    }
}

/// The relay to `--kbs`, checked before anything starts: an image with secrets cannot pass
/// without a broker, so it is refused here rather than after a boot.
pub fn relay(
    manifest: &Manifest,
    recipe: &str,
    kbs: Option<&str>,
    capture: Option<&std::path::Path>,
) -> anyhow::Result<Option<HttpRelay>> {
    let Some(url) = kbs else {
        if let Some((volume, resource)) = manifest
            .volumes
            .iter()
            .find_map(|v| Some((&v.name, v.kbs.as_ref()?)))
        {
            bail!(
                "{}'s volume {volume} is keyed by a key broker (resource {resource}), and no broker \
                 was given: pass --kbs URL (see `cargo xtask kbs serve`)",
                recipe
            );
        }
        if let Some(first) = manifest.secrets.first() {
            let names: Vec<&str> = manifest.secrets.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "{} asks a key broker for {} secret(s) ({}; the first is resource {}), and no broker was given: \
                 start one (`cargo xtask kbs serve --listen 127.0.0.1:PORT --resources DIR --reference \
                 images/{}/expected.json`) and pass --kbs http://127.0.0.1:PORT",
                recipe,
                names.len(),
                names.join(", "),
                first.resource,
                recipe
            );
        }
        return Ok(None);
    };
    if manifest.secrets.is_empty() && manifest.volumes.iter().all(|v| v.kbs.is_none()) {
        eprintln!(
            "note: {} has no [[secrets]]; --kbs {url} will relay nothing",
            recipe
        );
    }
    let relay = HttpRelay::new(url)?;
    Ok(Some(match capture {
        Some(path) => relay.capture_to(path)?,
        None => relay,
    }))
}
