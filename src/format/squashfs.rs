//! squashfs's option group and registry functions.

use anyhow::Context;
use clap::Args;
use rootforge_common::Encoder;
use rootforge_squashfs::{Bcj, Comp, SquashfsEncoder};
use serde::Deserialize;

use super::{
    EncoderContext, Format, FormatOptions, merge_fields, parse_size, push_flag, push_opt, size,
    size_text,
};

/// `--squashfs-*` and `[images.squashfs]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// squashfs compressor: gzip, lzo, xz, lz4, zstd, none [default: gzip].
    #[arg(id = "squashfs-comp", long = "squashfs-comp", value_name = "ALG", help_heading = "squashfs", value_parser = parse_comp)]
    #[serde(default, deserialize_with = "comp")]
    pub comp: Option<Comp>,
    /// squashfs compression level: gzip 1-12, lzo 9, xz 0-9, lz4 0 (fast)
    /// or 1-12 (HC), zstd 1-22 [default: gzip 6, xz 6, zstd 15, lz4 0].
    #[arg(
        id = "squashfs-level",
        long = "squashfs-level",
        value_name = "N",
        help_heading = "squashfs"
    )]
    pub level: Option<u32>,
    /// squashfs data block size, 4K to 1M [default: 128K].
    #[arg(id = "squashfs-block-size", long = "squashfs-block-size", value_name = "SIZE", help_heading = "squashfs", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub block_size: Option<u64>,
    /// Buildroot's extreme compression: gzip and lzo level 9, lz4 HC, zstd
    /// 22, xz with the BCJ filters of --arch.
    #[arg(
        id = "squashfs-extreme",
        long = "squashfs-extreme",
        help_heading = "squashfs"
    )]
    #[serde(default)]
    pub extreme: bool,
    /// xz BCJ filters to try on each block, as mksquashfs -Xbcj takes them
    /// (x86, powerpc, ia64, arm, armthumb, sparc; comma separated). The
    /// kernel that mounts the image needs each one's decoder
    /// (CONFIG_XZ_DEC_*): give the target's architecture.
    #[arg(id = "squashfs-bcj", long = "squashfs-bcj", value_name = "LIST", help_heading = "squashfs", value_parser = Bcj::parse)]
    #[serde(default, deserialize_with = "bcj")]
    pub bcj: Option<Bcj>,
    /// Leave out the NFS export table.
    #[arg(
        id = "squashfs-no-exports",
        long = "squashfs-no-exports",
        help_heading = "squashfs"
    )]
    #[serde(default)]
    pub no_exports: bool,
    /// Do not pad the image to a multiple of 4 KiB.
    #[arg(
        id = "squashfs-no-pad",
        long = "squashfs-no-pad",
        help_heading = "squashfs"
    )]
    #[serde(default)]
    pub no_pad: bool,
    /// Pack the tail ends of large files into fragments too, as
    /// mksquashfs -always-use-fragments does.
    #[arg(
        id = "squashfs-always-fragments",
        long = "squashfs-always-fragments",
        help_heading = "squashfs"
    )]
    #[serde(default)]
    pub always_fragments: bool,
}

merge_fields!(Options { comp, level, block_size, bcj } flags { extreme, no_exports, no_pad, always_fragments } lists {});

fn parse_comp(s: &str) -> Result<Comp, String> {
    Comp::ALL
        .into_iter()
        .find(|c| c.name() == s)
        .ok_or_else(|| {
            let names: Vec<_> = Comp::ALL.iter().map(|c| c.name()).collect();
            format!("unknown squashfs compressor `{s}` ({})", names.join(", "))
        })
}

fn comp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Comp>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_comp(&s).map_err(serde::de::Error::custom))
        .transpose()
}

fn bcj<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Bcj>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| Bcj::parse(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// A BCJ set as `--squashfs-bcj` reads it back.
fn bcj_text(set: Bcj) -> String {
    const NAMES: [&str; 6] = ["x86", "powerpc", "ia64", "arm", "armthumb", "sparc"];
    let names: Vec<&str> = NAMES
        .into_iter()
        .filter(|n| Bcj::parse(n).is_ok_and(|f| set.union(f) == set))
        .collect();
    names.join(",")
}

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        push_opt(out, "--squashfs-comp", self.comp.map(Comp::name).as_ref());
        push_opt(out, "--squashfs-level", self.level.as_ref());
        push_opt(
            out,
            "--squashfs-block-size",
            self.block_size.map(size_text).as_ref(),
        );
        push_flag(out, "--squashfs-extreme", self.extreme);
        push_opt(
            out,
            "--squashfs-bcj",
            self.bcj.filter(|b| !b.is_empty()).map(bcj_text).as_ref(),
        );
        push_flag(out, "--squashfs-no-exports", self.no_exports);
        push_flag(out, "--squashfs-no-pad", self.no_pad);
        push_flag(out, "--squashfs-always-fragments", self.always_fragments);
    }
}

pub(super) fn encoder(
    _: Format,
    opts: &FormatOptions,
    ctx: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    let o = &opts.squashfs;
    let mut enc = SquashfsEncoder::new(o.comp.unwrap_or(Comp::Gzip));
    if o.extreme {
        enc = enc.extreme(&ctx.arch.to_string());
    }
    if let Some(level) = o.level {
        enc.level = level;
    }
    if let Some(bcj) = o.bcj {
        enc.bcj = bcj;
    }
    if let Some(bs) = o.block_size {
        enc.block_size = u32::try_from(bs).context("--squashfs-block-size")?;
    }
    enc.exportable = !o.no_exports;
    enc.pad = !o.no_pad;
    enc.always_fragments = o.always_fragments;
    Ok(Box::new(enc))
}

/// The block size every compressor is tried at in `rootforge compare`.
const COMPARE_BLOCK: u32 = 128 << 10;
/// The compressors the block size matters most to, and the sizes they are
/// also tried at.
const COMPARE_SWEEP: ([Comp; 3], [u32; 4]) = (
    [Comp::Gzip, Comp::Xz, Comp::Zstd],
    [64 << 10, 128 << 10, 256 << 10, 1 << 20],
);

/// Every compressor at its default level and 128K blocks; with `--all`
/// the sweep's sizes too, and every size of `blocks` (`--block-sizes`).
pub(super) fn compare(blocks: &[u32]) -> Vec<super::CompareRow> {
    let (sweep_comps, sweep_sizes) = COMPARE_SWEEP;
    let mut out = Vec::new();
    for comp in Comp::ALL {
        let mut sizes: Vec<(u32, bool)> = vec![(COMPARE_BLOCK, false)];
        if sweep_comps.contains(&comp) {
            sizes.extend(
                sweep_sizes
                    .iter()
                    .filter(|&&bs| bs != COMPARE_BLOCK)
                    .map(|&bs| (bs, true)),
            );
        }
        // The sizes squashfs takes: powers of two from 4K to 1M.
        sizes.extend(
            blocks
                .iter()
                .filter(|bs| bs.is_power_of_two() && (4096..=1 << 20).contains(*bs))
                .map(|&bs| (bs, false)),
        );
        for (bs, full_only) in sizes {
            let mut row = super::CompareRow::plain(comp.name());
            row.level = (comp != Comp::None).then_some(comp.default_level());
            row.block_size = Some(bs);
            row.full_only = full_only;
            row.options.squashfs.comp = Some(comp);
            row.options.squashfs.block_size = Some(u64::from(bs));
            row.relevel = Some(relevel);
            out.push(row);
        }
    }
    out
}

/// `compare --levels`: the level, if the row's compressor takes it.
fn relevel(row: &mut super::CompareRow, level: u32) -> bool {
    let Some(comp) = row.options.squashfs.comp else {
        return false;
    };
    if comp == Comp::None || !comp.levels().contains(&level) {
        return false;
    }
    row.level = Some(level);
    row.options.squashfs.level = Some(level);
    true
}
