//! Image formats, and building one image entirely in memory: for fuzzers
//! of filesystem drivers and image parsers, tests, and programs that embed
//! rootforge.

use rootforge_common::{Buffer, Report, Result, View};

pub use crate::format::Format;

/// Builds one image of `view` in memory with the format's default options:
/// no files, no threads beyond the current rayon pool.
///
/// ```
/// use rootforge::common::{Content, Edit, FileData, Inode, Meta, Replace, Time, TreeBuilder};
/// use rootforge::image::{build_in_memory, Format};
///
/// let root = Meta::new(0o755, 0, 0, Time::from_secs(0));
/// let mut tree = TreeBuilder::new(root);
/// let init = Inode::new(Meta::new(0o755, 0, 0, Time::from_secs(0)), Content::File(FileData::bytes(&b"#!/bin/sh\n"[..])));
/// tree.insert(b"init", init, Replace::Always)?;
/// let tree = tree.finish();
/// let (image, _report) = build_in_memory(&tree.view(), Format::Cpio)?;
/// assert_eq!(&image[..6], b"070701");
/// # Ok::<(), rootforge::common::Error>(())
/// ```
pub fn build_in_memory(view: &View<'_>, format: Format) -> Result<(Vec<u8>, Report)> {
    let mut out = Buffer::default();
    let report = format.encoder().write(view, &mut out)?;
    Ok((out.0, report))
}
