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
