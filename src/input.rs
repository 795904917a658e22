//! Reading the input once: a tarball (compression sniffed from its magic
//! bytes), stdin, a directory, or the bundled example rootfs.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rootforge_common::{
    Backing, Content, Edit, FileBlob, FileData, Inode, Meta, Replace, Time, Tree, TreeBuilder,
};

use crate::compress::{self, Compression};
use crate::format::{Format, ReadOptions, SNIFF_LEN};

/// The example rootfs built by `example/make-rootfs.py`, used when no input
/// is given.
pub static EXAMPLE_ROOTFS: &[u8] = include_bytes!("../example/rootfs.tar");

/// Where the rootfs comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Example,
    Stdin,
    Path(PathBuf),
}

impl Source {
    /// `None` is the bundled example; `-` is stdin.
    pub fn from_arg(arg: Option<&Path>) -> Self {
        match arg {
            None => Source::Example,
            Some(p) if p.as_os_str() == "-" => Source::Stdin,
            Some(p) => Source::Path(p.to_path_buf()),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Example => f.write_str("the bundled example rootfs"),
            Source::Stdin => f.write_str("stdin"),
            Source::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How to read the input.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `SOURCE_DATE_EPOCH`: clamps every mtime and dates implied directories.
    pub source_date_epoch: Option<i64>,
    /// Every file owned by 0:0 (for a directory owned by the build user).
    pub all_root: bool,
    /// Read a tarball past zero blocks (GNU tar's `--ignore-zeros`).
    pub ignore_zeros: bool,
}

impl Options {
    /// Metadata of directories that only appear as parents.
    pub fn implicit_dir(&self) -> Meta {
        Meta::new(
            0o755,
            0,
            0,
            Time::from_secs(self.source_date_epoch.unwrap_or(0)),
        )
    }
}

/// An input read into a tree.
#[derive(Debug)]
pub struct Loaded {
    pub tree: Tree,
    /// Tar members or directory entries read.
    pub entries: u64,
    /// The input's compression, if it was compressed.
    pub compression: Compression,
    /// The image format the input was, when it was not a tarball or a
    /// directory.
    pub format: Option<Format>,
    pub warnings: Vec<String>,
}

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{input}: {cause}")]
    Io { input: String, cause: io::Error },
    #[error("{input}: {cause}")]
    Tree {
        input: String,
        cause: rootforge_common::Error,
    },
}

fn io_err(input: &Source, source: io::Error) -> InputError {
    InputError::Io {
        input: input.to_string(),
        cause: source,
    }
}

/// Reads the whole input into a tree.
pub fn load(source: &Source, opts: &Options) -> Result<Loaded, InputError> {
    let (backing, compression, trailing) = match source {
        Source::Example => (Arc::new(EXAMPLE_ROOTFS) as Backing, Compression::None, None),
        Source::Stdin => return load_stream(source, &mut io::stdin().lock(), opts),
        Source::Path(p) => {
            let meta = fs::metadata(p).map_err(|e| io_err(source, e))?;
            if meta.is_dir() {
                return read_dir(p, opts);
            }
            open_tarball(source, p)?
        }
    };
    ingest(source, backing, compression, trailing, opts)
}

/// Reads a (possibly compressed) tarball from a stream, as for stdin;
/// `source` names it in errors.
pub fn load_stream(
    source: &Source,
    input: &mut dyn Read,
    opts: &Options,
) -> Result<Loaded, InputError> {
    let (backing, compression, trailing) = spool(source, input)?;
    ingest(source, backing, compression, trailing, opts)
}

/// Reads the tarball or image in `backing` into a tree: any format the
/// registry reads is an input, sniffed from its bytes. A tarball is the
/// fallback, so that a broken one gets the tar reader's error. `trailing` is how many
/// bytes of garbage followed the compressed stream.
fn ingest(
    source: &Source,
    backing: Backing,
    compression: Compression,
    trailing: Option<u64>,
    opts: &Options,
) -> Result<Loaded, InputError> {
    let mut head = vec![
        0u8;
        usize::try_from(backing.len())
            .unwrap_or(usize::MAX)
            .min(SNIFF_LEN)
    ];
    backing
        .read_at(0, &mut head)
        .map_err(|e| io_err(source, e))?;
    let format = Format::sniff(&head).filter(|&f| f != Format::Tar);
    let read_opts = ReadOptions {
        implicit_dir: opts.implicit_dir(),
        clamp_mtime: opts.source_date_epoch,
        ignore_zeros: opts.ignore_zeros,
    };
    let mut read = match format {
        Some(f) => f.read(backing, &read_opts),
        None => Format::Tar.read(backing, &read_opts),
    }
    .map_err(|e| InputError::Tree {
        input: source.to_string(),
        cause: e,
    })?;
    if let Some(n) = trailing {
        // Garbage after the stream is harmless only if the archive in it
        // is whole; otherwise it may be the rest of a damaged stream.
        if !read.complete {
            return Err(io_err(
                source,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{n} bytes of trailing garbage follow the {compression} stream, and the archive in it is incomplete: corrupt input"
                    ),
                ),
            ));
        }
        read.warnings.push(format!(
            "{n} bytes of trailing garbage after the {compression} stream ignored"
        ));
    }
    let mut tree = read.tree;
    if opts.all_root {
        let mut b = tree.into_builder(opts.implicit_dir());
        b.chown_all(0, 0);
        tree = b.finish();
    }
    Ok(Loaded {
        tree,
        entries: read.entries,
        compression,
        format,
        warnings: read.warnings,
    })
}

/// Maps a plain tarball in place, or decompresses a compressed one into an
/// unlinked temporary file and maps that, so file data is never held twice
/// and memory stays near the size of the metadata.
fn open_tarball(source: &Source, path: &Path) -> Result<Spooled, InputError> {
    let mut file = File::open(path).map_err(|e| io_err(source, e))?;
    let head = compress::read_head(&mut file).map_err(|e| io_err(source, e))?;
    refuse_unsupported(source, &head)?;
    match compress::sniff(&head) {
        None => Ok((
            file_blob(file).map_err(|e| io_err(source, e))?,
            Compression::None,
            None,
        )),
        Some(c) => {
            drop(file);
            let file = File::open(path).map_err(|e| io_err(source, e))?;
            let (spooled, trailing) =
                decompress_to_temp(c, file).map_err(|e| decompress_err(source, c, e))?;
            Ok((
                file_blob(spooled).map_err(|e| io_err(source, e))?,
                c,
                trailing,
            ))
        }
    }
}

/// The input, decompressed; its compression; trailing garbage bytes.
type Spooled = (Backing, Compression, Option<u64>);

/// A compression recognised by its magic but not read is named.
fn refuse_unsupported(source: &Source, head: &[u8]) -> Result<(), InputError> {
    match compress::unsupported(head) {
        Some(what) => Err(io_err(
            source,
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the input is {what} compressed, which rootforge does not read: decompress it first"
                ),
            ),
        )),
        None => Ok(()),
    }
}

fn decompress_err(source: &Source, c: Compression, e: io::Error) -> InputError {
    io_err(
        source,
        io::Error::new(e.kind(), format!("{c} decompression failed: {e}")),
    )
}

/// Copies a stream (stdin) to an unlinked temporary file, decompressing it
/// if its first bytes say it is compressed.
fn spool(source: &Source, input: &mut dyn Read) -> Result<Spooled, InputError> {
    let head = compress::read_head(input).map_err(|e| io_err(source, e))?;
    refuse_unsupported(source, &head)?;
    let c = compress::sniff(&head).unwrap_or(Compression::None);
    let chained = FullReads(io::Cursor::new(head).chain(input));
    let (file, trailing) =
        decompress_to_temp(c, chained).map_err(|e| decompress_err(source, c, e))?;
    Ok((file_blob(file).map_err(|e| io_err(source, e))?, c, trailing))
}

/// Fills every read unless the input ends, so a decoder sees the same reads
/// however a pipe delivers the stream, and fails with the same message
/// (which says how much it had decoded).
struct FullReads<R>(R);

impl<R: Read> Read for FullReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_full(&mut self.0, buf)
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn decompress_to_temp<'a>(
    c: Compression,
    input: impl Read + 'a,
) -> io::Result<(File, Option<u64>)> {
    let mut decoder = compress::decoder(c, input)?;
    let mut file = tempfile::tempfile()?;
    io::copy(&mut decoder, &mut file)?;
    file.flush()?;
    Ok((file, decoder.trailing()))
}

/// File data is read with `pread` when an image needs it, so the input's
/// pages live in the page cache, not in this process.
pub fn file_blob(file: File) -> io::Result<Backing> {
    Ok(Arc::new(FileBlob::new(file)?))
}

/// Reads a host directory tree: owners, modes, mtimes, xattrs, device
/// numbers and hard links (by device and inode number). File data stays on
/// the host and is read when an image needs it.
pub fn read_dir(root: &Path, opts: &Options) -> Result<Loaded, InputError> {
    let source = Source::Path(root.to_path_buf());
    let mut b = TreeBuilder::new(opts.implicit_dir());
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut entries = 0u64;
    let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((host, rel)) = stack.pop() {
        let md = fs::symlink_metadata(&host).map_err(|e| io_err(&source, with_path(e, &host)))?;
        entries = entries.saturating_add(1);
        let ft = md.file_type();
        if !ft.is_dir() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = links.get(&key) {
                b.hard_link(&rel, first).map_err(|e| tree_err(&source, e))?;
                continue;
            }
            links.insert(key, rel.clone());
        }
        let content = if ft.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&host)
                .map_err(|e| io_err(&source, with_path(e, &host)))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()
                .map_err(|e| io_err(&source, with_path(e, &host)))?;
            // Reverse order on the stack gives a sorted walk, so the first
            // name of a hard-link group does not depend on readdir order.
            names.sort_unstable_by(|a, b| b.cmp(a));
            for name in names {
                let mut child = rel.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()));
                stack.push((host.join(&name), child));
            }
            Content::Dir(Default::default())
        } else if ft.is_file() {
            Content::File(FileData::host(host.as_path(), md.len()))
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(|e| io_err(&source, with_path(e, &host)))?;
            Content::Symlink(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).into())
        } else if ft.is_char_device() || ft.is_block_device() {
            let (major, minor) = split_dev(md.rdev());
            if ft.is_char_device() {
                Content::CharDev { major, minor }
            } else {
                Content::BlockDev { major, minor }
            }
        } else if ft.is_fifo() {
            Content::Fifo
        } else {
            Content::Socket
        };
        let (uid, gid) = if opts.all_root {
            (0, 0)
        } else {
            (md.uid(), md.gid())
        };
        let perm = u16::try_from(md.mode() & 0o7777).unwrap_or(0);
        let mtime = Time {
            sec: md.mtime(),
            nsec: u32::try_from(md.mtime_nsec()).unwrap_or(0),
        };
        let mut inode = Inode::new(Meta::new(perm, uid, gid, mtime), content);
        for (name, value) in host_xattrs(&host).map_err(|e| io_err(&source, with_path(e, &host)))? {
            inode.set_xattr(&name, &value);
        }
        b.insert(&rel, inode, Replace::Always)
            .map_err(|e| tree_err(&source, e))?;
    }
    if let Some(max) = opts.source_date_epoch {
        b.clamp_mtimes(Time::from_secs(max));
    }
    Ok(Loaded {
        tree: b.finish(),
        entries,
        compression: Compression::None,
        format: None,
        warnings: Vec::new(),
    })
}

fn tree_err(source: &Source, e: rootforge_common::Error) -> InputError {
    InputError::Tree {
        input: source.to_string(),
        cause: e,
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Linux's `dev_t` encoding (glibc `gnu_dev_major`/`gnu_dev_minor`).
fn split_dev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

fn host_xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        // Filesystems without xattr support simply have none.
        Err(e) if e.raw_os_error() == Some(95) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        if let Some(value) = xattr::get(path, &name)? {
            out.push((
                std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()).to_vec(),
                value,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rootforge_common::listing;

    use super::*;

    /// Hands out its bytes one at a time, as a pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streams_read_in_any_pieces_give_the_same_tree() {
        let opts = Options::default();
        let want = listing::of_view(&load(&Source::Example, &opts).unwrap().tree.view()).unwrap();
        for c in Compression::ALL {
            let stream = compress::compress_all(c, None, EXAMPLE_ROOTFS).unwrap();
            let loaded = load_stream(&Source::Stdin, &mut Trickle(&stream), &opts).unwrap();
            assert_eq!(loaded.compression, c);
            assert_eq!(listing::of_view(&loaded.tree.view()).unwrap(), want, "{c}");
        }
    }

    /// Decoders say how much they had decoded when they fail, which must
    /// not depend on how a pipe delivered the stream (found by the
    /// split_reads fuzzer).
    #[test]
    fn corrupt_streams_fail_alike_in_any_pieces() {
        let opts = Options::default();
        let mut stream = compress::compress_all(Compression::Xz, None, EXAMPLE_ROOTFS).unwrap();
        let mid = stream.len() / 2;
        stream[mid] ^= 0x55;
        let whole = load_stream(&Source::Stdin, &mut io::Cursor::new(&stream), &opts).unwrap_err();
        let split = load_stream(&Source::Stdin, &mut Trickle(&stream), &opts).unwrap_err();
        assert_eq!(whole.to_string(), split.to_string());
        assert!(whole.to_string().contains("xz decoding failed"), "{whole}");
    }

    #[test]
    fn dev_numbers_split_like_glibc() {
        // glibc's makedev(0x12345, 0x123456): both numbers use the high bits.
        let (major, minor) = (0x12345u64, 0x123456u64);
        let big = ((major & 0xfffff000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffffff00) << 12)
            | (minor & 0xff);
        assert_eq!(split_dev(big), (0x12345, 0x123456));
        assert_eq!(split_dev((8 << 8) | 1), (8, 1));
    }
}
