#![allow(clippy::unwrap_used)]
use super::*;
use snpkit_testkit::errors::chain_text as chain;
use std::cell::Cell;
use std::path::PathBuf;

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

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
fn a_failed_swap_keeps_the_old_image_and_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image(dir.path());
    let renames = Renames {
        exchange: injected,
        rename,
    };
    let err = write_with(dir.path(), "app", &[("a", b"2")], KEPT, &renames).unwrap_err();
    assert!(chain(&err).contains("injected failure"), "{}", chain(&err));
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
    let err = write_with(dir.path(), "app", &[("a", b"2")], KEPT, &renames).unwrap_err();
    let err = chain(&err);
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

/// The swap works, the swap back does not.
fn exchange_once(a: &Path, b: &Path) -> std::io::Result<()> {
    let n = EXCHANGES.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
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
    let err = write_with(dir.path(), "app", &[("a", b"2")], KEPT, &renames).unwrap_err();
    let err = chain(&err);
    let kept = listing(dir.path())
        .into_iter()
        .find(|n| n.starts_with(".app.new-"))
        .expect("the old image is kept under its temporary name");
    assert!(err.contains(&kept) && err.contains("by hand"), "{err}");
    assert_eq!(
        std::fs::read(evidence(&dir.path().join(&kept), files::RUNS)).unwrap(),
        b"evidence"
    );
}

/// Later issues keep more than runs/ (sealed volumes, ID blocks): every kept entry moves.
const TWO_KEPT: &[&str] = &[files::RUNS, "volumes"];

fn old_image_with_volumes(dir: &Path) -> PathBuf {
    let out = old_image(dir);
    let volume = evidence(&out, "volumes");
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
    assert_eq!(std::fs::read(evidence(&out, "volumes")).unwrap(), b"sealed");
    assert_eq!(
        std::fs::read(evidence(&out, files::RUNS)).unwrap(),
        b"evidence"
    );
    assert_eq!(listing(&out), ["a", "runs", "volumes"]);
    assert_eq!(listing(dir.path()), ["app"]);
}

/// The first kept entry moves, the second does not.
fn rename_once(a: &Path, b: &Path) -> std::io::Result<()> {
    let n = RENAMES.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    if n == 1 { rename(a, b) } else { injected(a, b) }
}

#[test]
fn a_kept_entry_that_cannot_move_brings_the_others_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = old_image_with_volumes(dir.path());
    // The first rename (runs/) works, the second (volumes/) fails, moving runs/ back works.
    fn first_and_third(a: &Path, b: &Path) -> std::io::Result<()> {
        let n = RENAMES.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        if n == 2 { injected(a, b) } else { rename(a, b) }
    }
    let renames = Renames {
        exchange,
        rename: first_and_third,
    };
    let err = write_with(dir.path(), "app", &[("a", b"2")], TWO_KEPT, &renames).unwrap_err();
    let err = chain(&err);
    assert!(
        err.contains("volumes/") && err.contains("previous image is back in place"),
        "{err}"
    );
    assert_old_image_intact(dir.path(), &out);
    assert_eq!(std::fs::read(evidence(&out, "volumes")).unwrap(), b"sealed");
}

#[test]
fn kept_entries_that_cannot_go_back_are_left_where_they_are_and_named() {
    let dir = tempfile::tempdir().unwrap();
    old_image_with_volumes(dir.path());
    let renames = Renames {
        exchange,
        rename: rename_once,
    };
    let err = write_with(dir.path(), "app", &[("a", b"2")], TWO_KEPT, &renames).unwrap_err();
    let err = chain(&err);
    let kept = listing(dir.path())
        .into_iter()
        .find(|n| n.starts_with(".app.new-"))
        .expect("the old image is kept under its temporary name");
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
        std::fs::read(evidence(&dir.path().join(&kept), "volumes")).unwrap(),
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
