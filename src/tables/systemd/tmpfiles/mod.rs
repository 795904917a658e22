//! `systemd-tmpfiles --create --boot` over the tree's own tmpfiles.d, with
//! the lines Buildroot's `fakeroot_tmpfiles.sh` filters out left out.
//!
//! [`parse`] turns the lines into typed entries, [`apply`] turns those
//! into edits of the tree.

mod apply;
mod parse;

use rootforge_common::Time;

use super::{SystemdError, config_files};
use crate::tables::{Origin, Target};
use apply::Plan;
use parse::{Context, parse_file};

/// Where tmpfiles.d files are read from, most important first.
const DIRS: [&[u8]; 4] = [
    b"etc/tmpfiles.d",
    b"run/tmpfiles.d",
    b"usr/local/lib/tmpfiles.d",
    b"usr/lib/tmpfiles.d",
];

/// A line that was read but not (fully) applied, and why: a specifier that
/// would leak the build host, a duplicate path, a type the tree cannot
/// represent, a tolerated (`-`) failure, or an object left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file and line.
    pub origin: Origin,
    /// Why it was skipped.
    pub reason: String,
}

/// Applies every tmpfiles.d line of the tree as Buildroot does at image
/// time: `systemd-tmpfiles --create --boot` (so `!` lines too), without the
/// lines for `/dev`, `/proc`, `/run`, `/sys`, `/tmp` and `/mnt` and the
/// ones using a specifier that would leak the build host. Names of owners
/// come from the tree's `/etc/passwd` and `/etc/group`. Created objects get
/// `mtime`; copies keep their source's.
///
/// Returns the lines skipped on the way. A malformed line, an unknown
/// owner, or a failure on a line without `-` is an error naming the file
/// and line.
pub fn apply_tmpfiles<T: Target + ?Sized>(
    t: &mut T,
    mtime: Time,
) -> Result<Vec<Skipped>, SystemdError> {
    let files = config_files(t, &DIRS, b".conf")?;
    let ctx = Context::load(t);
    let mut skipped = Vec::new();
    let mut plan = Plan::default();
    for file in &files {
        for item in parse_file(file, &ctx, &mut skipped)? {
            plan.add(item, &mut skipped);
        }
    }
    plan.run(t, mtime, &mut skipped)?;
    Ok(skipped)
}
