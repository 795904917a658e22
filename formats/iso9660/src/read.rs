//! Reading an image back into a tree: the primary directory tree with its
//! Rock Ridge entries (names, modes, owners, times, devices, symlinks,
//! hard links by `PX` serial, zisofs data), as Linux sees it.

use std::collections::{HashMap, HashSet};

use rootforge_common::{
    Backing, Content, Edit, Error, Extent, FileData, Inode, Kind, Meta, Replace, Result, Time,
    Tree, TreeBuilder, display_path,
};

use crate::susp::pn_decode;
use crate::{BLOCK, FORMAT, MAX_DEPTH, time, zisofs};

/// Continuation areas followed per record, as Linux allows.
const MAX_CE: usize = 32;

fn malformed(offset: u64, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset, reason)
}

/// Whether `data` starts like an ISO9660 image (a volume descriptor at
/// block 16).
pub fn is_iso(data: &[u8]) -> bool {
    data.get(32_769..32_774) == Some(b"CD001")
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One parsed directory record.
struct Record<'a> {
    at: u64,
    lba: u32,
    size: u32,
    flags: u8,
    date: [u8; 7],
    ident: &'a [u8],
    su: &'a [u8],
}

/// The record at `at` of `buf`, which starts at byte `base` of the image.
fn parse_record(buf: &[u8], at: usize, base: u64) -> Result<Record<'_>> {
    let off = base + at as u64;
    let len = usize::from(
        *buf.get(at)
            .ok_or_else(|| malformed(off, "record outside its extent"))?,
    );
    let rec = buf
        .get(at..at + len)
        .filter(|_| len >= 34)
        .ok_or_else(|| malformed(off, "directory record is truncated"))?;
    let fi = usize::from(rec[32]);
    let su_at = 33 + fi + usize::from(fi % 2 == 0);
    if 33 + fi > len {
        return Err(malformed(off, "file identifier runs past its record"));
    }
    Ok(Record {
        at: off,
        lba: u32_le(rec, 2).unwrap_or(0),
        size: u32_le(rec, 10).unwrap_or(0),
        flags: rec[25],
        date: rec[18..25].try_into().unwrap_or_default(),
        ident: &rec[33..33 + fi],
        su: rec.get(su_at..).unwrap_or_default(),
    })
}

/// What the Rock Ridge entries of a record say.
#[derive(Default)]
struct Rr {
    mode: Option<u32>,
    uid: u32,
    gid: u32,
    serial: Option<u32>,
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    rdev: Option<(u32, u32)>,
    mtime: Option<i64>,
    zf: Option<(u8, u32)>,
    sp: bool,
}

/// Walks the system use entries of a record, following `CE`.
fn parse_su(img: &Backing, first: &[u8], at: u64, skip: usize) -> Result<Rr> {
    let mut rr = Rr::default();
    let mut area: Vec<u8> = first.get(skip..).unwrap_or_default().to_vec();
    let mut hops = 0;
    let mut sl_join = false;
    let mut link = Vec::new();
    let mut name = Vec::new();
    let mut has_name = false;
    loop {
        let mut next = None;
        let mut pos = 0;
        while pos + 4 <= area.len() {
            let sig = [area[pos], area[pos + 1]];
            let len = usize::from(area[pos + 2]);
            if len < 4 || pos + len > area.len() {
                break;
            }
            let e = &area[pos..pos + len];
            let body = &e[4..];
            let bb = |i: usize| u32_le(body, i * 8).unwrap_or(0);
            match &sig {
                b"SP" => rr.sp = true,
                b"ST" => break,
                b"CE" if body.len() >= 24 => next = Some((bb(0), bb(1), bb(2))),
                b"PX" if body.len() >= 32 => {
                    rr.mode = Some(bb(0));
                    rr.uid = bb(2);
                    rr.gid = bb(3);
                    if body.len() >= 40 {
                        rr.serial = Some(bb(4));
                    }
                }
                b"PN" if body.len() >= 16 => rr.rdev = Some(pn_decode(bb(0), bb(1))),
                b"NM" if !body.is_empty() => {
                    has_name = true;
                    if body[0] & 0x06 == 0 {
                        name.extend_from_slice(&body[1..]);
                    }
                }
                b"SL" if !body.is_empty() => {
                    let mut c = &body[1..];
                    while c.len() >= 2 {
                        let (flags, n) = (c[0], usize::from(c[1]));
                        let text = c.get(2..2 + n).unwrap_or_default();
                        if sl_join {
                            link.push(b'/');
                        }
                        match flags & !1 {
                            0x02 => link.push(b'.'),
                            0x04 => link.extend_from_slice(b".."),
                            0x08 => link.push(b'/'),
                            _ => link.extend_from_slice(text),
                        }
                        sl_join = flags & 0x09 == 0;
                        c = c.get(2 + n..).unwrap_or_default();
                    }
                    rr.link = Some(link.clone());
                }
                b"TF" if !body.is_empty() => {
                    // Creation comes first when present, then modification.
                    let flags = body[0];
                    let step = if flags & 0x80 != 0 { 17 } else { 7 };
                    let at = 1 + step * usize::from(flags & 1);
                    if flags & 2 != 0 {
                        rr.mtime = body.get(at..at + step).and_then(time::parse);
                    }
                }
                b"ZF" if body.len() >= 12 && &body[..2] == b"pz" => {
                    rr.zf = Some((body[3], u32_le(body, 4).unwrap_or(0)));
                }
                _ => {}
            }
            pos += len;
        }
        let Some((lba, off, len)) = next else { break };
        hops += 1;
        if hops > MAX_CE {
            return Err(malformed(at, "more than 32 continuation areas"));
        }
        let start = u64::from(lba) * BLOCK + u64::from(off);
        if len > BLOCK as u32 {
            return Err(malformed(at, "continuation area is longer than a block"));
        }
        area = bytes(img, start, len as usize)
            .map_err(|_| malformed(at, "continuation area lies outside the image"))?;
    }
    if has_name {
        rr.name = Some(name);
    }
    Ok(rr)
}

/// `len` bytes of the image at `at`: metadata is read piecemeal, so an
/// image on disk is never loaded whole.
fn bytes(img: &Backing, at: u64, len: usize) -> Result<Vec<u8>> {
    if at.checked_add(len as u64).is_none_or(|end| end > img.len()) {
        return Err(malformed(at, "read past the end of the image"));
    }
    let mut v = vec![0u8; len];
    img.read_at(at, &mut v)
        .map_err(|e| Error::io("reading the ISO9660 image", e))?;
    Ok(v)
}

/// Reads an image into a tree. File data refers to the image.
pub fn read(image: Backing) -> Result<Tree> {
    let mut pvd = None;
    for n in 16..80u64 {
        let vd = bytes(&image, n * BLOCK, BLOCK as usize)?;
        if &vd[1..6] != b"CD001" {
            return Err(malformed(n * BLOCK, "not a volume descriptor"));
        }
        match vd[0] {
            1 => {
                pvd = Some(vd);
                break;
            }
            255 => break,
            _ => {}
        }
    }
    let pvd = pvd.ok_or_else(|| malformed(16 * BLOCK, "no primary volume descriptor"))?;
    let root = parse_record(&pvd, 156, 16 * BLOCK)?;

    let mut r = Reader {
        image: &image,
        tree: TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default())),
        links: HashMap::new(),
        visited: HashSet::new(),
        skip: 0,
        rr: false,
    };
    // The root's own `.` record says whether Rock Ridge is used.
    let (first, start) = r.dir_extent(&root)?;
    let dot = parse_record(&first, 0, start)?;
    let probe = parse_su(&image, dot.su, dot.at, 0)?;
    if probe.sp {
        r.rr = true;
        r.skip = usize::from(dot.su.get(6).copied().unwrap_or(0));
    }
    let root_rr = parse_su(&image, dot.su, dot.at, r.skip)?;
    let meta = r.meta(&root_rr, &dot, 0o555);
    r.tree
        .insert(b"", Inode::dir(meta), Replace::Always)
        .map_err(|e| malformed(dot.at, e.to_string()))?;
    r.walk(&root, Vec::new(), 0)?;
    Ok(r.tree.finish())
}

struct Reader<'a> {
    image: &'a Backing,
    tree: TreeBuilder,
    /// First path of each `PX` serial (or extent) seen on a non-directory.
    links: HashMap<u64, Vec<u8>>,
    visited: HashSet<u32>,
    skip: usize,
    rr: bool,
}

impl Reader<'_> {
    /// A directory's extent and where it starts.
    fn dir_extent(&self, rec: &Record<'_>) -> Result<(Vec<u8>, u64)> {
        let start = u64::from(rec.lba) * BLOCK;
        if rec.size == 0 {
            return Err(malformed(rec.at, "empty directory extent"));
        }
        let ext = bytes(self.image, start, rec.size as usize)
            .map_err(|_| malformed(rec.at, "directory extent lies outside the image"))?;
        Ok((ext, start))
    }

    fn meta(&self, rr: &Rr, rec: &Record<'_>, default: u16) -> Meta {
        let perm = rr.mode.map_or(default, |m| (m & 0o7777) as u16);
        let mtime = rr.mtime.unwrap_or_else(|| time::parse_short(&rec.date));
        Meta::new(perm, rr.uid, rr.gid, Time::from_secs(mtime))
    }

    fn walk(&mut self, dir: &Record<'_>, path: Vec<u8>, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(malformed(dir.at, "directories nest too deeply"));
        }
        if !self.visited.insert(dir.lba) {
            return Err(malformed(
                dir.at,
                format!(
                    "{}: directory loop (its extent is already read)",
                    display_path(&path)
                ),
            ));
        }
        let (ext, base) = self.dir_extent(dir)?;
        let buf = &ext[..];
        let end = buf.len();
        let mut pos = 0;
        let mut pending: Vec<(u64, u32, u32)> = Vec::new();
        let mut subdirs = Vec::new();
        while pos < end {
            if buf[pos] == 0 {
                pos = (pos / BLOCK as usize + 1) * BLOCK as usize;
                continue;
            }
            let rec = parse_record(buf, pos, base)?;
            pos += usize::from(buf[pos]);
            if rec.ident == [0] || rec.ident == [1] {
                continue;
            }
            if rec.flags & 0x80 != 0 {
                pending.push((rec.at, rec.lba, rec.size));
                continue;
            }
            let mut parts = std::mem::take(&mut pending);
            parts.push((rec.at, rec.lba, rec.size));
            let rr = if self.rr {
                parse_su(self.image, rec.su, rec.at, self.skip)?
            } else {
                Rr::default()
            };
            let name = match &rr.name {
                Some(n) => n.clone(),
                None => plain_name(rec.ident),
            };
            if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                return Err(malformed(rec.at, "bad file name"));
            }
            let mut child = path.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            let is_dir = rec.flags & 2 != 0;
            let kind = match rr.mode.and_then(Kind::from_mode) {
                Some(k) => k,
                None if is_dir => Kind::Dir,
                None => Kind::File,
            };
            if (kind == Kind::Dir) != is_dir {
                return Err(malformed(
                    rec.at,
                    "Rock Ridge type disagrees with the record",
                ));
            }
            let meta = self.meta(&rr, &rec, if is_dir { 0o555 } else { 0o444 });
            if kind == Kind::Dir {
                self.insert(&child, Inode::dir(meta), rec.at)?;
                subdirs.push((rec.at, rec.lba, rec.size, rec.date, child));
                continue;
            }
            let total: u64 = parts.iter().map(|p| u64::from(p.2)).sum();
            let key = match rr.serial {
                Some(s) if s != 0 => Some(u64::from(s)),
                _ if total > 0 && !self.rr => Some(u64::from(rec.lba) | (1 << 40)),
                _ => None,
            };
            if let Some(first) = key.and_then(|k| self.links.get(&k)) {
                let first = first.clone();
                self.tree
                    .hard_link(&child, &first)
                    .map_err(|e| malformed(rec.at, e.to_string()))?;
                continue;
            }
            let content = match kind {
                Kind::Symlink => Content::Symlink(rr.link.clone().unwrap_or_default().into()),
                Kind::CharDev | Kind::BlockDev => {
                    let (major, minor) = rr.rdev.unwrap_or((0, 0));
                    if kind == Kind::CharDev {
                        Content::CharDev { major, minor }
                    } else {
                        Content::BlockDev { major, minor }
                    }
                }
                Kind::Fifo => Content::Fifo,
                Kind::Socket => Content::Socket,
                _ => Content::File(self.data(&parts, total, rr.zf, rec.at)?),
            };
            self.insert(&child, Inode::new(meta, content), rec.at)?;
            if let Some(k) = key {
                self.links.insert(k, child);
            }
        }
        if !pending.is_empty() {
            return Err(malformed(dir.at, "multi-extent file has no final record"));
        }
        for (at, lba, size, date, child) in subdirs {
            let rec = Record {
                at,
                lba,
                size,
                flags: 2,
                date,
                ident: &[],
                su: &[],
            };
            self.walk(&rec, child, depth + 1)?;
        }
        Ok(())
    }

    fn insert(&mut self, path: &[u8], inode: Inode, at: u64) -> Result<()> {
        self.tree
            .insert(path, inode, Replace::Always)
            .map(|_| ())
            .map_err(|e| malformed(at, e.to_string()))
    }

    fn data(
        &self,
        parts: &[(u64, u32, u32)],
        total: u64,
        zf: Option<(u8, u32)>,
        at: u64,
    ) -> Result<FileData> {
        let mut extents = Vec::with_capacity(parts.len());
        let mut logical = 0u64;
        for &(_, lba, size) in parts {
            extents.push(Extent {
                logical,
                stored: u64::from(lba) * BLOCK,
                len: u64::from(size),
            });
            logical += u64::from(size);
        }
        let contiguous = extents
            .windows(2)
            .all(|w| w[0].stored + w[0].len == w[1].stored);
        let bad = || malformed(at, "file data lies outside the image");
        let data = if contiguous {
            let start = extents.first().map_or(0, |e| e.stored);
            if total == 0 {
                FileData::empty()
            } else {
                FileData::range(self.image.clone(), start, total).ok_or_else(bad)?
            }
        } else {
            FileData::sparse(self.image.clone(), extents, total).ok_or_else(bad)?
        };
        match zf {
            Some((shift, size)) => {
                let file = zisofs::Zisofs::open(data, size, shift).map_err(|r| malformed(at, r))?;
                FileData::range(std::sync::Arc::new(file), 0, u64::from(size))
                    .ok_or_else(|| malformed(at, "zisofs file size"))
            }
            None => Ok(data),
        }
    }
}

/// A primary identifier as a name: without the version and a trailing dot.
fn plain_name(ident: &[u8]) -> Vec<u8> {
    let base = match ident.iter().rposition(|&c| c == b';') {
        Some(i) => &ident[..i],
        None => ident,
    };
    base.strip_suffix(b".").unwrap_or(base).to_vec()
}
