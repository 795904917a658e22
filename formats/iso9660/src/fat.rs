//! A FAT12/FAT16 image built from a tree, for the EFI boot entry (what
//! Buildroot otherwise makes with `mkfs.vfat` and `mcopy`). Names get long
//! name (VFAT) entries where the 8.3 form cannot hold them; times are the
//! inodes' mtimes, clamped to FAT's 1980..2107.

use rootforge_common::{Content, Error, FileData, InodeId, Result, Time, View, display_path};

use crate::time;

/// Bytes per sector, as the boot sector records it.
const BYTES_PER_SECTOR: u16 = 512;
const SECTOR: usize = BYTES_PER_SECTOR as usize;
const ENTRY: usize = 32;
/// Root directory entries of a FAT12/16 volume (a multiple of a sector).
const ROOT_MIN: usize = 512;
const FAT12_MAX: usize = 4084;
const FAT16_MAX: usize = 65_524;
const LFN_CHARS: usize = 13;

struct Node<'a> {
    /// Raw name (empty for the root).
    name: &'a [u8],
    ino: InodeId,
    parent: usize,
    data: Option<&'a FileData>,
    children: Vec<usize>,
    /// First cluster; FAT12/16 cluster numbers fit in 16 bits.
    first: u16,
    clusters: u16,
    mtime: Time,
}

/// `NAME    EXT` short names and the long name entries for each child of a
/// directory, in tree order.
struct Names {
    short: [u8; 11],
    long: Option<Vec<u16>>,
}

fn unsupported(path: &[u8], what: &str) -> Error {
    Error::Unsupported {
        path: display_path(path),
        format: "FAT (EFI boot image)",
        what: what.to_owned(),
    }
}

fn short_char(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' | b'0'..=b'9' => Some(c),
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'(' | b')' | b'-' | b'@' | b'^' | b'_'
        | b'`' | b'{' | b'}' | b'~' => Some(c),
        _ => None,
    }
}

/// The exact 8.3 form of a name, if it has one.
fn exact_short(name: &[u8]) -> Option<[u8; 11]> {
    let (base, ext) = match name.iter().position(|&c| c == b'.') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, &[][..]),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || ext.contains(&b'.') {
        return None;
    }
    let mut s = [b' '; 11];
    for (i, &c) in base.iter().enumerate() {
        s[i] = short_char(c)?;
    }
    for (i, &c) in ext.iter().enumerate() {
        s[8 + i] = short_char(c)?;
    }
    Some(s)
}

fn names(children: &[&[u8]], path: &[u8]) -> Result<Vec<Names>> {
    let mut taken = std::collections::HashSet::new();
    let exact: Vec<Option<[u8; 11]>> = children.iter().map(|n| exact_short(n)).collect();
    for s in exact.iter().flatten() {
        taken.insert(*s);
    }
    let mut out = Vec::with_capacity(children.len());
    for (name, exact) in children.iter().zip(exact) {
        if let Some(s) = exact {
            out.push(Names {
                short: s,
                long: None,
            });
            continue;
        }
        let text =
            std::str::from_utf8(name).map_err(|_| unsupported(path, "a name that is not UTF-8"))?;
        let long: Vec<u16> = text.encode_utf16().collect();
        if long.len() > 255 {
            return Err(unsupported(path, "a name longer than 255 UTF-16 units"));
        }
        let upper: Vec<u8> = name
            .iter()
            .map(|c| c.to_ascii_uppercase())
            .filter(|&c| c != b' ')
            .collect();
        let dot = upper.iter().rposition(|&c| c == b'.');
        let (base, ext) = match dot {
            Some(i) if i > 0 => (&upper[..i], &upper[i + 1..]),
            _ => (&upper[..], &[][..]),
        };
        let map = |c: &u8| short_char(*c).unwrap_or(b'_');
        let base: Vec<u8> = base.iter().filter(|&&c| c != b'.').map(map).collect();
        let ext: Vec<u8> = ext.iter().take(3).map(map).collect();
        let mut n = 1u32;
        let short = loop {
            let tail = format!("~{n}");
            let keep = base.len().min(8 - tail.len());
            let mut s = [b' '; 11];
            s[..keep].copy_from_slice(&base[..keep]);
            s[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
            s[8..8 + ext.len()].copy_from_slice(&ext);
            if taken.insert(s) {
                break s;
            }
            n += 1;
            if n > 999_999 {
                return Err(unsupported(path, "more clashing short names than fit"));
            }
        };
        out.push(Names {
            short,
            long: Some(long),
        });
    }
    Ok(out)
}

fn checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |s, &c| (s >> 1).wrapping_add(s << 7).wrapping_add(c))
}

/// FAT date and time words.
fn stamp(t: Time) -> (u16, u16) {
    let b = time::short(Time {
        sec: t.sec.clamp(315_532_800, 4_354_819_198),
        nsec: 0,
    });
    let year = u16::from(b[0]).saturating_sub(80);
    let date = (year << 9) | (u16::from(b[1]) << 5) | u16::from(b[2]);
    let tm = (u16::from(b[3]) << 11) | (u16::from(b[4]) << 5) | (u16::from(b[5]) / 2);
    (date, tm)
}

fn dir_entry(short: &[u8; 11], dir: bool, first: u16, size: u32, mtime: Time) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..11].copy_from_slice(short);
    e[11] = if dir { 0x10 } else { 0x20 };
    let (date, tm) = stamp(mtime);
    e[14..16].copy_from_slice(&tm.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    e[22..24].copy_from_slice(&tm.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    e[26..28].copy_from_slice(&first.to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

/// Long name entries, last part first, as they precede the short entry.
fn lfn_entries(long: &[u16], short: &[u8; 11]) -> Vec<[u8; ENTRY]> {
    let sum = checksum(short);
    let parts = long.len().div_ceil(LFN_CHARS);
    let mut out = Vec::with_capacity(parts);
    for k in (0..parts).rev() {
        let mut chars = [0xFFFFu16; LFN_CHARS];
        for (i, slot) in chars.iter_mut().enumerate() {
            let at = k * LFN_CHARS + i;
            if at < long.len() {
                *slot = long[at];
            } else if at == long.len() {
                *slot = 0;
            }
        }
        let mut e = [0u8; ENTRY];
        // At most 20 parts: names are at most 255 UTF-16 units.
        let ordinal = u8::try_from(k + 1).unwrap_or(u8::MAX);
        e[0] = ordinal | if k + 1 == parts { 0x40 } else { 0 };
        e[11] = 0x0F;
        e[13] = sum;
        let at = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (c, &pos) in chars.iter().zip(&at) {
            e[pos..pos + 2].copy_from_slice(&c.to_le_bytes());
        }
        out.push(e);
    }
    out
}

fn entries_for(n: &Names) -> usize {
    1 + n.long.as_ref().map_or(0, |l| l.len().div_ceil(LFN_CHARS))
}

/// Builds the FAT image of `view`.
pub(crate) fn image(view: &View<'_>, created: Time) -> Result<Vec<u8>> {
    // Nodes in depth-first order, each directory's children by name.
    let mut nodes: Vec<Node<'_>> = vec![Node {
        name: b"",
        ino: view.root(),
        parent: 0,
        data: None,
        children: Vec::new(),
        first: 0,
        clusters: 0,
        mtime: view.inode(view.root()).meta.mtime,
    }];
    let mut paths: Vec<Vec<u8>> = vec![Vec::new()];
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        let mut kids = Vec::new();
        for (name, ino) in view.children(nodes[i].ino) {
            let mut path = paths[i].clone();
            path.push(b'/');
            path.extend_from_slice(name);
            let inode = view.inode(ino);
            let data = match &inode.content {
                Content::Dir(_) => None,
                Content::File(d) => Some(d),
                _ => return Err(unsupported(&path, "anything but files and directories")),
            };
            nodes.push(Node {
                name,
                ino,
                parent: i,
                data,
                children: Vec::new(),
                first: 0,
                clusters: 0,
                mtime: inode.meta.mtime,
            });
            paths.push(path);
            kids.push(nodes.len() - 1);
        }
        for &k in kids.iter().rev() {
            if nodes[k].data.is_none() {
                stack.push(k);
            }
        }
        nodes[i].children = kids;
    }
    let is_dir = |n: &Node<'_>| n.data.is_none();
    let dir_names: Vec<Option<Vec<Names>>> = nodes
        .iter()
        .zip(&paths)
        .map(|(n, p)| {
            if is_dir(n) {
                let kids: Vec<&[u8]> = n.children.iter().map(|&k| nodes[k].name).collect();
                names(&kids, p).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<_>>()?;
    let dir_bytes = |i: usize| -> usize {
        let own = if i == 0 { 0 } else { 2 };
        let n: usize = dir_names[i].iter().flatten().map(entries_for).sum();
        (own + n) * ENTRY
    };
    let root_entries = (dir_bytes(0) / ENTRY)
        .max(ROOT_MIN)
        .next_multiple_of(SECTOR / ENTRY);
    let root_sectors = root_entries * ENTRY / SECTOR;

    // The smallest cluster that keeps the count within FAT16.
    let mut spc = 1u8;
    let (count, fat16) = loop {
        let cb = (usize::from(spc) * SECTOR) as u64;
        let mut count = 0u64;
        for (i, n) in nodes.iter().enumerate().skip(1) {
            let bytes = n.data.map_or_else(|| dir_bytes(i) as u64, FileData::size);
            count += bytes.div_ceil(cb).max(u64::from(is_dir(n)));
        }
        let count = usize::try_from(count.max(1)).unwrap_or(usize::MAX);
        if count <= FAT16_MAX {
            break (count, count > FAT12_MAX);
        }
        if spc == 128 {
            return Err(unsupported(b"/", "more than 4 GiB of EFI boot files"));
        }
        spc *= 2;
    };
    let cluster = usize::from(spc) * SECTOR;
    let fat_bytes = if fat16 {
        (count + 2) * 2
    } else {
        (count + 2) * 3 / 2 + 1
    };
    let fat_sectors = fat_bytes.div_ceil(SECTOR);
    let data_start = (1 + 2 * fat_sectors + root_sectors) * SECTOR;
    let total = data_start + count * cluster;

    // Clusters in node order.
    // The count above is at most FAT16_MAX, so every number fits in 16
    // bits.
    let too_many = || unsupported(b"/", "more clusters than FAT16 holds");
    let mut next = 2u16;
    for (i, n) in nodes.iter_mut().enumerate().skip(1) {
        let bytes = n.data.map_or_else(|| dir_bytes(i) as u64, FileData::size);
        let c = u16::try_from(bytes.div_ceil(cluster as u64)).map_err(|_| too_many())?;
        let c = if n.data.is_none() { c.max(1) } else { c };
        if c > 0 {
            n.first = next;
            n.clusters = c;
            next = next.checked_add(c).ok_or_else(too_many)?;
        }
    }
    let root_entries = u16::try_from(root_entries)
        .map_err(|_| unsupported(b"/", "more root directory entries than FAT holds"))?;
    let fat_sectors16 = u16::try_from(fat_sectors).map_err(|_| too_many())?;

    let mut img = vec![0u8; total];
    let total_sectors = total / SECTOR;
    let b = &mut img[..SECTOR];
    b[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
    b[3..11].copy_from_slice(b"ROOTFRGE");
    b[11..13].copy_from_slice(&BYTES_PER_SECTOR.to_le_bytes());
    b[13] = spc;
    b[14..16].copy_from_slice(&1u16.to_le_bytes());
    b[16] = 2;
    b[17..19].copy_from_slice(&root_entries.to_le_bytes());
    match u16::try_from(total_sectors) {
        Ok(n) => b[19..21].copy_from_slice(&n.to_le_bytes()),
        Err(_) => {
            let n = u32::try_from(total_sectors).map_err(|_| too_many())?;
            b[32..36].copy_from_slice(&n.to_le_bytes());
        }
    }
    b[21] = 0xF8;
    b[22..24].copy_from_slice(&fat_sectors16.to_le_bytes());
    b[24..26].copy_from_slice(&32u16.to_le_bytes());
    b[26..28].copy_from_slice(&64u16.to_le_bytes());
    b[36] = 0x80;
    b[38] = 0x29;
    // The low 32 bits of the creation time.
    let [s0, s1, s2, s3, ..] = created.sec.to_le_bytes();
    let serial = u32::from_le_bytes([s0, s1, s2, s3]) ^ 0x5EED_F00D;
    b[39..43].copy_from_slice(&serial.to_le_bytes());
    b[43..54].copy_from_slice(b"NO NAME    ");
    b[54..62].copy_from_slice(if fat16 { b"FAT16   " } else { b"FAT12   " });
    b[510] = 0x55;
    b[511] = 0xAA;

    // The FAT, then its copy.
    let mut fat = vec![0u8; fat_sectors * SECTOR];
    let mut set = |c: u16, v: u16| {
        let c = usize::from(c);
        if fat16 {
            fat[c * 2..c * 2 + 2].copy_from_slice(&v.to_le_bytes());
        } else {
            // Two 12-bit entries in three bytes.
            let at = c * 3 / 2;
            let [low, high] = (v & 0xFFF).to_le_bytes();
            let [mid, _] = ((v & 0xFFF) >> 4).to_le_bytes();
            if c % 2 == 0 {
                fat[at] = low;
                fat[at + 1] = (fat[at + 1] & 0xF0) | high;
            } else {
                fat[at] = (fat[at] & 0x0F) | (low << 4);
                fat[at + 1] = mid;
            }
        }
    };
    set(0, 0xFFF8);
    set(1, 0xFFFF);
    for n in &nodes[1..] {
        for k in 0..n.clusters {
            let c = n.first + k;
            let v = if k + 1 == n.clusters { 0xFFFF } else { c + 1 };
            set(c, v);
        }
    }
    let fat_at = SECTOR;
    img[fat_at..fat_at + fat.len()].copy_from_slice(&fat);
    img[fat_at + fat.len()..fat_at + 2 * fat.len()].copy_from_slice(&fat);

    let offset = |c: u16| data_start + (usize::from(c) - 2) * cluster;
    for (i, n) in nodes.iter().enumerate() {
        if let Some(d) = n.data {
            if n.clusters > 0 {
                let at = offset(n.first);
                let len = usize::try_from(d.size()).unwrap_or(0);
                d.read_at(0, &mut img[at..at + len])
                    .map_err(|e| Error::io(format!("reading {}", display_path(&paths[i])), e))?;
            }
            continue;
        }
        let mut dir = Vec::new();
        if i != 0 {
            let dot = |name: &[u8; 11], c: u16, t: Time| dir_entry(name, true, c, 0, t);
            let parent = nodes[n.parent].first;
            dir.extend_from_slice(&dot(b".          ", n.first, n.mtime));
            dir.extend_from_slice(&dot(b"..         ", parent, n.mtime));
        }
        for (&k, nm) in n.children.iter().zip(dir_names[i].iter().flatten()) {
            if let Some(long) = &nm.long {
                for e in lfn_entries(long, &nm.short) {
                    dir.extend_from_slice(&e);
                }
            }
            let c = &nodes[k];
            let size = c
                .data
                .map_or(0, |d| u32::try_from(d.size()).unwrap_or(u32::MAX));
            dir.extend_from_slice(&dir_entry(
                &nm.short,
                c.data.is_none(),
                c.first,
                size,
                c.mtime,
            ));
        }
        let at = if i == 0 {
            SECTOR * (1 + 2 * fat_sectors)
        } else {
            offset(n.first)
        };
        img[at..at + dir.len()].copy_from_slice(&dir);
    }
    Ok(img)
}
