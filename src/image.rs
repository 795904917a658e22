//! Image formats, and building one image entirely in memory: for fuzzers
//! of filesystem drivers and image parsers, tests, and programs that embed
//! rootforge.

use std::fmt;
use std::str::FromStr;

use rootforge_common::{Buffer, Encoder, Report, Result, View};

/// The image formats rootforge writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Cpio,
    Ext2,
    Ext3,
    Ext4,
    Iso9660,
    Squashfs,
    Tar,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Cpio,
        Format::Ext2,
        Format::Ext3,
        Format::Ext4,
        Format::Iso9660,
        Format::Squashfs,
        Format::Tar,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Cpio => "cpio",
            Format::Ext2 => "ext2",
            Format::Ext3 => "ext3",
            Format::Ext4 => "ext4",
            Format::Iso9660 => "iso9660",
            Format::Squashfs => "squashfs",
            Format::Tar => "tar",
        }
    }

    /// The ext variant, for the ext formats.
    pub fn ext_variant(self) -> Option<rootforge_ext::Variant> {
        match self {
            Format::Ext2 => Some(rootforge_ext::Variant::Ext2),
            Format::Ext3 => Some(rootforge_ext::Variant::Ext3),
            Format::Ext4 => Some(rootforge_ext::Variant::Ext4),
            _ => None,
        }
    }

    /// The format's encoder with its default options.
    pub fn encoder(self) -> Box<dyn Encoder> {
        match self {
            Format::Cpio => Box::new(rootforge_cpio::CpioEncoder::default()),
            Format::Ext2 | Format::Ext3 | Format::Ext4 => Box::new(rootforge_ext::ExtEncoder::new(
                self.ext_variant().unwrap_or(rootforge_ext::Variant::Ext4),
            )),
            Format::Iso9660 => Box::new(rootforge_iso9660::IsoEncoder::default()),
            Format::Squashfs => Box::new(rootforge_squashfs::SquashfsEncoder::default()),
            Format::Tar => Box::new(rootforge_tar::TarEncoder::default()),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown format `{s}` (this build writes: {})",
                    names.join(", ")
                )
            })
    }
}

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
