//! End-to-end tests: drive the `xtask` binary the way a user does.

mod verify;
