//! The `[network]` table: a virtio NIC on QEMU's user network, with `restrict=on` (the guest
//! cannot reach out) and inbound forwards from the host's 127.0.0.1 only.
//!
//! ```toml
//! [network]
//! forward = ["tcp:8080:80"]   # host 127.0.0.1:8080 → guest port 80
//! address = "10.0.2.15/24"    # the default; must lie in QEMU's user network 10.0.2.0/24
//! ```
//!
//! The forwards' spelling is the manifest's ([`snpkit_bundle::Forward`]), which has no room for a
//! host address; here they are also checked for repeats. The address is static: `/init` sets it
//! itself rather than ask the host's DHCP server, whose answers the guest must not trust.

use crate::RecipeError;
use crate::model::{DEFAULT_GUEST_ADDRESS, NetworkSpec, USER_NET, USER_NET_PREFIX};
use crate::raw::RawNetwork;
use snpkit_bundle::{Forward, duplicate_forward};
use std::net::Ipv4Addr;
use std::path::Path;

/// Forwards one appliance may ask for: enough for any service, few enough to read in a manifest.
const MAX_FORWARDS: usize = 32;

pub(crate) fn check(file: &Path, raw: &RawNetwork) -> Result<NetworkSpec, RecipeError> {
    let err =
        |key: String, problem: String, fix: &str| RecipeError::invalid(file, key, problem, fix);
    if raw.forward.len() > MAX_FORWARDS {
        return Err(err(
            "network.forward".into(),
            format!("{} forwards", raw.forward.len()),
            &format!("forward at most {MAX_FORWARDS} ports"),
        ));
    }
    let forward = raw
        .forward
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<Forward>().map_err(|e| {
                err(
                    format!("network.forward[{i}]"),
                    e.to_string(),
                    "write \"tcp:HOST_PORT:GUEST_PORT\" (or udp), e.g. \"tcp:8080:80\"; the host side is always 127.0.0.1",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(twice) = duplicate_forward(&forward) {
        let i = forward.iter().rposition(|f| f == twice).unwrap_or_default();
        return Err(err(
            format!("network.forward[{i}]"),
            format!(
                "host port {}/{} is forwarded twice",
                twice.host_port,
                twice.protocol.name()
            ),
            "give each forward its own host port",
        ));
    }
    let address = match &raw.address {
        None => DEFAULT_GUEST_ADDRESS,
        Some(text) => address(text).map_err(|problem| {
            err(
                "network.address".into(),
                problem,
                "write an address of QEMU's user network with its prefix, e.g. \"10.0.2.15/24\" (.2 is the host, .3 its DNS)",
            )
        })?,
    };
    Ok(NetworkSpec { forward, address })
}

/// `A.B.C.D/24` inside QEMU's user network, not its network, host, DNS or broadcast address.
fn address(text: &str) -> Result<Ipv4Addr, String> {
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(format!("{text:?} has no prefix length"));
    };
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    if prefix != USER_NET_PREFIX.to_string() {
        return Err(format!(
            "prefix /{prefix}: QEMU's user network is {USER_NET}/{USER_NET_PREFIX}"
        ));
    }
    let mask = u32::MAX << (32 - u32::from(USER_NET_PREFIX));
    if u32::from(addr) & mask != u32::from(USER_NET) {
        return Err(format!(
            "{addr} is outside QEMU's user network {USER_NET}/{USER_NET_PREFIX}"
        ));
    }
    let host = u32::from(addr) & !mask;
    if matches!(host, 0 | 2 | 3 | 255) {
        return Err(format!(
            "{addr} is the user network's own (network, host, DNS or broadcast address)"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(forward: &[&str], address: Option<&str>) -> RawNetwork {
        RawNetwork {
            forward: forward.iter().map(|s| s.to_string()).collect(),
            address: address.map(str::to_owned),
        }
    }

    fn problem(forward: &[&str], address: Option<&str>) -> String {
        check(Path::new("r/recipe.toml"), &raw(forward, address))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_network_is_checked_with_defaults() {
        let n = check(
            Path::new("r.toml"),
            &raw(&["tcp:8080:80", "udp:8080:53"], None),
        )
        .unwrap();
        assert_eq!(n.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(n.forward.len(), 2);
        let n = check(Path::new("r.toml"), &raw(&[], Some("10.0.2.20/24"))).unwrap();
        assert_eq!(n.address, Ipv4Addr::new(10, 0, 2, 20));
    }

    #[test]
    fn bad_forwards_name_their_key_and_the_rule() {
        let e = problem(&["tcp:8080:80", "tcp:0.0.0.0:8081:80"], None);
        assert!(
            e.contains("network.forward[1]") && e.contains("127.0.0.1 only"),
            "{e}"
        );
        let e = problem(&["tcp:0:80"], None);
        assert!(
            e.contains("network.forward[0]") && e.contains("from 1 to 65535"),
            "{e}"
        );
        let e = problem(&["tcp:8080:70000"], None);
        assert!(e.contains("guest port"), "{e}");
        let e = problem(&["icmp:1:1"], None);
        assert!(e.contains("\"tcp\" or \"udp\""), "{e}");
        let e = problem(&["tcp:8080:80", "tcp:9090:90", "tcp:8080:81"], None);
        assert!(
            e.contains("network.forward[2]") && e.contains("forwarded twice"),
            "{e}"
        );
        let many: Vec<String> = (1..=33).map(|p| format!("tcp:{p}:80")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(problem(&many, None).contains("at most 32"));
    }

    #[test]
    fn bad_addresses_are_refused() {
        for (a, want) in [
            ("10.0.2.15", "no prefix"),
            ("10.0.2.15/16", "prefix /16"),
            ("192.168.1.5/24", "outside"),
            ("10.0.2.2/24", "host, DNS"),
            ("10.0.2.3/24", "host, DNS"),
            ("10.0.2.255/24", "host, DNS"),
            ("10.0.2.x/24", "not an IPv4"),
        ] {
            let e = problem(&[], Some(a));
            assert!(
                e.contains("network.address") && e.contains(want),
                "{a}: {e}"
            );
        }
    }
}
