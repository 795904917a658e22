//! xattr names as EROFS stores them: a prefix index and the rest of the
//! name, in entries padded to 4 bytes.

use rootforge_common::bytes::RecordWriter;

use crate::records::{
    EROFS_XATTR_INDEX_POSIX_ACL_ACCESS, EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT,
    EROFS_XATTR_INDEX_SECURITY, EROFS_XATTR_INDEX_TRUSTED, EROFS_XATTR_INDEX_USER, Record,
    XattrEntry,
};

/// The name prefixes of `EROFS_XATTR_INDEX_*`, longest match first. The
/// POSIX ACLs are whole names: their entries have an empty name.
const PREFIXES: [(u8, &[u8]); 5] = [
    (
        EROFS_XATTR_INDEX_POSIX_ACL_ACCESS,
        b"system.posix_acl_access",
    ),
    (
        EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT,
        b"system.posix_acl_default",
    ),
    (EROFS_XATTR_INDEX_USER, b"user."),
    (EROFS_XATTR_INDEX_TRUSTED, b"trusted."),
    (EROFS_XATTR_INDEX_SECURITY, b"security."),
];

/// The prefix index and the stored rest of `name`, or `None` for a name
/// no prefix covers (which EROFS cannot store).
pub(crate) fn split_name(name: &[u8]) -> Option<(u8, &[u8])> {
    for (index, prefix) in PREFIXES {
        if let Some(rest) = name.strip_prefix(prefix) {
            let whole = matches!(
                index,
                EROFS_XATTR_INDEX_POSIX_ACL_ACCESS | EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT
            );
            if whole && !rest.is_empty() {
                return None;
            }
            if !whole && rest.is_empty() {
                return None;
            }
            return Some((index, rest));
        }
    }
    None
}

/// The full name of an entry, or `None` for an unknown index.
pub(crate) fn full_name(index: u8, suffix: &[u8]) -> Option<Vec<u8>> {
    let (_, prefix) = PREFIXES.iter().find(|(i, _)| *i == index)?;
    let mut name = prefix.to_vec();
    name.extend_from_slice(suffix);
    Some(name)
}

/// One entry with its padding (`EROFS_XATTR_ALIGN`). The caller has checked
/// that the suffix fits a byte and the value 16 bits.
pub(crate) fn entry(index: u8, suffix: &[u8], value: &[u8]) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(entry_len(suffix.len(), value.len()));
    XattrEntry {
        e_name_len: u8::try_from(suffix.len()).unwrap_or(u8::MAX),
        e_name_index: index,
        e_value_size: u16::try_from(value.len()).unwrap_or(u16::MAX),
    }
    .encode(&mut w);
    w.bytes(suffix).bytes(value);
    let pad = w.len().next_multiple_of(4) - w.len();
    w.zeros(pad);
    w.into_bytes()
}

/// The padded size of an entry.
pub(crate) fn entry_len(name: usize, value: usize) -> usize {
    (XattrEntry::SIZE + name + value).next_multiple_of(4)
}
