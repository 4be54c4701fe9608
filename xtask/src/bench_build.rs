//! `cargo xtask bench build`: our initramfs writer against the classic shell pipeline
//! `find | sort | cpio -o -H newc --reproducible | gzip -9`, on the same ≈200 MB tree, in one run.

use crate::bench_timing::median;
use anyhow::{Context, bail};
use snpkit_image::{Tree, cpio, gzip, import};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A deterministic tree shaped like an appliance: compressible text and configuration, binaries
/// that compress a little, already-compressed blobs, nested folders, symlinks.
fn make_tree(dir: &Path) -> anyhow::Result<u64> {
    let words: Vec<&str> =
        "the of and to in is that for it as with was on be by this are or from at \
        snpkit kernel module attestation report measurement firmware verity initramfs config error \
        return value struct impl fn let mut self pub use crate static const match"
            .split_whitespace()
            .collect();
    let mut state: u64 = 0x5eed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut total = 0u64;
    for i in 0..2000u64 {
        let sub = dir.join(format!("usr/share/app{}/part{}", i % 12, i % 7));
        std::fs::create_dir_all(&sub)?;
        let kind = i % 4;
        let len = 40_000 + (next() % 120_000) as usize;
        let data: Vec<u8> = match kind {
            // Text: words and numbers, compresses ~4×.
            0 | 1 => {
                let mut s = String::with_capacity(len + 16);
                while s.len() < len {
                    s.push_str(words[(next() as usize) % words.len()]);
                    s.push(if next() % 11 == 0 { '\n' } else { ' ' });
                }
                s.into_bytes()
            }
            // Binary-like: small alphabet runs, compresses ~2×.
            2 => (0..len).map(|_| (next() % 16) as u8 * 17).collect(),
            // Already compressed: random bytes.
            _ => (0..len).map(|_| next() as u8).collect(),
        };
        total += data.len() as u64;
        std::fs::write(sub.join(format!("file{i}.dat")), data)?;
        if i % 100 == 0 {
            std::os::unix::fs::symlink(
                format!("part{}/file{i}.dat", i % 7),
                dir.join(format!("usr/share/app{}/link{i}", i % 12)),
            )?;
        }
    }
    Ok(total)
}

/// Reading the tree and writing the cpio are single-threaded; `all_cores` says whether gzip may
/// use every core (the default) or only this thread (to compare with single-threaded gzip -9).
fn ours(dir: &Path, epoch: u32, all_cores: bool) -> anyhow::Result<Vec<u8>> {
    let mut tree = Tree::new();
    import::add_host_dir(&mut tree, dir, "/")?;
    let mut raw = Vec::with_capacity(tree.file_bytes() as usize + tree.len() * 256);
    cpio::write_newc(&tree, epoch, &mut raw)?;
    Ok(if all_cores {
        gzip::gzip(&raw, gzip::LEVEL)?
    } else {
        gzip::gzip_one_thread(&raw, gzip::LEVEL)?
    })
}

fn theirs(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let script = format!(
        "set -e -o pipefail; cd '{}'; find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet | gzip -9 -n > '{}'",
        dir.display(),
        out.display()
    );
    let status = Command::new("bash")
        .args(["-c", &script])
        .status()
        .context("running the cpio | gzip pipeline")?;
    if !status.success() {
        bail!(
            "find | sort | cpio | gzip -9 failed (are cpio and gzip installed? `cargo xtask setup`)"
        );
    }
    Ok(())
}

pub fn run(runs: usize) -> anyhow::Result<std::process::ExitCode> {
    let runs = runs.max(1);
    let work = tempfile::Builder::new()
        .prefix("snpkit-bench-build")
        .tempdir()?;
    let tree_dir = work.path().join("tree");
    let bytes = make_tree(&tree_dir)?;
    let entries = walk_count(&tree_dir);
    println!(
        "tree: {entries} entries, {:.1} MB of file data",
        bytes as f64 / 1e6
    );

    let (mut t_ours, mut t_one, mut t_theirs) = (Vec::new(), Vec::new(), Vec::new());
    let mut first: Option<Vec<u8>> = None;
    let theirs_out = work.path().join("theirs.cpio.gz");
    let mut theirs_size = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let out = ours(&tree_dir, 1_735_689_600, true)?;
        t_ours.push(start.elapsed());
        match &first {
            None => first = Some(out),
            Some(f) if *f != out => bail!("our output differs between runs: not reproducible"),
            Some(_) => {}
        }
        let start = Instant::now();
        let one = ours(&tree_dir, 1_735_689_600, false)?;
        t_one.push(start.elapsed());
        if first.as_ref() != Some(&one) {
            bail!("our single-thread output differs from the all-cores output");
        }
        let start = Instant::now();
        theirs(&tree_dir, &theirs_out)?;
        t_theirs.push(start.elapsed());
        theirs_size = std::fs::metadata(&theirs_out)?.len();
    }
    let ours_size = first.as_ref().map_or(0, Vec::len);
    let (o, one, t) = (median(t_ours), median(t_one), median(t_theirs));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{:<48} {:>9} {:>12}", "writer", "median", "output");
    println!(
        "{:<48} {:>8.2}s {:>11.1}M",
        format!("snpkit (tree + cpio newc + gzip -9, {cores} cores)"),
        o.as_secs_f64(),
        ours_size as f64 / 1e6
    );
    println!(
        "{:<48} {:>8.2}s {:>11.1}M",
        "snpkit, gzip on one thread",
        one.as_secs_f64(),
        ours_size as f64 / 1e6
    );
    println!(
        "{:<48} {:>8.2}s {:>11.1}M",
        "find | sort | cpio --reproducible | gzip -9",
        t.as_secs_f64(),
        theirs_size as f64 / 1e6
    );
    println!(
        "ratio: snpkit is {:.2}x faster on {cores} cores, {:.2}x on one thread ({runs} runs each, median; \
         our output identical across runs and thread counts)",
        t.as_secs_f64() / o.as_secs_f64(),
        t.as_secs_f64() / one.as_secs_f64()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    1 + if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk_count(&e.path())
                    } else {
                        0
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
