//! jffs2's option group and registry functions.

use clap::Args;
use rootforge_common::Encoder;
use rootforge_jffs2::{Compr, Endian, Jffs2Encoder, Pad};
use serde::Deserialize;

use super::{
    EncoderContext, Format, FormatOptions, merge_fields, parse_size, push_flag, push_opt, size_text,
};

/// `--jffs2-*` and `[images.jffs2]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// jffs2 erase block size, as mkfs.jffs2 -e (0x20000, 128K) [default: 64K].
    #[arg(id = "jffs2-eraseblock", long = "jffs2-eraseblock", value_name = "SIZE", help_heading = "jffs2", value_parser = parse_size_or_hex)]
    #[serde(default, deserialize_with = "size_or_hex")]
    pub eraseblock: Option<u64>,
    /// Pad the jffs2 image with erased flash: to the end of its last erase
    /// block, or to SIZE (mkfs.jffs2 --pad).
    #[arg(id = "jffs2-pad", long = "jffs2-pad", value_name = "SIZE", num_args = 0..=1, default_missing_value = "0", help_heading = "jffs2", value_parser = parse_size_or_hex)]
    #[serde(default, deserialize_with = "size_or_hex")]
    pub pad: Option<u64>,
    /// No cleanmarkers (NAND flash keeps them out of band; mkfs.jffs2 -n).
    #[arg(
        id = "jffs2-no-cleanmarkers",
        long = "jffs2-no-cleanmarkers",
        help_heading = "jffs2"
    )]
    #[serde(default)]
    pub no_cleanmarkers: bool,
    /// A summary node at the end of every jffs2 erase block, as sumtool
    /// adds them (faster mounts).
    #[arg(id = "jffs2-summary", long = "jffs2-summary", help_heading = "jffs2")]
    #[serde(default)]
    pub summary: bool,
    /// jffs2 byte order: little or big (the target's) [default: little].
    #[arg(id = "jffs2-endian", long = "jffs2-endian", value_name = "ORDER", help_heading = "jffs2", value_parser = parse_endian)]
    #[serde(default, deserialize_with = "endian")]
    pub endian: Option<Endian>,
    /// jffs2 node compression, by mkfs.jffs2's priority rule: zlib (then
    /// rtime), lzo (then zlib, rtime), rtime, none [default: zlib].
    #[arg(id = "jffs2-compr", long = "jffs2-compr", value_name = "ALG", help_heading = "jffs2", value_parser = parse_compr)]
    #[serde(default, deserialize_with = "compr")]
    pub compr: Option<Compr>,
}

merge_fields!(Options { eraseblock, pad, endian, compr } flags { no_cleanmarkers, summary } lists {});

/// A size as [`parse_size`] reads it, or hexadecimal (`0x20000`) as
/// Buildroot's configs write flash sizes.
fn parse_size_or_hex(s: &str) -> Result<u64, String> {
    match s.trim().strip_prefix("0x").or(s.trim().strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| format!("bad size `{s}`")),
        None => parse_size(s),
    }
}

fn size_or_hex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Bytes(n)) => Ok(Some(n)),
        Some(Raw::Text(s)) => parse_size_or_hex(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn parse_endian(s: &str) -> Result<Endian, String> {
    match s {
        "little" | "le" => Ok(Endian::Little),
        "big" | "be" => Ok(Endian::Big),
        _ => Err(format!("unknown byte order `{s}` (little, big)")),
    }
}

fn endian<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Endian>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_endian(&s).map_err(serde::de::Error::custom))
        .transpose()
}

fn parse_compr(s: &str) -> Result<Compr, String> {
    Compr::ALL
        .into_iter()
        .find(|c| c.name() == s)
        .ok_or_else(|| {
            let names: Vec<_> = Compr::ALL.iter().map(|c| c.name()).collect();
            format!("unknown jffs2 compressor `{s}` ({})", names.join(", "))
        })
}

fn compr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Compr>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_compr(&s).map_err(serde::de::Error::custom))
        .transpose()
}

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        push_opt(
            out,
            "--jffs2-eraseblock",
            self.eraseblock.map(size_text).as_ref(),
        );
        match self.pad {
            Some(0) => out.push("--jffs2-pad".to_owned()),
            Some(n) => out.push(format!("--jffs2-pad={}", size_text(n))),
            None => {}
        }
        push_flag(out, "--jffs2-no-cleanmarkers", self.no_cleanmarkers);
        push_flag(out, "--jffs2-summary", self.summary);
        push_opt(
            out,
            "--jffs2-endian",
            self.endian.map(Endian::name).as_ref(),
        );
        push_opt(out, "--jffs2-compr", self.compr.map(Compr::name).as_ref());
    }
}

pub(super) fn encoder(
    _: Format,
    opts: &FormatOptions,
    _: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    let o = &opts.jffs2;
    let mut enc = Jffs2Encoder::default();
    if let Some(eb) = o.eraseblock {
        enc.erase_block = u32::try_from(eb)
            .map_err(|_| anyhow::anyhow!("--jffs2-eraseblock {eb} is over 4 GiB"))?;
    }
    enc.pad = match o.pad {
        None => Pad::None,
        Some(0) => Pad::Block,
        Some(n) => Pad::To(n),
    };
    enc.cleanmarkers = !o.no_cleanmarkers;
    enc.summary = o.summary;
    enc.endian = o.endian.unwrap_or_default();
    enc.compr = o.compr.unwrap_or_default();
    Ok(Box::new(enc))
}

pub(super) fn compare(_: &[u32]) -> Vec<super::CompareRow> {
    [
        (Compr::None, "none"),
        (Compr::Zlib, "zlib"),
        (Compr::Lzo, "lzo"),
    ]
    .into_iter()
    .map(|(c, name)| {
        let mut row = super::CompareRow::plain(name);
        row.options.jffs2.compr = Some(c);
        row
    })
    .collect()
}
