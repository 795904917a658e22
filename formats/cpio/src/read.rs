//! The newc/crc reader, following the Linux initramfs unpacker
//! (`init/initramfs.c`).

use std::collections::HashMap;

use rootforge_common::{
    Backing, Blob, Content, Edit, Error, FileData, Inode, Kind, Meta, Replace, Result, Time, Tree,
    TreeBuilder,
};

use crate::header::{CpioFormat, HEADER_LEN, Header, byte_sum, padding};
use crate::{PATH_MAX, TRAILER};

const FORMAT: &str = "cpio";

fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

/// One member as stored. File data is not read: a file refers to its
/// range of the image.
#[derive(Debug)]
pub(crate) struct Raw {
    /// Offset of the header in the image.
    pub offset: u64,
    pub header: Header,
    /// The name without its NUL.
    pub name: Box<[u8]>,
    /// Offset of the data in the image.
    pub data_offset: u64,
    pub data_len: u64,
    /// A symlink's stored target, when it is at most `PATH_MAX` bytes.
    pub target: Option<Box<[u8]>>,
}

/// Bytes read from a file-backed image at a time: several small members'
/// headers, or one header and name.
const WINDOW: u64 = 64 << 10;

/// Reads an image's bytes for the member walk: from memory when the image
/// is there, else through a window read with `read_at`, so a file-backed
/// image is never copied whole.
struct Window<'a> {
    image: &'a dyn Blob,
    len: u64,
    /// Where `buf` starts in the image.
    at: u64,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    fn new(image: &'a dyn Blob) -> Self {
        Window {
            image,
            len: image.len(),
            at: 0,
            buf: Vec::new(),
        }
    }

    /// The `n` bytes at `at`, or `None` when they run past the end.
    fn get(&mut self, at: u64, n: u64) -> Result<Option<&[u8]>> {
        let Some(end) = at.checked_add(n).filter(|&end| end <= self.len) else {
            return Ok(None);
        };
        let range = |base: u64| -> Option<std::ops::Range<usize>> {
            let lo = usize::try_from(at.checked_sub(base)?).ok()?;
            Some(lo..lo.checked_add(usize::try_from(n).ok()?)?)
        };
        if let Some(all) = self.image.as_slice() {
            return Ok(range(0).and_then(|r| all.get(r)));
        }
        let buffered_end = self.at.saturating_add(self.buf.len() as u64);
        if at < self.at || end > buffered_end {
            let want = n.max(WINDOW).min(self.len - at);
            let want = usize::try_from(want).map_err(|_| malformed(at, "member too large"))?;
            self.buf.resize(want, 0);
            self.image
                .read_at(at, &mut self.buf)
                .map_err(|e| Error::io("reading the cpio image", e))?;
            self.at = at;
        }
        Ok(range(self.at).and_then(|r| self.buf.get(r)))
    }

    /// The `n` bytes at `at`, which the caller has checked lie in the image.
    fn need(&mut self, at: u64, n: u64, what: &str) -> Result<&[u8]> {
        self.get(at, n)?
            .ok_or_else(|| malformed(at, format!("{what} runs past the end of the image")))
    }
}

/// The members of an image in order, across concatenated archives. Runs of
/// NUL bytes between members are skipped, as the kernel does; a member must
/// still start 4-aligned. Yields nothing more after an error.
pub(crate) struct Members<'a> {
    window: Window<'a>,
    pos: u64,
    failed: bool,
}

impl std::fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<'a> Members<'a> {
    pub(crate) fn new(image: &'a dyn Blob) -> Self {
        Members {
            window: Window::new(image),
            pos: 0,
            failed: false,
        }
    }

    /// The offset of the next non-NUL byte from `self.pos`, if any.
    fn skip_nuls(&mut self) -> Result<Option<u64>> {
        let len = self.window.len;
        let mut at = self.pos;
        while at < len {
            let n = (len - at).min(WINDOW);
            let chunk = self.window.need(at, n, "padding")?;
            match chunk.iter().position(|&b| b != 0) {
                Some(skip) => return Ok(Some(at + skip as u64)),
                None => at += n,
            }
        }
        Ok(None)
    }

    fn parse_next(&mut self) -> Result<Option<Raw>> {
        let Some(start) = self.skip_nuls()? else {
            self.pos = self.window.len;
            return Ok(None);
        };
        if start % 4 != 0 {
            return Err(malformed(
                start,
                "member does not start on a 4-byte boundary",
            ));
        }
        let header_bytes = self
            .window
            .get(start, HEADER_LEN as u64)?
            .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
            .ok_or_else(|| malformed(start, "truncated header"))?;
        let (format, header) = Header::decode(header_bytes).map_err(|r| malformed(start, r))?;

        let name_start = start + HEADER_LEN as u64;
        let namesize = u64::from(header.namesize);
        if namesize == 0 || namesize > PATH_MAX as u64 {
            return Err(malformed(
                start,
                format!("name size {namesize} is outside 1..={PATH_MAX}"),
            ));
        }
        let stored = self
            .window
            .get(name_start, namesize)?
            .ok_or_else(|| malformed(name_start, "name runs past the end of the image"))?;
        let (name, nul) = stored.split_at(stored.len() - 1);
        if nul != [0] || name.contains(&0) {
            return Err(malformed(
                name_start,
                "name is not one NUL-terminated string",
            ));
        }
        let name: Box<[u8]> = name.into();
        let name_end = name_start + namesize;

        let size = u64::from(header.filesize);
        let data_offset =
            align4(name_end).ok_or_else(|| malformed(name_end, "name padding overflows"))?;
        let data_end = data_offset
            .checked_add(size)
            .filter(|&end| end <= self.window.len)
            .ok_or_else(|| {
                malformed(
                    data_offset,
                    format!("{size} bytes of data run past the end of the image"),
                )
            })?;
        let kind = Kind::from_mode(header.mode);
        let mut target = None;
        if kind == Some(Kind::Symlink) && size <= PATH_MAX as u64 {
            target = Some(
                self.window
                    .need(data_offset, size, "symlink target")?
                    .into(),
            );
        }
        if format == CpioFormat::Crc && kind == Some(Kind::File) {
            let mut sum = 0;
            let mut at = data_offset;
            while at < data_end {
                let n = (data_end - at).min(WINDOW);
                sum = byte_sum(sum, self.window.need(at, n, "file data")?);
                at += n;
            }
            if sum != header.check {
                return Err(malformed(
                    start,
                    format!(
                        "bad data checksum: header says {:08x}, data sums to {sum:08x}",
                        header.check
                    ),
                ));
            }
        }
        // The final member's padding may be cut off; nothing follows it.
        self.pos = align4(data_end).map_or(self.window.len, |p| p.min(self.window.len));
        Ok(Some(Raw {
            offset: start,
            header,
            name,
            data_offset,
            data_len: size,
            target,
        }))
    }
}

impl Iterator for Members<'_> {
    type Item = Result<Raw>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.parse_next().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

fn align4(pos: u64) -> Option<u64> {
    pos.checked_add(padding(pos, 4))
}

/// What identifies a hard-link group within one archive, as the kernel keys
/// its link table.
type LinkKey = (u32, u32, u32, Kind);

/// Reads a newc or crc image (or several concatenated ones) into a tree.
/// Regular files refer to their bytes in `image`; nothing is copied.
///
/// As the kernel's unpacker: `.` sets the root's metadata, a later member
/// replaces an earlier one of the same name, names with `nlink >= 2` and the
/// same `(dev major, dev minor, ino, type)` are hard links (the data may be
/// on any of them; `chmod`, `chown` and the mtime of every regular-file name
/// apply to the shared inode), `TRAILER!!!` ends an archive and clears the
/// link table, and NUL padding between archives is skipped. Parents that
/// have no member of their own are created with mode 0755, owner 0:0, mtime 0.
pub fn read(image: Backing) -> Result<Tree> {
    let mut tree = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default()));
    let mut links: HashMap<LinkKey, Box<[u8]>> = HashMap::new();
    for raw in Members::new(&*image) {
        let raw = raw?;
        if *raw.name == *TRAILER {
            links.clear();
            continue;
        }
        add(&mut tree, &mut links, &image, &raw).map_err(|e| match e {
            Error::Tree { .. } => malformed(raw.offset, e.to_string()),
            e => e,
        })?;
    }
    Ok(tree.finish())
}

fn add(
    tree: &mut TreeBuilder,
    links: &mut HashMap<LinkKey, Box<[u8]>>,
    image: &Backing,
    raw: &Raw,
) -> Result<()> {
    let h = &raw.header;
    let kind = Kind::from_mode(h.mode).ok_or_else(|| {
        malformed(
            raw.offset,
            format!("unknown file type in mode {:o}", h.mode),
        )
    })?;
    if !matches!(kind, Kind::File | Kind::Symlink) && raw.data_len != 0 {
        return Err(malformed(
            raw.offset,
            format!("a {} with {} bytes of data", kind.name(), raw.data_len),
        ));
    }
    // The mask keeps 12 bits, which fit.
    let perm = (h.mode & 0o7777) as u16;
    let meta = Meta::new(perm, h.uid, h.gid, Time::from_secs(i64::from(h.mtime)));
    let content = match kind {
        Kind::Dir => Content::Dir(Default::default()),
        Kind::File => Content::File(
            FileData::range(image.clone(), raw.data_offset, raw.data_len)
                .ok_or_else(|| malformed(raw.data_offset, "file data outside the image"))?,
        ),
        Kind::Symlink => {
            let Some(target) = &raw.target else {
                return Err(malformed(
                    raw.offset,
                    format!("symlink target longer than {PATH_MAX} bytes"),
                ));
            };
            // The kernel reads the target as a C string; gen_init_cpio
            // stores the NUL.
            let end = target.iter().position(|&b| b == 0);
            Content::Symlink(target[..end.unwrap_or(target.len())].into())
        }
        Kind::CharDev => Content::CharDev {
            major: h.rdev_major,
            minor: h.rdev_minor,
        },
        Kind::BlockDev => Content::BlockDev {
            major: h.rdev_major,
            minor: h.rdev_minor,
        },
        Kind::Fifo => Content::Fifo,
        Kind::Socket => Content::Socket,
    };

    // The kernel links regular files, devices, fifos and sockets only.
    if h.nlink >= 2 && !matches!(kind, Kind::Dir | Kind::Symlink) {
        let key = (h.dev_major, h.dev_minor, h.ino, kind);
        if let Some(first) = links.get(&key) {
            let id = tree.hard_link(&raw.name, first)?;
            let inode = tree.inode_mut(id);
            if inode.kind() != kind {
                return Err(malformed(
                    raw.offset,
                    format!(
                        "hard link to a {}, which was replaced by a {}",
                        kind.name(),
                        inode.kind().name()
                    ),
                ));
            }
            if kind == Kind::File {
                inode.meta = meta;
                if raw.data_len != 0 {
                    inode.content = content;
                }
            }
            return Ok(());
        }
        links.insert(key, raw.name.clone());
    }
    tree.insert(&raw.name, Inode::new(meta, content), Replace::Always)?;
    Ok(())
}
