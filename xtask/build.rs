//! Records the fingerprint of the guest's sources this binary is built with (see
//! `src/source_print.rs`), so `build` can tell when the sources it finds are not its own.

#[path = "src/source_print.rs"]
mod source_print;

fn main() {
    let manifest =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or(manifest);
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/source_print.rs");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    for dir in source_print::guest_crate_dirs(&root) {
        // A folder: cargo looks at every file under it.
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rustc-env=SNPKIT_GUEST_SOURCES={:016x}",
        source_print::fingerprint(&root)
    );
}
