//! The exit statuses README.md documents, for every subcommand: 0 on
//! success, 1 on an error (with nothing left in the output directory), 2 on
//! a command line that does not parse.

use std::process::Output;

use crate::util::{repo, rootforge};

fn code(out: &Output) -> Option<i32> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out.status.code()
}

fn status(args: &[&str]) -> Option<i32> {
    code(&rootforge().args(args).output().unwrap())
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["build", "--no-such-option"],
        &["build", "-f", "zip"],
        &["build", "--jobs", "many"],
        &["inspect"],
        &["inspect", "a", "b"],
        &["buildroot", "-o", "out"],
    ] {
        assert_eq!(status(args), Some(2), "rootforge {args:?}");
    }
}

#[test]
fn help_and_version_exit_with_0() {
    for args in [&["--help"][..], &["--version"], &["build", "--help"]] {
        assert_eq!(status(args), Some(0), "rootforge {args:?}");
    }
}

#[test]
fn success_and_errors_of_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    assert_eq!(status(&["build", "-q", "-f", "tar", "-o", o]), Some(0));
    let image = out.join("rootfs.tar");
    assert_eq!(status(&["inspect", image.to_str().unwrap()]), Some(0));

    let missing = dir.path().join("missing.tar");
    let m = missing.to_str().unwrap();
    let empty = dir.path().join("empty");
    assert_eq!(
        status(&["build", "-q", "-o", empty.to_str().unwrap(), m]),
        Some(1)
    );
    assert!(!empty.exists() || std::fs::read_dir(&empty).unwrap().next().is_none());
    assert_eq!(status(&["inspect", m]), Some(1));
    let not_image = repo().join("README.md");
    assert_eq!(status(&["inspect", not_image.to_str().unwrap()]), Some(1));

    let config = dir.path().join(".config");
    std::fs::write(&config, "BR2_TARGET_ROOTFS_TAR=y\n").unwrap();
    let target = dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("hello"), b"hi\n").unwrap();
    let br = |target: &std::path::Path| {
        status(&[
            "buildroot",
            "-q",
            "--config",
            config.to_str().unwrap(),
            "--target-dir",
            target.to_str().unwrap(),
            "-o",
            dir.path().join("images").to_str().unwrap(),
        ])
    };
    assert_eq!(br(&target), Some(0));
    assert!(dir.path().join("images/rootfs.tar").is_file());
    assert_eq!(br(&dir.path().join("no-such-target")), Some(1));
}
