//! Builds every requested image from one shared base tree, concurrently,
//! each through its own overlay, into temporary files that are renamed into
//! place only when every image has been written.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use rootforge_common::{Blob, Encoder, FileData, ImagePlan, Overlay, Sink, Source, Tree, View};

use crate::compress::{CompressSink, Compression};
use crate::staged::{Placed, Staged};
use crate::uimage::{self, UimageArch};

/// One image to build.
pub struct ImageJob {
    /// The base name of the output, e.g. `rootfs.cpio`.
    pub name: String,
    pub encoder: Box<dyn Encoder>,
    /// This image's own changes over the base tree.
    pub overlay: Option<Overlay>,
    pub compression: Compression,
    pub level: Option<u32>,
    /// Compressed members may end anywhere (not an initramfs).
    pub cut_anywhere: bool,
    /// Keep `rootfs.cpio` next to `rootfs.cpio.gz`.
    pub keep_uncompressed: bool,
    /// Also wrap the (compressed) image for U-Boot as `<name>.uboot`.
    pub uimage: Option<(UimageArch, u32)>,
}

impl fmt::Debug for ImageJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageJob")
            .field("name", &self.name)
            .field("format", &self.encoder.format())
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// A written image.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    /// Every file written for this image, with its size.
    pub files: Vec<(PathBuf, u64)>,
    pub elapsed: Duration,
    pub warnings: Vec<String>,
}

/// An image made from another image of the same run, such as the initrd
/// ISO that holds the cpio image: built once that image is written, and put
/// in place with the others, or not at all.
pub struct DerivedJob<'a> {
    /// The name of the job whose (first) output it reads.
    pub from: String,
    /// The name of the derived image, for errors.
    pub name: String,
    /// Makes the job and its tree from the other image's bytes.
    #[allow(clippy::type_complexity)]
    pub make: Box<dyn FnOnce(FileData) -> anyhow::Result<(Arc<Tree>, ImageJob)> + Send + 'a>,
}

impl fmt::Debug for DerivedJob<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivedJob")
            .field("from", &self.from)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A derived image could not be made.
    #[error("{image}: {cause:#}")]
    Derived {
        /// The derived image.
        image: String,
        /// Why.
        cause: anyhow::Error,
    },
    #[error("{image}: {cause}")]
    Encode {
        image: String,
        cause: rootforge_common::Error,
    },
    #[error("{image}: writing {path}: {cause}")]
    Io {
        image: String,
        path: PathBuf,
        cause: io::Error,
    },
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live bars (stderr is a terminal).
    Bars,
    /// One line per finished image.
    Lines,
    Quiet,
}

/// Builds `jobs` over `base` into `out_dir`. All images are planned before
/// any file is created, and renamed into place only if all succeed, so a
/// failure leaves nothing behind.
pub fn build(
    base: &Arc<Tree>,
    jobs: &[ImageJob],
    out_dir: &Path,
    mode: ProgressMode,
) -> Result<Vec<Built>, BuildError> {
    build_with(base, jobs, Vec::new(), out_dir, mode)
}

/// [`build`], then each derived job from the image it reads, before
/// anything is put in place: one failure anywhere leaves nothing behind.
pub fn build_with(
    base: &Arc<Tree>,
    jobs: &[ImageJob],
    derived: Vec<DerivedJob<'_>>,
    out_dir: &Path,
    mode: ProgressMode,
) -> Result<Vec<Built>, BuildError> {
    let mut pending = write_all(base, jobs, out_dir, mode)?;
    for d in derived {
        let source = pending
            .iter()
            .find(|p| p.name == d.from)
            .and_then(|p| p.files.first())
            .ok_or_else(|| BuildError::Derived {
                image: d.name.clone(),
                cause: anyhow::anyhow!("{} was not built", d.from),
            })?;
        let data = staged_data(source.0.as_file()).map_err(|cause| BuildError::Io {
            image: d.name.clone(),
            path: source.1.clone(),
            cause,
        })?;
        let (tree, job) = (d.make)(data).map_err(|cause| BuildError::Derived {
            image: d.name.clone(),
            cause,
        })?;
        pending.extend(write_all(&tree, std::slice::from_ref(&job), out_dir, mode)?);
    }
    persist_all(pending)
}

/// The bytes of an image just written, as file data for another image.
fn staged_data(file: &File) -> io::Result<FileData> {
    let blob = rootforge_common::FileBlob::new(file.try_clone()?)?;
    let size = blob.len();
    FileData::range(Arc::new(blob), 0, size)
        .ok_or_else(|| io::Error::other("the staged image changed size"))
}

/// Plans and writes every job to temporary files.
fn write_all(
    base: &Arc<Tree>,
    jobs: &[ImageJob],
    out_dir: &Path,
    mode: ProgressMode,
) -> Result<Vec<Pending>, BuildError> {
    let views: Vec<View<'_>> = jobs
        .iter()
        .map(|j| {
            j.overlay
                .as_ref()
                .map_or_else(|| base.view(), Overlay::view)
        })
        .collect();
    // Every image is planned, and so checked, before any file exists.
    let plans: Vec<Box<dyn ImagePlan + '_>> = jobs
        .par_iter()
        .zip(&views)
        .map(|(job, view)| {
            job.encoder
                .plan(*view)
                .map_err(|source| BuildError::Encode {
                    image: job.name.clone(),
                    cause: source,
                })
        })
        .collect::<Result<_, _>>()?;

    let multi = MultiProgress::with_draw_target(match mode {
        ProgressMode::Bars => ProgressDrawTarget::stderr(),
        _ => ProgressDrawTarget::hidden(),
    });
    let results: Vec<Result<Pending, BuildError>> = jobs
        .par_iter()
        .zip(plans)
        .map(|(job, plan)| {
            let bar = multi.add(ProgressBar::no_length());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:>18} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(job.name.clone());
            let r = write_image(job, plan, out_dir, &bar);
            bar.finish_and_clear();
            if let (ProgressMode::Lines, Ok(p)) = (mode, &r) {
                eprintln!("{}: written in {:.2} s", job.name, p.elapsed.as_secs_f64());
            }
            r
        })
        .collect();
    // Any failure drops every temporary file, finished or not.
    results.into_iter().collect()
}

/// Puts every written image in place, or none.
fn persist_all(pending: Vec<Pending>) -> Result<Vec<Built>, BuildError> {
    let mut placed = Placed::default();
    let built = pending
        .into_iter()
        .map(|p| p.persist(&mut placed))
        .collect::<Result<Vec<_>, _>>();
    if built.is_ok() {
        placed.keep();
    } else {
        // A rename failed (a directory in the way, say): take back what this
        // run already put in place, so a failure leaves none of its images.
        placed.take_back();
    }
    built
}

/// An image written to temporary files, not yet in place.
struct Pending {
    name: String,
    files: Vec<(Staged, PathBuf)>,
    elapsed: Duration,
    warnings: Vec<String>,
}

impl Pending {
    /// Renames the files into place, recording each one in `placed`.
    fn persist(self, placed: &mut Placed) -> Result<Built, BuildError> {
        let mut files = Vec::new();
        for (tmp, dest) in self.files {
            let size = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
            tmp.persist(&dest).map_err(|cause| BuildError::Io {
                image: self.name.clone(),
                path: dest.clone(),
                cause,
            })?;
            placed.push(dest.clone());
            files.push((dest, size));
        }
        Ok(Built {
            name: self.name,
            files,
            elapsed: self.elapsed,
            warnings: self.warnings,
        })
    }
}

fn write_image(
    job: &ImageJob,
    plan: Box<dyn ImagePlan + '_>,
    out_dir: &Path,
    bar: &ProgressBar,
) -> Result<Pending, BuildError> {
    let start = Instant::now();
    let dest = out_dir.join(format!("{}{}", job.name, job.compression.suffix()));
    let io_err = |path: &Path| {
        let image = job.name.clone();
        let path = path.to_path_buf();
        move |source| BuildError::Io {
            image,
            path,
            cause: source,
        }
    };
    let main = Staged::new_in(out_dir).map_err(io_err(&dest))?;
    let plain_dest = out_dir.join(&job.name);
    let plain = match (job.compression, job.keep_uncompressed) {
        (Compression::None, _) | (_, false) => None,
        (_, true) => Some(Staged::new_in(out_dir).map_err(io_err(&plain_dest))?),
    };

    let report = {
        let main_out = BufWriter::with_capacity(1 << 20, main.as_file());
        let mut sink = Output::new(
            job,
            main_out,
            plain
                .as_ref()
                .map(|p| BufWriter::with_capacity(1 << 20, p.as_file())),
        )
        .map_err(io_err(&dest))?;
        let mut counted = Counted {
            inner: &mut sink,
            bar,
        };
        let report = plan
            .write(&mut counted)
            .map_err(|source| BuildError::Encode {
                image: job.name.clone(),
                cause: source,
            })?;
        sink.finish().map_err(io_err(&dest))?;
        report
    };

    let mut files = vec![(main, dest.clone())];
    if let Some(p) = plain {
        files.push((p, plain_dest));
    }
    if let Some((arch, time)) = job.uimage {
        let uboot_dest = out_dir.join(format!("{}.uboot", job.name));
        let uboot = Staged::new_in(out_dir).map_err(io_err(&uboot_dest))?;
        wrap_uimage(files[0].0.as_file(), uboot.as_file(), arch, time)
            .map_err(io_err(&uboot_dest))?;
        files.push((uboot, uboot_dest));
    }
    Ok(Pending {
        name: job.name.clone(),
        files,
        elapsed: start.elapsed(),
        warnings: report.warnings,
    })
}

fn wrap_uimage(payload: &File, out: &File, arch: UimageArch, time: u32) -> io::Result<()> {
    let mut payload = io::BufReader::new(payload.try_clone()?);
    let mut w = BufWriter::new(out);
    uimage::write_uimage(&mut payload, time, arch, &mut w)?;
    w.flush()
}

/// The encoder's sink: straight to the file, or through the compressor, and
/// optionally also to an uncompressed copy.
enum Output<'f> {
    Plain(BufWriter<&'f File>),
    Compressed {
        comp: Box<CompressSink<BufWriter<&'f File>>>,
        copy: Option<BufWriter<&'f File>>,
    },
}

impl<'f> Output<'f> {
    fn new(
        job: &ImageJob,
        out: BufWriter<&'f File>,
        copy: Option<BufWriter<&'f File>>,
    ) -> io::Result<Self> {
        Ok(match job.compression {
            Compression::None => Output::Plain(out),
            c => {
                let comp = CompressSink::new(c, job.level, out)?;
                Output::Compressed {
                    comp: Box::new(if job.cut_anywhere {
                        comp.cut_anywhere()
                    } else {
                        comp
                    }),
                    copy,
                }
            }
        })
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Output::Plain(mut w) => {
                // A trailing hole left by `skip` needs the length set.
                let end = w.stream_position()?;
                w.flush()?;
                let file = w.get_ref();
                if file.metadata()?.len() < end {
                    file.set_len(end)?;
                }
                Ok(())
            }
            Output::Compressed { comp, copy } => {
                comp.finish()?.flush()?;
                if let Some(mut c) = copy {
                    c.flush()?;
                }
                Ok(())
            }
        }
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Plain(w) => w.write_all(buf),
            Output::Compressed { comp, copy } => {
                if let Some(c) = copy {
                    c.write_all(buf)?;
                }
                comp.write_all(buf)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Plain(w) => w.flush(),
            Output::Compressed { comp, copy } => {
                if let Some(c) = copy {
                    c.flush()?;
                }
                comp.flush()
            }
        }
    }
}

impl Sink for Output<'_> {
    fn boundary(&mut self) -> io::Result<()> {
        match self {
            Output::Plain(_) => Ok(()),
            Output::Compressed { comp, .. } => comp.boundary(),
        }
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        match self {
            Output::Plain(w) => {
                let n = i64::try_from(n)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "hole too large"))?;
                w.seek(SeekFrom::Current(n)).map(drop)
            }
            Output::Compressed { .. } => rootforge_common::write_zeros(self, n),
        }
    }

    fn write_data(&mut self, data: &FileData) -> io::Result<()> {
        match self {
            Output::Plain(w) if data.size() >= COPY_RANGE_AT => {
                let host;
                let source = match data.source() {
                    Source::Host(path) => {
                        host = File::open(path)?;
                        Some((&host, 0))
                    }
                    _ => data.in_file(),
                };
                if let Some((from, offset)) = source {
                    w.flush()?;
                    if copy_range(from, offset, data.size(), w.get_ref())? {
                        return Ok(());
                    }
                }
                data.write_to(w)
            }
            _ => data.write_to(self),
        }
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Plain(w) => {
                w.flush()?;
                w.get_ref().write_all_at(buf, offset)
            }
            Output::Compressed { comp, .. } => comp.write_at(offset, buf),
        }
    }
}

/// File data at least this long is copied with `copy_file_range`: below
/// it, the syscall costs more than the copy through the write buffer.
const COPY_RANGE_AT: u64 = 64 << 10;

/// Copies `len` bytes at `offset` of `from` to the current position of
/// `to` inside the kernel (a reflink where the filesystem shares blocks).
/// Returns false, having copied nothing, where the kernel cannot copy
/// between these files, so the caller copies them itself.
fn copy_range(from: &File, mut offset: u64, len: u64, to: &File) -> io::Result<bool> {
    use rustix::io::Errno;
    let mut left = len;
    while left > 0 {
        let chunk = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        match rustix::fs::copy_file_range(from, Some(&mut offset), to, None, chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file shrank: {left} bytes missing"),
                ));
            }
            Ok(n) => left -= n as u64,
            Err(e)
                if left == len
                    && [
                        Errno::XDEV,
                        Errno::INVAL,
                        Errno::NOSYS,
                        Errno::OPNOTSUPP,
                        Errno::BADF,
                    ]
                    .contains(&e) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Counts bytes for the progress bar.
struct Counted<'a, S: Sink> {
    inner: &'a mut S,
    bar: &'a ProgressBar,
}

impl<S: Sink> Write for Counted<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.bar.inc(buf.len() as u64);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<S: Sink> Sink for Counted<'_, S> {
    fn boundary(&mut self) -> io::Result<()> {
        self.inner.boundary()
    }

    fn write_data(&mut self, data: &FileData) -> io::Result<()> {
        self.inner.write_data(data)?;
        self.bar.inc(data.size());
        Ok(())
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        self.inner.skip(n)?;
        self.bar.inc(n);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, buf)
    }
}
