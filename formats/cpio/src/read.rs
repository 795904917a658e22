//! The newc/crc reader, following the Linux initramfs unpacker
//! (`init/initramfs.c`).

use std::collections::HashMap;

use rootforge_common::{
    Backing, Content, Edit, Error, FileData, Inode, Kind, Meta, Replace, Result, Time, Tree,
    TreeBuilder,
};

use crate::header::{CpioFormat, HEADER_LEN, Header, byte_sum, padding};
use crate::{PATH_MAX, TRAILER};

const FORMAT: &str = "cpio";

fn malformed(offset: usize, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset as u64, reason)
}

/// One member as stored.
#[derive(Debug)]
pub(crate) struct Raw<'a> {
    /// Offset of the header in the image.
    pub offset: usize,
    pub header: Header,
    /// The name without its NUL.
    pub name: &'a [u8],
    /// Offset of the data in the image.
    pub data_offset: usize,
    pub data: &'a [u8],
}

/// The members of an image in order, across concatenated archives. Runs of
/// NUL bytes between members are skipped, as the kernel does; a member must
/// still start 4-aligned. Yields nothing more after an error.
#[derive(Debug)]
pub(crate) struct Members<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Members<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Members {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn parse_next(&mut self) -> Result<Option<Raw<'a>>> {
        let buf = self.buf;
        let rest = buf.get(self.pos..).unwrap_or_default();
        let start = match rest.iter().position(|&b| b != 0) {
            Some(skip) => self.pos.saturating_add(skip),
            None => {
                self.pos = buf.len();
                return Ok(None);
            }
        };
        if start % 4 != 0 {
            return Err(malformed(
                start,
                "member does not start on a 4-byte boundary",
            ));
        }
        let header_bytes = start
            .checked_add(HEADER_LEN)
            .and_then(|end| buf.get(start..end))
            .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
            .ok_or_else(|| malformed(start, "truncated header"))?;
        let (format, header) = Header::decode(header_bytes).map_err(|r| malformed(start, r))?;

        let name_start = start + HEADER_LEN;
        let namesize = usize::try_from(header.namesize).unwrap_or(usize::MAX);
        if namesize == 0 || namesize > PATH_MAX {
            return Err(malformed(
                start,
                format!("name size {namesize} is outside 1..={PATH_MAX}"),
            ));
        }
        let name_end = name_start
            .checked_add(namesize)
            .filter(|&end| end <= buf.len())
            .ok_or_else(|| malformed(name_start, "name runs past the end of the image"))?;
        let (name, nul) = buf[name_start..name_end].split_at(namesize - 1);
        if nul != [0] || name.contains(&0) {
            return Err(malformed(
                name_start,
                "name is not one NUL-terminated string",
            ));
        }

        let size = usize::try_from(header.filesize).unwrap_or(usize::MAX);
        let data_offset =
            align4(name_end).ok_or_else(|| malformed(name_end, "name padding overflows"))?;
        let data_end = data_offset
            .checked_add(size)
            .filter(|&end| end <= buf.len())
            .ok_or_else(|| {
                malformed(
                    data_offset,
                    format!("{size} bytes of data run past the end of the image"),
                )
            })?;
        let data = &buf[data_offset..data_end];
        if format == CpioFormat::Crc && Kind::from_mode(header.mode) == Some(Kind::File) {
            let sum = byte_sum(0, data);
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
        self.pos = align4(data_end).map_or(buf.len(), |p| p.min(buf.len()));
        Ok(Some(Raw {
            offset: start,
            header,
            name,
            data_offset,
            data,
        }))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<Raw<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.parse_next().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

fn align4(pos: usize) -> Option<usize> {
    // `padding` is below 4, so the cast is lossless.
    pos.checked_add(padding(pos as u64, 4) as usize)
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
    // The walk needs the bytes in memory; a file-backed image is read once.
    let image: Backing = if image.as_slice().is_some() {
        image
    } else {
        let mut all =
            vec![0u8; usize::try_from(image.len()).map_err(|_| malformed(0, "image too large"))?];
        image
            .read_at(0, &mut all)
            .map_err(|e| Error::io("reading the cpio image", e))?;
        std::sync::Arc::new(all)
    };
    let buf: &[u8] = image.as_slice().unwrap_or_default();
    let mut tree = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default()));
    let mut links: HashMap<LinkKey, Box<[u8]>> = HashMap::new();
    for raw in Members::new(buf) {
        let raw = raw?;
        if raw.name == TRAILER {
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
    raw: &Raw<'_>,
) -> Result<()> {
    let h = &raw.header;
    let kind = Kind::from_mode(h.mode).ok_or_else(|| {
        malformed(
            raw.offset,
            format!("unknown file type in mode {:o}", h.mode),
        )
    })?;
    if !matches!(kind, Kind::File | Kind::Symlink) && !raw.data.is_empty() {
        return Err(malformed(
            raw.offset,
            format!("a {} with {} bytes of data", kind.name(), raw.data.len()),
        ));
    }
    // The mask keeps 12 bits, which fit.
    let perm = (h.mode & 0o7777) as u16;
    let meta = Meta::new(perm, h.uid, h.gid, Time::from_secs(i64::from(h.mtime)));
    let content = match kind {
        Kind::Dir => Content::Dir(Default::default()),
        Kind::File => Content::File(
            FileData::range(image.clone(), raw.data_offset as u64, raw.data.len() as u64)
                .ok_or_else(|| malformed(raw.data_offset, "file data outside the image"))?,
        ),
        Kind::Symlink => {
            if raw.data.len() > PATH_MAX {
                return Err(malformed(
                    raw.offset,
                    format!("symlink target longer than {PATH_MAX} bytes"),
                ));
            }
            // The kernel reads the target as a C string; gen_init_cpio
            // stores the NUL.
            let end = raw.data.iter().position(|&b| b == 0);
            Content::Symlink(raw.data[..end.unwrap_or(raw.data.len())].into())
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
            let id = tree.hard_link(raw.name, first)?;
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
                if !raw.data.is_empty() {
                    inode.content = content;
                }
            }
            return Ok(());
        }
        links.insert(key, raw.name.into());
    }
    tree.insert(raw.name, Inode::new(meta, content), Replace::Always)?;
    Ok(())
}
