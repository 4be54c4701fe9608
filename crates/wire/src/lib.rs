//! The wire between guest and host: versioned, length-prefixed channel frames and the REPORT_DATA
//! binding of nonce and public key. Shared by the guest `/init` and the host; depends on nothing heavy
//! so the static guest binary stays small.
#![forbid(unsafe_code)]
