//! A SHA-256 checksum as snpkit's files write it (manifest, lock file): 64 lowercase hex digits.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Sum(pub [u8; 32]);

impl Sha256Sum {
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Sum({self})")
    }
}

/// Why a string is not a SHA-256 checksum; the caller adds which key it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSha256(pub String);

impl fmt::Display for BadSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected 64 hex digits (a SHA-256), found {:?}", self.0)
    }
}

impl std::error::Error for BadSha256 {}

impl FromStr for Sha256Sum {
    type Err = BadSha256;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(BadSha256(s.to_owned()));
        }
        Ok(Self(out))
    }
}

impl Serialize for Sha256Sum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Sum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hex() {
        let hex = "69c92f43b23821de79576fa4d7c86e2924ae2c1b247a47cc5ed9339e220fbcb7";
        let sum: Sha256Sum = hex.parse().expect("valid");
        assert_eq!(sum.to_string(), hex);
    }

    #[test]
    fn refuses_wrong_length_and_non_hex() {
        assert!("abc".parse::<Sha256Sum>().is_err());
        assert!("g".repeat(64).parse::<Sha256Sum>().is_err());
        assert!("a".repeat(63).parse::<Sha256Sum>().is_err());
    }

    #[test]
    fn of_empty_is_the_well_known_value() {
        assert_eq!(
            Sha256Sum::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
