//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The rootforge binary under test.
pub fn rootforge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rootforge"))
}

/// The path of a verifier tool. A missing tool fails the test: CI installs
/// every one of them, and a silent skip would hide a broken image.
pub fn require_tool(name: &str) -> PathBuf {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&paths) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("required verifier tool `{name}` is not installed (run .ci/run or see README)");
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny corpus tarball from `../shared/corpus/make-corpus.sh`. CI builds
/// it (`.ci/run`); a missing corpus fails the test rather than skipping it.
pub fn tiny_corpus() -> PathBuf {
    let p = std::env::var_os("ROOTFORGE_TINY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/corpus/tiny.tar"));
    assert!(
        p.is_file(),
        "{} is missing: run `bash ../shared/corpus/make-corpus.sh target/corpus tiny` (as .ci/run does)",
        p.display()
    );
    p
}

/// Generates the corner-case tarball into `dir` and returns its path.
pub fn corner_tar(dir: &std::path::Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("corner.tar");
    let st = Command::new("python3")
        .arg(repo().join("tests/data/make-corner.py"))
        .arg(&out)
        .args(extra)
        .status()
        .unwrap();
    assert!(st.success(), "make-corner.py failed");
    out
}

/// The example rootfs the binary bundles.
pub fn example_tar() -> PathBuf {
    repo().join("example/rootfs.tar")
}

/// Runs a command and returns stdout, failing the test with stderr if it
/// does not succeed.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `rootforge inspect`'s listing of a file, one string per entry.
pub fn inspect(path: &std::path::Path) -> Vec<String> {
    let out = run(rootforge().arg("inspect").arg(path));
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Builds images of `input` into `out` with extra arguments.
pub fn build(input: &std::path::Path, out: &std::path::Path, args: &[&str]) {
    run(rootforge()
        .args(["build", "-q", "-o"])
        .arg(out)
        .arg(input)
        .args(args));
}

/// The canonical listing of a host directory (as extracted by a real tool),
/// read through rootforge's directory reader.
pub fn dir_listing(dir: &std::path::Path) -> Vec<String> {
    let opts = rootforge::input::Options::default();
    let loaded = rootforge::input::read_dir(dir, &opts).unwrap();
    rootforge::common::listing::of_view(&loaded.tree.view())
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Lines that differ between two listings, for readable failures.
pub fn diff(expected: &[String], actual: &[String]) -> String {
    let e: std::collections::BTreeSet<_> = expected.iter().collect();
    let a: std::collections::BTreeSet<_> = actual.iter().collect();
    let mut s = String::new();
    for l in e.difference(&a).take(20) {
        s.push_str(&format!("- {l}\n"));
    }
    for l in a.difference(&e).take(20) {
        s.push_str(&format!("+ {l}\n"));
    }
    s
}

/// Asserts two listings are equal, showing the difference.
pub fn assert_same(what: &str, expected: &[String], actual: &[String]) {
    assert!(
        expected == actual,
        "{what}: listings differ:\n{}",
        diff(expected, actual)
    );
}

/// Name and value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Every path's xattrs, as one of our readers gives them.
pub fn xattrs(tree: &rootforge::common::Tree) -> std::collections::BTreeMap<Vec<u8>, Vec<Pair>> {
    let view = tree.view();
    view.sorted_entries()
        .iter()
        .filter_map(|e| {
            let x = &view.inode(e.ino).xattrs;
            (!x.is_empty()).then(|| {
                let list = x
                    .iter()
                    .map(|x| (x.name.to_vec(), x.value.to_vec()))
                    .collect();
                (e.path.to_vec(), list)
            })
        })
        .collect()
}

/// The input tarball as our tar reader gives it.
pub fn tar_tree(input: &std::path::Path) -> rootforge::common::Tree {
    let data: rootforge::common::Backing = std::sync::Arc::new(std::fs::read(input).unwrap());
    let opts = rootforge::tar::ReadOptions {
        implicit_dir: rootforge::common::Meta::new(0o755, 0, 0, Default::default()),
        clamp_mtime: None,
        ..Default::default()
    };
    rootforge::tar::read(data, &opts).unwrap().tree
}
