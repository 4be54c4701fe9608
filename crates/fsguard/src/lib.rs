//! Guards on the host files snpkit reads and writes: one mechanism each, shared by every command.
//!
//! Owns six rules that every edge of snpkit (the verifier's `--report`/`--crl`/…, `measure`'s
//! inputs, recipe sources, archives, the KDS cache, the guest's `/proc/cmdline`) applies the same
//! way:
//! - **Reads are bounded by counting bytes** ([`read`], [`Bounded`]), never by the size a file
//!   reports: devices, FIFOs and `/proc` files report 0 and then never end. Every limit is named
//!   in the error ([`FsError::TooLarge`]).
//! - **Only regular files are read where a file is expected** ([`open`]): the path is looked at
//!   first so a device is never opened, then the file is opened with `O_NONBLOCK` (a FIFO does not
//!   hang the open) and its type is checked again on the opened descriptor, so a swap in between
//!   is caught too. (The null device is the one exception: it reads as an empty file.)
//! - **Sources stay inside their folder** ([`confine`]): a path is resolved through every symlink
//!   and refused, naming where it leads, when it leaves the folder (a recipe's files must never
//!   carry the builder's own files into an image).
//! - **Writes are atomic** ([`write_atomic`]): a temporary file beside the target, synced and
//!   renamed, so a reader sees the old file or the new one, never a part.
//! - **Secrets are private** ([`PrivateDir`]): 0600 files in a 0700 folder, checked on every use
//!   and refused (with the `chmod` that fixes them), never quietly repaired.
//! - **No command writes onto one of its own inputs** ([`refuse_output_onto`], [`refuse_nested`]):
//!   outputs are compared with inputs by device and inode, so a symlink or a hard link to an input
//!   is caught as surely as the same path.
//!
//! Knows nothing of recipes, images or reports: callers say what a file is (`what`) and how much
//! of it they accept. Hand-written because it is small and exact: `fs-err` only adds paths to
//! errors, and `same-file` compares two paths, not an output with a set of opened inputs. Tiny on
//! purpose (thiserror, libc's flag constants and tempfile), so the static guest and the verifier can both
//! link it. No unsafe code: the flags go through `OpenOptionsExt`.
#![forbid(unsafe_code)]

mod confine;
mod error;
mod kind;
mod private;
mod read;
mod same;
mod write;

pub use confine::{confine, inside};
pub use error::{FsError, size_text};
pub use kind::FileKind;
pub use private::{Private, PrivateDir};
pub use read::{Bounded, Regular, open, read, read_string, stream_error};
pub use same::{FileId, Input, refuse_nested, refuse_output_onto};
pub use write::{sync_dir, write_atomic};
