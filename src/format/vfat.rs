//! vfat's option group and registry functions.

use anyhow::{Context, bail};
use clap::Args;
use rootforge_common::Encoder;
use rootforge_fat::{FatEncoder, FatOptions, FatSize, FatType};
use serde::Deserialize;

use super::{
    EncoderContext, Format, FormatOptions, merge_fields, parse_size, parsed, push_opt, size,
    size_text,
};

/// `--vfat-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfatSize {
    /// The smallest volume (whole MiB) that holds the tree, plus
    /// `--vfat-headroom`.
    Auto,
    /// Exactly this many bytes.
    Bytes(u64),
}

impl std::str::FromStr for VfatSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            Ok(VfatSize::Auto)
        } else {
            parse_size(s).map(VfatSize::Bytes)
        }
    }
}

impl std::fmt::Display for VfatSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VfatSize::Auto => f.write_str("auto"),
            VfatSize::Bytes(n) => f.write_str(&size_text(*n)),
        }
    }
}

/// A FAT volume ID, as `blkid` prints it (`1234-ABCD`) or 8 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeId(pub u32);

impl std::str::FromStr for VolumeId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex: String = s.chars().filter(|&c| c != '-').collect();
        let hex = hex.trim_start_matches("0x");
        if hex.is_empty() || hex.len() > 8 {
            return Err(format!(
                "`{s}` is not a volume ID (8 hex digits, e.g. 1234-ABCD)"
            ));
        }
        u32::from_str_radix(hex, 16)
            .map(VolumeId)
            .map_err(|_| format!("`{s}` is not a volume ID (8 hex digits, e.g. 1234-ABCD)"))
    }
}

impl std::fmt::Display for VolumeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X}-{:04X}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

/// `--vfat-*` and `[images.vfat]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// vfat image size: `auto` (the smallest that fits, in whole MiB, plus
    /// --vfat-headroom) or a size such as 64M [default: auto].
    #[arg(
        id = "vfat-size",
        long = "vfat-size",
        value_name = "SIZE",
        help_heading = "vfat"
    )]
    #[serde(default, deserialize_with = "parsed")]
    pub size: Option<VfatSize>,
    /// Free space added to an `auto` size [default: 0].
    #[arg(id = "vfat-headroom", long = "vfat-headroom", value_name = "SIZE", help_heading = "vfat", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub headroom: Option<u64>,
    /// FAT type: 12, 16 or 32 [default: by size, as mkfs.fat chooses].
    #[arg(
        id = "vfat-fat-type",
        long = "vfat-fat-type",
        value_name = "BITS",
        help_heading = "vfat"
    )]
    #[serde(default, deserialize_with = "parsed")]
    pub fat_type: Option<FatType>,
    /// Cluster size in bytes, 1 to 128 sectors [default: by size, as
    /// mkfs.fat chooses].
    #[arg(id = "vfat-cluster-size", long = "vfat-cluster-size", value_name = "SIZE", help_heading = "vfat", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub cluster_size: Option<u64>,
    /// Sector size: 512, 1024, 2048 or 4096 [default: 512].
    #[arg(id = "vfat-sector-size", long = "vfat-sector-size", value_name = "SIZE", help_heading = "vfat", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub sector_size: Option<u64>,
    /// Volume label, at most 11 characters [default: none].
    #[arg(
        id = "vfat-label",
        long = "vfat-label",
        value_name = "LABEL",
        help_heading = "vfat"
    )]
    pub label: Option<String>,
    /// Volume ID, e.g. 1234-ABCD [default: derived from the content].
    #[arg(
        id = "vfat-volume-id",
        long = "vfat-volume-id",
        value_name = "ID",
        help_heading = "vfat"
    )]
    #[serde(default, deserialize_with = "parsed")]
    pub volume_id: Option<VolumeId>,
    /// Copies of the FAT, 1 or 2 [default: 2].
    #[arg(
        id = "vfat-fats",
        long = "vfat-fats",
        value_name = "N",
        help_heading = "vfat"
    )]
    pub fats: Option<u32>,
    /// FAT12/16 root directory entries [default: 512, more if the root
    /// needs them].
    #[arg(
        id = "vfat-root-entries",
        long = "vfat-root-entries",
        value_name = "N",
        help_heading = "vfat"
    )]
    pub root_entries: Option<u32>,
    /// Reserved sectors [default: 1 on FAT12/16, 32 on FAT32].
    #[arg(
        id = "vfat-reserved-sectors",
        long = "vfat-reserved-sectors",
        value_name = "N",
        help_heading = "vfat"
    )]
    pub reserved_sectors: Option<u32>,
}

merge_fields!(Options { size, headroom, fat_type, cluster_size, sector_size, label, volume_id, fats, root_entries, reserved_sectors } flags {} lists {});

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        push_opt(out, "--vfat-size", self.size.as_ref());
        push_opt(
            out,
            "--vfat-headroom",
            self.headroom.map(size_text).as_ref(),
        );
        push_opt(out, "--vfat-fat-type", self.fat_type.as_ref());
        push_opt(
            out,
            "--vfat-cluster-size",
            self.cluster_size.map(size_text).as_ref(),
        );
        push_opt(
            out,
            "--vfat-sector-size",
            self.sector_size.map(size_text).as_ref(),
        );
        push_opt(out, "--vfat-label", self.label.as_ref());
        push_opt(out, "--vfat-volume-id", self.volume_id.as_ref());
        push_opt(out, "--vfat-fats", self.fats.as_ref());
        push_opt(out, "--vfat-root-entries", self.root_entries.as_ref());
        push_opt(
            out,
            "--vfat-reserved-sectors",
            self.reserved_sectors.as_ref(),
        );
    }
}

pub(super) fn encoder(
    _: Format,
    opts: &FormatOptions,
    ctx: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    let o = &opts.vfat;
    let mut f = FatOptions {
        size: match o.size {
            Some(VfatSize::Bytes(n)) => {
                if o.headroom.is_some() {
                    bail!("--vfat-headroom goes with --vfat-size auto, not a fixed size");
                }
                FatSize::Fixed(n)
            }
            Some(VfatSize::Auto) | None => FatSize::Auto {
                headroom: o.headroom.unwrap_or(0),
            },
        },
        fat_type: o.fat_type,
        label: o.label.clone(),
        volume_id: o.volume_id.map(|v| v.0),
        fats: o.fats.unwrap_or(2),
        root_entries: o.root_entries,
        reserved_sectors: o.reserved_sectors,
        created: ctx.created,
        ..FatOptions::default()
    };
    if let Some(c) = o.cluster_size {
        f.cluster_size = Some(u32::try_from(c).context("--vfat-cluster-size")?);
    }
    if let Some(s) = o.sector_size {
        f.sector_size = u32::try_from(s).context("--vfat-sector-size")?;
    }
    Ok(Box::new(FatEncoder::new(f)))
}

pub(super) fn compare(_: &[u32]) -> Vec<super::CompareRow> {
    vec![super::CompareRow::plain("none")]
}
