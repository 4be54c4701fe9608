//! Ctrl-C for `boot --keep-running`: the first SIGINT or SIGTERM asks the appliance to stop
//! cleanly (the host's `Stop` frame), a second one leaves at once (QEMU dies with us through its
//! death signal). Tokio's signal driver installs the handlers, so no unsafe code is needed here.

use anyhow::Context;
use std::sync::mpsc::{Receiver, channel};

/// Exit status after a second Ctrl-C: 128 + SIGINT, as a shell reports it.
const INTERRUPTED: i32 = 130;

/// A receiver that gets one message at the first SIGINT or SIGTERM.
pub(crate) fn on_ctrl_c() -> anyhow::Result<Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal watcher")?;
    // Registered here, before the run starts, so a Ctrl-C during the boot is not lost.
    let (mut int, mut term) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("watching for SIGINT and SIGTERM")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let mut first = true;
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if first {
                    eprintln!("stopping the appliance (SIGTERM, then a grace period); Ctrl-C again to leave at once");
                    let _ = tx.send(());
                    first = false;
                } else {
                    std::process::exit(INTERRUPTED);
                }
            }
        });
    });
    Ok(rx)
}
