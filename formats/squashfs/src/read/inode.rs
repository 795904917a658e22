//! Inodes: the header, then the body its type says, decoded from the
//! inode table into what the tree holds.

use std::sync::Arc;

use rootforge_common::bytes::{RecordReader, usize_from_u32};
use rootforge_common::{Backing, Content, FileData, Meta, Result, Time};

use super::Reader;
use super::file::SquashFile;
use super::meta::Cursor;
use crate::meta::META_SIZE;
use crate::records::{
    DevInode, DirIndex, DirInode, EXTENDED, InodeHeader, IpcInode, LDirInode, LRegInode, RegInode,
    SQUASHFS_BLKDEV_TYPE, SQUASHFS_CHRDEV_TYPE, SQUASHFS_DIR_TYPE, SQUASHFS_FIFO_TYPE,
    SQUASHFS_REG_TYPE, SQUASHFS_SOCKET_TYPE, SQUASHFS_SYMLINK_TYPE, SymlinkInode, XattrRef,
};
use crate::{BLOCK_RAW, NONE32};

/// The longest name a directory index holds (`SQUASHFS_NAME_LEN`).
const NAME_LEN: usize = 256;
/// The kernel refuses symlinks longer than a page; this is the smallest.
const SYMLINK_MAX: u32 = 4096;

/// A directory's listing location.
#[derive(Clone, Copy)]
pub(super) struct DirRef {
    /// The listing's metadata block, from the directory table's start.
    pub(super) block: u32,
    /// Where it starts in the unpacked block.
    pub(super) offset: u16,
    /// Its size plus 3, as the inode gives it.
    pub(super) size: u32,
}

/// An inode as stored.
pub(super) struct Raw {
    /// The basic type (1 to 7).
    pub(super) basic: u16,
    pub(super) meta: Meta,
    pub(super) number: u32,
    pub(super) xattr: Option<u32>,
    pub(super) body: Body,
}

/// What an inode holds: a directory's listing, to be walked, or the
/// contents of anything else.
pub(super) enum Body {
    Dir(DirRef),
    Other(Content),
}

impl Reader {
    /// The inode at `pos` of the inode table.
    pub(super) fn inode(&self, pos: usize) -> Result<Raw> {
        let mut c = self.inodes.cursor(pos, "inode");
        let header: InodeHeader = c.record()?;
        let (uid, gid) = (self.id(&c, header.uid)?, self.id(&c, header.guid)?);
        let ty = header.inode_type;
        let basic = match ty {
            SQUASHFS_DIR_TYPE..=SQUASHFS_SOCKET_TYPE => ty,
            8..=14 => ty - EXTENDED,
            _ => return Err(c.error(format_args!("unknown inode type {ty}"))),
        };
        let extended = ty > EXTENDED;
        let mut xattr = None;
        let body = match basic {
            SQUASHFS_DIR_TYPE => {
                let dir = if extended {
                    let d: LDirInode = c.record()?;
                    xattr = Some(d.xattr);
                    // The index only speeds up the kernel's lookups.
                    for _ in 0..d.i_count {
                        let index: DirIndex = c.record()?;
                        let name_len = usize::try_from(index.size)
                            .ok()
                            .and_then(|n| n.checked_add(1))
                            .filter(|&n| n <= NAME_LEN)
                            .ok_or_else(|| c.error("a directory index name is too long"))?;
                        c.take(name_len)?;
                    }
                    DirRef {
                        block: d.start_block,
                        offset: d.offset,
                        size: d.file_size,
                    }
                } else {
                    let d: DirInode = c.record()?;
                    DirRef {
                        block: d.start_block,
                        offset: d.offset,
                        size: u32::from(d.file_size),
                    }
                };
                if usize::from(dir.offset) >= META_SIZE {
                    return Err(c.error("a listing offset past its metadata block"));
                }
                Body::Dir(dir)
            }
            SQUASHFS_REG_TYPE => {
                let (start, size, fragment, offset) = if extended {
                    let f: LRegInode = c.record()?;
                    xattr = Some(f.xattr);
                    (f.start_block, f.file_size, f.fragment, f.offset)
                } else {
                    let f: RegInode = c.record()?;
                    (
                        u64::from(f.start_block),
                        u64::from(f.file_size),
                        f.fragment,
                        f.offset,
                    )
                };
                Body::Other(self.file(&mut c, start, size, fragment, offset)?)
            }
            SQUASHFS_SYMLINK_TYPE => {
                let s: SymlinkInode = c.record()?;
                let len = s.symlink_size;
                if len > SYMLINK_MAX {
                    return Err(c.error(format_args!("a symlink target of {len} bytes")));
                }
                let target = c.take(usize_from_u32(len))?.into();
                Body::Other(Content::Symlink(target))
            }
            SQUASHFS_BLKDEV_TYPE | SQUASHFS_CHRDEV_TYPE => {
                let d: DevInode = c.record()?;
                let (major, minor) = DevInode::decode_dev(d.rdev);
                Body::Other(if basic == SQUASHFS_BLKDEV_TYPE {
                    Content::BlockDev { major, minor }
                } else {
                    Content::CharDev { major, minor }
                })
            }
            _ => {
                let _: IpcInode = c.record()?;
                Body::Other(if basic == SQUASHFS_FIFO_TYPE {
                    Content::Fifo
                } else {
                    Content::Socket
                })
            }
        };
        // The extended symlink, device and ipc inodes end with the xattr id.
        if extended && basic >= SQUASHFS_SYMLINK_TYPE {
            let x: XattrRef = c.record()?;
            xattr = Some(x.xattr);
        }
        Ok(Raw {
            basic,
            meta: Meta::new(
                header.mode,
                uid,
                gid,
                Time::from_secs(i64::from(header.mtime)),
            ),
            number: header.inode_number,
            xattr: xattr.filter(|&x| x != NONE32),
            body,
        })
    }

    /// The uid or gid at `index` of the id table.
    fn id(&self, c: &Cursor<'_>, index: u16) -> Result<u32> {
        self.ids
            .get(usize::from(index))
            .copied()
            .ok_or_else(|| c.error(format_args!("uid/gid index {index} past the id table")))
    }

    /// A regular file's contents: its `block_list` follows the inode.
    fn file(
        &self,
        c: &mut Cursor<'_>,
        start: u64,
        size: u64,
        fragment: u32,
        offset: u32,
    ) -> Result<Content> {
        let bs = u64::from(self.shared.image.block_size);
        let tail = size % bs;
        let fragment = (fragment != NONE32 && tail > 0).then_some((fragment, offset));
        let count = if fragment.is_some() {
            size / bs
        } else {
            size.div_ceil(bs)
        };
        // The list is in the inode table, which bounds the count.
        let words = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(4))
            .map(|n| c.take(n))
            .ok_or_else(|| c.error(format_args!("a file of {size} bytes")))??;
        let mut blocks = Vec::with_capacity(words.len() / 4);
        let mut at = start;
        let mut list = RecordReader::new(words);
        while let Some(word) = list.le32() {
            let len = word & !BLOCK_RAW;
            if len > self.shared.image.block_size {
                return Err(c.error(format_args!("a data block of {len} bytes")));
            }
            blocks.push((at, word));
            at = at
                .checked_add(u64::from(len))
                .filter(|&a| a <= self.shared.image.end)
                .ok_or_else(|| c.error("file data past the image's end"))?;
        }
        if let Some((index, offset)) = fragment {
            let known = usize::try_from(index)
                .ok()
                .is_some_and(|i| i < self.shared.fragments.len());
            if !known || u64::from(offset).saturating_add(tail) > bs {
                return Err(c.error(format_args!(
                    "a {tail}-byte tail at offset {offset} of fragment {index}, \
                     of {} fragments",
                    self.shared.fragments.len()
                )));
            }
        }
        if size == 0 {
            return Ok(Content::File(FileData::empty()));
        }
        let blob: Backing = Arc::new(SquashFile {
            shared: self.shared.clone(),
            size,
            blocks: blocks.into(),
            fragment,
        });
        FileData::range(blob, 0, size)
            .map(Content::File)
            .ok_or_else(|| c.error("file size overflow"))
    }
}
