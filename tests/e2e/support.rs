//! What the end-to-end tests share: running xtask, temporary workspaces, reading images back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The xtask binary built for this test run (no `cargo run` in between).
pub fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// Runs a command, and on failure shows what it printed.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail, returning its stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed but succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of `recipes/<name>` (with its lock) in a fresh recipes folder, and an images folder.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn with_recipe(name: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &root().join("recipes").join(name),
            &dir.path().join("recipes").join(name),
        );
        std::fs::create_dir_all(dir.path().join(snpkit_bundle::IMAGES_DIR)).unwrap();
        Sandbox { dir }
    }

    pub fn recipes(&self) -> PathBuf {
        self.dir.path().join("recipes")
    }

    pub fn images(&self) -> PathBuf {
        self.dir.path().join(snpkit_bundle::IMAGES_DIR)
    }

    pub fn recipe_file(&self, name: &str) -> PathBuf {
        self.recipes().join(name).join("recipe.toml")
    }

    /// Rewrites `recipes/<name>/recipe.toml` with every `from` replaced by `to`; `from` must occur.
    pub fn edit_recipe(&self, name: &str, from: &str, to: &str) {
        let file = self.recipe_file(name);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(from), "{} has no {from:?}", file.display());
        std::fs::write(&file, text.replace(from, to)).unwrap();
    }

    /// Whether the images folder is still empty: a refused build wrote nothing.
    pub fn images_empty(&self) -> bool {
        std::fs::read_dir(self.images()).unwrap().next().is_none()
    }

    /// `cargo xtask <args> --recipes-dir … --images …`.
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = xtask();
        cmd.args(args);
        // Only build, lock and sign read recipes.
        if matches!(args.first(), Some(&"build" | &"lock" | &"sign")) {
            cmd.arg("--recipes-dir").arg(self.recipes());
        }
        cmd.arg("--images").arg(self.images());
        cmd
    }
}

/// Borrows each string, for argument lists built from owned paths.
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` (relative path → bytes), for byte-for-byte comparisons.
pub fn read_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

/// A loopback port nobody listens on now (another test on this machine may hold a fixed one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
