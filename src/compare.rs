//! `rootforge compare`: every format × compressor × block size built from
//! one read of the input, each build timed, each image read back in full
//! through our own readers, timed, and checked against the input.
//!
//! Variants run one after another, each with the whole thread pool (the
//! encoders and the outer compressor are parallel inside), so a variant's
//! build time is the wall time it would take alone. Images live in memory
//! only as long as their read back. With `--runs N` every variant is built
//! N times, round robin, and the median, min and max are reported; with
//! `--peers` the installed peer tools run on the same input beside
//! `rootforge build` processes with the same settings (the `peers` module).

mod peers;
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
    /// Block sizes to add to the matrix (squashfs, and ext where it takes
    /// them).
    pub block_sizes: Vec<u64>,
    /// Levels to add to the matrix, for every compressor that takes them.
    pub levels: Vec<u32>,
    /// The full matrix (every block size swept, Buildroot's levels too).
    pub all: bool,
    /// Builds of every variant (and every peer job), interleaved.
    pub runs: usize,
    /// Run the installed peer tools too.
    pub peers: bool,
    /// Every file owned by 0:0.
    pub all_root: bool,
    /// Worker threads; `None` is the number of cores.
    pub jobs: Option<usize>,
    /// Rows as JSON.
    pub json: bool,
    /// Rows as CSV.
    pub csv: bool,
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
The default matrix (quick: a few minutes on a 200 MB rootfs on 2 cores):
  cpio, tar   uncompressed and every outer compressor (gzip, bzip2, lz4,
              lzma, lzo, xz, zstd) at its tool's default level (gzip, xz,
              lzma 6, zstd 3, bzip2 9)
  squashfs    every compressor (gzip, lzo, xz, lz4, zstd, none) at its
              default level (`rootforge build`'s) and 128K blocks
  erofs       every compressor (lz4, lz4hc, deflate, zstd, none), 4K blocks
              and 4K pclusters (the block column)
  ext2/3/4    auto size, 4K blocks
  iso9660     plain and zisofs
  jffs2       none, zlib (then rtime) and lzo (then zlib, rtime), 64K blocks
  vfat        auto size
--all adds Buildroot's levels for cpio and tar (9, zstd 19), squashfs gzip,
xz and zstd at 64K, 256K and 1M blocks, erofs at 64K pclusters, and ext4
at 1K blocks.
--levels and --block-sizes add rows at those levels and sizes to whichever
matrix runs, for every compressor and format that takes them.

Variants are built one after another, each with every worker thread, so
`build s` is the wall time of one image alone (encoding and outer
compression, in memory); with --runs N, every variant is built N times
round robin and `build s` is the median, with the min and max beside it
(the read back runs once). `read s` is the wall time of reading it back through
rootforge's own reader: decompression, parsing and a SHA-256 of every file's
bytes. Every image must read back as the input (ext's lost+found aside); one
that does not is reported and makes the exit status 1. A variant that cannot
hold the tree is a row with its error. `ratio` is the image size over the size
of the uncompressed tar image of the same tree.

--peers runs the peer tools found on PATH on the same input: mksquashfs and
tar2sqfs (squashfs gzip 9, 128K), mke2fs -d (ext4) and genext2fs (ext2) at
one fixed size, xorriso -as mkisofs -R -J, GNU cpio (newc), bsdtar (newc and
pax) and GNU tar (pax). Tools that need a tree get the input extracted once,
untimed (as root, else under fakeroot); the others read the tarball. Each
peer is timed as a whole process under GNU time (/usr/bin/time, for peak
RSS), beside a `rootforge build` process making the same image, and its time,
size and RSS are given as ratios to that build's. A missing peer is listed as
missing.";

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
    /// The median build time of `runs` builds.
    pub build_s: Option<f64>,
    pub build_min_s: Option<f64>,
    pub build_max_s: Option<f64>,
    /// Builds timed.
    pub runs: usize,
    pub read_s: Option<f64>,
    /// The image read back as the input; absent when it was not built.
    pub verified: Option<bool>,
    pub error: Option<String>,
}

/// The machine the numbers were taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cpus: usize,
    /// `model name` of /proc/cpuinfo.
    pub model: Option<String>,
    /// The kernel release (`uname -r`).
    pub kernel: Option<String>,
}

impl Machine {
    fn probe() -> Machine {
        let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        });
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|k| k.trim().to_owned());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model,
            kernel,
        }
    }

    /// One line: `2 CPUs (AMD EPYC), Linux 6.12`.
    fn text(&self) -> String {
        format!(
            "{} CPUs ({}), Linux {}",
            self.cpus,
            self.model.as_deref().unwrap_or("unknown model"),
            self.kernel.as_deref().unwrap_or("unknown")
        )
    }
}

/// Everything `--json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    input: String,
    entries: u64,
    /// Bytes of the uncompressed tar image: ratio 1.
    baseline: u64,
    runs: usize,
    jobs: usize,
    machine: &'a Machine,
    /// rootforge's version, then each peer tool's.
    versions: Vec<(String, String)>,
    rows: &'a [Row],
    /// Absent without `--peers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<&'a [peers::PeerRow]>,
}

/// rootforge's version string.
pub fn version() -> String {
    format!("rootforge {}", env!("CARGO_PKG_VERSION"))
}

/// Runs `rootforge compare`.
pub fn run(args: &Options) -> Result<()> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.json && args.csv {
        bail!("--json and --csv each print the rows; give one");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;
    let talk = !(args.quiet || args.json || args.csv);
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
        .block_sizes
        .iter()
        .map(|&b| u32::try_from(b).context("--block-sizes"))
        .collect::<Result<Vec<_>>>()?;
    let wanted = Wanted {
        formats: &formats,
        comps: &args.comps,
        blocks: &blocks,
        levels: &args.levels,
        all: args.all,
    };
    let variants = matrix(&wanted, &ctx)?;
    if variants.is_empty() {
        bail!("no variant matches --formats and --comp");
    }

    // Peers: found, versioned and their inputs prepared before any timing.
    let mut peer_plan = if args.peers {
        let input = args
            .input
            .as_deref()
            .context("--peers needs an input file or directory")?;
        let plan = peers::Plan::new(&peers::Setup {
            input,
            formats: &formats,
            baseline,
            entries: loaded.entries,
            jobs,
            talk,
        })?;
        Some(plan)
    } else {
        None
    };

    let steps = variants.len() * args.runs + peer_plan.as_ref().map_or(0, |p| p.steps(args.runs));
    let bar = progress_bar(talk, steps);
    let lines = talk && !std::io::stderr().is_terminal();
    let check = Check {
        expected: &expected,
        implicit: opts.implicit_dir(),
    };
    let mut rows: Vec<Row> = variants.iter().map(Row::of).collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for run in 0..args.runs {
        for (i, v) in variants.iter().enumerate() {
            bar.set_message(format!("{} (run {}/{})", v.label(), run + 1, args.runs));
            if run == 0 || rows[i].size.is_some() {
                pool.install(|| {
                    measure(
                        v,
                        &view,
                        &check,
                        baseline,
                        run == 0,
                        &mut rows[i],
                        &mut times[i],
                    )
                });
            }
            bar.inc(1);
            if lines {
                eprintln!(
                    "{} (run {}): {}",
                    v.label(),
                    run + 1,
                    row_summary(&rows[i], times[i].last())
                );
            }
        }
        if let Some(plan) = &mut peer_plan {
            plan.run_once(run, &bar, lines);
        }
    }
    bar.finish_and_clear();
    for (row, t) in rows.iter_mut().zip(&times) {
        if let Some((median, min, max)) = spread(t) {
            row.build_s = Some(median);
            row.build_min_s = Some(min);
            row.build_max_s = Some(max);
            row.runs = t.len();
        }
    }
    let peer_rows = peer_plan.map(peers::Plan::finish);

    let machine = Machine::probe();
    let mut versions = vec![("rootforge".to_owned(), version())];
    if let Some(p) = &peer_rows {
        versions.extend(peers::versions(p));
    }
    let report = Report {
        input: source.to_string(),
        entries: loaded.entries,
        baseline,
        runs: args.runs,
        jobs,
        machine: &machine,
        versions,
        rows: &rows,
        peers: peer_rows.as_deref(),
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if args.csv {
        write_csv(&mut out, &rows, peer_rows.as_deref())?;
    } else {
        write_table(&mut out, &report)?;
        if let Some(p) = &peer_rows {
            peers::write_table(&mut out, p, args.runs)?;
        }
    }
    out.flush()?;
    if let Some(path) = &args.plot {
        write_plot(path, &report)?;
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

/// The median, min and max of `t`.
fn spread(t: &[f64]) -> Option<(f64, f64, f64)> {
    let mut t = t.to_vec();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        t[n / 2]
    } else {
        (t[n / 2 - 1] + t[n / 2]) / 2.0
    };
    Some((median, t[0], t[n - 1]))
}

/// What the matrix is narrowed and widened to.
struct Wanted<'a> {
    /// Formats, sorted, never empty.
    formats: &'a [Format],
    /// Compressor names; empty is all.
    comps: &'a [String],
    /// `--block-sizes`.
    blocks: &'a [u32],
    /// `--levels`.
    levels: &'a [u32],
    /// `--all`.
    all: bool,
}

/// The matrix, narrowed to the formats and compressors wanted, widened by
/// the levels and block sizes, sorted by format, compressor, level and
/// block size. Each format's registry entry says which variants it has;
/// every encoder is built as `build` builds it.
fn matrix(w: &Wanted<'_>, ctx: &EncoderContext) -> Result<Vec<Variant>> {
    let mut out = Vec::new();
    for &format in w.formats {
        let spec = format.spec();
        let mut rows = Vec::new();
        for row in (spec.compare)(w.blocks) {
            if row.full_only && !w.all {
                continue;
            }
            if !(w.comps.is_empty() || w.comps.iter().any(|c| c == row.comp)) {
                continue;
            }
            for &level in w.levels {
                let mut r = row.clone();
                if relevel(&mut r, level) {
                    rows.push(r);
                }
            }
            rows.push(row);
        }
        // One variant per column set: a row both in the sweep and asked for
        // by --block-sizes or --levels is built once.
        let mut seen = BTreeSet::new();
        for row in rows {
            if !seen.insert((row.comp, row.level, row.block_size)) {
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
    out.sort_by_key(|v| (v.format, rank(v.comp), v.level, v.block_size));
    Ok(out)
}

/// Sets `row`'s level for `--levels`: an outer compressor's here, any
/// other through the format's own `relevel`. False when the compressor
/// does not take the level, or ignores it (lz4 and lzo outside squashfs).
fn relevel(row: &mut crate::format::CompareRow, level: u32) -> bool {
    if row.outer != Compression::None {
        if matches!(row.outer, Compression::Lz4 | Compression::Lzo)
            || !row.outer.levels().contains(&level)
        {
            return false;
        }
        row.level = Some(level);
        // --levels rows are in whichever matrix runs.
        row.full_only = false;
        return true;
    }
    match row.relevel {
        Some(f) => {
            row.full_only = false;
            f(row, level)
        }
        None => false,
    }
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

impl Row {
    /// The row of `v`, before any build.
    fn of(v: &Variant) -> Row {
        Row {
            format: v.format.name(),
            comp: v.comp,
            level: v.level,
            block_size: v.block_size,
            size: None,
            ratio: None,
            build_s: None,
            build_min_s: None,
            build_max_s: None,
            runs: 0,
            read_s: None,
            verified: None,
            error: None,
        }
    }
}

/// Builds and times one variant into `row` and `times`; on the first run
/// (`verify`) also reads it back and checks it.
fn measure(
    v: &Variant,
    view: &View<'_>,
    check: &Check<'_>,
    baseline: u64,
    verify: bool,
    row: &mut Row,
    times: &mut Vec<f64>,
) {
    let start = Instant::now();
    let image = match build(v, view) {
        Ok(image) => image,
        Err(e) => {
            row.error = Some(format!("{e:#}"));
            row.size = None;
            return;
        }
    };
    times.push(start.elapsed().as_secs_f64());
    let size = image.len() as u64;
    row.size = Some(size);
    row.ratio = (baseline > 0).then(|| size as f64 / baseline as f64);
    if !verify {
        return;
    }

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
}

/// The image as `rootforge build` writes it, in memory.
fn build(v: &Variant, view: &View<'_>) -> Result<Vec<u8>> {
    if v.outer == Compression::None {
        let mut out = Buffer::default();
        v.encoder.write(view, &mut out)?;
        return Ok(out.0);
    }
    let mut sink = CompressSink::new(v.outer, v.level, Vec::new())?;
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
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} {elapsed:>4}, ETA {eta:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// One finished build, for the line-per-build progress.
fn row_summary(row: &Row, time: Option<&f64>) -> String {
    match (row.size, time, &row.error) {
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

/// `x` to 3 decimals, or `-`.
fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"))
}

fn write_table(out: &mut impl Write, r: &Report<'_>) -> io::Result<()> {
    writeln!(
        out,
        "input: {}, {} entries; uncompressed tar image {} bytes ({:.1} MiB) = ratio 1",
        r.input,
        r.entries,
        r.baseline,
        mib(r.baseline)
    )?;
    writeln!(
        out,
        "machine: {}; {}; {} worker threads; {} run(s) each",
        r.machine.text(),
        version(),
        r.jobs,
        r.runs
    )?;
    let spread = r.runs > 1;
    write!(
        out,
        "{:<9} {:<6} {:>5} {:>5} {:>12} {:>9} {:>6} {:>8}",
        "format", "comp", "level", "block", "size", "MiB", "ratio", "build s"
    )?;
    if spread {
        write!(out, " {:>8} {:>8}", "min s", "max s")?;
    }
    writeln!(out, " {:>8}", "read s")?;
    for r in r.rows {
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
            write!(
                out,
                " {size:>12} {:>9.2} {ratio:>6} {build_s:>8.3}",
                mib(size)
            )?;
            if spread {
                write!(
                    out,
                    " {:>8} {:>8}",
                    secs(r.build_min_s),
                    secs(r.build_max_s)
                )?;
            }
            write!(out, " {:>8}", secs(r.read_s))?;
        }
        if let Some(e) = &r.error {
            write!(out, "  error: {e}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The columns `--csv` prints: one line per matrix row (`kind` ours) and per
/// peer (`kind` peer; the `ours_*` columns are the `rootforge build` process
/// with the same settings).
pub const CSV_HEADER: &str = "kind,name,version,format,comp,level,block_size,input,size,ratio,build_s,build_min_s,build_max_s,runs,read_s,verified,peak_rss_kib,ours_build_s,ours_size,ours_peak_rss_kib,time_x,size_x,rss_x,status,error";

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

fn write_csv(
    out: &mut impl Write,
    rows: &[Row],
    peer_rows: Option<&[peers::PeerRow]>,
) -> io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for r in rows {
        let name = format!(
            "{} {}{}",
            r.format,
            r.comp,
            r.block_size
                .map(|b| format!(" {}", block_text(b)))
                .unwrap_or_default()
        );
        let status = match (r.verified, &r.error) {
            (Some(true), _) => "verified",
            (Some(false), _) => "differs",
            (None, Some(_)) => "error",
            (None, None) => "",
        };
        let fields = [
            "ours".to_owned(),
            name,
            version(),
            r.format.to_owned(),
            r.comp.to_owned(),
            opt(r.level),
            opt(r.block_size),
            "memory".to_owned(),
            opt(r.size),
            opt(r.ratio),
            opt(r.build_s),
            opt(r.build_min_s),
            opt(r.build_max_s),
            r.runs.to_string(),
            opt(r.read_s),
            opt(r.verified),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            status.to_owned(),
            r.error.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    for p in peer_rows.unwrap_or_default() {
        let fields = p.csv_fields();
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

fn write_plot(path: &Path, r: &Report<'_>) -> Result<()> {
    let mut points: Vec<plot::Point> = r
        .rows
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
                group: r.format.to_owned(),
                x: build_s,
                y: mib(size),
                peer: false,
            })
        })
        .collect();
    if let Some(p) = r.peers {
        points.extend(peers::points(p));
    }
    let title = format!("Image size against build time: {}", r.input);
    let mut caption = vec![format!(
        "{}; {} worker threads; median of {} run(s)",
        r.machine.text(),
        r.jobs,
        r.runs
    )];
    let versions: Vec<&str> = r.versions.iter().map(|(_, v)| v.as_str()).collect();
    caption.push(versions.join("; "));
    if r.peers.is_some() {
        caption.push(
            "filled: rootforge (matrix rows in memory; \"rootforge build\" rows whole processes); hollow: peer tools, whole processes"
                .to_owned(),
        );
    }
    std::fs::write(path, plot::svg(&title, &caption, &points))
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
        let m = |formats: &[Format], comps: &[&str], blocks: &[u32], levels: &[u32], all| {
            let comps: Vec<String> = comps.iter().map(|c| (*c).to_owned()).collect();
            let w = Wanted {
                formats,
                comps: &comps,
                blocks,
                levels,
                all,
            };
            matrix(&w, t).unwrap()
        };
        let all = m(&Format::ALL, &[], &[], &[], true);
        // (8 + 4 at Buildroot's levels) × cpio, tar + 6 + 3 × 3 squashfs
        // + 4 ext + 2 iso + 3 jffs2 + 1 vfat + 9 erofs (none, and 4
        // compressors at 4K and 64K pclusters).
        assert_eq!(all.len(), 12 + 12 + 15 + 4 + 2 + 3 + 1 + 9);
        let quick = m(&Format::ALL, &[], &[], &[], false);
        assert_eq!(quick.len(), 8 + 8 + 6 + 3 + 2 + 3 + 1 + 5);
        let levels: Vec<_> = quick
            .iter()
            .filter(|v| v.format == Format::Tar)
            .map(|v| (v.comp, v.level))
            .collect();
        assert_eq!(
            levels,
            [
                ("none", None),
                ("gzip", Some(6)),
                ("bzip2", Some(9)),
                ("lz4", Some(9)),
                ("lzma", Some(6)),
                ("lzo", Some(9)),
                ("xz", Some(6)),
                ("zstd", Some(3))
            ]
        );
        let squashfs = m(&[Format::Squashfs], &["zstd", "none"], &[], &[], true);
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
        let none = m(&Format::ALL, &["none"], &[], &[], true);
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
        let sized = m(&[Format::Squashfs], &["lz4"], &[4096, 1 << 20], &[], false);
        assert_eq!(
            names(&sized),
            ["squashfs lz4 4K", "squashfs lz4 128K", "squashfs lz4 1M"]
        );
        // --block-sizes reach ext where it takes them; 128K is asked twice
        // and built once.
        let sized = m(
            &[Format::Ext2, Format::Squashfs],
            &["none"],
            &[2048, 128 << 10],
            &[],
            false,
        );
        assert_eq!(
            names(&sized),
            ["ext2 none 2K", "ext2 none 4K", "squashfs none 128K"]
        );
        // --levels: every compressor that takes the level, once each.
        let levelled = m(
            &[Format::Cpio, Format::Squashfs],
            &["gzip", "zstd", "lz4"],
            &[],
            &[1, 19],
            false,
        );
        let got: Vec<_> = levelled.iter().map(|v| (v.label(), v.level)).collect();
        assert_eq!(
            got,
            [
                ("cpio gzip".to_owned(), Some(1)),
                ("cpio gzip".to_owned(), Some(6)),
                ("cpio lz4".to_owned(), Some(9)),
                ("cpio zstd".to_owned(), Some(1)),
                ("cpio zstd".to_owned(), Some(3)),
                ("cpio zstd".to_owned(), Some(19)),
                ("squashfs gzip 128K".to_owned(), Some(1)),
                ("squashfs gzip 128K".to_owned(), Some(6)),
                ("squashfs lz4 128K".to_owned(), Some(0)),
                ("squashfs lz4 128K".to_owned(), Some(1)),
                ("squashfs zstd 128K".to_owned(), Some(1)),
                ("squashfs zstd 128K".to_owned(), Some(15)),
                ("squashfs zstd 128K".to_owned(), Some(19)),
            ]
        );
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
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn block_sizes_read_as_the_options_take_them() {
        assert_eq!(block_text(1 << 20), "1M");
        assert_eq!(block_text(128 << 10), "128K");
        assert_eq!(block_text(1000), "1000");
    }
}
