//! Where snpkit's cache folder is, decided in one place for the builder, the verifier and xtask.
//!
//! The cache holds what snpkit can make or fetch again, outside any checkout so that clones,
//! worktrees and CI runs share it: `blobs/sha256/<hex>` (downloads, `snpkit-inputs`),
//! `ovmf/<input-hash>/` (firmware builds), `kds/` (AMD KDS answers, `snpkit-attest`),
//! `test-chain/` (the emulated PSP's keys), `oracles/` (the reference tools tests compare with),
//! `guest-target/` (the guest's build), `guest-init/<input-hash>` (the blob of the guest `/init` built
//! from those inputs). Owns only the location: what goes in each folder belongs to
//! the crate that writes it. Must not know anything else, so that depending on it costs nothing.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::PathBuf;

/// The cache folder: `$SNPKIT_CACHE`, else `$XDG_CACHE_HOME/snpkit`, else `~/.cache/snpkit`
/// (empty variables count as unset). `None` when none of the three is set.
pub fn root() -> Option<PathBuf> {
    root_from(|name| std::env::var_os(name))
}

fn root_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("SNPKIT_CACHE")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("snpkit")))
        .or_else(|| set("HOME").map(|h| h.join(".cache").join("snpkit")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(vars: &[(&str, &str)]) -> Option<PathBuf> {
        root_from(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn snpkit_cache_wins_then_xdg_then_home() {
        let all = [
            ("SNPKIT_CACHE", "/s"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(root_with(&all), Some(PathBuf::from("/s")));
        assert_eq!(root_with(&all[1..]), Some(PathBuf::from("/x/snpkit")));
        assert_eq!(
            root_with(&all[2..]),
            Some(PathBuf::from("/h/.cache/snpkit"))
        );
        assert_eq!(root_with(&[]), None);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let vars = [("SNPKIT_CACHE", ""), ("XDG_CACHE_HOME", ""), ("HOME", "/h")];
        assert_eq!(root_with(&vars), Some(PathBuf::from("/h/.cache/snpkit")));
        assert_eq!(root_with(&[("HOME", "")]), None);
    }
}
