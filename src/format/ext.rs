//! The ext family's option group and registry functions.

use anyhow::{Context, bail};
use clap::Args;
use rootforge_common::Encoder;
use rootforge_ext::{ExtEncoder, Size, Variant};
use serde::Deserialize;

use super::{
    EncoderContext, Format, FormatOptions, merge_fields, parse_size, parsed, push_opt, size,
    size_text,
};

/// `--ext-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtSize {
    /// The smallest filesystem that holds the tree, plus `--ext-headroom`.
    Auto,
    /// Exactly this many bytes.
    Bytes(u64),
}

impl std::str::FromStr for ExtSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            Ok(ExtSize::Auto)
        } else {
            parse_size(s).map(ExtSize::Bytes)
        }
    }
}

impl std::fmt::Display for ExtSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExtSize::Auto => f.write_str("auto"),
            ExtSize::Bytes(n) => f.write_str(&size_text(*n)),
        }
    }
}

/// A filesystem UUID in its usual form, 32 hex digits with optional dashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uuid(pub [u8; 16]);

impl std::str::FromStr for Uuid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
        let bad = || format!("`{s}` is not a UUID (32 hex digits, dashes allowed)");
        if hex.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Uuid(out))
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// `--ext-*` and `[images.ext2]`, `[images.ext3]`, `[images.ext4]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// ext2/3/4 image size: `auto` (the smallest that fits, plus
    /// --ext-headroom) or a size such as 60M [default: auto].
    #[arg(
        id = "ext-size",
        long = "ext-size",
        value_name = "SIZE",
        help_heading = "ext2/ext3/ext4"
    )]
    #[serde(default, deserialize_with = "parsed")]
    pub size: Option<ExtSize>,
    /// Free space added to an `auto` size [default: 0].
    #[arg(id = "ext-headroom", long = "ext-headroom", value_name = "SIZE", help_heading = "ext2/ext3/ext4", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub headroom: Option<u64>,
    /// Block size: 1024, 2048 or 4096 [default: 4096].
    #[arg(id = "ext-block-size", long = "ext-block-size", value_name = "SIZE", help_heading = "ext2/ext3/ext4", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub block_size: Option<u64>,
    /// Inode count [default: what the tree needs (auto size), else one per 16 KiB].
    #[arg(
        id = "ext-inodes",
        long = "ext-inodes",
        value_name = "N",
        help_heading = "ext2/ext3/ext4"
    )]
    pub inodes: Option<u32>,
    /// Inode size, 128 or 256 [default: 256].
    #[arg(
        id = "ext-inode-size",
        long = "ext-inode-size",
        value_name = "BYTES",
        help_heading = "ext2/ext3/ext4"
    )]
    pub inode_size: Option<u16>,
    /// Blocks reserved for root, in percent [default: 5].
    #[arg(
        id = "ext-reserved-percent",
        long = "ext-reserved-percent",
        value_name = "PCT",
        help_heading = "ext2/ext3/ext4"
    )]
    pub reserved_percent: Option<u8>,
    /// Volume label, at most 16 bytes [default: rootfs].
    #[arg(
        id = "ext-label",
        long = "ext-label",
        value_name = "LABEL",
        help_heading = "ext2/ext3/ext4"
    )]
    pub label: Option<String>,
    /// Filesystem UUID [default: derived from the content].
    #[arg(
        id = "ext-uuid",
        long = "ext-uuid",
        value_name = "UUID",
        help_heading = "ext2/ext3/ext4"
    )]
    #[serde(default, deserialize_with = "parsed")]
    pub uuid: Option<Uuid>,
    /// Features to add or remove, in mke2fs -O syntax (e.g. ^metadata_csum).
    #[arg(
        id = "ext-features",
        long = "ext-features",
        value_name = "LIST",
        help_heading = "ext2/ext3/ext4"
    )]
    pub features: Option<String>,
}

merge_fields!(Options { size, headroom, block_size, inodes, inode_size, reserved_percent, label, uuid, features } flags {} lists {});

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        push_opt(out, "--ext-size", self.size.as_ref());
        push_opt(out, "--ext-headroom", self.headroom.map(size_text).as_ref());
        push_opt(
            out,
            "--ext-block-size",
            self.block_size.map(size_text).as_ref(),
        );
        push_opt(out, "--ext-inodes", self.inodes.as_ref());
        push_opt(out, "--ext-inode-size", self.inode_size.as_ref());
        push_opt(
            out,
            "--ext-reserved-percent",
            self.reserved_percent.as_ref(),
        );
        push_opt(out, "--ext-label", self.label.as_ref());
        push_opt(out, "--ext-uuid", self.uuid.as_ref());
        push_opt(out, "--ext-features", self.features.as_ref());
    }
}

pub(super) fn encoder(
    format: Format,
    opts: &FormatOptions,
    _: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    let o = &opts.ext;
    let mut enc = ExtEncoder::new(format.ext_variant().unwrap_or(Variant::Ext4));
    if let Some(edits) = &o.features {
        enc = enc.with_features(edits).context("--ext-features")?;
    }
    enc.size = match o.size {
        Some(ExtSize::Bytes(n)) => {
            if o.headroom.is_some() {
                bail!("--ext-headroom goes with --ext-size auto, not a fixed size");
            }
            Size::Fixed(n)
        }
        Some(ExtSize::Auto) | None => Size::Auto {
            headroom: o.headroom.unwrap_or(0),
        },
    };
    if let Some(bs) = o.block_size {
        enc.block_size = u32::try_from(bs).context("--ext-block-size")?;
    }
    enc.inodes = o.inodes;
    enc.inode_size = o.inode_size;
    if let Some(pct) = o.reserved_percent {
        enc.reserved_percent = pct;
    }
    if let Some(label) = &o.label {
        enc.label.clone_from(label);
    }
    enc.uuid = o.uuid.map(|u| u.0);
    Ok(Box::new(enc))
}

/// The ext variant an image's superblock says it is, as blkid tells them
/// apart: ext4 with any feature ext3 lacks, ext3 with a journal.
fn variant_of(head: &[u8]) -> Option<Variant> {
    if !rootforge_ext::is_ext(head) {
        return None;
    }
    let word = |at: usize| {
        head.get(0x400 + at..0x400 + at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let (compat, incompat, ro_compat) = (word(0x5c), word(0x60), word(0x64));
    // What ext3 knows: filetype, recover, journal_dev, meta_bg; sparse_super,
    // large_file, btree_dir.
    const EXT3_INCOMPAT: u32 = 0x0002 | 0x0004 | 0x0008 | 0x0010;
    const EXT3_RO_COMPAT: u32 = 0x0001 | 0x0002 | 0x0004;
    const HAS_JOURNAL: u32 = 0x0004;
    Some(
        if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
            Variant::Ext4
        } else if compat & HAS_JOURNAL != 0 {
            Variant::Ext3
        } else {
            Variant::Ext2
        },
    )
}

pub(super) fn sniff_ext2(head: &[u8]) -> bool {
    variant_of(head) == Some(Variant::Ext2)
}

pub(super) fn sniff_ext3(head: &[u8]) -> bool {
    variant_of(head) == Some(Variant::Ext3)
}

pub(super) fn sniff_ext4(head: &[u8]) -> bool {
    variant_of(head) == Some(Variant::Ext4)
}

/// 4K blocks, 1K too with `--all` (`full`), and every size of `blocks`
/// (`compare --block-sizes`) that ext takes.
fn compare_rows(full: &[u32], blocks: &[u32]) -> Vec<super::CompareRow> {
    let row = |bs: u32, full_only| {
        let mut row = super::CompareRow::plain("none");
        row.block_size = Some(bs);
        row.options.ext.block_size = Some(u64::from(bs));
        row.full_only = full_only;
        row
    };
    let mut out = vec![row(4096, false)];
    out.extend(full.iter().map(|&bs| row(bs, true)));
    out.extend(
        blocks
            .iter()
            .filter(|bs| [1024, 2048, 4096].contains(*bs))
            .map(|&bs| row(bs, false)),
    );
    out
}

pub(super) fn compare_4k(blocks: &[u32]) -> Vec<super::CompareRow> {
    compare_rows(&[], blocks)
}

pub(super) fn compare_1k_4k(blocks: &[u32]) -> Vec<super::CompareRow> {
    compare_rows(&[1024], blocks)
}
