//! Directory listings and the directory index of large directories.

use rootforge_common::bytes::RecordWriter;
use rootforge_common::{Error, Result, display_path};

use crate::comp::Codec;
use crate::meta::{META_SIZE, MetaWriter, split_ref};
use crate::plan::Node;
use crate::records::{
    DirEntry, DirHeader, DirIndex, DirInode, EXTENDED, LDirInode, Record, SQUASHFS_DIR_TYPE,
};
use crate::{NAME_MAX, NONE32, limit, overflow_error};

/// Entries one directory header may cover.
const DIR_RUN: usize = 256;

/// One directory entry as the listing needs it.
pub(crate) struct Listed<'v> {
    pub(crate) name: &'v [u8],
    pub(crate) number: u32,
    pub(crate) reference: u64,
    pub(crate) kind: u16,
}

/// A directory index entry: a header that starts a new metadata block of
/// the listing, which the kernel's lookup can skip to.
struct IndexEntry<'v> {
    /// The header's offset in the listing.
    offset: u32,
    /// The uncompressed 8 KiB block of the directory table it lies in.
    block: u64,
    /// The name of its first entry.
    name: &'v [u8],
}

/// A directory's listing, which starts at uncompressed offset `at` of the
/// directory table: runs of up to 256 entries sorted by name, under a
/// header naming their inode block and a base inode number. A run also
/// ends where the listing enters a new metadata block, so that every block
/// starts with a header the index can point at.
fn listing<'v>(
    entries: &[Listed<'v>],
    path: &[u8],
    at: u64,
) -> Result<(Vec<u8>, Vec<IndexEntry<'v>>)> {
    let block_of = |offset: usize| at.saturating_add(offset as u64) / META_SIZE as u64;
    let mut out = RecordWriter::default();
    let mut index = Vec::new();
    let mut indexed_block = block_of(0);
    let mut rest = entries;
    while let Some(first) = rest.first() {
        let header_at = out.len();
        let block = block_of(header_at);
        if block != indexed_block {
            indexed_block = block;
            index.push(IndexEntry {
                offset: u32::try_from(header_at).map_err(|_| {
                    limit(
                        path,
                        "directory size",
                        header_at as u64,
                        u64::from(u32::MAX),
                    )
                })?,
                block,
                name: first.name,
            });
        }
        let inode_block = first.reference >> 16;
        let base = i64::from(first.number);
        // Where each entry would start, to end the run at a block boundary.
        let mut end = header_at.saturating_add(12);
        let run = rest
            .iter()
            .take(DIR_RUN)
            .take_while(|e| {
                let fits = e.reference >> 16 == inode_block
                    && i16::try_from(i64::from(e.number) - base).is_ok()
                    && (end == header_at + 12 || block_of(end) == block);
                end = end.saturating_add(8 + e.name.len());
                fits
            })
            .count();
        let inode_block = u32::try_from(inode_block)
            .map_err(|_| limit(path, "inode table size", inode_block, u64::from(u32::MAX)))?;
        DirHeader {
            // `run` is 1 to 256.
            count: u32::try_from(run - 1).map_err(|_| overflow_error())?,
            start_block: inode_block,
            inode_number: first.number,
        }
        .encode(&mut out);
        for e in &rest[..run] {
            let name_len = e.name.len();
            DirEntry {
                offset: split_ref(e.reference).1,
                inode_number: i16::try_from(i64::from(e.number) - base).unwrap_or_default(),
                r#type: e.kind,
                // Names are 1 to 255 bytes, checked in `plan`.
                size: name_len
                    .checked_sub(1)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| limit(path, "name length", name_len as u64, NAME_MAX as u64))?,
            }
            .encode(&mut out);
            out.bytes(e.name);
        }
        rest = &rest[run..];
    }
    Ok((out.into_bytes(), index))
}

/// Writes a directory's listing and its inode's body into `body`, and
/// returns the inode's type: the basic form when the listing fits one
/// metadata block and 64 KiB, else the extended form with a directory
/// index.
pub(crate) fn dir_inode(
    dirs: &mut MetaWriter,
    codec: &mut Codec,
    listed: &[Listed<'_>],
    node: &Node,
    parent_inode: u32,
    body: &mut RecordWriter,
) -> Result<u16> {
    let write_err = |e| Error::io("writing the squashfs directory table", e);
    let (bytes, index) = listing(listed, &node.path, dirs.written())?;
    let (block, offset) = dirs.pos();
    let too_big = |v: u64| limit(&node.path, "directory table size", v, u64::from(u32::MAX));
    let start_block = u32::try_from(block).map_err(|_| too_big(block))?;
    dirs.put(codec, &bytes).map_err(write_err)?;
    // The kernel's size counts the "." and ".." it synthesises.
    let size = bytes.len().checked_add(3).ok_or_else(overflow_error)?;
    let basic = index.is_empty() && node.xattr.is_none();
    if let (Ok(file_size), true) = (u16::try_from(size), basic) {
        DirInode {
            start_block,
            nlink: node.nlink,
            file_size,
            offset,
            parent_inode,
        }
        .encode(body);
        return Ok(SQUASHFS_DIR_TYPE);
    }
    let file_size = u32::try_from(size).map_err(|_| too_big(size as u64))?;
    let i_count = u16::try_from(index.len()).map_err(|_| {
        limit(
            &node.path,
            "directory index length",
            index.len() as u64,
            u64::from(u16::MAX),
        )
    })?;
    LDirInode {
        nlink: node.nlink,
        file_size,
        start_block,
        parent_inode,
        i_count,
        offset,
        xattr: node.xattr.unwrap_or(NONE32),
    }
    .encode(body);
    for i in &index {
        let start = dirs
            .block_start(i.block)
            .ok_or_else(|| Error::tree(display_path(&node.path), "index past the listing"))?;
        let name_len = i.name.len();
        DirIndex {
            index: i.offset,
            start_block: u32::try_from(start).map_err(|_| too_big(start))?,
            // Names are 1 to 255 bytes.
            size: name_len
                .checked_sub(1)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    limit(&node.path, "name length", name_len as u64, NAME_MAX as u64)
                })?,
        }
        .encode(body);
        body.bytes(i.name);
    }
    Ok(SQUASHFS_DIR_TYPE + EXTENDED)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a listing back into (header offset, entry names) runs.
    fn runs(bytes: &[u8]) -> Vec<(usize, Vec<Vec<u8>>)> {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let u16_at = |i: usize| u16::from_le_bytes(bytes[i..i + 2].try_into().unwrap());
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            let count = u32_at(i) as usize + 1;
            i += 12;
            let mut names = Vec::new();
            for _ in 0..count {
                let len = usize::from(u16_at(i + 6)) + 1;
                names.push(bytes[i + 8..i + 8 + len].to_vec());
                i += 8 + len;
            }
            out.push((start, names));
        }
        out
    }

    #[test]
    fn listing_runs_end_at_256_entries_and_block_boundaries() {
        let names: Vec<String> = (0..1000).map(|i| format!("entry-{i:05}")).collect();
        let listed: Vec<Listed<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Listed {
                name: n.as_bytes(),
                number: u32::try_from(i).unwrap() + 1,
                reference: 0,
                kind: 2,
            })
            .collect();
        let at = 8000;
        let (bytes, index) = listing(&listed, b"d", at).unwrap();
        let runs = runs(&bytes);
        let all: Vec<Vec<u8>> = runs.iter().flat_map(|r| r.1.clone()).collect();
        assert_eq!(all.len(), 1000);
        assert!(runs.iter().all(|r| r.1.len() <= DIR_RUN));
        // Each run lies within one metadata block except for its last entry.
        let block = |off: usize| (at + off as u64) / META_SIZE as u64;
        let last_block = block(bytes.len() - 1);
        assert_eq!(index.len() as u64, last_block - block(0));
        for (i, e) in index.iter().enumerate() {
            let run = runs.iter().find(|r| r.0 == e.offset as usize).unwrap();
            assert_eq!(run.1[0], e.name);
            assert_eq!(e.block, block(run.0));
            assert_eq!(e.block, block(0) + i as u64 + 1);
        }
    }

    #[test]
    fn listing_starts_a_run_when_the_inode_block_or_delta_changes() {
        let listed = [
            Listed {
                name: b"a",
                number: 10,
                reference: 5,
                kind: 2,
            },
            Listed {
                name: b"b",
                number: 40_000,
                reference: 7,
                kind: 2,
            },
            Listed {
                name: b"c",
                number: 40_001,
                reference: (3 << 16) | 9,
                kind: 1,
            },
        ];
        let (bytes, index) = listing(&listed, b"d", 0).unwrap();
        let runs = runs(&bytes);
        let sizes: Vec<usize> = runs.iter().map(|r| r.1.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(index.is_empty());
        // The third header names inode block 3 and base inode 40001.
        let third = runs[2].0;
        assert_eq!(
            &bytes[third + 4..third + 12],
            &[3, 0, 0, 0, 0x41, 0x9c, 0, 0]
        );
    }
}
