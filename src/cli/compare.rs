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
    /// squashfs block sizes to try with every compressor, instead of the
    /// matrix's.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_size)]
    pub squashfs_block_sizes: Vec<u64>,
    /// Own every file by 0:0 (for a directory owned by the build user).
    #[arg(long)]
    pub all_root: bool,
    /// Worker threads [default: number of cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the rows as a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
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
        squashfs_block_sizes: args.squashfs_block_sizes.clone(),
        all_root: args.all_root,
        jobs: args.jobs,
        json: args.json,
        plot: args.plot.clone(),
        quiet: args.quiet,
    })
}
