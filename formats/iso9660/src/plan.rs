//! The layout of an image, planned in full before a byte is written: the
//! directory trees of both namespaces with every record and its Rock Ridge
//! entries, the continuation areas, and the block of every extent.

use std::collections::HashMap;

use rayon::prelude::*;
use rootforge_common::{Content, Error, FileData, InodeId, Kind, Result, Time, View};

use crate::areas::Areas;
use crate::names::{iso_cmp, iso_names, joliet_names};
use crate::raw::dir::{DirectoryRecord, FLAG_DIRECTORY, FLAG_MULTI_EXTENT};
use crate::raw::hybrid::GPT_BACKUP_BLOCKS;
use crate::raw::susp::{
    CE_LEN, Entry, Er, Nm, Pn, Px, Sl, Sp, TF_ACCESS, TF_ATTRIBUTES, TF_MODIFY, Tf, Zf,
};
use crate::{BLOCK, IsoEncoder, MAX_DEPTH, MAX_EXTENT, blocks, limit, overflow, time, zisofs};

/// The longest Rock Ridge name Linux reads whole: its isofs stops adding
/// `NM` parts once a name would reach 254 bytes, so a longer one would come
/// back cut (mid-character in UTF-8), a different file than the input's.
const NAME_MAX: usize = 253;
/// Path table entries name their parent by a 16-bit number.
const MAX_DIRS: usize = 65_535;
/// A BIOS boot image holds its boot info table in bytes 8..64.
const BOOT_IMAGE_MIN: u64 = 64;

/// A directory of the tree, in breadth-first order (the root first).
#[derive(Debug)]
pub(crate) struct Dir<'a> {
    pub(crate) ino: InodeId,
    pub(crate) parent: usize,
    /// The directory's full path, for messages.
    pub(crate) path: Vec<u8>,
    pub(crate) children: Vec<Child<'a>>,
}

#[derive(Debug)]
pub(crate) struct Child<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) ino: InodeId,
    /// The child's index in the directory list, for a directory.
    pub(crate) dir: Option<usize>,
}

/// What a directory record points at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Dir(usize),
    /// Part `part` of file slot `slot`.
    File {
        slot: usize,
        part: u32,
    },
    /// The shared empty block (empty files, symlinks, devices...).
    Empty,
}

/// One directory record, all but its block address.
#[derive(Debug)]
pub(crate) struct Rec {
    pub(crate) ident: Vec<u8>,
    pub(crate) flags: u8,
    pub(crate) target: Target,
    pub(crate) mtime: Time,
    /// Inline system use entries, without the `CE`.
    pub(crate) su: Vec<u8>,
    /// The first continuation area, if the entries did not all fit.
    pub(crate) ce: Option<u32>,
}

impl Rec {
    /// The record's length (even, at most 255 - 1).
    pub(crate) fn len(&self) -> usize {
        let ce = if self.ce.is_some() { CE_LEN } else { 0 };
        DirectoryRecord::len_dr(self.ident.len(), self.su.len() + ce)
    }
}

/// One directory tree (primary or Joliet).
#[derive(Debug, Default)]
pub(crate) struct Namespace {
    /// Directories in path table order.
    pub(crate) order: Vec<usize>,
    /// Each directory's path table number (1-based), by directory index.
    pub(crate) number: Vec<u16>,
    /// Each directory's parent, by directory index.
    pub(crate) parent: Vec<usize>,
    /// Each directory's identifier in its parent (the root's is `\0`).
    pub(crate) ident: Vec<Vec<u8>>,
    pub(crate) records: Vec<Vec<Rec>>,
    /// Bytes of each directory's extent (whole blocks).
    pub(crate) size: Vec<u32>,
    pub(crate) lba: Vec<u32>,
    pub(crate) pt_size: u64,
    pub(crate) pt_l: u32,
    pub(crate) pt_m: u32,
}

/// How a file's bytes are stored.
#[derive(Debug)]
pub(crate) enum Stored<'a> {
    Plain(&'a FileData),
    /// zisofs data.
    Zisofs(Vec<u8>),
    /// A boot image, patched with its boot info table while written.
    BootInfo(&'a FileData),
    /// A FAT image built for the EFI boot entry; in no directory.
    Efi(Vec<u8>),
}

#[derive(Debug)]
pub(crate) struct Slot<'a> {
    pub(crate) stored: Stored<'a>,
    /// Bytes stored in the image.
    pub(crate) size: u64,
    pub(crate) lba: u32,
}

impl Slot<'_> {
    pub(crate) fn parts(&self) -> u32 {
        u32::try_from(self.size.div_ceil(MAX_EXTENT).max(1)).unwrap_or(u32::MAX)
    }

    /// Block and length of extent `part`.
    pub(crate) fn extent(&self, part: u32) -> (u32, u32) {
        let skip = u64::from(part) * MAX_EXTENT;
        let len = (self.size - skip.min(self.size)).min(MAX_EXTENT);
        // MAX_EXTENT / BLOCK blocks per part; the slot's end was checked to
        // fit in 32 bits when it was placed, and MAX_EXTENT fits in 32.
        let lba = u64::from(self.lba) + skip / BLOCK;
        (
            u32::try_from(lba).unwrap_or(u32::MAX),
            u32::try_from(len).unwrap_or(u32::MAX),
        )
    }
}

/// El Torito entries and the hybrid partition tables.
#[derive(Debug, Default)]
pub(crate) struct Boot {
    pub(crate) bios: Option<usize>,
    pub(crate) efi: Option<usize>,
    pub(crate) catalog: u32,
}

#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub(crate) slots: Vec<Slot<'a>>,
    pub(crate) primary: Namespace,
    pub(crate) joliet: Option<Namespace>,
    pub(crate) areas: Areas,
    pub(crate) ce_lba: u32,
    pub(crate) empty_lba: u32,
    pub(crate) boot: Option<Boot>,
    /// Blocks in the image, the GPT backup included.
    pub(crate) total: u32,
    /// Where the backup GPT starts (in blocks), when there is one.
    pub(crate) gpt_backup: Option<u32>,
    pub(crate) warnings: Vec<String>,
}

/// Walks the tree breadth-first, checking names on the way.
fn walk<'a>(view: &View<'a>) -> Result<Vec<Dir<'a>>> {
    let mut dirs = vec![Dir {
        ino: view.root(),
        parent: 0,
        path: Vec::new(),
        children: Vec::new(),
    }];
    let mut i = 0;
    while i < dirs.len() {
        let mut children = Vec::new();
        for (name, ino) in view.children(dirs[i].ino) {
            let mut path = dirs[i].path.clone();
            path.push(b'/');
            path.extend_from_slice(name);
            if name.len() > NAME_MAX {
                return Err(limit(
                    &path,
                    "name length",
                    name.len() as u64,
                    NAME_MAX as u64,
                ));
            }
            // Linux's dev_t: a 12-bit major and a 20-bit minor, which is
            // what PN can give it (see `Pn::from_device`).
            if let Some((major, minor)) = view.inode(ino).rdev() {
                if major > 0xfff {
                    return Err(limit(&path, "device major", u64::from(major), 0xfff));
                }
                if minor > 0xf_ffff {
                    return Err(limit(&path, "device minor", u64::from(minor), 0xf_ffff));
                }
            }
            let dir = if view.inode(ino).kind() == Kind::Dir {
                // One `/` per level: names hold none.
                let depth = path.iter().filter(|&&c| c == b'/').count();
                if depth > MAX_DEPTH {
                    return Err(limit(
                        &path,
                        "directory depth",
                        depth as u64,
                        MAX_DEPTH as u64,
                    ));
                }
                if dirs.len() >= MAX_DIRS {
                    return Err(limit(
                        &path,
                        "directory count",
                        dirs.len() as u64 + 1,
                        MAX_DIRS as u64,
                    ));
                }
                dirs.push(Dir {
                    ino,
                    parent: i,
                    path,
                    children: Vec::new(),
                });
                Some(dirs.len() - 1)
            } else {
                None
            };
            children.push(Child { name, ino, dir });
        }
        dirs[i].children = children;
        i += 1;
    }
    Ok(dirs)
}

/// Resolves a boot image path to a regular file.
fn boot_file<'a>(view: &View<'a>, path: &[u8]) -> Result<(InodeId, &'a FileData)> {
    let shown = rootforge_common::display_path(path);
    let id = view
        .lookup(path)
        .ok_or_else(|| Error::tree(&shown, "boot image does not exist"))?;
    let inode = view.inode(id);
    match &inode.content {
        Content::File(d) => Ok((id, d)),
        _ => Err(Error::tree(
            shown,
            format!(
                "boot image is a {}, not a regular file",
                inode.kind().name()
            ),
        )),
    }
}

/// Checks the boot images the options name: they exist and are regular
/// files; a BIOS image holds a boot info table and fits one extent.
/// Returns their inodes.
fn boot_files(enc: &IsoEncoder, view: &View<'_>) -> Result<(Option<InodeId>, Option<InodeId>)> {
    let bios = match &enc.boot_bios {
        Some(p) => {
            let (id, d) = boot_file(view, p)?;
            if d.size() < BOOT_IMAGE_MIN {
                return Err(Error::tree(
                    rootforge_common::display_path(p),
                    "a BIOS boot image needs at least 64 bytes for its boot info table",
                ));
            }
            if d.size() > MAX_EXTENT {
                return Err(limit(p, "BIOS boot image size", d.size(), MAX_EXTENT));
            }
            Some(id)
        }
        None => None,
    };
    let efi = match &enc.boot_efi {
        Some(p) => Some(boot_file(view, p)?.0),
        None => None,
    };
    Ok((bios, efi))
}

/// Plans the image of `view`: every check on the tree and the options,
/// the records of both namespaces and the block of every extent.
pub(crate) fn plan<'a>(enc: &IsoEncoder, view: View<'a>) -> Result<Plan<'a>> {
    let dirs = walk(&view)?;
    let (bios, efi_file) = boot_files(enc, &view)?;

    // Serials and link counts by inode; file slots in walk order.
    let mut serial: HashMap<InodeId, u32> = HashMap::new();
    let mut nlink: HashMap<InodeId, u32> = HashMap::new();
    let mut files: Vec<(InodeId, &'a FileData)> = Vec::new();
    serial.insert(view.root(), 1);
    for d in &dirs {
        let subdirs = d.children.iter().filter(|c| c.dir.is_some()).count();
        nlink.insert(d.ino, u32::try_from(subdirs + 2).unwrap_or(u32::MAX));
        for c in &d.children {
            let next = u32::try_from(serial.len() + 1).unwrap_or(u32::MAX);
            serial.entry(c.ino).or_insert(next);
            if c.dir.is_none() {
                let n = nlink.entry(c.ino).or_insert(0);
                *n = n.saturating_add(1);
                if n == &1
                    && let Content::File(data) = &view.inode(c.ino).content
                    && data.size() > 0
                {
                    files.push((c.ino, data));
                }
            }
        }
    }

    let efi_built = match (&enc.efi_tree, efi_file) {
        (Some(tree), None) => Some(crate::fat::image(&tree.view(), enc.created)?),
        _ => None,
    };

    // Data: compressed in parallel where asked (never the boot images,
    // which firmware reads raw).
    let mut slots: Vec<Slot<'a>> = files
        .par_iter()
        .map(|&(ino, data)| -> Result<Slot<'a>> {
            let boot = Some(ino) == bios || Some(ino) == efi_file;
            let stored = if Some(ino) == bios {
                Stored::BootInfo(data)
            } else if enc.zisofs && !boot && data.size() < u64::from(u32::MAX) {
                let bytes = data
                    .to_vec()
                    .map_err(|e| Error::io("reading a file for zisofs", e))?;
                match zisofs::compress(&bytes) {
                    Some(z) => Stored::Zisofs(z),
                    None => Stored::Plain(data),
                }
            } else {
                Stored::Plain(data)
            };
            let size = match &stored {
                Stored::Zisofs(z) | Stored::Efi(z) => z.len() as u64,
                _ => data.size(),
            };
            Ok(Slot {
                stored,
                size,
                lba: 0,
            })
        })
        .collect::<Result<_>>()?;
    let slot_of: HashMap<InodeId, usize> = files
        .iter()
        .enumerate()
        .map(|(i, &(ino, _))| (ino, i))
        .collect();

    let boot = if bios.is_some() || efi_file.is_some() || efi_built.is_some() {
        let efi = match efi_built {
            Some(img) => {
                slots.push(Slot {
                    size: img.len() as u64,
                    stored: Stored::Efi(img),
                    lba: 0,
                });
                Some(slots.len() - 1)
            }
            None => efi_file.and_then(|i| slot_of.get(&i).copied()),
        };
        let bios = bios.and_then(|i| slot_of.get(&i).copied());
        if let (Some(p), None) = (&enc.boot_efi, efi) {
            return Err(Error::tree(
                rootforge_common::display_path(p),
                "the EFI boot image is empty",
            ));
        }
        Some(Boot {
            bios,
            efi,
            catalog: 0,
        })
    } else {
        None
    };

    let warnings = warnings(&view, &dirs);

    let ctx = Ctx {
        view: &view,
        dirs: &dirs,
        serial: &serial,
        nlink: &nlink,
        slot_of: &slot_of,
        slots: &slots,
    };
    let mut areas = Areas::default();
    let primary = namespace(&ctx, false, Some(&mut areas))?;
    let joliet = if enc.joliet {
        Some(namespace(&ctx, true, None)?)
    } else {
        None
    };

    let mut p = Plan {
        slots,
        primary,
        joliet,
        areas,
        ce_lba: 0,
        empty_lba: 0,
        boot,
        total: 0,
        gpt_backup: None,
        warnings,
    };
    layout(&mut p, enc)?;
    Ok(p)
}

/// What the image cannot hold and drops or changes, said once each.
fn warnings(view: &View<'_>, dirs: &[Dir<'_>]) -> Vec<String> {
    // libisofs (xorriso) refuses to load an image with a longer target;
    // Linux reads up to 4095 bytes.
    const LIBISOFS_SYMLINK_MAX: usize = 1023;
    let (mut xattrs, mut clamped, mut long_links) = (0u64, 0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    for d in dirs {
        for ino in std::iter::once(d.ino).chain(d.children.iter().map(|c| c.ino)) {
            if seen.insert(ino) {
                let inode = view.inode(ino);
                xattrs += u64::from(!inode.xattrs.is_empty());
                clamped += u64::from(!time::fits_short(inode.meta.mtime));
                if let rootforge_common::Content::Symlink(target) = &inode.content {
                    long_links += u64::from(target.len() > LIBISOFS_SYMLINK_MAX);
                }
            }
        }
    }
    let mut out = Vec::new();
    if xattrs > 0 {
        out.push(format!(
            "iso9660: dropped the extended attributes of {xattrs} inodes \
             (Rock Ridge as Linux reads it has no xattrs)"
        ));
    }
    if long_links > 0 {
        out.push(format!(
            "iso9660: {long_links} symlink targets are longer than \
             {LIBISOFS_SYMLINK_MAX} bytes: Linux reads them, xorriso and \
             libisofs refuse to load the image"
        ));
    }
    if clamped > 0 {
        out.push(format!(
            "iso9660: clamped {clamped} modification times to 1900..2155"
        ));
    }
    out
}

struct Ctx<'c, 'a> {
    view: &'c View<'a>,
    dirs: &'c [Dir<'a>],
    serial: &'c HashMap<InodeId, u32>,
    nlink: &'c HashMap<InodeId, u32>,
    slot_of: &'c HashMap<InodeId, usize>,
    slots: &'c [Slot<'a>],
}

impl Ctx<'_, '_> {
    /// Rock Ridge entries describing inode `ino` (no name).
    fn rr(&self, ino: InodeId, slot: Option<usize>) -> Vec<Vec<u8>> {
        let inode = self.view.inode(ino);
        let m = inode.meta;
        // Modification, access and attribute-change times are all the
        // mtime, as xorriso writes them under `SOURCE_DATE_EPOCH`.
        let t = time::short(m.mtime);
        let stamps = [t, t, t].concat();
        let mut e = vec![
            Px {
                file_mode: inode.mode(),
                file_links: self.nlink.get(&ino).copied().unwrap_or(1),
                file_user_id: m.uid,
                file_group_id: m.gid,
                file_serial_number: Some(self.serial.get(&ino).copied().unwrap_or(0)),
            }
            .encode(),
            Tf {
                flags: TF_MODIFY | TF_ACCESS | TF_ATTRIBUTES,
                time_stamps: &stamps,
            }
            .encode(),
        ];
        if let Some((major, minor)) = inode.rdev() {
            e.push(Pn::from_device(major, minor).encode());
        }
        // Compressed only below 4 GiB.
        if let (Some(s), Content::File(data)) = (slot, &inode.content)
            && let Stored::Zisofs(_) = self.slots[s].stored
            && let Ok(uncompressed_size) = u32::try_from(data.size())
        {
            e.push(
                Zf {
                    algorithm: Zf::ZISOFS,
                    header_size_div_4: zisofs::HEADER_DIV_4,
                    log2_of_block_size: zisofs::SHIFT,
                    uncompressed_size,
                }
                .encode(),
            );
        }
        e
    }
}

/// Builds one namespace's directories; `areas` is given for the primary
/// tree, which carries Rock Ridge.
fn namespace(ctx: &Ctx<'_, '_>, joliet: bool, areas: Option<&mut Areas>) -> Result<Namespace> {
    let dirs = ctx.dirs;
    // Per directory: the included children sorted by identifier.
    let sorted: Vec<Vec<(Vec<u8>, usize)>> = dirs
        .par_iter()
        .map(|d| {
            let keep: Vec<usize> = (0..d.children.len())
                .filter(|&i| {
                    !joliet
                        || matches!(
                            ctx.view.inode(d.children[i].ino).kind(),
                            Kind::Dir | Kind::File
                        )
                })
                .collect();
            let entries: Vec<(&[u8], bool)> = keep
                .iter()
                .map(|&i| (d.children[i].name, d.children[i].dir.is_some()))
                .collect();
            let idents = if joliet {
                joliet_names(&entries)
            } else {
                iso_names(&entries)
            };
            let mut v: Vec<(Vec<u8>, usize)> = idents.into_iter().zip(keep).collect();
            if joliet {
                v.sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                v.sort_by(|a, b| iso_cmp(&a.0, &b.0));
            }
            v
        })
        .collect();

    let mut ns = Namespace {
        number: vec![0; dirs.len()],
        parent: dirs.iter().map(|d| d.parent).collect(),
        ident: vec![vec![0]; dirs.len()],
        ..Namespace::default()
    };
    ns.order.push(0);
    let mut i = 0;
    while i < ns.order.len() {
        let d = ns.order[i];
        ns.number[d] = u16::try_from(i + 1).unwrap_or(u16::MAX);
        for (ident, c) in &sorted[d] {
            if let Some(sub) = dirs[d].children[*c].dir {
                ns.ident[sub] = ident.clone();
                ns.order.push(sub);
            }
        }
        i += 1;
    }
    let pt: u64 = ns
        .order
        .iter()
        .map(|&d| {
            let n = ns.ident[d].len() as u64;
            8 + n + n % 2
        })
        .sum();
    ns.pt_size = pt;

    // Records, with system use entries computed in parallel and placed in
    // continuation areas in order.
    let rr = areas.is_some();
    let pending: Vec<Vec<(Rec, Vec<Vec<u8>>)>> = dirs
        .par_iter()
        .enumerate()
        .map(|(di, d)| records(ctx, di, d, &sorted[di], rr))
        .collect();
    match areas {
        Some(areas) => {
            for recs in pending {
                let mut out = Vec::with_capacity(recs.len());
                for (mut rec, entries) in recs {
                    let base = rec.len();
                    let (inline, ce) = areas.place(base, entries);
                    rec.su = inline;
                    rec.ce = ce;
                    out.push(rec);
                }
                ns.records.push(out);
            }
        }
        None => {
            ns.records = pending
                .into_iter()
                .map(|r| r.into_iter().map(|(rec, _)| rec).collect())
                .collect();
        }
    }
    ns.size = ns
        .records
        .iter()
        .enumerate()
        .map(|(d, r)| {
            let size = dir_size(r);
            u32::try_from(size).map_err(|_| {
                let path = if dirs[d].path.is_empty() {
                    &b"/"[..]
                } else {
                    &dirs[d].path
                };
                limit(path, "directory size in bytes", size, u64::from(u32::MAX))
            })
        })
        .collect::<Result<_>>()?;
    ns.lba = vec![0; dirs.len()];
    Ok(ns)
}

/// Bytes of a directory extent: records never straddle a block.
pub(crate) fn dir_size(recs: &[Rec]) -> u64 {
    let mut pos = 0u64;
    for r in recs {
        let len = r.len() as u64;
        if pos % BLOCK + len > BLOCK {
            pos = pos.div_ceil(BLOCK) * BLOCK;
        }
        pos += len;
    }
    blocks(pos).max(1) * BLOCK
}

/// The records of directory `di` with their system use entries (not yet
/// placed).
fn records(
    ctx: &Ctx<'_, '_>,
    di: usize,
    d: &Dir<'_>,
    sorted: &[(Vec<u8>, usize)],
    rr: bool,
) -> Vec<(Rec, Vec<Vec<u8>>)> {
    let view = ctx.view;
    let mut out = Vec::with_capacity(sorted.len() + 2);
    for (ident, dir) in [(vec![0u8], di), (vec![1u8], d.parent)] {
        let ino = ctx.dirs[dir].ino;
        let mut su = Vec::new();
        if rr {
            let root_dot = di == 0 && ident == [0];
            if root_dot {
                let sp = Sp {
                    check_bytes: [0xBE, 0xEF],
                    len_skp: 0,
                };
                su.push(sp.encode());
            }
            su.extend(ctx.rr(ino, None));
            if root_dot {
                su.push(Er::RRIP_1991A.encode());
            }
        }
        out.push((
            Rec {
                ident,
                flags: FLAG_DIRECTORY,
                target: Target::Dir(dir),
                mtime: view.inode(ino).meta.mtime,
                su: Vec::new(),
                ce: None,
            },
            su,
        ));
    }
    for (ident, c) in sorted {
        let child = &d.children[*c];
        let inode = view.inode(child.ino);
        let slot = ctx.slot_of.get(&child.ino).copied();
        let mut su = Vec::new();
        if rr {
            su = ctx.rr(child.ino, slot);
            su.extend(Nm::for_name(child.name).iter().map(Nm::encode));
            if let Content::Symlink(t) = &inode.content {
                su.extend(Sl::for_target(t).iter().map(Sl::encode));
            }
        }
        let mtime = inode.meta.mtime;
        match (child.dir, slot) {
            (Some(sub), _) => out.push((
                Rec {
                    ident: ident.clone(),
                    flags: FLAG_DIRECTORY,
                    target: Target::Dir(sub),
                    mtime,
                    su: Vec::new(),
                    ce: None,
                },
                su,
            )),
            (None, Some(s)) => {
                let parts = ctx.slots[s].parts();
                for part in 0..parts {
                    out.push((
                        Rec {
                            ident: ident.clone(),
                            flags: if part + 1 < parts {
                                FLAG_MULTI_EXTENT
                            } else {
                                0
                            },
                            target: Target::File { slot: s, part },
                            mtime,
                            su: Vec::new(),
                            ce: None,
                        },
                        su.clone(),
                    ));
                }
            }
            (None, None) => out.push((
                Rec {
                    ident: ident.clone(),
                    flags: 0,
                    target: Target::Empty,
                    mtime,
                    su: Vec::new(),
                    ce: None,
                },
                su,
            )),
        }
    }
    out
}

/// Assigns every block.
fn layout(p: &mut Plan<'_>, enc: &IsoEncoder) -> Result<()> {
    let mut lba: u64 = 16;
    lba += 1; // PVD
    if p.boot.is_some() {
        lba += 1;
    }
    if p.joliet.is_some() {
        lba += 1;
    }
    lba += 1; // terminator
    let block = |lba: u64| u32::try_from(lba).map_err(|_| overflow());
    let tables = |ns: &mut Namespace, lba: &mut u64| -> Result<()> {
        let n = blocks(ns.pt_size);
        ns.pt_l = block(*lba)?;
        ns.pt_m = block(*lba + n)?;
        *lba += 2 * n;
        Ok(())
    };
    tables(&mut p.primary, &mut lba)?;
    if let Some(j) = &mut p.joliet {
        tables(j, &mut lba)?;
    }
    let dirs = |ns: &mut Namespace, lba: &mut u64| -> Result<()> {
        for &d in &ns.order {
            ns.lba[d] = block(*lba)?;
            *lba += u64::from(ns.size[d]) / BLOCK;
        }
        Ok(())
    };
    dirs(&mut p.primary, &mut lba)?;
    p.ce_lba = block(lba)?;
    lba += u64::from(p.areas.blocks());
    if let Some(j) = &mut p.joliet {
        dirs(j, &mut lba)?;
    }
    if let Some(b) = &mut p.boot {
        b.catalog = block(lba)?;
        lba += 1;
    }
    p.empty_lba = block(lba)?;
    lba += 1;
    // Files in walk order, the EFI image last: the GPT can then name the
    // ISO and the EFI system partition without overlap (UEFI ignores
    // overlapping partitions).
    let efi = p.boot.as_ref().and_then(|b| b.efi);
    let n = p.slots.len();
    for i in (0..n).filter(|&i| Some(i) != efi).chain(efi) {
        let s = &mut p.slots[i];
        s.lba = block(lba)?;
        lba = lba.checked_add(blocks(s.size)).ok_or_else(overflow)?;
    }
    if enc.hybrid_mbr.is_some() && p.boot.as_ref().is_some_and(|b| b.efi.is_some()) {
        p.gpt_backup = Some(block(lba)?);
        lba += u64::from(GPT_BACKUP_BLOCKS);
    }
    p.total = u32::try_from(lba)
        .map_err(|_| limit(b"/", "image size in 2 KiB blocks", lba, u64::from(u32::MAX)))?;
    Ok(())
}
