//! The xattr table: key/value pairs in metadata blocks, one id per distinct
//! set of xattrs, and the id table that maps an inode's id to its pairs.

use std::collections::HashMap;
use std::io;

use rootforge_common::bytes::RecordWriter;
use rootforge_common::{Error, Result, Xattr, display_path, escape_bytes};

use crate::comp::Codec;
use crate::meta::{MetaWriter, lookup_table, overflow};
use crate::records::{
    Record, SQUASHFS_XATTR_SECURITY, SQUASHFS_XATTR_TRUSTED, SQUASHFS_XATTR_USER, XattrEntry,
    XattrId, XattrIdTable, XattrVal,
};

/// The longest xattr name and value Linux accepts (`XATTR_NAME_MAX`,
/// `XATTR_SIZE_MAX`).
const NAME_MAX: usize = 255;
const VALUE_MAX: usize = 65536;

/// The prefixes the format can store, by their type code.
pub(crate) const PREFIXES: [(&[u8], u16); 3] = [
    (b"user.", SQUASHFS_XATTR_USER),
    (b"trusted.", SQUASHFS_XATTR_TRUSTED),
    (b"security.", SQUASHFS_XATTR_SECURITY),
];

/// The type code and the name without its prefix, if the format has one
/// for it.
fn split(name: &[u8]) -> Option<(u16, &[u8])> {
    PREFIXES
        .iter()
        .find_map(|&(p, code)| Some((code, name.strip_prefix(p)?)))
}

/// Distinct xattr sets in order of first use; identical sets share an id.
#[derive(Default)]
pub(crate) struct Xattrs<'v> {
    sets: Vec<Vec<&'v Xattr>>,
    ids: HashMap<Vec<&'v Xattr>, u32>,
    dropped: u64,
    first_dropped: Option<String>,
}

impl<'v> Xattrs<'v> {
    /// The id of an inode's xattrs, or `None` if it has none the format can
    /// store. Others (`system.posix_acl_access`, ...) are counted for a
    /// warning.
    pub(crate) fn id(&mut self, xattrs: &'v [Xattr], path: &[u8]) -> Result<Option<u32>> {
        let mut set = Vec::with_capacity(xattrs.len());
        for x in xattrs {
            if split(&x.name).is_none() {
                self.dropped = self.dropped.saturating_add(1);
                self.first_dropped.get_or_insert_with(|| {
                    format!("{} {}", display_path(path), escape_bytes(&x.name))
                });
                continue;
            }
            let limit = |what, value: usize, limit: usize| Error::Limit {
                path: display_path(path),
                format: "squashfs",
                what,
                value: value as u64,
                limit: limit as u64,
            };
            if x.name.len() > NAME_MAX {
                return Err(limit("xattr name length", x.name.len(), NAME_MAX));
            }
            if x.value.len() > VALUE_MAX {
                return Err(limit("xattr value size", x.value.len(), VALUE_MAX));
            }
            set.push(x);
        }
        if set.is_empty() {
            return Ok(None);
        }
        if let Some(&id) = self.ids.get(&set) {
            return Ok(Some(id));
        }
        let id = u32::try_from(self.sets.len())
            .ok()
            .filter(|&id| id != u32::MAX)
            .ok_or_else(|| Error::Limit {
                path: display_path(path),
                format: "squashfs",
                what: "number of distinct xattr sets",
                value: u64::from(u32::MAX),
                limit: u64::from(u32::MAX) - 1,
            })?;
        self.sets.push(set.clone());
        self.ids.insert(set, id);
        Ok(Some(id))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub(crate) fn warning(&self) -> Option<String> {
        let first = self.first_dropped.as_ref()?;
        Some(format!(
            "squashfs stores only user., trusted. and security. xattrs: dropped {} \
             (first: {first})",
            self.dropped
        ))
    }

    /// The table's bytes, to be placed at `start`, and the offset in them of
    /// the header the superblock points at. The pairs come first, then the
    /// id entries, then the header and the id blocks' positions.
    pub(crate) fn table(&self, codec: &mut Codec, start: u64) -> io::Result<(Vec<u8>, usize)> {
        let mut kv = MetaWriter::new();
        let mut entries = RecordWriter::with_capacity(self.sets.len() * XattrId::SIZE);
        for set in &self.sets {
            let xattr = kv.reference();
            // At most a few thousand pairs, each at most 64 KiB + 256 bytes,
            // checked in `id`; the total is what listxattr plus getxattr of
            // every value would return.
            let mut size = 0u32;
            for x in set {
                let Some((code, suffix)) = split(&x.name) else {
                    continue;
                };
                let mut pair = RecordWriter::with_capacity(8 + suffix.len() + x.value.len());
                XattrEntry {
                    r#type: code,
                    size: checked(suffix.len(), "xattr name length", NAME_MAX)?,
                }
                .encode(&mut pair);
                pair.bytes(suffix);
                XattrVal {
                    vsize: checked(x.value.len(), "xattr value size", VALUE_MAX)?,
                }
                .encode(&mut pair);
                pair.bytes(&x.value);
                kv.put(codec, &pair.into_bytes())?;
                let listed = x.name.len().saturating_add(1).saturating_add(x.value.len());
                size = size.saturating_add(u32::try_from(listed).unwrap_or(u32::MAX));
            }
            XattrId {
                xattr,
                count: checked(set.len(), "xattr count", usize::MAX)?,
                size,
            }
            .encode(&mut entries);
        }
        let mut out = kv.finish(codec)?;
        let ids_at = start.checked_add(out.len() as u64).ok_or_else(overflow)?;
        let (ids, index_at) = lookup_table(codec, &entries.into_bytes(), ids_at)?;
        out.extend_from_slice(&ids[..index_at]);
        let header_at = out.len();
        let mut header = RecordWriter::with_capacity(XattrIdTable::SIZE);
        XattrIdTable {
            xattr_table_start: start,
            xattr_ids: checked(self.sets.len(), "number of distinct xattr sets", usize::MAX)?,
        }
        .encode(&mut header);
        out.extend_from_slice(&header.into_bytes());
        out.extend_from_slice(&ids[index_at..]);
        Ok((out, header_at))
    }
}

/// `n` as a field type, which `id` made sure it fits.
fn checked<T: TryFrom<usize>>(n: usize, what: &str, max: usize) -> io::Result<T> {
    T::try_from(n)
        .ok()
        .filter(|_| n <= max)
        .ok_or_else(|| io::Error::other(format!("{what} {n} is over the limit of {max}")))
}
