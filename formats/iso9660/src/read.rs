//! Reading an image back into a tree: the primary directory tree with its
//! Rock Ridge entries (names, modes, owners, times, devices, symlinks,
//! hard links by `PX` serial, zisofs data), as Linux sees it.

use std::collections::{HashMap, HashSet};

use rootforge_common::bytes::usize_from_u32;
use rootforge_common::{
    Backing, Content, Edit, Error, Extent, FileData, Inode, Kind, Meta, Replace, Result, Time,
    Tree, TreeBuilder, display_path,
};

use crate::raw::dir::{DirectoryRecord, FLAG_DIRECTORY, FLAG_MULTI_EXTENT};
use crate::raw::susp::{
    self, CONTINUE, CURRENT, Ce, Entry, Nm, PARENT, Pn, Px, ROOT, Sl, Sp, St, Tf, Zf,
};
use crate::raw::volume::{
    PRIMARY, STANDARD_IDENTIFIER, TERMINATOR, VolumeDescriptor, VolumeDescriptorHeader,
};
use crate::{BLOCK, BLOCK_LEN, MAX_DEPTH, malformed, time, zisofs};

/// Continuation areas followed per record, as Linux allows.
const MAX_CE: usize = 32;
/// Where the first volume descriptor lies, and how many are looked at.
const DESCRIPTORS: std::ops::Range<u64> = 16..80;

/// Whether `data` starts like an ISO9660 image (a volume descriptor at
/// block 16).
pub fn is_iso(data: &[u8]) -> bool {
    data.get(32_769..32_774) == Some(&STANDARD_IDENTIFIER[..])
}

/// A directory's extent, and where the record naming it lies.
#[derive(Debug, Clone, Copy)]
struct DirRef {
    at: u64,
    lba: u32,
    size: u32,
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
    /// `SP`'s LEN_SKP, when the entries hold an `SP`.
    sp: Option<u8>,
}

/// Walks the system use entries of a record at byte `at`, following `CE`.
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
        for e in susp::entries(&area) {
            match &e.signature_word {
                b"SP" => rr.sp = Some(Sp::decode(&e, at)?.len_skp),
                b"ST" => {
                    St::decode(&e, at)?;
                    break;
                }
                b"CE" => next = Some(Ce::decode(&e, at)?),
                b"PX" => {
                    let px = Px::decode(&e, at)?;
                    rr.mode = Some(px.file_mode);
                    rr.uid = px.file_user_id;
                    rr.gid = px.file_group_id;
                    if px.file_serial_number.is_some() {
                        rr.serial = px.file_serial_number;
                    }
                }
                b"PN" => rr.rdev = Some(Pn::decode(&e, at)?.device()),
                b"NM" => {
                    let nm = Nm::decode(&e, at)?;
                    has_name = true;
                    if nm.flags & (CURRENT | PARENT) == 0 {
                        name.extend_from_slice(nm.name_content);
                    }
                }
                b"SL" => {
                    for c in Sl::decode(&e, at)?.components {
                        if sl_join {
                            link.push(b'/');
                        }
                        match c.component_flags & !CONTINUE {
                            CURRENT => link.push(b'.'),
                            PARENT => link.extend_from_slice(b".."),
                            ROOT => link.push(b'/'),
                            _ => link.extend_from_slice(c.component_content),
                        }
                        sl_join = c.component_flags & (CONTINUE | ROOT) == 0;
                    }
                    rr.link = Some(link.clone());
                }
                b"TF" => {
                    if let Some(stamp) = Tf::decode(&e, at)?.modify() {
                        rr.mtime = time::parse(stamp);
                    }
                }
                b"ZF" => {
                    let zf = Zf::decode(&e, at)?;
                    if zf.algorithm == Zf::ZISOFS {
                        rr.zf = Some((zf.log2_of_block_size, zf.uncompressed_size));
                    }
                }
                _ => {}
            }
        }
        let Some(ce) = next else { break };
        hops += 1;
        if hops > MAX_CE {
            return Err(malformed(at, "more than 32 continuation areas"));
        }
        let start = u64::from(ce.block_location) * BLOCK + u64::from(ce.offset);
        if u64::from(ce.length) > BLOCK {
            return Err(malformed(at, "continuation area is longer than a block"));
        }
        area = bytes(img, start, usize_from_u32(ce.length))
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
    for n in DESCRIPTORS {
        let at = n * BLOCK;
        let vd = bytes(&image, at, BLOCK_LEN)?;
        let header = VolumeDescriptorHeader::decode(&vd, at)?;
        if header.standard_identifier != STANDARD_IDENTIFIER {
            return Err(malformed(at, "not a volume descriptor"));
        }
        match header.volume_descriptor_type {
            PRIMARY => {
                pvd = Some((at, vd));
                break;
            }
            TERMINATOR => break,
            _ => {}
        }
    }
    let (pvd_at, pvd) = pvd.ok_or_else(|| malformed(16 * BLOCK, "no primary volume descriptor"))?;
    let root = VolumeDescriptor::decode(&pvd, pvd_at)?.directory_record_for_root_directory;
    let root = DirRef {
        at: pvd_at,
        lba: root.location_of_extent,
        size: root.data_length,
    };

    let mut r = Reader {
        image: &image,
        tree: TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default())),
        links: HashMap::new(),
        visited: HashSet::new(),
        skip: 0,
        rr: false,
    };
    // The root's own `.` record says whether Rock Ridge is used.
    let (first, start) = r.dir_extent(root)?;
    let dot = DirectoryRecord::decode(&first, start)?;
    let probe = parse_su(&image, dot.system_use, start, 0)?;
    if let Some(len_skp) = probe.sp {
        r.rr = true;
        r.skip = usize::from(len_skp);
    }
    let root_rr = parse_su(&image, dot.system_use, start, r.skip)?;
    let meta = r.meta(&root_rr, &dot.recording_date_and_time, 0o555);
    r.tree
        .insert(b"", Inode::dir(meta), Replace::Always)
        .map_err(|e| malformed(start, e.to_string()))?;
    r.walk(root, Vec::new(), 0)?;
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
    fn dir_extent(&self, dir: DirRef) -> Result<(Vec<u8>, u64)> {
        let start = u64::from(dir.lba) * BLOCK;
        if dir.size == 0 {
            return Err(malformed(dir.at, "empty directory extent"));
        }
        let ext = bytes(self.image, start, usize_from_u32(dir.size))
            .map_err(|_| malformed(dir.at, "directory extent lies outside the image"))?;
        Ok((ext, start))
    }

    fn meta(&self, rr: &Rr, date: &[u8; 7], default: u16) -> Meta {
        let perm = rr
            .mode
            .and_then(|m| u16::try_from(m & 0o7777).ok())
            .unwrap_or(default);
        let mtime = rr.mtime.unwrap_or_else(|| time::parse_short(date));
        Meta::new(perm, rr.uid, rr.gid, Time::from_secs(mtime))
    }

    fn walk(&mut self, dir: DirRef, path: Vec<u8>, depth: usize) -> Result<()> {
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
        let mut pos = 0;
        let mut pending: Vec<(u64, u32, u32)> = Vec::new();
        let mut subdirs = Vec::new();
        while let Some(rest) = ext.get(pos..).filter(|r| !r.is_empty()) {
            // Records never straddle a block: a zero length pads to the next.
            let len_dr = usize::from(rest[0]);
            if len_dr == 0 {
                pos = (pos / BLOCK_LEN + 1) * BLOCK_LEN;
                continue;
            }
            let at = base + pos as u64;
            let rec = DirectoryRecord::decode(rest, at)?;
            pos += len_dr;
            if rec.file_identifier == [0] || rec.file_identifier == [1] {
                continue;
            }
            let part = (at, rec.location_of_extent, rec.data_length);
            if rec.file_flags & FLAG_MULTI_EXTENT != 0 {
                pending.push(part);
                continue;
            }
            let mut parts = std::mem::take(&mut pending);
            parts.push(part);
            let rr = if self.rr {
                parse_su(self.image, rec.system_use, at, self.skip)?
            } else {
                Rr::default()
            };
            let name = match &rr.name {
                Some(n) => n.clone(),
                None => plain_name(rec.file_identifier),
            };
            if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                return Err(malformed(at, "bad file name"));
            }
            let mut child = path.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            let is_dir = rec.file_flags & FLAG_DIRECTORY != 0;
            let kind = match rr.mode.and_then(Kind::from_mode) {
                Some(k) => k,
                None if is_dir => Kind::Dir,
                None => Kind::File,
            };
            if (kind == Kind::Dir) != is_dir {
                return Err(malformed(at, "Rock Ridge type disagrees with the record"));
            }
            let default = if is_dir { 0o555 } else { 0o444 };
            let meta = self.meta(&rr, &rec.recording_date_and_time, default);
            if kind == Kind::Dir {
                self.insert(&child, Inode::dir(meta), at)?;
                let sub = DirRef {
                    at,
                    lba: rec.location_of_extent,
                    size: rec.data_length,
                };
                subdirs.push((sub, child));
                continue;
            }
            let total: u64 = parts.iter().map(|p| u64::from(p.2)).sum();
            let key = match rr.serial {
                Some(s) if s != 0 => Some(u64::from(s)),
                _ if total > 0 && !self.rr => Some(u64::from(rec.location_of_extent) | (1 << 40)),
                _ => None,
            };
            if let Some(first) = key.and_then(|k| self.links.get(&k)) {
                let first = first.clone();
                self.tree
                    .hard_link(&child, &first)
                    .map_err(|e| malformed(at, e.to_string()))?;
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
                _ => Content::File(self.data(&parts, total, rr.zf, at)?),
            };
            self.insert(&child, Inode::new(meta, content), at)?;
            if let Some(k) = key {
                self.links.insert(k, child);
            }
        }
        if !pending.is_empty() {
            return Err(malformed(dir.at, "multi-extent file has no final record"));
        }
        for (sub, child) in subdirs {
            self.walk(sub, child, depth + 1)?;
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
