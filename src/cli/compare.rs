//! `rootforge compare`'s flags.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::format::{Format, parse_size};

/// `rootforge compare`'s flags.
#[derive(Debug, Args)]
#[command(after_help = crate::compare::MATRIX_HELP)]
pub struct CompareArgs {
    /// Rootfs tarball (plain or compressed), `-` for stdin, or a directory.
    /// Default: the bundled example.
    pub input: Option<PathBuf>,
    /// Formats to compare, comma separated [default: all].
    #[arg(short, long, value_name = "LIST", value_delimiter = ',')]
    pub formats: Vec<Format>,
    /// Compressors to compare, comma separated; `none` is every
    /// uncompressed image [default: all].
    #[arg(short, long = "comp", value_name = "LIST", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(crate::compare::COMP_NAMES))]
    pub comps: Vec<String>,
    /// The full matrix: every squashfs block size swept, Buildroot's levels
    /// for cpio and tar, ext4 at 1K blocks (see below).
    #[arg(long)]
    pub all: bool,
    /// Also build at these levels, comma separated, every compressor that
    /// takes them.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub levels: Vec<u32>,
    /// Also build at these block sizes, comma separated (squashfs where a
    /// power of two from 4K to 1M; ext where 1K, 2K or 4K).
    #[arg(long, alias = "squashfs-block-sizes", value_name = "LIST", value_delimiter = ',', value_parser = parse_size)]
    pub block_sizes: Vec<u64>,
    /// Build every variant N times, round robin, and report the median,
    /// min and max (peers too).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub runs: usize,
    /// Also run the peer tools found on PATH on the same input, each beside
    /// a `rootforge build` process with the same settings.
    #[arg(long)]
    pub peers: bool,
    /// Own every file by 0:0 (for a directory owned by the build user).
    #[arg(long)]
    pub all_root: bool,
    /// Worker threads [default: number of cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the report (machine, versions, rows, peers) as JSON instead
    /// of a table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the rows (ours, then peers) as CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Also draw image size against build time as an SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `rootforge compare`.
///
/// # Errors
///
/// A bad input or option, or an image that does not read back as the input.
pub fn run(args: &CompareArgs) -> Result<()> {
    crate::compare::run(&crate::compare::Options {
        input: args.input.clone(),
        formats: args.formats.clone(),
        comps: args.comps.clone(),
        block_sizes: args.block_sizes.clone(),
        levels: args.levels.clone(),
        all: args.all,
        runs: args.runs,
        peers: args.peers,
        csv: args.csv,
        all_root: args.all_root,
        jobs: args.jobs,
        json: args.json,
        plot: args.plot.clone(),
        quiet: args.quiet,
    })
}
