//! tar's option group and registry functions.

use clap::Args;
use rootforge_common::{Backing, Encoder};
use rootforge_tar::Sparse;
use serde::Deserialize;

use super::{EncoderContext, Format, FormatOptions, ReadBack, ReadOptions, merge_fields};

/// `--tar-*` and `[images.tar]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Files with holes: `pax` (pax sparse 1.0 members, holes take no
    /// space) or `none` (every byte, as Buildroot's tar writes them)
    /// [default: pax].
    #[arg(
        id = "tar-sparse",
        long = "tar-sparse",
        value_name = "MODE",
        help_heading = "tar"
    )]
    #[serde(default, deserialize_with = "super::parsed")]
    pub sparse: Option<Sparse>,
}

merge_fields!(Options { sparse } flags {} lists {});

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        let text = self.sparse.map(|s| match s {
            Sparse::Pax => "pax",
            Sparse::Dense => "none",
        });
        super::push_opt(out, "--tar-sparse", text.as_ref());
    }
}

pub(super) fn encoder(
    _: Format,
    opts: &FormatOptions,
    _: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    Ok(Box::new(rootforge_tar::TarEncoder {
        sparse: opts.tar.sparse.unwrap_or_default(),
    }))
}

pub(super) fn read(image: Backing, opts: &ReadOptions) -> rootforge_common::Result<ReadBack> {
    let read = rootforge_tar::read(
        image,
        &rootforge_tar::ReadOptions {
            implicit_dir: opts.implicit_dir,
            clamp_mtime: opts.clamp_mtime,
            ignore_zeros: opts.ignore_zeros,
        },
    )?;
    Ok(ReadBack {
        tree: read.tree,
        entries: read.members,
        warnings: read.warnings,
        complete: read.end == rootforge_tar::End::Marker,
    })
}
