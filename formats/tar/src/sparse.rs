//! Sparse files: the maps of every GNU flavour, read into a
//! [`FileData`] whose holes stay holes, and the pax 1.0 map the writer
//! emits.
//!
//! Flavours (GNU tar's `sparse.c` and `xheader.c`, "Storing sparse files"
//! in its manual):
//! - old GNU (type `S`): four map entries in the header, 21 more in each
//!   extension block after it, the real size in `realsize`;
//! - pax 0.0: `GNU.sparse.size`, then `GNU.sparse.offset` and
//!   `GNU.sparse.numbytes` repeated in one extended header;
//! - pax 0.1: `GNU.sparse.size` and `GNU.sparse.map` (`off,len,off,len`);
//! - pax 1.0: `GNU.sparse.major=1`, `GNU.sparse.realsize`, and the map as
//!   decimal lines (count, then offset and length of each run) at the start
//!   of the member's data, padded to a block.
//!
//! In every flavour the runs' data is stored back to back after the map.

use rootforge_common::{Backing, Extent, FileData, Source};

use crate::header::{BLOCK_U64, numeric, oldgnu};
use crate::pax::{self, Records};

/// Data runs of a sparse file: (offset in the file, length), in order.
pub(crate) type Map = Vec<(u64, u64)>;

/// The sparse flavour a member's pax records announce, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaxSparse {
    /// 0.0 and 0.1: the map is in the records.
    InRecords,
    /// 1.0: the map is at the start of the data.
    InData,
}

/// Which pax sparse flavour `pax` describes.
pub(crate) fn pax_flavour(pax: &Records) -> Result<Option<PaxSparse>, String> {
    match pax::get(pax, b"GNU.sparse.major") {
        Some(b"1") => return Ok(Some(PaxSparse::InData)),
        Some(b"0") | None => {}
        Some(other) => {
            return Err(format!(
                "unknown sparse format GNU.sparse.major={}",
                String::from_utf8_lossy(other)
            ));
        }
    }
    let in_records = pax::get(pax, b"GNU.sparse.map").is_some()
        || pax.iter().any(|(k, _)| k == b"GNU.sparse.offset");
    Ok(in_records.then_some(PaxSparse::InRecords))
}

/// The file's size, holes included, from the pax records.
pub(crate) fn pax_real_size(pax: &Records) -> Result<u64, String> {
    let (key, v) = [&b"GNU.sparse.realsize"[..], b"GNU.sparse.size"]
        .into_iter()
        .find_map(|k| pax::get(pax, k).map(|v| (k, v)))
        .ok_or("no GNU.sparse.realsize or GNU.sparse.size record")?;
    pax::parse_u64(v, &String::from_utf8_lossy(key))
}

/// The map of a 0.0 or 0.1 member, from its records.
pub(crate) fn map_from_records(pax: &Records) -> Result<Map, String> {
    if let Some(text) = pax::get(pax, b"GNU.sparse.map") {
        let nums = text
            .split(|&b| b == b',')
            .map(|n| pax::parse_u64(n, "GNU.sparse.map"))
            .collect::<Result<Vec<_>, _>>()?;
        if nums.len() % 2 != 0 {
            return Err("odd number of GNU.sparse.map values".into());
        }
        return Ok(nums.chunks_exact(2).map(|c| (c[0], c[1])).collect());
    }
    // 0.0: each offset record is followed by its numbytes record.
    let mut map = Vec::new();
    let mut offset = None;
    for (k, v) in pax {
        match &**k {
            b"GNU.sparse.offset" => {
                if offset.is_some() {
                    return Err("GNU.sparse.offset without GNU.sparse.numbytes".into());
                }
                offset = Some(pax::parse_u64(v, "GNU.sparse.offset")?);
            }
            b"GNU.sparse.numbytes" => {
                let off = offset
                    .take()
                    .ok_or("GNU.sparse.numbytes without GNU.sparse.offset")?;
                map.push((off, pax::parse_u64(v, "GNU.sparse.numbytes")?));
            }
            _ => {}
        }
    }
    if offset.is_some() {
        return Err("GNU.sparse.offset without GNU.sparse.numbytes".into());
    }
    Ok(map)
}

/// The 1.0 map at the start of `text` (a prefix of the member's data):
/// the map and the bytes it takes, padded to a block, or `None` if `text`
/// ends before the map does. `stored` bounds the entry count.
pub(crate) fn map_from_data(text: &[u8], stored: u64) -> Result<Option<(Map, u64)>, String> {
    let mut lines = Lines { text, at: 0 };
    let Some(count) = lines.next()? else {
        return Ok(None);
    };
    // Each run takes at least four bytes of map text ("0\n0\n"), which
    // bounds the allocation by the member's size.
    if count > stored / 4 {
        return Err(format!("{count} map entries do not fit in the member"));
    }
    let mut map = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for _ in 0..count {
        let (Some(off), Some(len)) = (lines.next()?, lines.next()?) else {
            return Ok(None);
        };
        map.push((off, len));
    }
    let used = u64::try_from(lines.at)
        .ok()
        .and_then(|n| n.checked_next_multiple_of(BLOCK_U64))
        .ok_or("map length overflows")?;
    Ok(Some((map, used)))
}

/// Decimal numbers, one a line.
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
}

impl Lines<'_> {
    fn next(&mut self) -> Result<Option<u64>, String> {
        let rest = self.text.get(self.at..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            // 20 digits hold any u64: a longer line is not a number.
            if rest.len() > 20 {
                return Err("a map line is not a number".into());
            }
            return Ok(None);
        };
        self.at = self.at.saturating_add(nl).saturating_add(1);
        pax::parse_u64(&rest[..nl], "sparse map").map(Some)
    }
}

/// The map of an old GNU sparse member: the header's entries, then those
/// of each extension block. Zero entries are unused slots.
pub(crate) fn map_from_gnu<'b>(
    header: &[u8],
    extensions: impl Iterator<Item = &'b [u8]>,
) -> Result<Map, String> {
    let mut map = Vec::new();
    let mut push = |raw: &[u8]| -> Result<(), String> {
        let (off, len) = raw.split_at(12);
        let off = numeric(off).ok_or("bad sparse offset")?;
        let len = numeric(len).ok_or("bad sparse length")?;
        if off != 0 || len != 0 {
            map.push((off, len));
        }
        Ok(())
    };
    for entry in header[oldgnu::SP].chunks_exact(oldgnu::SPARSE_LEN) {
        push(entry)?;
    }
    for ext in extensions {
        for entry in ext[oldgnu::EXT_SP].chunks_exact(oldgnu::SPARSE_LEN) {
            push(entry)?;
        }
    }
    Ok(map)
}

/// A sparse file from `map`, whose runs are stored back to back from
/// `data_pos`, `stored` bytes in all.
pub(crate) fn file(
    backing: &Backing,
    map: &[(u64, u64)],
    data_pos: u64,
    stored: u64,
    real_size: u64,
) -> Result<FileData, String> {
    let mut extents = Vec::with_capacity(map.len());
    let mut used = 0u64;
    for &(logical, len) in map {
        if len == 0 {
            continue;
        }
        let at = data_pos.checked_add(used).ok_or("offset overflow")?;
        extents.push(Extent {
            logical,
            stored: at,
            len,
        });
        used = used.checked_add(len).ok_or("length overflow")?;
    }
    if used > stored {
        return Err(format!(
            "the map lists {used} bytes of data, but the member holds {stored}"
        ));
    }
    FileData::sparse(backing.clone(), extents, real_size)
        .ok_or_else(|| "runs overlap, are unsorted or lie outside the file".into())
}

/// The data runs of a file with holes, merged where they touch; `None` for
/// a file without holes (written densely, as before sparse support).
pub(crate) fn runs(data: &FileData) -> Option<Map> {
    let size = data.size();
    let mut map: Map = Vec::new();
    match data.source() {
        Source::Zeros if size > 0 => {}
        Source::Sparse { extents, .. } => {
            for e in extents.iter().filter(|e| e.len > 0) {
                match map.last_mut() {
                    Some((off, len)) if off.saturating_add(*len) == e.logical => {
                        *len = len.saturating_add(e.len);
                    }
                    _ => map.push((e.logical, e.len)),
                }
            }
            let stored: u64 = map.iter().map(|&(_, l)| l).sum();
            if stored >= size {
                return None;
            }
        }
        _ => return None,
    }
    Some(map)
}

/// The pax 1.0 map of `runs` as GNU tar writes it, padded to a block: the
/// count, then each run's offset and length, one number a line. A file
/// that ends in a hole gets a last, empty run at its end, as GNU tar gives
/// it (older readers take the size from it).
pub(crate) fn encode_map(runs: &[(u64, u64)], size: u64) -> Vec<u8> {
    let end = runs.last().map_or(0, |&(o, l)| o.saturating_add(l));
    let tail = (end < size || runs.is_empty()).then_some((size, 0));
    let all: Vec<_> = runs.iter().copied().chain(tail).collect();
    let mut text = format!("{}\n", all.len());
    for (off, len) in all {
        text.push_str(&format!("{off}\n{len}\n"));
    }
    let mut bytes = text.into_bytes();
    let padded = bytes.len().next_multiple_of(crate::header::BLOCK);
    bytes.resize(padded, 0);
    bytes
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn map_text_round_trips() {
        let runs = [(4096, 100), (1 << 20, 10)];
        let text = encode_map(&runs, 3 << 20);
        assert_eq!(text.len(), 512);
        let (map, used) = map_from_data(&text, 1 << 20).unwrap().unwrap();
        assert_eq!(map, [(4096, 100), (1 << 20, 10), (3 << 20, 0)]);
        assert_eq!(used, 512);
        // Cut short: more text is needed.
        assert!(map_from_data(&text[..10], 1 << 20).unwrap().is_none());
        assert!(map_from_data(b"99999999\n", 100).is_err());
    }

    #[test]
    fn zero_zero_pairs_in_order() {
        let rec = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
        let pax = vec![
            rec("GNU.sparse.size", "200"),
            rec("GNU.sparse.offset", "0"),
            rec("GNU.sparse.numbytes", "5"),
            rec("GNU.sparse.offset", "100"),
            rec("GNU.sparse.numbytes", "7"),
        ];
        assert_eq!(pax_flavour(&pax).unwrap(), Some(PaxSparse::InRecords));
        assert_eq!(map_from_records(&pax).unwrap(), [(0, 5), (100, 7)]);
        assert_eq!(pax_real_size(&pax).unwrap(), 200);
        let backing: Backing = Arc::new(b"abcdeFGHIJKL".to_vec());
        let f = file(&backing, &[(0, 5), (100, 7)], 0, 12, 200).unwrap();
        let bytes = f.to_vec().unwrap();
        assert_eq!(&bytes[..5], b"abcde");
        assert_eq!(&bytes[100..107], b"FGHIJKL");
        assert_eq!(runs(&f), Some(vec![(0, 5), (100, 7)]));
        assert!(file(&backing, &[(0, 13)], 0, 12, 200).is_err());
    }
}
