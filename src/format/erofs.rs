//! erofs's option group and registry functions.

use anyhow::Context;
use clap::Args;
use rootforge_common::{Encoder, Time};
use rootforge_erofs::{Comp, ErofsEncoder};
use serde::Deserialize;

use super::ext::Uuid;
use super::{
    EncoderContext, Format, FormatOptions, merge_fields, parse_size, parsed, push_opt, size,
    size_text,
};

/// `--erofs-*` and `[images.erofs]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// erofs compressor: lz4, lz4hc, deflate, zstd, none [default: lz4hc].
    #[arg(id = "erofs-compress", long = "erofs-compress", value_name = "ALG", help_heading = "erofs", value_parser = parse_comp)]
    #[serde(default, deserialize_with = "comp")]
    pub compress: Option<Comp>,
    /// erofs compression level: lz4hc 1-12, deflate 1-12, zstd 1-22
    /// [default: lz4hc 9, deflate 1, zstd 3].
    #[arg(
        id = "erofs-level",
        long = "erofs-level",
        value_name = "N",
        help_heading = "erofs"
    )]
    pub level: Option<u32>,
    /// The largest compressed cluster, a multiple of the block size up to
    /// 1M (mkfs.erofs -C) [default: one block].
    #[arg(id = "erofs-pcluster-size", long = "erofs-pcluster-size", value_name = "SIZE", help_heading = "erofs", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub pcluster_size: Option<u64>,
    /// erofs block size, 512 to 64K; Linux mounts up to its page size
    /// [default: 4K].
    #[arg(id = "erofs-block-size", long = "erofs-block-size", value_name = "SIZE", help_heading = "erofs", value_parser = parse_size)]
    #[serde(default, deserialize_with = "size")]
    pub block_size: Option<u64>,
    /// The volume UUID (mkfs.erofs -U) [default: derived from the
    /// contents].
    #[arg(
        id = "erofs-uuid",
        long = "erofs-uuid",
        value_name = "UUID",
        help_heading = "erofs"
    )]
    #[serde(default, deserialize_with = "parsed")]
    pub uuid: Option<Uuid>,
}

merge_fields!(Options { compress, level, pcluster_size, block_size, uuid } flags {} lists {});

fn parse_comp(s: &str) -> Result<Comp, String> {
    Comp::ALL
        .into_iter()
        .find(|c| c.name() == s)
        .ok_or_else(|| {
            let names: Vec<_> = Comp::ALL.iter().map(|c| c.name()).collect();
            format!("unknown erofs compressor `{s}` ({})", names.join(", "))
        })
}

fn comp<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Comp>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_comp(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// The compressor when none is given: Buildroot's default.
const DEFAULT_COMP: Comp = Comp::Lz4hc;

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        push_opt(
            out,
            "--erofs-compress",
            self.compress.map(Comp::name).as_ref(),
        );
        push_opt(out, "--erofs-level", self.level.as_ref());
        push_opt(
            out,
            "--erofs-pcluster-size",
            self.pcluster_size.map(size_text).as_ref(),
        );
        push_opt(
            out,
            "--erofs-block-size",
            self.block_size.map(size_text).as_ref(),
        );
        push_opt(out, "--erofs-uuid", self.uuid.as_ref());
    }
}

pub(super) fn encoder(
    _: Format,
    opts: &FormatOptions,
    ctx: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    let o = &opts.erofs;
    let mut enc = ErofsEncoder::new(o.compress.unwrap_or(DEFAULT_COMP));
    enc.level = o.level;
    if let Some(bs) = o.block_size {
        enc.block_size = u32::try_from(bs).context("--erofs-block-size")?;
    }
    if let Some(p) = o.pcluster_size {
        enc.pcluster_size = Some(u32::try_from(p).context("--erofs-pcluster-size")?);
    }
    enc.uuid = o.uuid.map(|u| u.0);
    // mkfs.erofs takes SOURCE_DATE_EPOCH as its build time (-T).
    enc.build_time = ctx.source_date_epoch.map(Time::from_secs);
    Ok(Box::new(enc))
}

/// The pcluster sizes every compressor is tried at in `rootforge compare`
/// (the block size column).
const COMPARE_PCLUSTERS: [u32; 2] = [4 << 10, 64 << 10];

pub(super) fn compare(_: &[u32]) -> Vec<super::CompareRow> {
    let mut out = Vec::new();
    for comp in Comp::ALL {
        let sizes: &[u32] = if comp == Comp::None {
            &COMPARE_PCLUSTERS[..1]
        } else {
            &COMPARE_PCLUSTERS
        };
        for &pcl in sizes {
            let mut row = super::CompareRow::plain(comp.name());
            row.level = (comp != Comp::None).then_some(comp.default_level());
            row.block_size = Some(pcl);
            // The quick matrix has one pcluster size; --all the big one too.
            row.full_only = pcl != COMPARE_PCLUSTERS[0];
            row.options.erofs.compress = Some(comp);
            row.options.erofs.pcluster_size = Some(u64::from(pcl));
            out.push(row);
        }
    }
    out
}
