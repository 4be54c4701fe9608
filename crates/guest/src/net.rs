//! Network interfaces: `lo` always, and the appliance's virtio NIC when the measured init config
//! names an address for it. Static only: nothing the host says (DHCP, router adverts) configures
//! the guest.
//!
//! Done with the three classic interface ioctls (SIOCSIFADDR, SIOCSIFNETMASK, SIOCGIFFLAGS /
//! SIOCSIFFLAGS) on an AF_INET socket rather than netlink: an address and "up" is all we set, and
//! the ioctls need no new dependency in a static PID 1 (`rtnetlink` would bring an async runtime,
//! `neli` a netlink stack) — the unsafe part is four `ioctl` calls on structs whose every byte is
//! set here. No route is added: QEMU's user network reaches the guest from 10.0.2.2, which is on
//! the NIC's own subnet, and `restrict=on` leaves nothing beyond it to route to.

use crate::console::say;
use anyhow::{Context, Result, bail};
use nix::libc;
use snpkit_wire::init::Network;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the NIC may take to appear once its driver is loaded.
const NIC_WAIT: Duration = Duration::from_secs(5);

/// Brings up `lo` (127.0.0.1/8) and, when `network` is set, the NIC with its static address.
pub fn up(network: Option<&Network>) -> Result<()> {
    // Any AF_INET socket carries the interface ioctls; binding needs no interface.
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).context("opening an inet socket")?;
    let fd = socket.as_raw_fd();
    configure(fd, "lo", Ipv4Addr::LOCALHOST, 8).context("bringing up lo")?;
    let Some(network) = network else {
        return Ok(());
    };
    if !(1..=30).contains(&network.prefix) {
        bail!(
            "the init config's network prefix /{} is not 1 to 30",
            network.prefix
        );
    }
    let name = wait_for_nic(Path::new("/sys/class/net"))?;
    configure(fd, &name, network.address, network.prefix)
        .with_context(|| format!("bringing up {name}"))?;
    say!("network: {name} is {}/{}", network.address, network.prefix);
    Ok(())
}

/// The NIC's name: the first interface but `lo` (there is one NIC; with no udev in the guest the
/// kernel's name, `eth0`, stays).
fn wait_for_nic(class: &Path) -> Result<String> {
    let start = Instant::now();
    loop {
        if let Some(name) = first_nic(class) {
            return Ok(name);
        }
        if start.elapsed() >= NIC_WAIT {
            bail!(
                "the image has a network, but no network interface appeared within {NIC_WAIT:?}: \
                 the host gave the guest no virtio NIC (boot it with `cargo xtask boot`, which adds \
                 one from the manifest's network)"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn first_nic(class: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(class)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().next()
}

fn ifreq(name: &str) -> Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        bail!("{name:?} is not an interface name");
    }
    // SAFETY: ifreq is plain old data (arrays and a union of integers and sockaddrs): all zeroes
    // is a valid value of it.
    #[allow(unsafe_code)]
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // sockaddr_in and sockaddr are both 16 bytes; the kernel reads the former from the latter.
    let mut out = libc::sockaddr {
        sa_family: sin.sin_family,
        sa_data: [0; 14],
    };
    let port_and_addr: Vec<u8> = sin
        .sin_port
        .to_ne_bytes()
        .into_iter()
        .chain(sin.sin_addr.s_addr.to_ne_bytes())
        .collect();
    for (dst, src) in out.sa_data.iter_mut().zip(port_and_addr) {
        *dst = src as libc::c_char;
    }
    out
}

fn netmask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
}

/// One interface ioctl on `req`.
fn ioctl(fd: i32, request: libc::c_ulong, req: &mut libc::ifreq, what: &str) -> Result<()> {
    // SAFETY: every request used here reads or writes one `struct ifreq`, which `req` is, whole
    // and initialised; the kernel does not keep the pointer.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(fd, request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).context(what.to_owned());
    }
    Ok(())
}

fn configure(fd: i32, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_addr = sockaddr(addr);
    ioctl(fd, libc::SIOCSIFADDR, &mut req, "setting the address")?;
    let mut req = ifreq(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr(netmask(prefix));
    ioctl(fd, libc::SIOCSIFNETMASK, &mut req, "setting the netmask")?;
    let mut req = ifreq(name)?;
    ioctl(fd, libc::SIOCGIFFLAGS, &mut req, "reading the flags")?;
    // SAFETY: SIOCGIFFLAGS has just filled the union's flags member.
    #[allow(unsafe_code)]
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    ioctl(fd, libc::SIOCSIFFLAGS, &mut req, "setting the interface up")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn netmasks_and_addresses_are_laid_out_as_the_kernel_reads_them() {
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(8), Ipv4Addr::new(255, 0, 0, 0));
        assert_eq!(netmask(30), Ipv4Addr::new(255, 255, 255, 252));
        let sa = sockaddr(Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(sa.sa_family, libc::AF_INET as libc::sa_family_t);
        let data: Vec<u8> = sa.sa_data.iter().map(|&c| c as u8).collect();
        assert_eq!(&data[..6], &[0, 0, 10, 0, 2, 15]);
        assert!(ifreq("eth0").is_ok());
        assert!(ifreq("").is_err());
        assert!(ifreq("a-very-long-ifname").is_err());
    }

    #[test]
    fn the_nic_is_the_first_interface_but_lo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lo")).unwrap();
        assert_eq!(first_nic(dir.path()), None);
        std::fs::create_dir(dir.path().join("eth0")).unwrap();
        assert_eq!(first_nic(dir.path()).as_deref(), Some("eth0"));
    }
}
