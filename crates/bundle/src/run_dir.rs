//! Boot runs: `runs/<id>/`, their ids, files and life cycle.
//!
//! A run is written into `runs/<id>.partial/`. When it passes, `run.json` is written last and the
//! folder is renamed to `runs/<id>/`: a run folder without a suffix is always complete. When it
//! fails (or the process unwinds), the folder becomes `runs/<id>.failed/`, kept for its console
//! log. Readers look only at folders with a `run.json`.

use crate::limits::{Limit, write_file};
use crate::run_files::{FAILED_SUFFIX as FAILED, PARTIAL_SUFFIX as PARTIAL};
use crate::{BundleError, RunRecord, run_files};
use snpkit_fsguard::sync_dir;
use std::path::{Path, PathBuf};

/// A run's name under `runs/`: `<unix seconds>-<pid>` for runs `boot` makes, so they sort by
/// time. Ids given on the command line may be any plain name (`run-a`), never a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(String);

impl RunId {
    /// Sortable, unique enough for one machine: UTC seconds plus the process id.
    pub fn now() -> RunId {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        RunId(format!(
            "{}-{:06}",
            now.as_secs(),
            std::process::id() % 1_000_000
        ))
    }

    /// A run id as a user types it: letters, digits, `-`, `_`, `.`; not a path, not hidden, and
    /// not a kept failed or partial run (those have no evidence to read).
    pub fn parse(id: &str) -> Result<RunId, BundleError> {
        let bad = |why| BundleError::BadRunId {
            id: id.to_owned(),
            why,
        };
        if id.is_empty() || id.len() > 128 {
            return Err(bad("a run id has 1 to 128 characters"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(bad(
                "a run id is letters, digits, '-', '_' and '.' (a name under runs/, not a path)",
            ));
        }
        if id.starts_with('.') {
            return Err(bad("a run id does not start with '.'"));
        }
        if id.ends_with(PARTIAL) || id.ends_with(FAILED) {
            return Err(bad(
                "that run did not finish: its folder keeps the console log, not evidence",
            ));
        }
        Ok(RunId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The certificates a run keeps in `certs/`, named as snpguest names them (`ark.pem`, …), so the
/// folder can be handed to AMD's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertName {
    Ark,
    Ask,
    Asvk,
    Vcek,
    Vlek,
    /// The ARK-signed revocation list.
    Crl,
}

impl CertName {
    /// The file name without extension; readers of a `--certs` folder accept `.pem` and `.der`.
    pub fn stem(self) -> &'static str {
        match self {
            CertName::Ark => "ark",
            CertName::Ask => "ask",
            CertName::Asvk => "asvk",
            CertName::Vcek => "vcek",
            CertName::Vlek => "vlek",
            CertName::Crl => "crl",
        }
    }

    /// The name `boot` writes: `<stem>.pem`.
    pub fn pem_file(self) -> String {
        format!("{}.pem", self.stem())
    }
}

/// One run folder (finished, or in the making as [`PartialRun::dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    /// A run folder anywhere, e.g. one brought from another machine.
    pub fn at(dir: impl Into<PathBuf>) -> RunDir {
        RunDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `run.json`.
    pub fn record(&self) -> PathBuf {
        self.dir.join(run_files::RECORD)
    }

    /// The raw report, as snpguest writes it.
    pub fn report(&self) -> PathBuf {
        self.dir.join(run_files::REPORT)
    }

    /// The guest's public key, raw bytes.
    pub fn pubkey(&self) -> PathBuf {
        self.dir.join(run_files::PUBKEY)
    }

    /// The guest's public key, hex and a newline, for people.
    pub fn pubkey_hex(&self) -> PathBuf {
        self.dir.join(run_files::PUBKEY_HEX)
    }

    /// The nonce sent to the guest, hex and a newline.
    pub fn nonce(&self) -> PathBuf {
        self.dir.join(run_files::NONCE)
    }

    /// The guest's serial console.
    pub fn console_log(&self) -> PathBuf {
        self.dir.join(run_files::CONSOLE_LOG)
    }

    /// The appliance's stdout and stderr, as its `AppLog` frames brought them (capped).
    pub fn appliance_log(&self) -> PathBuf {
        self.dir.join(run_files::APPLIANCE_LOG)
    }

    /// The SEV hashes page an emulated launch loads.
    pub fn hashes_page(&self) -> PathBuf {
        self.dir.join(run_files::HASHES_PAGE)
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.join(run_files::CERTS)
    }

    pub fn cert(&self, name: CertName) -> PathBuf {
        self.certs().join(name.pem_file())
    }

    /// `emulated-certs/`: where an emulated run keeps the emulated PSP's certificates.
    pub fn emulated_certs(&self) -> PathBuf {
        self.dir.join(run_files::EMULATED_CERTS)
    }

    /// Where a run launched as `launch` keeps certificate `name`: AMD's names in `certs/` for a
    /// real PSP's, `emulated-certs/emulated-<stem>.pem` for the emulated PSP's.
    pub fn cert_for(&self, launch: crate::RunLaunch, name: CertName) -> PathBuf {
        if launch.is_emulated() {
            self.emulated_certs()
                .join(format!("{}{}", run_files::EMULATED_PREFIX, name.pem_file()))
        } else {
            self.cert(name)
        }
    }

    /// The mark file of an emulated run.
    pub fn emulated_mark(&self) -> PathBuf {
        self.dir.join(run_files::EMULATED_MARK)
    }

    pub fn read_record(&self) -> Result<RunRecord, BundleError> {
        let path = self.record();
        RunRecord::from_json(&path, &Limit::RUN_RECORD.read(&path)?)
    }

    pub fn read_report(&self) -> Result<Vec<u8>, BundleError> {
        Limit::REPORT.read(&self.report())
    }

    pub fn read_pubkey(&self) -> Result<Vec<u8>, BundleError> {
        Limit::PUBKEY.read(&self.pubkey())
    }

    /// The nonce file's text (hex); the caller parses it.
    pub fn read_nonce(&self) -> Result<Vec<u8>, BundleError> {
        Limit::NONCE.read(&self.nonce())
    }

    pub fn write_report(&self, report: &[u8]) -> Result<(), BundleError> {
        write_file(&self.report(), "report", report)
    }

    /// The key twice: raw (`pubkey.bin`, what verify reads) and hex (`pubkey`, for people).
    pub fn write_pubkey(&self, key: &[u8]) -> Result<(), BundleError> {
        write_file(&self.pubkey(), "public key", key)?;
        write_file(
            &self.pubkey_hex(),
            "public key (hex)",
            format!("{}\n", hex::encode(key)).as_bytes(),
        )
    }

    pub fn write_nonce(&self, nonce: &[u8]) -> Result<(), BundleError> {
        write_file(
            &self.nonce(),
            "nonce",
            format!("{}\n", hex::encode(nonce)).as_bytes(),
        )
    }

    /// Writes one certificate (PEM) where a run launched as `launch` keeps it ([`RunDir::cert_for`]).
    pub fn write_cert(
        &self,
        launch: crate::RunLaunch,
        name: CertName,
        pem: &[u8],
    ) -> Result<(), BundleError> {
        let path = self.cert_for(launch, name);
        if let Some(certs) = path.parent() {
            std::fs::create_dir_all(certs).map_err(BundleError::change("create", certs))?;
        }
        write_file(&path, "certificate", pem)
    }
}

/// A run in the making: `runs/<id>.partial/`. [`finish`](Self::finish) makes it `runs/<id>/`;
/// [`fail`](Self::fail), or dropping it, makes it `runs/<id>.failed/`.
#[derive(Debug)]
pub struct PartialRun {
    runs: PathBuf,
    id: RunId,
    dir: RunDir,
    open: bool,
}

impl PartialRun {
    pub(crate) fn start(runs: &Path, id: RunId) -> Result<PartialRun, BundleError> {
        std::fs::create_dir_all(runs).map_err(BundleError::change("create", runs))?;
        let dir = runs.join(format!("{id}{PARTIAL}"));
        // Not create_dir_all: a folder of that name already there is someone else's run.
        std::fs::create_dir(&dir).map_err(BundleError::change("create", &dir))?;
        Ok(PartialRun {
            runs: runs.to_owned(),
            id,
            dir: RunDir::at(dir),
            open: true,
        })
    }

    pub fn id(&self) -> &RunId {
        &self.id
    }

    /// Where the run's files go while it runs.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Writes `run.json` last and gives the run its final name.
    pub fn finish(mut self, record: &RunRecord) -> Result<RunDir, BundleError> {
        if record.launch.is_emulated() {
            write_file(
                &self.dir.emulated_mark(),
                "emulated run mark",
                b"This run was launched under snpkit's EMULATED PSP. Nothing in this folder is AMD's:\n\
                  the report is signed by snpkit's test chain (emulated-certs/) and proves nothing\n\
                  about hardware. snpkit verifies it only with --allow-emulated.\n",
            )?;
        }
        write_file(
            &self.dir.record(),
            "run record",
            record.to_json().as_bytes(),
        )?;
        sync_dir(self.dir.path(), "the run folder")?;
        let done = self.runs.join(self.id.as_str());
        std::fs::rename(self.dir.path(), &done)
            .map_err(BundleError::change("give the finished run its name", &done))?;
        self.open = false;
        sync_dir(&self.runs, "the folder of runs")?;
        Ok(RunDir::at(done))
    }

    /// Keeps the run as `runs/<id>.failed/` (for its console log) and returns it. Best effort:
    /// if the rename fails, the folder stays `.partial` and that one is returned.
    pub fn fail(mut self) -> RunDir {
        self.open = false;
        self.rename_failed()
    }

    fn rename_failed(&self) -> RunDir {
        let failed = self.runs.join(format!("{}{FAILED}", self.id));
        match std::fs::rename(self.dir.path(), &failed) {
            Ok(()) => RunDir::at(failed),
            Err(_) => self.dir.clone(),
        }
    }
}

impl Drop for PartialRun {
    fn drop(&mut self) {
        if self.open {
            self.rename_failed();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ImageDir;
    use crate::tests::{image, listing};

    #[test]
    fn a_finished_run_is_renamed_and_reads_back() {
        let (_keep, image) = image();
        let run = image.start_run().unwrap();
        let id = run.id().clone();
        assert_eq!(listing(&image.runs()), [format!("{id}.partial")]);
        let dir = run.dir().clone();
        dir.write_report(&[7u8; 1184]).unwrap();
        dir.write_pubkey(b"key").unwrap();
        dir.write_nonce(&[0xAB; 32]).unwrap();
        dir.write_cert(
            crate::RunLaunch::Snp,
            CertName::Vcek,
            b"-----BEGIN CERTIFICATE-----\n",
        )
        .unwrap();
        dir.write_cert(
            crate::RunLaunch::Emulated,
            CertName::Ark,
            b"-----BEGIN CERTIFICATE-----\n",
        )
        .unwrap();
        let record = crate::run_record::tests::record();
        let done = run.finish(&record).unwrap();
        assert_eq!(listing(&image.runs()), [id.to_string()]);
        assert_eq!(done, image.run(&id));
        assert_eq!(done.read_record().unwrap(), record);
        assert_eq!(done.read_report().unwrap(), [7u8; 1184]);
        assert_eq!(done.read_pubkey().unwrap(), b"key");
        assert_eq!(
            std::fs::read_to_string(done.pubkey_hex()).unwrap(),
            "6b6579\n"
        );
        assert_eq!(
            done.read_nonce().unwrap(),
            format!("{}\n", "ab".repeat(32)).as_bytes()
        );
        assert!(done.cert(CertName::Vcek).ends_with("certs/vcek.pem"));
        assert!(done.cert(CertName::Vcek).is_file());
        // The emulated PSP's under names no AMD tool reads, and the folder marked (the record
        // is of an emulated launch).
        let emulated = done.cert_for(crate::RunLaunch::Emulated, CertName::Ark);
        assert!(emulated.ends_with("emulated-certs/emulated-ark.pem"));
        assert!(emulated.is_file());
        assert!(!done.certs().join("ark.pem").exists());
        let mark = std::fs::read_to_string(done.emulated_mark()).unwrap();
        assert!(mark.contains("Nothing in this folder is AMD's"), "{mark}");
        assert_eq!(image.newest_run().unwrap(), done);
    }

    #[test]
    fn failed_and_abandoned_runs_are_kept_with_a_suffix_and_never_newest() {
        let (_keep, image) = image();
        let run = image.start_run().unwrap();
        std::fs::write(run.dir().console_log(), "panic").unwrap();
        let id = run.id().clone();
        let kept = run.fail();
        assert_eq!(kept.path(), image.runs().join(format!("{id}.failed")));
        assert_eq!(
            std::fs::read_to_string(kept.console_log()).unwrap(),
            "panic"
        );
        assert!(matches!(
            image.newest_run(),
            Err(BundleError::NoRuns { .. })
        ));
        // A run dropped on the way (an early return, an unwinding panic) fails the same way.
        std::fs::remove_dir_all(kept.path()).unwrap();
        drop(image.start_run().unwrap());
        let left = listing(&image.runs());
        assert!(left.len() == 1 && left[0].ends_with(".failed"), "{left:?}");
        let err = image.newest_run().unwrap_err().to_string();
        assert!(err.contains("cargo xtask boot"), "{err}");
    }

    #[test]
    fn the_newest_run_is_the_last_run_json_written() {
        let (_keep, image) = image();
        for (id, secs) in [("run-b", 100), ("run-a", 200), ("run-c", 50)] {
            let dir = image.run(&RunId::parse(id).unwrap());
            std::fs::create_dir_all(dir.path()).unwrap();
            std::fs::write(dir.record(), "{}").unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            std::fs::File::options()
                .write(true)
                .open(dir.record())
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        // A folder without run.json, however new, is not a run.
        std::fs::create_dir_all(image.runs().join("zzz")).unwrap();
        assert_eq!(
            image.newest_run().unwrap().path(),
            image.runs().join("run-a")
        );
    }

    #[test]
    fn starting_a_run_needs_an_image() {
        let images = tempfile::tempdir().unwrap();
        let err = ImageDir::new(images.path(), "gone")
            .start_run()
            .unwrap_err();
        assert!(err.to_string().contains("cargo xtask build gone"), "{err}");
        assert!(listing(images.path()).is_empty());
    }

    #[test]
    fn run_ids_are_names_never_paths() {
        for good in ["1735689600-012345", "run-a", "r_1.2"] {
            assert_eq!(RunId::parse(good).unwrap().as_str(), good);
        }
        let now = RunId::now();
        assert_eq!(RunId::parse(now.as_str()).unwrap(), now);
        let long = "a".repeat(129);
        for bad in [
            "",
            "../other",
            "a/b",
            "..",
            ".hidden",
            "run b",
            "run\n",
            "123.failed",
            "123.partial",
            long.as_str(),
        ] {
            assert!(RunId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Hostile run files: the reader refuses them instead of hanging or filling memory.
    #[test]
    fn hostile_run_files_are_refused() {
        let (_keep, image) = image();
        let dir = image.run(&RunId::parse("r1").unwrap());
        std::fs::create_dir_all(dir.path()).unwrap();
        nix::unistd::mkfifo(
            &dir.record(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let err = dir.read_record().unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        std::os::unix::fs::symlink("/dev/zero", dir.report()).unwrap();
        let err = dir.read_report().unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        std::fs::write(dir.nonce(), vec![b'0'; 2000]).unwrap();
        let err = dir.read_nonce().unwrap_err();
        assert!(err.to_string().contains("larger than 1 KiB"), "{err}");
    }
}
