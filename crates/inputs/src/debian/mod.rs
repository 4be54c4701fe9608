//! Debian's package metadata: version order ([`version`]), relationship fields ([`relation`]),
//! the archive index apt has ([`index`]) and the dependency closure of a recipe's packages
//! ([`closure`]).

pub mod closure;
pub mod index;
pub mod relation;
pub mod version;
