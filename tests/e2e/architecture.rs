//! The crate boundaries of docs/architecture.md, checked against `cargo`: the table's "must not
//! depend on" column (transitively, with `cargo tree`), the arrows block (every direct dependency
//! among the workspace's crates, exactly, with `cargo metadata`), and that no two files of a crate
//! use each other. The document is the one source: a crate added to the workspace without its row
//! and arrow fails here.

use crate::support::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo tree` over normal edges only, one package per line, as a set of crate names.
fn normal_tree(select: &[&str]) -> BTreeSet<String> {
    let mut args = vec![
        "tree", "--edges", "normal", "--prefix", "none", "--format", "{p}",
    ];
    args.extend_from_slice(select);
    cargo(&args)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every crate `package` pulls in through normal dependencies, itself included.
fn transitive_deps(package: &str) -> BTreeSet<String> {
    normal_tree(&["--package", package])
}

/// Every crate that pulls in `package` through normal dependencies, itself included.
fn users_of(package: &str) -> BTreeSet<String> {
    normal_tree(&["--invert", package])
}

/// The workspace's packages and, for each, its direct normal dependencies among them.
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let meta: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"])).unwrap();
    let packages = meta["packages"]
        .as_array()
        .expect("cargo metadata packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                // `kind` is null for normal dependencies, "dev" or "build" otherwise.
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| names.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

fn architecture_md() -> String {
    std::fs::read_to_string(root().join("docs/architecture.md")).unwrap()
}

/// The text of section `## title` of docs/architecture.md, up to the next `## `.
fn section(doc: &str, title: &str) -> String {
    let start = doc
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("docs/architecture.md has no `## {title}` section"));
    let body = &doc[start + title.len() + 5..];
    body[..body.find("\n## ").unwrap_or(body.len())].to_owned()
}

/// The names written in backticks in a table cell.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The table's rows: crate → what it must not depend on.
fn must_not(doc: &str) -> BTreeMap<String, Vec<String>> {
    let mut rows = BTreeMap::new();
    for line in section(doc, "Crates and what they must not know").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| crate | owns | must not depend on |` splits into five cells, the outer two empty.
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let name = backticked(cells[1]).concat();
        let previous = rows.insert(name.clone(), backticked(cells[3]));
        assert!(previous.is_none(), "{name} has two rows in the table");
    }
    assert!(!rows.is_empty(), "no rows read from the table");
    rows
}

/// The arrows block: crate → its direct dependencies among the workspace's crates.
fn arrows(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let text = section(doc, "Arrows");
    let block = text
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the Arrows section has a ```text block");
    let mut arrows = BTreeMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (from, to) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("arrow line without →: {line:?}"));
        let to: BTreeSet<String> = to
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let from = from.trim().to_owned();
        let previous = arrows.insert(from.clone(), to);
        assert!(previous.is_none(), "{from} has two arrow lines");
    }
    arrows
}

#[test]
fn every_crate_has_a_row_and_its_forbidden_dependencies_are_absent() {
    let graph = workspace_graph();
    let rows = must_not(&architecture_md());
    let members: BTreeSet<&String> = graph.keys().collect();
    let documented: BTreeSet<&String> = rows.keys().collect();
    assert_eq!(
        documented, members,
        "docs/architecture.md's table must have one row per workspace crate"
    );
    for (package, forbidden) in &rows {
        let deps = transitive_deps(package);
        assert!(deps.contains(package), "cargo tree did not list {package}");
        for f in forbidden {
            assert!(
                !deps.contains(f),
                "{package} must not depend on {f} (docs/architecture.md), but cargo tree lists it"
            );
        }
    }
}

/// The test-support crate serves tests and xtask's developer commands only: no shipped crate
/// links it.
#[test]
fn testkit_is_only_ever_a_dev_dependency() {
    let users = users_of("snpkit-testkit");
    assert!(
        users.iter().any(|n| n == "snpkit-testkit"),
        "cargo tree did not list snpkit-testkit: {users:?}"
    );
    for user in users {
        assert!(
            ["snpkit-testkit", "xtask"].contains(&user.as_str()),
            "{user} must take snpkit-testkit as a dev-dependency only"
        );
    }
}

/// Crates every other may use stay leaves: the test support, and the cache folder's location
/// (which the verifier shares with the builder without taking on its stack).
#[test]
fn leaf_crates_depend_on_nothing() {
    for leaf in ["snpkit-testkit", "snpkit-cache"] {
        assert_eq!(
            transitive_deps(leaf),
            BTreeSet::from([leaf.to_owned()]),
            "{leaf} must depend on nothing"
        );
    }
}

#[test]
fn the_arrows_in_the_docs_are_the_dependency_graph() {
    let graph = workspace_graph();
    let documented = arrows(&architecture_md());
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        graph.keys().collect::<Vec<_>>(),
        "docs/architecture.md's arrows must have one line per workspace crate"
    );
    for (package, deps) in &graph {
        assert_eq!(
            &documented[package], deps,
            "{package}'s direct dependencies differ from its line in docs/architecture.md's arrows"
        );
    }
}

#[test]
fn the_docs_name_only_paths_a_clone_has() {
    let doc = architecture_md();
    assert!(
        !doc.contains("../"),
        "docs/architecture.md points outside the repository"
    );
}

/// Source files of one crate, by module path (`verifier::chain` → its file).
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let last = parts.last().cloned().unwrap_or_default();
            // Test modules are not part of the crate's code; `examples/` is not under src/.
            if path.extension().is_none_or(|e| e != "rs") || last == "tests" {
                continue;
            }
            if ["mod", "lib", "main"].contains(&last.as_str()) {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// A file without its `#[cfg(test)]` items (a `mod tests { … }` block, a `mod tests;` line).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            // Skip the next item: to its `;`, or through its braces.
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                let code = l.split("//").next().unwrap_or("");
                depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
                opened |= code.contains('{');
                if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A file's code without comments and without `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    without_tests(text)
        .lines()
        .map(|l| format!("{}\n", l.split("//").next().unwrap_or("")))
        .collect()
}

/// The modules a file's `crate::…` and `super::…` paths lead to, following a facade's
/// `pub use child::{…}` re-exports to the child that defines the item.
fn uses(
    module: &[String],
    code: &str,
    files: &BTreeMap<Vec<String>, PathBuf>,
    facades: &BTreeMap<Vec<String>, String>,
) -> BTreeSet<Vec<String>> {
    let mut paths: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        for (at, _) in code.match_indices(prefix) {
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || "_:$".contains(c)) {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`: each member is a path.
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for member in group.split(',') {
                    let segs: Vec<String> = member.trim().split("::").map(ident).collect();
                    paths.push((base.clone(), segs));
                }
            } else {
                let mut segs = Vec::new();
                let mut r = rest;
                loop {
                    let id = ident(r);
                    if id.is_empty() {
                        break;
                    }
                    r = &r[id.len()..];
                    segs.push(id);
                    match r.strip_prefix("::") {
                        Some(more) => r = more,
                        None => break,
                    }
                }
                paths.push((base.clone(), segs));
            }
        }
    }
    let mut out = BTreeSet::new();
    for (base, segs) in paths {
        let mut target = base.clone();
        let mut used = 0;
        for (i, _) in segs.iter().enumerate() {
            let candidate: Vec<String> = base.iter().chain(&segs[..=i]).cloned().collect();
            if files.contains_key(&candidate) {
                target = candidate;
                used = i + 1;
            }
        }
        if let (Some(item), Some(facade)) = (segs.get(used), facades.get(&target)) {
            // `pub use child::{…, Item, …};` or `pub(crate) use child::Item;`
            for stmt in facade.split(';') {
                let Some(path) = stmt
                    .trim()
                    .strip_prefix("pub use ")
                    .or_else(|| stmt.trim().strip_prefix("pub(crate) use "))
                else {
                    continue;
                };
                let Some((child, names)) = path.split_once("::") else {
                    continue;
                };
                let mut child_path = target.clone();
                child_path.push(child.trim().to_owned());
                let named = names
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|n| n == item);
                if named && files.contains_key(&child_path) {
                    target = child_path;
                    break;
                }
            }
        }
        if target.as_slice() != module {
            out.insert(target);
        }
    }
    out
}

#[test]
fn no_two_files_of_a_crate_use_each_other() {
    let mut srcs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    srcs.push(root().join("xtask/src"));
    let mut circles = Vec::new();
    let mut edges_seen = 0;
    for src in srcs {
        let files = modules(&src);
        let code: BTreeMap<Vec<String>, String> = files
            .iter()
            .map(|(m, p)| (m.clone(), code_of(&std::fs::read_to_string(p).unwrap())))
            .collect();
        let facades: BTreeMap<Vec<String>, String> = files
            .iter()
            .filter(|(_, p)| {
                let stem = p.file_stem().unwrap_or_default();
                stem == "mod" || stem == "lib" || stem == "main"
            })
            .map(|(m, _)| (m.clone(), code[m].clone()))
            .collect();
        let edges: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> = files
            .keys()
            .map(|m| (m, uses(m, &code[m], &files, &facades)))
            .collect();
        edges_seen += edges.values().map(BTreeSet::len).sum::<usize>();
        for (a, targets) in &edges {
            for b in targets {
                // The crate root is everyone's facade; a child naming an item of its own parent
                // facade is the ordinary shape of a Rust module.
                if a.is_empty() || b.is_empty() || a.as_slice() >= b.as_slice() {
                    continue;
                }
                if edges.get(b).is_some_and(|back| back.contains(*a)) {
                    circles.push(format!(
                        "{}: {} <-> {}",
                        src.display(),
                        files[*a].display(),
                        files[b].display()
                    ));
                }
            }
        }
    }
    assert!(
        edges_seen > 100,
        "only {edges_seen} uses between files found: the scan is broken"
    );
    assert!(
        circles.is_empty(),
        "files that use each other (move what both need into a third, or into the lower one):\n{}",
        circles.join("\n")
    );
}

/// Files are small and named for what they hold: about 600 lines at most, tests aside (a
/// `#[cfg(test)]` module, a `tests.rs`, the crates' tests/ folders). The check fails a file at
/// 650, room for a file to grow while it waits for its split, not for a second subject.
#[test]
fn no_file_is_far_over_600_lines_of_code() {
    const LIMIT: usize = 650;
    let mut srcs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    srcs.push(root().join("xtask/src"));
    let mut sizes: Vec<(usize, PathBuf)> = srcs
        .iter()
        .flat_map(|src| modules(src).into_values())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (without_tests(&text).lines().count(), p)
        })
        .collect();
    sizes.sort();
    let (largest, _) = sizes.last().expect("source files found");
    assert!(
        *largest > 300,
        "the largest file has {largest} lines: the scan is broken"
    );
    let over: Vec<String> = sizes
        .iter()
        .filter(|(n, _)| *n > LIMIT)
        .map(|(n, p)| format!("{n:5} {}", p.display()))
        .collect();
    assert!(
        over.is_empty(),
        "split these along their seams (lines without tests; about 600 is the size of one subject):\n{}",
        over.join("\n")
    );
}

#[test]
fn every_library_opens_with_a_doc_header() {
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        let file = if lib.exists() { lib } else { main };
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! header saying what the crate owns",
            file.display()
        );
    }
}

/// The README's test command, `.ci/run` and the CI workflow's test job run the same thing, so a
/// green CI means what a user's `cargo xtask test` means.
#[test]
fn readme_ci_script_and_workflow_run_the_same_test_command() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let readme = read("README.md");
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .expect("README has a Quick start section");
    let block = quick
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the quick start has a sh block");
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands.len(),
        2,
        "the quick start is two commands: {commands:?}"
    );
    let test = commands[1];
    assert!(test.starts_with("cargo xtask test"), "{test}");

    let script = read(".ci/run");
    let last = script
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    assert_eq!(
        last,
        format!("exec {test}"),
        ".ci/run must end in the README's command"
    );

    let workflow = read(".github/workflows/ci.yml");
    let mut job = String::new();
    let mut inside = false;
    for line in workflow.lines() {
        // Jobs sit two spaces in: `  name:`.
        let is_job = line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':');
        if is_job {
            inside = line.trim() == "test:";
        } else if inside {
            job.push_str(line);
            job.push('\n');
        }
    }
    assert!(!job.is_empty(), "ci.yml has a `test` job");
    let runs: Vec<&str> = job
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run: "))
        .collect();
    assert_eq!(
        runs,
        [".ci/run"],
        "the test job runs .ci/run and nothing else"
    );
}
