//! Names in the two ECMA-119 namespaces: level 2/3 d-character identifiers
//! in the primary tree and UCS-2 names in the Joliet tree. Both are unique
//! within a directory; clashes after mapping are resolved in the order of
//! the original names, so the result depends only on the tree.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// Longest primary identifier, without the `;1` version (levels 2 and 3).
const ISO_MAX: usize = 31;
/// Longest Joliet identifier in UCS-2 units, version included (the limit
/// every Joliet reader accepts).
const JOLIET_MAX: usize = 64;
/// Longest extension kept when a name has to be cut.
const EXT_KEEP: usize = 8;

/// The primary identifier of a file (`NAME.EXT;1`) or directory (`NAME`).
fn iso_natural(raw: &[u8], dir: bool) -> (Vec<u8>, Vec<u8>) {
    let map = |b: u8| match b {
        b'a'..=b'z' => b.to_ascii_uppercase(),
        b'A'..=b'Z' | b'0'..=b'9' | b'_' => b,
        _ => b'_',
    };
    let split = if dir {
        None
    } else {
        raw.iter().rposition(|&b| b == b'.').filter(|&i| i > 0)
    };
    let (stem, ext) = match split {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &[][..]),
    };
    let mut stem: Vec<u8> = stem.iter().map(|&b| map(b)).collect();
    let mut ext: Vec<u8> = ext.iter().map(|&b| map(b)).collect();
    if dir {
        stem.truncate(ISO_MAX);
    } else if stem.len() + 1 + ext.len() > ISO_MAX {
        ext.truncate(EXT_KEEP);
        stem.truncate(ISO_MAX - 1 - ext.len());
    }
    (stem, ext)
}

fn iso_ident(stem: &[u8], ext: &[u8], dir: bool) -> Vec<u8> {
    let mut id = stem.to_vec();
    if !dir {
        id.push(b'.');
        id.extend_from_slice(ext);
        id.extend_from_slice(b";1");
    }
    id
}

/// Primary identifiers for one directory's entries, given as (raw name,
/// is a directory) in raw byte order.
pub(crate) fn iso_names(entries: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
    let parts: Vec<_> = entries.iter().map(|&(n, d)| iso_natural(n, d)).collect();
    let idents: Vec<_> = parts
        .iter()
        .zip(entries)
        .map(|((s, e), &(_, d))| iso_ident(s, e, d))
        .collect();
    dedup(idents, |i, n| {
        let (stem, ext) = &parts[i];
        let dir = entries[i].1;
        let digits = n.to_string();
        let room = if dir {
            ISO_MAX
        } else {
            ISO_MAX - 1 - ext.len()
        };
        let mut s = stem[..stem.len().min(room.saturating_sub(digits.len()))].to_vec();
        s.extend_from_slice(digits.as_bytes());
        iso_ident(&s, ext, dir)
    })
}

/// Keeps the first of each clashing identifier and renames the others with
/// `rename(index, counter)`, skipping any identifier already taken.
fn dedup<T: Clone + Eq + std::hash::Hash>(
    idents: Vec<T>,
    mut rename: impl FnMut(usize, u32) -> T,
) -> Vec<T> {
    let mut count: HashMap<&T, u32> = HashMap::new();
    for id in &idents {
        *count.entry(id).or_insert(0) += 1;
    }
    if count.values().all(|&c| c == 1) {
        return idents;
    }
    let mut taken: HashSet<T> = idents.iter().cloned().collect();
    let mut seen: HashSet<&T> = HashSet::new();
    let mut out = Vec::with_capacity(idents.len());
    for (i, id) in idents.iter().enumerate() {
        if count[id] == 1 || seen.insert(id) {
            out.push(id.clone());
            continue;
        }
        let mut n = 1u32;
        let new = loop {
            let cand = rename(i, n);
            if !taken.contains(&cand) {
                break cand;
            }
            n = n.saturating_add(1);
        };
        taken.insert(new.clone());
        out.push(new);
    }
    out
}

/// ECMA-119 9.3 order of primary identifiers: by name, then extension,
/// each compared as if padded with spaces (so a prefix sorts first).
pub(crate) fn iso_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let parts = |id: &[u8]| -> (Vec<u8>, Vec<u8>) {
        let id = id.split(|&c| c == b';').next().unwrap_or_default();
        match id.iter().position(|&c| c == b'.') {
            Some(i) => (id[..i].to_vec(), id[i + 1..].to_vec()),
            None => (id.to_vec(), Vec::new()),
        }
    };
    parts(a).cmp(&parts(b))
}

/// UCS-2 units of a raw name: UTF-8 decoded where valid, characters Joliet
/// forbids and those outside the BMP as `_`.
fn ucs2(raw: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            let u = u32::from(c);
            let bad = u < 0x20 || matches!(c, '*' | '/' | ':' | ';' | '?' | '\\');
            out.push(match u16::try_from(u) {
                Ok(u) if !bad => u,
                _ => u16::from(b'_'),
            });
        }
        out.extend(chunk.invalid().iter().map(|_| u16::from(b'_')));
    }
    out
}

/// Joliet identifiers (UCS-2 big-endian bytes, `;1` on files) for one
/// directory's entries, given as (raw name, is a directory).
pub(crate) fn joliet_names(entries: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
    let units: Vec<Vec<u16>> = entries
        .iter()
        .map(|&(raw, dir)| {
            let room = if dir { JOLIET_MAX } else { JOLIET_MAX - 2 };
            shorten(ucs2(raw), room, 0)
        })
        .collect();
    let encode = |u: &[u16], dir: bool| {
        let mut b: Vec<u8> = u.iter().flat_map(|c| c.to_be_bytes()).collect();
        if !dir {
            b.extend_from_slice(&[0, b';', 0, b'1']);
        }
        b
    };
    let idents = units
        .iter()
        .zip(entries)
        .map(|(u, &(_, d))| encode(u, d))
        .collect();
    dedup(idents, |i, n| {
        let (raw, dir) = entries[i];
        let room = if dir { JOLIET_MAX } else { JOLIET_MAX - 2 };
        let digits = n.to_string();
        let mut u = shorten(ucs2(raw), room, digits.len());
        let at = u
            .iter()
            .rposition(|&c| c == u16::from(b'.'))
            .unwrap_or(u.len());
        let at = if dir { u.len() } else { at };
        for (k, d) in digits.bytes().enumerate() {
            u.insert(at + k, u16::from(d));
        }
        encode(&u, dir)
    })
}

/// Cuts a name to `room - reserve` units, keeping a short extension.
fn shorten(mut u: Vec<u16>, room: usize, reserve: usize) -> Vec<u16> {
    let room = room.saturating_sub(reserve);
    if u.len() <= room {
        return u;
    }
    let dot = u
        .iter()
        .rposition(|&c| c == u16::from(b'.'))
        .filter(|&i| i > 0 && u.len() - i <= EXT_KEEP + 1);
    match dot {
        Some(i) if i > 0 => {
            let ext = u.split_off(i);
            u.truncate(room.saturating_sub(ext.len()));
            u.extend(ext);
            u
        }
        _ => {
            u.truncate(room);
            u
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_names_are_d_characters_and_unique() {
        let entries: Vec<(&[u8], bool)> = vec![
            (b"Makefile", false),
            (b"README", false),
            (b"a.b.c", false),
            (b"lib", true),
            (b"my.dir", true),
            (b"readme", false),
            (b"readme0", false),
        ];
        let names = iso_names(&entries);
        let text: Vec<_> = names.iter().map(|n| String::from_utf8_lossy(n)).collect();
        assert_eq!(
            text,
            [
                "MAKEFILE.;1",
                "README.;1",
                "A_B.C;1",
                "LIB",
                "MY_DIR",
                "README1.;1",
                "README0.;1"
            ]
        );
    }

    #[test]
    fn long_names_are_cut_and_clashes_renamed() {
        let long = vec![b'x'; 300];
        let mut long2 = long.clone();
        long2.push(b'y');
        let entries: Vec<(&[u8], bool)> = vec![(&long, false), (&long2, false)];
        let iso = iso_names(&entries);
        assert_eq!(iso[0].len(), 31 + 2);
        assert_ne!(iso[0], iso[1]);
        let j = joliet_names(&entries);
        assert_eq!(j[0].len(), 128);
        assert_ne!(j[0], j[1]);
        assert!(j[1].len() <= 128);
    }

    #[test]
    fn joliet_keeps_unicode_and_replaces_the_rest() {
        let entries: Vec<(&[u8], bool)> = vec![("é:x".as_bytes(), true), (b"\xff", false)];
        let j = joliet_names(&entries);
        assert_eq!(j[0], [0, 0xe9, 0, b'_', 0, b'x']);
        assert_eq!(j[1], [0, b'_', 0, b';', 0, b'1']);
    }

    #[test]
    fn sort_compares_name_then_extension() {
        assert_eq!(iso_cmp(b"A.;1", b"A.0;1"), Ordering::Less);
        assert_eq!(iso_cmp(b"A0", b"A.X;1"), Ordering::Greater);
    }
}
