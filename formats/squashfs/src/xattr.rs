//! The xattr table: key/value pairs in metadata blocks, one id per distinct
//! set of xattrs, and the id table that maps an inode's id to its pairs.

use std::collections::HashMap;
use std::io;

use rootforge_common::{Error, Result, Xattr, display_path, escape_bytes};

use crate::comp::Codec;
use crate::meta::{MetaWriter, lookup_table, overflow};

/// The longest xattr name and value Linux accepts (`XATTR_NAME_MAX`,
/// `XATTR_SIZE_MAX`).
const NAME_MAX: usize = 255;
const VALUE_MAX: usize = 65536;

/// The prefixes the format can store, by their type code.
const PREFIXES: [(&[u8], u16); 3] = [(b"user.", 0), (b"trusted.", 1), (b"security.", 2)];

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
        let mut entries = Vec::with_capacity(self.sets.len() * 16);
        for set in &self.sets {
            entries.extend_from_slice(&kv.reference().to_le_bytes());
            // At most a few thousand pairs, each at most 64 KiB + 256 bytes,
            // checked in `id`; the total is what listxattr plus getxattr of
            // every value would return.
            let mut size = 0u32;
            for x in set {
                let Some((code, suffix)) = split(&x.name) else {
                    continue;
                };
                let mut pair = Vec::with_capacity(8 + suffix.len() + x.value.len());
                pair.extend_from_slice(&code.to_le_bytes());
                pair.extend_from_slice(&(suffix.len() as u16).to_le_bytes());
                pair.extend_from_slice(suffix);
                pair.extend_from_slice(&(x.value.len() as u32).to_le_bytes());
                pair.extend_from_slice(&x.value);
                kv.put(codec, &pair)?;
                size = size.saturating_add((x.name.len() + 1 + x.value.len()) as u32);
            }
            entries.extend_from_slice(&(set.len() as u32).to_le_bytes());
            entries.extend_from_slice(&size.to_le_bytes());
        }
        let mut out = kv.finish(codec)?;
        let ids_at = start.checked_add(out.len() as u64).ok_or_else(overflow)?;
        let (ids, index_at) = lookup_table(codec, &entries, ids_at)?;
        out.extend_from_slice(&ids[..index_at]);
        let header_at = out.len();
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&(self.sets.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&ids[index_at..]);
        Ok((out, header_at))
    }
}
