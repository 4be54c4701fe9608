#![allow(clippy::unwrap_used)]
use super::*;
use crate::tests::listing;
use snpkit_testkit::errors::chain_text as chain;
use std::cell::Cell;
use std::path::PathBuf;

/// Evidence in a kept entry: `<entry>/r1/report.bin`.
fn evidence(image: &Path, entry: &str) -> PathBuf {
    image.join(entry).join("r1").join("report.bin")
}

/// An image folder holding `a` = "1", a prediction and one boot run.
fn old_image(dir: &Path) -> PathBuf {
    let out = write_image(dir, "app", &[("a", b"1"), (files::EXPECTED, b"{}")]).unwrap();
    let out = out.path().to_owned();
    let run = evidence(&out, files::RUNS);
    std::fs::create_dir_all(run.parent().unwrap()).unwrap();
    std::fs::write(run, b"evidence").unwrap();
    out
}

fn assert_old_image_intact(dir: &Path, out: &Path) {
    assert_eq!(std::fs::read(out.join("a")).unwrap(), b"1");
    assert_eq!(std::fs::read(out.join(files::EXPECTED)).unwrap(), b"{}");
    assert_eq!(
        std::fs::read(evidence(out, files::RUNS)).unwrap(),
        b"evidence",
        "boot evidence must survive a failed build"
    );
    assert_eq!(listing(dir), ["app"], "no temporary folders left behind");
}

fn injected(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("injected failure"))
}

/// Writes `a` = "2" over the old image in `dir` with `renames`, which must fail; the error chain
/// as text.
fn failed_write(dir: &Path, kept: &[&str], renames: &Renames) -> String {
    let err = write_with(dir, "app", &[("a", b"2")], kept, renames).unwrap_err();
    chain(&err)
}

/// The name the old image is left under when it could not be put back.
fn kept_old_image(dir: &Path) -> String {
    listing(dir)
        .into_iter()
        .find(|n| n.starts_with(".app.new-"))
        .expect("the old image is kept under its temporary name")
}

#[test]
fn replaces_atomically_and_keeps_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image(dir.path());
    write_image(dir.path(), "app", &[("a", b"2")]).unwrap();
    assert_eq!(std::fs::read(out.join("a")).unwrap(), b"2");
    assert!(
        !out.join(files::EXPECTED).exists(),
        "old reference values must not survive a rebuild"
    );
    assert_eq!(
        std::fs::read(evidence(&out, files::RUNS)).unwrap(),
        b"evidence"
    );
    assert_eq!(
        listing(dir.path()),
        ["app"],
        "no temporary folders left behind"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&out), mode(&out.join("a"))), (0o755, 0o644));
}

#[test]
fn a_rebuild_keeps_sealed_volumes_beside_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image(dir.path());
    let image = ImageDir::new(dir.path(), "app");
    let volume = image.volume("data").unwrap();
    assert!(volume.starts_with(&out));
    crate::prepare_volume(&volume, 16 << 20).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&volume)
        .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, b"state", 4096))
        .unwrap();
    let before = std::fs::read(&volume).unwrap();
    write_image(dir.path(), "app", &[("a", b"2")]).unwrap();
    assert_eq!(std::fs::read(out.join("a")).unwrap(), b"2");
    assert_eq!(
        std::fs::read(&volume).unwrap(),
        before,
        "a rebuild must keep the volume byte for byte"
    );
    assert_eq!(
        std::fs::read(evidence(&out, files::RUNS)).unwrap(),
        b"evidence"
    );
    assert!(!crate::prepare_volume(&volume, 16 << 20).unwrap().created);
    assert_eq!(listing(&out), ["a", "runs", "volumes"]);
    assert_eq!(listing(dir.path()), ["app"]);
}

#[test]
fn a_failed_swap_keeps_the_old_image_and_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image(dir.path());
    let renames = Renames {
        exchange: injected,
        rename,
    };
    let err = failed_write(dir.path(), KEPT, &renames);
    assert!(err.contains("injected failure"), "{err}");
    assert_old_image_intact(dir.path(), &out);
}

#[test]
fn runs_that_cannot_move_bring_the_old_image_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image(dir.path());
    let renames = Renames {
        exchange,
        rename: injected,
    };
    let err = failed_write(dir.path(), KEPT, &renames);
    assert!(
        err.contains("runs") && err.contains("previous image is back in place"),
        "{err}"
    );
    assert_old_image_intact(dir.path(), &out);
}

thread_local! {
    static EXCHANGES: Cell<u32> = const { Cell::new(0) };
    static RENAMES: Cell<u32> = const { Cell::new(0) };
}

/// Counts one more call on `calls`; the count so far.
fn one_more(calls: &'static std::thread::LocalKey<Cell<u32>>) -> u32 {
    calls.with(|c| {
        c.set(c.get() + 1);
        c.get()
    })
}

/// The swap works, the swap back does not.
fn exchange_once(a: &Path, b: &Path) -> std::io::Result<()> {
    let n = one_more(&EXCHANGES);
    if n == 1 {
        exchange(a, b)
    } else {
        injected(a, b)
    }
}

#[test]
fn runs_are_never_deleted_even_when_nothing_can_be_undone() {
    let dir = tempfile::tempdir().unwrap();
    old_image(dir.path());
    let renames = Renames {
        exchange: exchange_once,
        rename: injected,
    };
    let err = failed_write(dir.path(), KEPT, &renames);
    let kept = kept_old_image(dir.path());
    assert!(err.contains(&kept) && err.contains("by hand"), "{err}");
    assert_eq!(
        std::fs::read(evidence(&dir.path().join(&kept), files::RUNS)).unwrap(),
        b"evidence"
    );
}

/// runs/ and volumes/ are kept; an ID block folder joins later. Every kept entry moves.
const TWO_KEPT: &[&str] = KEPT;

fn old_image_with_volumes(dir: &Path) -> PathBuf {
    let out = old_image(dir);
    let volume = evidence(&out, files::VOLUMES);
    std::fs::create_dir_all(volume.parent().unwrap()).unwrap();
    std::fs::write(volume, b"sealed").unwrap();
    out
}

#[test]
fn every_kept_entry_moves_to_the_new_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image_with_volumes(dir.path());
    write_with(dir.path(), "app", &[("a", b"2")], TWO_KEPT, &Renames::REAL).unwrap();
    assert_eq!(std::fs::read(out.join("a")).unwrap(), b"2");
    assert_eq!(
        std::fs::read(evidence(&out, files::VOLUMES)).unwrap(),
        b"sealed"
    );
    assert_eq!(
        std::fs::read(evidence(&out, files::RUNS)).unwrap(),
        b"evidence"
    );
    assert_eq!(listing(&out), ["a", "runs", "volumes"]);
    assert_eq!(listing(dir.path()), ["app"]);
}

/// The first kept entry moves, the second does not.
fn rename_once(a: &Path, b: &Path) -> std::io::Result<()> {
    let n = one_more(&RENAMES);
    if n == 1 { rename(a, b) } else { injected(a, b) }
}

#[test]
fn a_kept_entry_that_cannot_move_brings_the_others_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image_with_volumes(dir.path());
    // The first rename (runs/) works, the second (volumes/) fails, moving runs/ back works.
    fn first_and_third(a: &Path, b: &Path) -> std::io::Result<()> {
        let n = one_more(&RENAMES);
        if n == 2 { injected(a, b) } else { rename(a, b) }
    }
    let renames = Renames {
        exchange,
        rename: first_and_third,
    };
    let err = failed_write(dir.path(), TWO_KEPT, &renames);
    assert!(
        err.contains("volumes/") && err.contains("previous image is back in place"),
        "{err}"
    );
    assert_old_image_intact(dir.path(), &out);
    assert_eq!(
        std::fs::read(evidence(&out, files::VOLUMES)).unwrap(),
        b"sealed"
    );
}

#[test]
fn kept_entries_that_cannot_go_back_are_left_where_they_are_and_named() {
    let dir = tempfile::tempdir().unwrap();
    old_image_with_volumes(dir.path());
    let renames = Renames {
        exchange,
        rename: rename_once,
    };
    let err = failed_write(dir.path(), TWO_KEPT, &renames);
    let kept = kept_old_image(dir.path());
    assert!(
        err.contains("holds runs/") && err.contains(&kept) && err.contains("by hand"),
        "{err}"
    );
    // Nothing was deleted: runs/ in the new image, volumes/ in the kept old one.
    let new = dir.path().join("app");
    assert_eq!(
        std::fs::read(evidence(&new, files::RUNS)).unwrap(),
        b"evidence"
    );
    assert_eq!(
        std::fs::read(evidence(&dir.path().join(&kept), files::VOLUMES)).unwrap(),
        b"sealed"
    );
}

#[test]
fn names_outside_the_folder_or_of_kept_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (recipe, file) in [
        ("app", "../escape"),
        ("app", "a/b"),
        ("app", ""),
        ("app", ".."),
        ("app", files::RUNS),
        ("../app", "a"),
    ] {
        let err = write_image(dir.path(), recipe, &[(file, b"x")]).unwrap_err();
        assert!(
            matches!(err, BundleError::BadName { .. }),
            "{recipe} {file}: {err}"
        );
    }
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn a_full_disk_is_named_with_what_to_do() {
    let dir = Path::new("/srv/images");
    let full = std::io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32);
    let err = out_of_space(full, dir, files::KERNEL, 17_300_001).to_string();
    assert_eq!(
        err,
        "/srv/images/ is out of space writing vmlinuz (about 18 MB needed); free space and \
         rerun; the previous image is unchanged"
    );
    let other = std::io::Error::from_raw_os_error(nix::errno::Errno::EACCES as i32);
    assert!(matches!(
        out_of_space(other, dir, files::KERNEL, 1),
        BundleError::Write { .. }
    ));
}

#[test]
fn signed_identities_survive_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let image = ImageDir::new(dir.path(), "app");
    write_image(dir.path(), "app", &[("a", b"1")]).unwrap();
    let (block, auth) = ([7u8; 96], [8u8; 4096]);
    image
        .write_id(&[crate::IdPair {
            config: "c",
            block: &block,
            auth: &auth,
        }])
        .unwrap();
    write_image(dir.path(), "app", &[("a", b"2")]).unwrap();
    let kept = image.read_id("c").unwrap().expect("id/ kept");
    assert_eq!((kept.block, kept.auth), (block.to_vec(), auth.to_vec()));
    // A build never writes into id/ itself.
    let err = write_image(dir.path(), "app", &[(files::ID, b"x")]).unwrap_err();
    assert!(matches!(err, BundleError::BadName { .. }), "{err}");
}
