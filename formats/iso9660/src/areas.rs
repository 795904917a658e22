//! Placing a record's system use entries: in the directory record while
//! they fit, then in continuation areas that each lie inside one block, as
//! Linux requires, chained by `CE` entries.

use crate::raw::susp::CE_LEN;

/// The longest directory record.
const RECORD_MAX: usize = 254;
/// Bytes in one continuation block.
const AREA_MAX: usize = 2048;

/// An area's index as `CE` chains name it; the image's block count, which
/// planning checks, bounds the number of areas far below 2^32.
fn area_index(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One continuation area: `bytes` (without its trailing `CE`) at `offset`
/// of the `block`th continuation block, chained to `next`.
#[derive(Debug)]
pub(crate) struct Area {
    pub(crate) block: u32,
    pub(crate) offset: u16,
    pub(crate) bytes: Vec<u8>,
    pub(crate) next: Option<u32>,
}

impl Area {
    /// Length including the trailing `CE`.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() + if self.next.is_some() { CE_LEN } else { 0 }
    }
}

/// Hands out continuation areas, packed into blocks in order.
#[derive(Debug, Default)]
pub(crate) struct Areas {
    pub(crate) areas: Vec<Area>,
    block: u32,
    used: usize,
}

impl Areas {
    /// Blocks used so far.
    pub(crate) fn blocks(&self) -> u32 {
        if self.areas.is_empty() {
            0
        } else {
            self.block.saturating_add(1)
        }
    }

    /// Places a record's entries: as many as fit inline in a record whose
    /// fixed part is `base` bytes, the rest in a chain of areas. Returns the
    /// inline bytes and the first area.
    pub(crate) fn place(&mut self, base: usize, entries: Vec<Vec<u8>>) -> (Vec<u8>, Option<u32>) {
        // rest[i]: the bytes of entries i.. together.
        let mut rest = vec![0usize; entries.len() + 1];
        for i in (0..entries.len()).rev() {
            rest[i] = rest[i + 1] + entries[i].len();
        }
        if base + rest[0] <= RECORD_MAX {
            return (entries.concat(), None);
        }
        let mut i = 0;
        let inline = take(&entries, &rest, &mut i, RECORD_MAX - base);
        if i == entries.len() {
            return (inline, None);
        }
        let first = area_index(self.areas.len());
        while let Some(e) = entries.get(i) {
            // Every entry is at most 255 bytes, so it fits a fresh block
            // with a `CE` after it.
            if self.areas.is_empty() {
                self.used = 0;
            } else if self.used + e.len() + CE_LEN > AREA_MAX {
                self.block = self.block.saturating_add(1);
                self.used = 0;
            }
            let bytes = take(&entries, &rest, &mut i, AREA_MAX - self.used);
            let idx = area_index(self.areas.len());
            let area = Area {
                block: self.block,
                // Within a block.
                offset: u16::try_from(self.used).unwrap_or(u16::MAX),
                bytes,
                next: (i < entries.len()).then_some(idx + 1),
            };
            self.used += area.len();
            self.areas.push(area);
        }
        (inline, Some(first))
    }
}

/// Takes entries from `i` while they fit in `room`, leaving room for a
/// `CE` when more follow.
fn take(entries: &[Vec<u8>], rest: &[usize], i: &mut usize, room: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(e) = entries.get(*i) {
        let reserve = if rest[*i + 1] > 0 { CE_LEN } else { 0 };
        if out.len() + e.len() + reserve > room {
            break;
        }
        out.extend_from_slice(e);
        *i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::susp::{Entry, Sl};

    #[test]
    fn overflow_goes_to_areas_inside_blocks() {
        let mut areas = Areas::default();
        let target = vec![b'y'; 4000];
        let entries: Vec<Vec<u8>> = Sl::for_target(&target).iter().map(Sl::encode).collect();
        let (inline, first) = areas.place(40, entries.clone());
        assert_eq!(first, Some(0));
        assert!(40 + inline.len() + CE_LEN <= RECORD_MAX);
        let mut all = inline;
        for a in &areas.areas {
            assert!(usize::from(a.offset) + a.len() <= AREA_MAX);
            all.extend_from_slice(&a.bytes);
        }
        assert_eq!(all, entries.concat());
        assert_eq!(areas.blocks(), 3);
    }
}
