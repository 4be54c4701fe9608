//! What a dynamically linked program needs before it can start: its ELF interpreter
//! (`PT_INTERP`), the libraries it names (`DT_NEEDED`) and where it says to look for them
//! (`DT_RUNPATH`, `DT_RPATH`).
//!
//! Parsed with the `object` crate, which the workspace already uses for kernel modules: it reads
//! program headers and the dynamic section without copying, and refuses a malformed file with an
//! error instead of a panic (the image's files are input, not trusted).

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};

/// The loader's view of one x86-64 ELF object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Needs {
    /// The interpreter's absolute path; `None` for a static program or a library.
    pub interpreter: Option<String>,
    /// Library names in `DT_NEEDED` order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` entries, else `DT_RPATH` ones (the loader ignores RPATH when RUNPATH is set).
    pub search: Vec<String>,
}

/// Whether the bytes begin like an ELF file.
pub(crate) fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// The needs of an x86-64 program or shared object; `Ok(None)` for anything the guest's loader
/// does not load (another class or machine, relocatable objects such as kernel modules, core
/// files). `Err` says why the file is not a readable ELF file.
pub(crate) fn needs(data: &[u8]) -> Result<Option<Needs>, String> {
    let Ok(header) = elf::FileHeader64::<object::Endianness>::parse(data) else {
        // 32-bit or truncated: not an object the guest's 64-bit loader would map.
        return Ok(None);
    };
    let endian = header.endian().map_err(|e| e.to_string())?;
    let machine = header.e_machine(endian);
    let kind = header.e_type(endian);
    if machine != elf::EM_X86_64 || !matches!(kind, elf::ET_EXEC | elf::ET_DYN) {
        return Ok(None);
    }
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?;
    let mut out = Needs::default();
    for ph in segments {
        if let Some(interp) = ph.interpreter(endian, data).map_err(|e| e.to_string())? {
            out.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let Some((dynamics, link)) = sections.dynamic(endian, data).map_err(|e| e.to_string())? else {
        return Ok(Some(out));
    };
    let strings = sections
        .strings(endian, data, link)
        .map_err(|e| e.to_string())?;
    let (mut runpath, mut rpath) = (Vec::new(), Vec::new());
    for d in dynamics {
        let tag = d.d_tag(endian);
        if tag == elf::DT_NULL {
            break;
        }
        if tag != elf::DT_NEEDED && tag != elf::DT_RUNPATH && tag != elf::DT_RPATH {
            continue;
        }
        let value = d.string(endian, strings).map_err(|e| e.to_string())?;
        let value = String::from_utf8_lossy(value).into_owned();
        if tag == elf::DT_NEEDED {
            out.needed.push(value);
        } else if tag == elf::DT_RUNPATH {
            runpath.extend(value.split(':').map(str::to_owned));
        } else {
            rpath.extend(value.split(':').map(str::to_owned));
        }
    }
    out.search = if runpath.is_empty() { rpath } else { runpath };
    out.search.retain(|s| !s.is_empty());
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Real programs of the build machine: a dynamic one and (where Debian's busybox-static or
    /// the toolchain's static init exists) none is needed here, the libc's loader is.
    #[test]
    fn reads_a_real_dynamic_program() {
        let ls = std::fs::read("/bin/ls").unwrap();
        let n = needs(&ls).unwrap().unwrap();
        assert_eq!(
            n.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert!(n.needed.iter().any(|l| l == "libc.so.6"), "{n:?}");
        // The C library itself: a shared object, no interpreter needed by the loader.
        let libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let n = needs(&libc).unwrap().unwrap();
        assert!(n.needed.iter().any(|l| l.starts_with("ld-linux")), "{n:?}");
    }

    #[test]
    fn a_program_built_here_with_a_runpath() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("m.c");
        std::fs::write(&src, "int main(void){return 0;}\n").unwrap();
        let out = dir.path().join("m");
        let status = std::process::Command::new("cc")
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .arg("-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib:/opt/x")
            .status();
        let Ok(status) = status else {
            eprintln!("no C compiler: skipping");
            return;
        };
        assert!(status.success());
        let n = needs(&std::fs::read(&out).unwrap()).unwrap().unwrap();
        assert_eq!(n.search, ["$ORIGIN/../lib", "/opt/x"]);
        assert_eq!(n.needed, ["libc.so.6"]);
    }

    #[test]
    fn what_the_loader_does_not_load_is_skipped_and_garbage_is_not_a_panic() {
        assert!(!is_elf(b"#!/bin/sh\n"));
        // A truncated header, a 32-bit class byte, random bytes behind the magic.
        for data in [&b"\x7fELF"[..], b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0"] {
            assert_eq!(needs(data).unwrap(), None);
        }
        let ls = std::fs::read("/bin/ls").unwrap();
        for cut in [64, 200, 1000, ls.len() / 2] {
            // Either an error or a partial reading; never a panic.
            let _ = needs(&ls[..cut]);
        }
    }
}
