//! System Use Sharing Protocol entries (IEEE P1281) and the Rock Ridge
//! entries (IEEE P1282) built on them, and their placement: in the
//! directory record while they fit, then in continuation areas that each
//! lie inside one block, as Linux requires.

use crate::{both32, time};
use rootforge_common::Time;

/// Length of a `CE` entry.
pub(crate) const CE_LEN: usize = 28;
/// The longest directory record.
const RECORD_MAX: usize = 254;
/// Bytes in one continuation block.
const AREA_MAX: usize = 2048;

fn entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(4 + body.len());
    e.extend_from_slice(sig);
    // Callers keep bodies at most 251 bytes long.
    e.push(u8::try_from(4 + body.len()).unwrap_or(u8::MAX));
    e.push(1);
    e.extend_from_slice(body);
    e
}

/// `SP`: marks the root's `.` record as using SUSP, with no skipped bytes.
pub(crate) fn sp() -> Vec<u8> {
    entry(b"SP", &[0xBE, 0xEF, 0])
}

/// `ER`: names the Rock Ridge extension (RRIP 1.10, as xorriso writes it).
pub(crate) fn er() -> Vec<u8> {
    const ID: &[u8] = b"RRIP_1991A";
    const DES: &[u8] =
        b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
    const SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";
    let mut body = vec![ID.len() as u8, DES.len() as u8, SRC.len() as u8, 1];
    body.extend_from_slice(ID);
    body.extend_from_slice(DES);
    body.extend_from_slice(SRC);
    entry(b"ER", &body)
}

/// `PX` with the file serial number, so hard links keep one serial.
pub(crate) fn px(mode: u32, nlink: u32, uid: u32, gid: u32, serial: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(40);
    for v in [mode, nlink, uid, gid, serial] {
        body.extend_from_slice(&both32(v));
    }
    entry(b"PX", &body)
}

/// `PN`. The kernel reads `high == 0` with `low > 0xff` as a 16-bit
/// `major << 8 | minor` and anything else as `MKDEV(high, low)`, while
/// libarchive and libisofs read `high << 32 | low` as a glibc `dev_t`. The
/// glibc form with `high == 0` satisfies both while the major fits in 12
/// bits and the minor in 8; otherwise the kernel's form wins, since the
/// kernel is what mounts the image.
pub(crate) fn pn(major: u32, minor: u32) -> Vec<u8> {
    let (high, low) = if major < 0x1000 && (minor < 0x100 || major == 0) && minor < 0x10_0000 {
        (0, (major << 8) | (minor & 0xff) | ((minor & !0xff) << 12))
    } else {
        (major, minor)
    };
    let mut body = Vec::with_capacity(16);
    body.extend_from_slice(&both32(high));
    body.extend_from_slice(&both32(low));
    entry(b"PN", &body)
}

/// Decodes `PN` the way [`pn`] encodes it (and the kernel reads it, for
/// minors under 256).
pub(crate) fn pn_decode(high: u32, low: u32) -> (u32, u32) {
    if high == 0 {
        ((low >> 8) & 0xfff, (low & 0xff) | ((low >> 12) & 0xf_ff00))
    } else {
        (high, low)
    }
}

/// `TF` with modification, access and attribute-change times, all the
/// file's mtime (as xorriso does under `SOURCE_DATE_EPOCH`).
pub(crate) fn tf(mtime: Time) -> Vec<u8> {
    let t = time::short(mtime);
    let mut body = vec![0x0E];
    for _ in 0..3 {
        body.extend_from_slice(&t);
    }
    entry(b"TF", &body)
}

/// `NM` entries for a name (at most 255 bytes), split with CONTINUE.
pub(crate) fn nm(name: &[u8]) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = name.chunks(250).collect();
    let last = chunks.len().saturating_sub(1);
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut body = vec![u8::from(i != last)];
            body.extend_from_slice(c);
            entry(b"NM", &body)
        })
        .collect()
}

/// `SL` entries for a symlink target. Components longer than fit are split
/// with the component CONTINUE flag; entries that run out of room end with
/// the entry CONTINUE flag.
pub(crate) fn sl(target: &[u8]) -> Vec<Vec<u8>> {
    // (flags, text) component records.
    let mut comps: Vec<(u8, &[u8])> = Vec::new();
    let rest = match target.strip_prefix(b"/") {
        Some(r) => {
            comps.push((0x08, &[]));
            r
        }
        None => target,
    };
    if !rest.is_empty() || comps.is_empty() {
        for part in rest.split(|&b| b == b'/') {
            match part {
                b"." => comps.push((0x02, &[])),
                b".." => comps.push((0x04, &[])),
                p => {
                    let pieces: Vec<&[u8]> = if p.is_empty() {
                        vec![p]
                    } else {
                        p.chunks(247).collect()
                    };
                    let last = pieces.len() - 1;
                    for (i, piece) in pieces.into_iter().enumerate() {
                        comps.push((u8::from(i != last), piece));
                    }
                }
            }
        }
    }
    const ROOM: usize = 250;
    let mut bodies: Vec<Vec<u8>> = vec![vec![0]];
    for (flags, text) in comps {
        let need = 2 + text.len();
        if bodies
            .last()
            .is_some_and(|b| b.len() > 1 && b.len() + need > ROOM)
        {
            if let Some(b) = bodies.last_mut() {
                b[0] = 1;
            }
            bodies.push(vec![0]);
        }
        if let Some(b) = bodies.last_mut() {
            b.push(flags);
            b.push(text.len() as u8);
            b.extend_from_slice(text);
        }
    }
    bodies.iter().map(|b| entry(b"SL", b)).collect()
}

/// `ZF`: the file's data is zisofs (`pz`) with 2^`shift`-byte blocks.
pub(crate) fn zf(shift: u8, size: u32) -> Vec<u8> {
    let mut body = vec![b'p', b'z', 4, shift];
    body.extend_from_slice(&both32(size));
    entry(b"ZF", &body)
}

/// `CE`: the entries continue at `offset` of block `lba`, for `len` bytes.
pub(crate) fn ce(lba: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(24);
    for v in [lba, offset, len] {
        body.extend_from_slice(&both32(v));
    }
    entry(b"CE", &body)
}

/// One continuation area: `bytes` (without its trailing `CE`) at `offset`
/// of the `block`th continuation block, chained to `next`.
#[derive(Debug)]
pub(crate) struct Area {
    pub block: u32,
    pub offset: u16,
    pub bytes: Vec<u8>,
    pub next: Option<u32>,
}

impl Area {
    /// Length including the trailing `CE`.
    pub fn len(&self) -> usize {
        self.bytes.len() + if self.next.is_some() { CE_LEN } else { 0 }
    }
}

/// Hands out continuation areas, packed into blocks in order.
#[derive(Debug, Default)]
pub(crate) struct Areas {
    pub areas: Vec<Area>,
    block: u32,
    used: usize,
}

impl Areas {
    /// Blocks used so far.
    pub fn blocks(&self) -> u32 {
        if self.areas.is_empty() {
            0
        } else {
            self.block + 1
        }
    }

    /// Places a record's entries: as many as fit inline in a record whose
    /// fixed part is `base` bytes, the rest in a chain of areas. Returns the
    /// inline bytes and the first area.
    pub fn place(&mut self, base: usize, entries: Vec<Vec<u8>>) -> (Vec<u8>, Option<u32>) {
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
        let first = self.areas.len() as u32;
        while let Some(e) = entries.get(i) {
            // Every entry is at most 255 bytes, so it fits a fresh block
            // with a `CE` after it.
            if self.areas.is_empty() {
                self.used = 0;
            } else if self.used + e.len() + CE_LEN > AREA_MAX {
                self.block += 1;
                self.used = 0;
            }
            let bytes = take(&entries, &rest, &mut i, AREA_MAX - self.used);
            let idx = self.areas.len() as u32;
            let area = Area {
                block: self.block,
                offset: self.used as u16,
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

    #[test]
    fn device_numbers_follow_the_kernel() {
        for (ma, mi) in [
            (5, 1),
            (8, 0),
            (4095, 255),
            (0, 300),
            (8, 256),
            (259, 70000),
        ] {
            let e = pn(ma, mi);
            let high = u32::from_le_bytes(e[4..8].try_into().unwrap());
            let low = u32::from_le_bytes(e[12..16].try_into().unwrap());
            assert_eq!(pn_decode(high, low), (ma, mi));
            if mi >= 256 && ma != 0 {
                assert_eq!((high, low), (ma, mi), "the kernel reads MKDEV(high, low)");
            }
        }
        let e = pn(5, 1);
        assert_eq!(&e[4..20], &[0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 5, 1]);
    }

    #[test]
    fn symlink_components() {
        let e = sl(b"/a/../b/");
        assert_eq!(e[0][4..], [0, 8, 0, 0, 1, b'a', 4, 0, 0, 1, b'b', 0, 0][..]);
        let long = vec![b'x'; 600];
        let e = sl(&long);
        assert!(e.iter().all(|e| e.len() <= 255));
        assert_eq!(e.len(), 3);
        assert_eq!(e[0][4], 1, "entry continues");
        assert_eq!(e[0][5], 1, "component continues");
    }

    #[test]
    fn overflow_goes_to_areas_inside_blocks() {
        let mut areas = Areas::default();
        let entries = sl(&vec![b'y'; 4000]);
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
