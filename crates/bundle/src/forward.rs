//! Inbound port forwards of an appliance's network (`[network] forward = ["tcp:8080:80"]`), as the
//! recipe spells them and the manifest stores them.
//!
//! The host side of a forward is always 127.0.0.1: the type has no field for the host address,
//! so neither a recipe nor an edited manifest can ask for 0.0.0.0 or another interface. A
//! spelling with an address (`tcp:0.0.0.0:8080:80`) is refused by name, so the mistake is not
//! mistaken for a typo.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The host address every forward listens on.
pub const FORWARD_HOST: &str = "127.0.0.1";

/// The transport a forward carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ForwardProtocol {
    Tcp,
    Udp,
}

impl ForwardProtocol {
    /// `tcp` or `udp`, as the recipe and QEMU's `hostfwd=` spell it.
    pub fn name(self) -> &'static str {
        match self {
            ForwardProtocol::Tcp => "tcp",
            ForwardProtocol::Udp => "udp",
        }
    }
}

/// `host 127.0.0.1:<host_port>` → `guest :<guest_port>` over `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Forward {
    pub protocol: ForwardProtocol,
    /// 1 to 65535.
    pub host_port: u16,
    /// 1 to 65535.
    pub guest_port: u16,
}

/// Why a forward's spelling was refused; the text names what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadForward {
    #[error("{0:?} is not PROTOCOL:HOST_PORT:GUEST_PORT (e.g. \"tcp:8080:80\")")]
    Shape(String),
    #[error("{0:?}: the protocol must be \"tcp\" or \"udp\"")]
    Protocol(String),
    #[error(
        "{0:?} names a host address: forwards always listen on 127.0.0.1 only (never 0.0.0.0 or another interface); write PROTOCOL:HOST_PORT:GUEST_PORT"
    )]
    HostAddress(String),
    #[error("{spelled:?}: the {side} port {port:?} is not a port number from 1 to 65535")]
    Port {
        spelled: String,
        side: &'static str,
        port: String,
    },
}

fn port(spelled: &str, side: &'static str, text: &str) -> Result<u16, BadForward> {
    // Digits only: `+80`, ` 80` and `0x50` are not how anyone means a port.
    let valid = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u16>() {
        Ok(p) if valid && p != 0 => Ok(p),
        _ => Err(BadForward::Port {
            spelled: spelled.to_owned(),
            side,
            port: text.to_owned(),
        }),
    }
}

impl FromStr for Forward {
    type Err = BadForward;

    fn from_str(s: &str) -> Result<Forward, BadForward> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() == 4 || s.contains('.') || s.contains('[') {
            return Err(BadForward::HostAddress(s.to_owned()));
        }
        let [protocol, host, guest] = parts[..] else {
            return Err(BadForward::Shape(s.to_owned()));
        };
        let protocol = match protocol {
            "tcp" => ForwardProtocol::Tcp,
            "udp" => ForwardProtocol::Udp,
            _ => return Err(BadForward::Protocol(s.to_owned())),
        };
        Ok(Forward {
            protocol,
            host_port: port(s, "host", host)?,
            guest_port: port(s, "guest", guest)?,
        })
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.protocol.name(),
            self.host_port,
            self.guest_port
        )
    }
}

impl Serialize for Forward {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Forward {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Forward, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The first forward whose host side repeats an earlier one's (the same protocol and host port:
/// QEMU could bind only one of them).
pub fn duplicate_forward(forwards: &[Forward]) -> Option<&Forward> {
    forwards.iter().enumerate().find_map(|(i, f)| {
        forwards[..i]
            .iter()
            .any(|g| g.protocol == f.protocol && g.host_port == f.host_port)
            .then_some(f)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn good_forwards_parse_and_print_back() {
        for s in ["tcp:8080:80", "udp:5353:53", "tcp:1:65535"] {
            let f: Forward = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        let f: Forward = "tcp:8080:80".parse().unwrap();
        assert_eq!(
            (f.protocol, f.host_port, f.guest_port),
            (ForwardProtocol::Tcp, 8080, 80)
        );
    }

    #[test]
    fn bad_forwards_are_refused_by_kind() {
        let bad = |s: &str| s.parse::<Forward>().unwrap_err();
        for s in [
            "tcp:0.0.0.0:8080:80",
            "tcp:127.0.0.1:8080:80",
            "tcp:0.0.0.0:8080",
            "tcp:[::]:8080:80",
        ] {
            assert!(matches!(bad(s), BadForward::HostAddress(_)), "{s}");
            assert!(bad(s).to_string().contains("127.0.0.1 only"), "{s}");
        }
        for s in ["tcp:8080", "8080:80", "", "tcp:8080:80:"] {
            assert!(
                matches!(bad(s), BadForward::Shape(_) | BadForward::HostAddress(_)),
                "{s}"
            );
        }
        for s in ["sctp:1:2", "TCP:1:2", ":1:2"] {
            assert!(matches!(bad(s), BadForward::Protocol(_)), "{s}");
        }
        for s in [
            "tcp:0:80",
            "tcp:80:0",
            "tcp:65536:80",
            "tcp:+80:80",
            "tcp: 80:80",
            "tcp:-1:80",
            "tcp::80",
            "tcp:000080:80",
        ] {
            assert!(matches!(bad(s), BadForward::Port { .. }), "{s}: {}", bad(s));
        }
    }

    #[test]
    fn serde_uses_the_same_strict_spelling() {
        let f: Vec<Forward> = serde_json::from_str(r#"["tcp:8080:80"]"#).unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"["tcp:8080:80"]"#);
        assert!(serde_json::from_str::<Vec<Forward>>(r#"["tcp:0.0.0.0:1:2"]"#).is_err());
    }

    #[test]
    fn the_same_host_port_twice_is_found() {
        let f = |s: &str| s.parse::<Forward>().unwrap();
        assert_eq!(
            duplicate_forward(&[f("tcp:8080:80"), f("udp:8080:80")]),
            None
        );
        assert_eq!(
            duplicate_forward(&[f("tcp:8080:80"), f("tcp:8081:80"), f("tcp:8080:81")]),
            Some(&f("tcp:8080:81"))
        );
    }
}
