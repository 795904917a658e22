//! Extended attributes: name prefixes, POSIX ACL conversion, and the
//! in-inode and block layouts.

use rootforge_common::bytes::{RecordWriter, le16_at, le32_at, put_at};

use crate::disk::{self, crc32c, in_block, in_block_u32, pad4};
use crate::hash::{xattr_block_hash, xattr_entry_hash};
use crate::raw::Record;
use crate::raw::xattr::{XattrEntry, XattrHeader, XattrIbodyHeader};

const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// Name prefixes by on-disk index; index 0 keeps the full name.
const PREFIXES: &[(u8, &[u8])] = &[
    (1, b"user."),
    (4, b"trusted."),
    (6, b"security."),
    (7, b"system."),
];

/// One attribute as ext stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl Entry {
    /// Header plus padded name.
    pub(crate) fn entry_len(&self) -> usize {
        pad4(XattrEntry::SIZE + self.name.len())
    }

    pub(crate) fn value_len(&self) -> usize {
        pad4(self.value.len())
    }

    fn hash(&self) -> u32 {
        xattr_entry_hash(&self.name, &self.value)
    }

    /// The kernel's sort order for block entries.
    fn key(&self) -> (u8, usize, &[u8]) {
        (self.index, self.name.len(), &self.name)
    }
}

/// Why an attribute cannot be stored.
#[derive(Debug)]
pub(crate) enum XattrError {
    NameTooLong(usize),
    BadAcl,
}

/// Converts a full attribute name and value to the on-disk entry.
pub(crate) fn encode(name: &[u8], value: &[u8]) -> Result<Entry, XattrError> {
    let acl = |index| {
        Ok(Entry {
            index,
            name: Vec::new(),
            value: acl_to_disk(value).ok_or(XattrError::BadAcl)?,
        })
    };
    if name == ACL_ACCESS {
        return acl(2);
    }
    if name == ACL_DEFAULT {
        return acl(3);
    }
    let (index, suffix) = PREFIXES
        .iter()
        .find_map(|&(i, p)| name.strip_prefix(p).map(|s| (i, s)))
        .filter(|(_, s)| !s.is_empty())
        .unwrap_or((0, name));
    if suffix.len() > 255 {
        return Err(XattrError::NameTooLong(suffix.len()));
    }
    Ok(Entry {
        index,
        name: suffix.to_vec(),
        value: value.to_vec(),
    })
}

/// The full name and the VFS value of an on-disk entry, or `None` if it
/// cannot be decoded.
pub(crate) fn decode(index: u8, name: &[u8], value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    match index {
        2 => Some((ACL_ACCESS.to_vec(), acl_from_disk(value)?)),
        3 => Some((ACL_DEFAULT.to_vec(), acl_from_disk(value)?)),
        0 => Some((name.to_vec(), value.to_vec())),
        i => {
            let (_, p) = PREFIXES.iter().find(|(pi, _)| *pi == i)?;
            let mut full = p.to_vec();
            full.extend_from_slice(name);
            Some((full, value.to_vec()))
        }
    }
}

const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;
const ACL_TAGS: [u16; 6] = [0x01, ACL_USER, 0x04, ACL_GROUP, 0x10, 0x20];

/// VFS ACL (version 2, 8-byte entries) to ext's (version 1, 4-byte entries
/// except for named users and groups).
fn acl_to_disk(value: &[u8]) -> Option<Vec<u8>> {
    let body = value.get(4..)?;
    if le32_at(value, 0) != Some(2) || body.len() % 8 != 0 {
        return None;
    }
    let mut out = 1u32.to_le_bytes().to_vec();
    for e in body.chunks_exact(8) {
        let tag = le16_at(e, 0)?;
        if !ACL_TAGS.contains(&tag) {
            return None;
        }
        out.extend_from_slice(&e[..4]);
        if tag == ACL_USER || tag == ACL_GROUP {
            out.extend_from_slice(&e[4..8]);
        }
    }
    Some(out)
}

fn acl_from_disk(value: &[u8]) -> Option<Vec<u8>> {
    if le32_at(value, 0) != Some(1) {
        return None;
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    let mut at = 4;
    while at < value.len() {
        let tag = le16_at(value, at)?;
        if !ACL_TAGS.contains(&tag) {
            return None;
        }
        out.extend_from_slice(value.get(at..at + 4)?);
        if tag == ACL_USER || tag == ACL_GROUP {
            out.extend_from_slice(value.get(at + 4..at + 8)?);
            at += 8;
        } else {
            out.extend_from_slice(&u32::MAX.to_le_bytes());
            at += 4;
        }
    }
    Some(out)
}

/// Sorts entries as the kernel expects and splits them between the inode's
/// spare area (`room` bytes after the magic) and a block. Returns the
/// in-inode area (magic included, `room + 4` bytes, or empty) and the block
/// entries.
pub(crate) fn place(mut entries: Vec<Entry>, room: usize) -> (Vec<u8>, Vec<Entry>) {
    entries.sort_by(|a, b| a.key().cmp(&b.key()));
    let mut used = 4; // the terminating zero word
    let mut split = 0;
    for e in &entries {
        let need = e.entry_len() + e.value_len();
        if used + need > room {
            break;
        }
        used += need;
        split += 1;
    }
    let block = entries.split_off(split);
    if entries.is_empty() {
        return (Vec::new(), block);
    }
    let mut area = XattrIbodyHeader::default().to_bytes();
    // Offsets count from the first entry, right after the magic.
    let mut rest = vec![0u8; room];
    fill(&mut rest, &entries, 0);
    area.extend_from_slice(&rest);
    (area, block)
}

/// Writes entries from the start of `buf` and values from its end. Returns
/// the entry hashes.
fn fill(buf: &mut [u8], entries: &[Entry], first: usize) -> Vec<u32> {
    let mut at = first;
    let mut end = buf.len();
    let mut hashes = Vec::with_capacity(entries.len());
    for e in entries {
        let offs = if e.value.is_empty() {
            0
        } else {
            end -= e.value_len();
            buf[end..end + e.value.len()].copy_from_slice(&e.value);
            end
        };
        let hash = e.hash();
        hashes.push(hash);
        let mut w = RecordWriter::with_capacity(e.entry_len());
        XattrEntry {
            e_name_len: disk::name_len(&e.name),
            e_name_index: e.index,
            e_value_offs: in_block(offs),
            e_value_inum: 0,
            e_value_size: in_block_u32(e.value.len()),
            e_hash: hash,
        }
        .encode(&mut w);
        w.bytes(&e.name);
        // The entries and values were sized to fit.
        let _ = put_at(buf, at, &w.into_bytes());
        at += e.entry_len();
    }
    hashes
}

/// Bytes the entries take in a block of any size (header, entries,
/// terminator, values).
pub(crate) fn block_need(entries: &[Entry]) -> usize {
    XattrHeader::SIZE
        + 4
        + entries
            .iter()
            .map(|e| e.entry_len() + e.value_len())
            .sum::<usize>()
}

/// An xattr block at `blocknr`, checksummed when `csum_seed` is given.
pub(crate) fn render_block(
    entries: &[Entry],
    bs: usize,
    blocknr: u64,
    csum_seed: Option<u32>,
) -> Vec<u8> {
    let mut buf = vec![0u8; bs];
    let hashes = fill(&mut buf, entries, XattrHeader::SIZE);
    let mut h = XattrHeader {
        h_refcount: 1,
        h_blocks: 1,
        h_hash: xattr_block_hash(hashes),
        ..XattrHeader::default()
    };
    let _ = put_at(&mut buf, 0, &h.to_bytes());
    if let Some(seed) = csum_seed {
        h.h_checksum = crc32c(crc32c(seed, &blocknr.to_le_bytes()), &buf);
        let _ = put_at(&mut buf, 0, &h.to_bytes());
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_round_trip() {
        let mut vfs = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 7u16, u32::MAX),
            (2, 6, 1000),
            (4, 5, u32::MAX),
            (0x10, 7, u32::MAX),
            (0x20, 4, u32::MAX),
        ] {
            vfs.extend_from_slice(&tag.to_le_bytes());
            vfs.extend_from_slice(&perm.to_le_bytes());
            vfs.extend_from_slice(&id.to_le_bytes());
        }
        let e = encode(ACL_ACCESS, &vfs).unwrap();
        assert_eq!((e.index, e.name.len()), (2, 0));
        assert_eq!(e.value.len(), 4 + 4 * 4 + 8);
        assert_eq!(decode(2, b"", &e.value).unwrap().1, vfs);
        assert!(matches!(
            encode(ACL_ACCESS, b"\x02\0\0\0\x40\0\0\0\0\0\0\0"),
            Err(XattrError::BadAcl)
        ));
    }
}
