//! Virtio-serial ports by name. Without udev there are no `/dev/virtio-ports/<name>` links:
//! the name is in `/sys/class/virtio-ports/vportNpM/name` and devtmpfs creates `/dev/vportNpM`.
//! Every path is taken under a root so tests can point it at a directory tree.
//!
//! The host names the ports, so a name says only which conversation the host offers there; it
//! never decides which report provider is trusted (see `provider.rs`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The device node of the port called `name`, if the host offers one.
pub fn find(root: &Path, name: &str) -> io::Result<Option<PathBuf>> {
    let class = root.join("sys/class/virtio-ports");
    let entries = match std::fs::read_dir(&class) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        // The name attribute is empty until the host has sent it.
        let Ok(port_name) = std::fs::read_to_string(entry.path().join("name")) else {
            continue;
        };
        if port_name.trim_end_matches('\n') == name {
            found.push(root.join("dev").join(entry.file_name()));
        }
    }
    // Deterministic if a host offers the same name twice: the lowest device wins.
    found.sort();
    Ok(found.into_iter().next())
}

/// Waits up to `wait` for the port to be announced (the host sends names just after boot).
pub fn wait_for(root: &Path, name: &str, wait: Duration) -> io::Result<Option<PathBuf>> {
    let start = Instant::now();
    loop {
        if let Some(path) = find(root, name)?
            && path.exists()
        {
            return Ok(Some(path));
        }
        if start.elapsed() >= wait {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
