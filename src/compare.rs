//! `rootforge compare`: every format × compressor × block size built from
//! one read of the input, each build timed, each image read back in full
//! through our own readers, timed, and checked against the input.
//!
//! Variants run one after another, each with the whole thread pool (the
//! encoders and the outer compressor are parallel inside), so a variant's
//! build time is the wall time it would take alone. Images live in memory
//! only as long as their read back.

mod plot;

use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rootforge_common::{Backing, Buffer, Encoder, Meta, Plain, Time, View, listing};
use serde::Serialize;

use crate::compress::{self, CompressSink, Compression};
use crate::format::{EncoderContext, Format, ReadOptions};
use crate::input::{self, Source};
use crate::plan::source_date_epoch;

/// What `rootforge compare` is asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The input; `None` is the bundled example.
    pub input: Option<std::path::PathBuf>,
    /// Formats to compare; empty is all.
    pub formats: Vec<Format>,
    /// Compressor names (see [`COMP_NAMES`]); empty is all.
    pub comps: Vec<String>,
    /// squashfs block sizes instead of the matrix's.
    pub squashfs_block_sizes: Vec<u64>,
    /// Every file owned by 0:0.
    pub all_root: bool,
    /// Worker threads; `None` is the number of cores.
    pub jobs: Option<usize>,
    /// Rows as JSON.
    pub json: bool,
    /// Draw size against time to this SVG file.
    pub plot: Option<std::path::PathBuf>,
    /// No progress output.
    pub quiet: bool,
}

/// The compressor names `--comp` takes, in the order rows sort by; `none`
/// is every uncompressed row (ext and plain iso9660 included).
pub const COMP_NAMES: [&str; 12] = [
    "none", "gzip", "bzip2", "lz4", "lz4hc", "lzma", "lzo", "xz", "zstd", "deflate", "zisofs",
    "zlib",
];

/// What `--help` says about the matrix.
pub const MATRIX_HELP: &str = "\
The matrix (every default level is the one `rootforge build` uses):
  cpio, tar   uncompressed and every outer compressor (gzip, bzip2, lz4,
              lzma, lzo, xz, zstd)
  squashfs    every compressor (gzip, lzo, xz, lz4, zstd, none) at 128K
              blocks; gzip, xz and zstd also at 64K, 256K and 1M
  erofs       every compressor (lz4, lz4hc, deflate, zstd, none), 4K blocks,
              pclusters of 4K and 64K (the block column)
  ext2/3/4    auto size, 4K blocks; ext4 also at 1K blocks
  iso9660     plain and zisofs
  jffs2       none, zlib (then rtime) and lzo (then zlib, rtime), 64K blocks

Variants are built one after another, each with every worker thread, so
`build s` is the wall time of one image alone (encoding and outer
compression, in memory). `read s` is the wall time of reading it back through
rootforge's own reader: decompression, parsing and a SHA-256 of every file's
bytes. Every image must read back as the input (ext's lost+found aside); one
that does not is reported and makes the exit status 1. A variant that cannot
hold the tree is a row with its error. `ratio` is the image size over the size
of the uncompressed tar image of the same tree.";

/// One image to build: a format with one set of options.
struct Variant {
    format: Format,
    comp: &'static str,
    level: Option<u32>,
    block_size: Option<u32>,
    encoder: Box<dyn Encoder>,
    /// Outer compression (cpio and tar).
    outer: Compression,
}

impl Variant {
    fn label(&self) -> String {
        let mut s = format!("{} {}", self.format, self.comp);
        if let Some(bs) = self.block_size {
            s.push(' ');
            s.push_str(&block_text(bs));
        }
        s
    }
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub format: &'static str,
    pub comp: &'static str,
    pub level: Option<u32>,
    pub block_size: Option<u32>,
    /// Image bytes, as `rootforge build` writes them.
    pub size: Option<u64>,
    /// `size` over the uncompressed tar image of the same tree.
    pub ratio: Option<f64>,
    pub build_s: Option<f64>,
    pub read_s: Option<f64>,
    /// The image read back as the input; absent when it was not built.
    pub verified: Option<bool>,
    pub error: Option<String>,
}

/// Runs `rootforge compare`.
pub fn run(args: &Options) -> Result<()> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;
    let talk = !(args.quiet || args.json);
    let sde = source_date_epoch()?;
    let source = Source::from_arg(args.input.as_deref());
    let opts = input::Options {
        source_date_epoch: sde,
        all_root: args.all_root,
        ignore_zeros: false,
    };
    let start = Instant::now();
    let loaded = pool.install(|| input::load(&source, &opts))?;
    for w in &loaded.warnings {
        eprintln!("warning: {source}: {w}");
    }
    if talk {
        eprintln!(
            "read {} entries from {source} in {:.2} s",
            loaded.entries,
            start.elapsed().as_secs_f64()
        );
    }
    let view = loaded.tree.view();
    let expected = listing::of_view(&view).context("reading the input's files")?;
    let baseline = pool.install(|| tar_size(&view))?;

    let mut formats = args.formats.clone();
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        formats = Format::DEFAULT.to_vec();
    }
    // The ISO dates, as `build` sets them: never from the clock.
    let ctx = EncoderContext {
        source_date_epoch: sde,
        arch: crate::uimage::UimageArch::X86_64,
        created: sde.map_or(view.inode(view.root()).meta.mtime, Time::from_secs),
    };
    let blocks = args
        .squashfs_block_sizes
        .iter()
        .map(|&b| u32::try_from(b).context("--squashfs-block-sizes"))
        .collect::<Result<Vec<_>>>()?;
    let variants = matrix(&formats, &args.comps, &blocks, &ctx)?;
    if variants.is_empty() {
        bail!("no variant matches --formats and --comp");
    }

    let bar = progress_bar(talk, variants.len());
    let lines = talk && !std::io::stderr().is_terminal();
    let check = Check {
        expected: &expected,
        implicit: opts.implicit_dir(),
    };
    let mut rows = Vec::with_capacity(variants.len());
    for v in &variants {
        bar.set_message(v.label());
        let row = pool.install(|| measure(v, &view, &check, baseline));
        bar.inc(1);
        if lines {
            eprintln!("{}: {}", v.label(), row_summary(&row));
        }
        rows.push(row);
    }
    bar.finish_and_clear();

    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &source, loaded.entries, baseline, &rows)?;
    }
    out.flush()?;
    if let Some(path) = &args.plot {
        write_plot(path, &source, &rows)?;
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.verified == Some(false))
        .map(|r| format!("{} {}", r.format, r.comp))
        .collect();
    if !bad.is_empty() {
        bail!(
            "{} image(s) did not read back as the input: {}",
            bad.len(),
            bad.join(", ")
        );
    }
    Ok(())
}

/// The matrix, narrowed to `formats` and `comps` (all when empty), sorted
/// by format, compressor and block size. Each format's registry entry says
/// which variants it has; every encoder is built as `build` builds it.
fn matrix(
    formats: &[Format],
    comps: &[String],
    squashfs_blocks: &[u32],
    ctx: &EncoderContext,
) -> Result<Vec<Variant>> {
    let mut out = Vec::new();
    for &format in formats {
        let spec = format.spec();
        for row in (spec.compare)(squashfs_blocks) {
            if !(comps.is_empty() || comps.iter().any(|c| c == row.comp)) {
                continue;
            }
            let encoder = (spec.encoder)(format, &row.options, ctx)
                .with_context(|| format!("{format} {}", row.comp))?;
            out.push(Variant {
                format,
                comp: row.comp,
                level: row.level,
                block_size: row.block_size,
                encoder,
                outer: row.outer,
            });
        }
    }
    let rank = |c: &str| COMP_NAMES.iter().position(|n| *n == c);
    out.sort_by_key(|v| (v.format, rank(v.comp), v.block_size));
    Ok(out)
}

/// Bytes of the uncompressed tar image of `view`: what ratios are over.
fn tar_size(view: &View<'_>) -> Result<u64> {
    let report = rootforge_tar::TarEncoder::default()
        .write(view, &mut Plain(io::sink()))
        .context("the tar baseline")?;
    Ok(report.bytes)
}

/// What every image must read back as.
struct Check<'a> {
    expected: &'a [listing::Line],
    /// Directories an image (tar) implies without recording them, as the
    /// input reader makes them.
    implicit: Meta,
}

/// Builds, times, reads back and checks one variant.
fn measure(v: &Variant, view: &View<'_>, check: &Check<'_>, baseline: u64) -> Row {
    let mut row = Row {
        format: v.format.name(),
        comp: v.comp,
        level: v.level,
        block_size: v.block_size,
        size: None,
        ratio: None,
        build_s: None,
        read_s: None,
        verified: None,
        error: None,
    };
    let start = Instant::now();
    let image = match build(v, view) {
        Ok(image) => image,
        Err(e) => {
            row.error = Some(format!("{e:#}"));
            return row;
        }
    };
    row.build_s = Some(start.elapsed().as_secs_f64());
    let size = image.len() as u64;
    row.size = Some(size);
    row.ratio = (baseline > 0).then(|| size as f64 / baseline as f64);

    let start = Instant::now();
    let read = read_back(v, image, check.implicit);
    row.read_s = Some(start.elapsed().as_secs_f64());
    match read {
        Ok(mut got) => {
            // What every image of the format has (ext's lost+found).
            let implicit = v.format.spec().implicit_entries;
            got.retain(|l| {
                !implicit.contains(&l.path.as_str())
                    || check.expected.iter().any(|e| e.path == l.path)
            });
            let differ = differences(check.expected, &got);
            row.verified = Some(differ.is_none());
            row.error = differ;
        }
        Err(e) => {
            row.read_s = None;
            row.verified = Some(false);
            row.error = Some(format!("reading back: {e:#}"));
        }
    }
    row
}

/// The image as `rootforge build` writes it, in memory.
fn build(v: &Variant, view: &View<'_>) -> Result<Vec<u8>> {
    if v.outer == Compression::None {
        let mut out = Buffer::default();
        v.encoder.write(view, &mut out)?;
        return Ok(out.0);
    }
    let mut sink = CompressSink::new(v.outer, None, Vec::new())?;
    if !v.format.spec().member_boundaries {
        sink = sink.cut_anywhere();
    }
    v.encoder.write(view, &mut sink)?;
    Ok(sink.finish()?)
}

/// Decompresses and reads `image` back, reading and hashing every file.
fn read_back(v: &Variant, image: Vec<u8>, implicit: Meta) -> Result<Vec<listing::Line>> {
    let data = if v.outer == Compression::None {
        image
    } else {
        let mut plain = Vec::new();
        io::copy(
            &mut compress::decoder(v.outer, image.as_slice())?,
            &mut plain,
        )?;
        drop(image);
        plain
    };
    let data: Backing = Arc::new(data);
    let opts = ReadOptions {
        implicit_dir: implicit,
        ..ReadOptions::default()
    };
    let tree = v.format.read(data, &opts)?.tree;
    Ok(listing::of_view(&tree.view())?)
}

/// How `got` differs from `expected`, if it does.
fn differences(expected: &[listing::Line], got: &[listing::Line]) -> Option<String> {
    if expected == got {
        return None;
    }
    let e: BTreeSet<&listing::Line> = expected.iter().collect();
    let g: BTreeSet<&listing::Line> = got.iter().collect();
    let missing: Vec<_> = e.difference(&g).collect();
    let extra: Vec<_> = g.difference(&e).collect();
    let first = missing
        .first()
        .map(|l| format!("expected `{l}`"))
        .or_else(|| extra.first().map(|l| format!("got `{l}`")))
        .unwrap_or_default();
    Some(format!(
        "reads back differently from the input: {} entries missing or changed, {} unexpected; {first}",
        missing.len(),
        extra.len()
    ))
}

fn progress_bar(talk: bool, len: usize) -> ProgressBar {
    if !(talk && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// One finished variant, for the line-per-variant progress.
fn row_summary(row: &Row) -> String {
    match (row.size, row.build_s, &row.error) {
        (_, _, Some(e)) => format!("error: {e}"),
        (Some(size), Some(b), None) => format!(
            "{size} bytes in {b:.3} s, read in {:.3} s",
            row.read_s.unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// `128K`, `1M`, or bytes.
fn block_text(bytes: u32) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{}M", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{}K", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn write_table(
    out: &mut impl Write,
    source: &Source,
    entries: u64,
    baseline: u64,
    rows: &[Row],
) -> io::Result<()> {
    writeln!(
        out,
        "input: {source}, {entries} entries; uncompressed tar image {baseline} bytes ({:.1} MiB) = ratio 1",
        mib(baseline)
    )?;
    writeln!(
        out,
        "{:<9} {:<6} {:>5} {:>5} {:>12} {:>9} {:>6} {:>8} {:>8}",
        "format", "comp", "level", "block", "size", "MiB", "ratio", "build s", "read s"
    )?;
    for r in rows {
        let level = r.level.map_or_else(|| "-".to_owned(), |l| l.to_string());
        let block = r.block_size.map_or_else(|| "-".to_owned(), block_text);
        write!(
            out,
            "{:<9} {:<6} {:>5} {:>5}",
            r.format, r.comp, level, block
        )?;
        if let (Some(size), Some(build_s)) = (r.size, r.build_s) {
            let ratio = r
                .ratio
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
            let read = r
                .read_s
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
            write!(
                out,
                " {size:>12} {:>9.2} {ratio:>6} {build_s:>8.3} {read:>8}",
                mib(size)
            )?;
        }
        if let Some(e) = &r.error {
            write!(out, "  error: {e}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn write_plot(path: &Path, source: &Source, rows: &[Row]) -> Result<()> {
    let points: Vec<plot::Point> = rows
        .iter()
        .filter_map(|r| {
            let (size, build_s) = (r.size?, r.build_s?);
            let mut label = format!("{} {}", r.format, r.comp);
            if let Some(bs) = r.block_size {
                label.push(' ');
                label.push_str(&block_text(bs));
            }
            Some(plot::Point {
                label,
                group: r.format,
                x: build_s,
                y: mib(size),
            })
        })
        .collect();
    let title = format!("Image size against build time: {source}");
    std::fs::write(path, plot::svg(&title, &points))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Variant]) -> Vec<String> {
        v.iter().map(Variant::label).collect()
    }

    #[test]
    fn the_matrix_is_narrowed_and_sorted() {
        let t = &EncoderContext {
            source_date_epoch: None,
            arch: crate::uimage::UimageArch::X86_64,
            created: Time::default(),
        };
        let all = matrix(&Format::ALL, &[], &[], t).unwrap();
        // 8 cpio + 8 tar + 6 + 3 × 3 squashfs + 4 ext + 2 iso + 3 jffs2
        // + 1 vfat + 9 erofs (none, and 4 compressors at 4K and 64K).
        assert_eq!(all.len(), 8 + 8 + 15 + 4 + 2 + 3 + 1 + 9);
        let squashfs =
            matrix(&[Format::Squashfs], &["zstd".into(), "none".into()], &[], t).unwrap();
        assert_eq!(
            names(&squashfs),
            [
                "squashfs none 128K",
                "squashfs zstd 64K",
                "squashfs zstd 128K",
                "squashfs zstd 256K",
                "squashfs zstd 1M"
            ]
        );
        let none = matrix(&Format::ALL, &["none".into()], &[], t).unwrap();
        assert_eq!(
            names(&none),
            [
                "cpio none",
                "erofs none 4K",
                "ext2 none 4K",
                "ext3 none 4K",
                "ext4 none 1K",
                "ext4 none 4K",
                "iso9660 none",
                "jffs2 none",
                "squashfs none 128K",
                "tar none",
                "vfat none"
            ]
        );
        let sized = matrix(&[Format::Squashfs], &["lz4".into()], &[4096, 1 << 20], t).unwrap();
        assert_eq!(names(&sized), ["squashfs lz4 4K", "squashfs lz4 1M"]);
    }

    #[test]
    fn a_changed_entry_is_reported() {
        let line = |path: &str, size| listing::Line {
            path: path.to_owned(),
            kind: rootforge_common::Kind::File,
            perm: 0o644,
            uid: 0,
            gid: 0,
            size,
            detail: "-".to_owned(),
            mtime: 0,
        };
        let expected = [line("/a", 1), line("/b", 2)];
        assert_eq!(differences(&expected, &expected), None);
        let got = [line("/a", 1), line("/b", 3), line("/c", 0)];
        let msg = differences(&expected, &got).unwrap();
        assert!(
            msg.contains("1 entries missing or changed, 2 unexpected"),
            "{msg}"
        );
        assert!(msg.contains("/b"), "{msg}");
    }

    #[test]
    fn block_sizes_read_as_the_options_take_them() {
        assert_eq!(block_text(1 << 20), "1M");
        assert_eq!(block_text(128 << 10), "128K");
        assert_eq!(block_text(1000), "1000");
    }
}
