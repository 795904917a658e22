//! The image writer: nodes in mkfs.jffs2's order (each directory's entries
//! by name, each with its inode and xattr nodes, then its subdirectories),
//! packed into erase blocks that no node crosses.

use std::collections::HashMap;

use rayon::prelude::*;
use rootforge_common::{
    Content, Encoder, Error, ImagePlan, InodeId, Kind, Report, Result, Sink, View, display_path,
};

use crate::comp::{Codec, Compr};
use crate::records::{
    COMPR_NONE, Dirent, Endian, INODE_LEN, MAX_NAME_LEN, MAX_SYMLINK_LEN, MIN_DATA_LEN, RawInode,
    UNKNOWN_NODE_LEN, XPREFIX_ACL_ACCESS, XPREFIX_ACL_DEFAULT, XPREFIXES, cleanmarker, dtype,
    xattr_node, xref_node,
};

const FORMAT: &str = "jffs2";
/// The data of one node: a memory page of the target, mkfs.jffs2's default.
pub const PAGE_SIZE: usize = 4096;

/// How the image ends (`--pad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pad {
    /// Right after the last node.
    #[default]
    None,
    /// At the end of the last erase block (`--pad` without a size).
    Block,
    /// Filled with erased flash to this size (`--pad=SIZE`).
    To(u64),
}

/// mkfs.jffs2's image of a tree.
#[derive(Debug, Clone)]
pub struct Jffs2Encoder {
    /// `-e`: the erase block size, which no node crosses.
    pub erase_block: u32,
    /// `-l` / `-b`.
    pub endian: Endian,
    /// `-n`: leave out the cleanmarkers (NAND, which keeps them in OOB).
    pub cleanmarkers: bool,
    /// `-p`.
    pub pad: Pad,
    /// The compressors enabled.
    pub compr: Compr,
    /// `--with-xattr`: write xattr and xref nodes.
    pub xattrs: bool,
    /// sumtool's summary node at the end of every erase block, which lets
    /// the kernel mount without reading every node.
    pub summary: bool,
}

impl Default for Jffs2Encoder {
    fn default() -> Self {
        Jffs2Encoder {
            erase_block: 64 << 10,
            endian: Endian::Little,
            cleanmarkers: true,
            pad: Pad::None,
            compr: Compr::Zlib,
            xattrs: true,
            summary: false,
        }
    }
}

/// One step of the walk: a name (none for the root), and the inode's nodes
/// when this is its first name.
struct Item<'v> {
    dirent: Option<Dirent<'v>>,
    inode: Option<Planned>,
}

/// An inode met for the first time, numbered.
struct Planned {
    id: InodeId,
    ino: u32,
    path: String,
    /// Its xattrs.
    xattrs: Vec<XattrRef>,
    /// The first xref sequence number of its xattrs.
    xseqno: u32,
}

/// An inode's xattr: the datum `xid` (written first when `new`), holding
/// `name` (without its prefix) and `value` in name space `prefix`.
struct XattrRef {
    xid: u32,
    new: bool,
    prefix: u8,
    name: Vec<u8>,
    value: Vec<u8>,
}

/// The nodes of one item, in order.
enum Piece {
    /// A node written as it is.
    Node(Vec<u8>),
    /// A page of file data: the inode node's fields (without version,
    /// offset and size), the page raw, and compressed (`compr`, `data`).
    Data {
        ri: RawInode,
        offset: u32,
        raw: Vec<u8>,
        compr: u8,
        data: Vec<u8>,
    },
}

impl Encoder for Jffs2Encoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        let eb = usize::try_from(self.erase_block).unwrap_or(usize::MAX);
        let min_eb = PAGE_SIZE + INODE_LEN + UNKNOWN_NODE_LEN;
        if eb < min_eb || eb % 4 != 0 || eb > 1 << 30 {
            return Err(Error::Unsupported {
                path: "/".into(),
                format: FORMAT,
                what: format!(
                    "an erase block of {eb} bytes (a multiple of 4 from {min_eb} to 1 GiB)"
                ),
            });
        }
        let mut warnings = Vec::new();
        let items = self.walk(&view, &mut warnings)?;
        let pieces: Vec<Vec<Piece>> = items
            .par_iter()
            .map_init(
                || Codec::new(self.compr),
                |codec, item| self.pieces(&view, item, codec),
            )
            .collect::<Result<_>>()?;
        let image = self.lay_out(pieces)?;
        Ok(Box::new(Jffs2Plan { image, warnings }))
    }
}

fn limit(path: &str, what: &'static str, value: u64, limit: u64) -> Error {
    Error::Limit {
        path: path.to_owned(),
        format: FORMAT,
        what,
        value,
        limit,
    }
}

fn time32(path: &str, sec: i64) -> Result<u32> {
    u32::try_from(sec).map_err(|_| Error::Unsupported {
        path: path.to_owned(),
        format: FORMAT,
        what: format!("the time {sec} (JFFS2 times are 0 to 2^32-1 seconds)"),
    })
}

fn count(path: &str, what: &'static str, n: &mut u32, step: u32) -> Result<u32> {
    *n = n
        .checked_add(step)
        .ok_or_else(|| limit(path, what, u64::from(u32::MAX) + 1, u32::MAX.into()))?;
    Ok(*n)
}

/// A POSIX ACL xattr value (`system.posix_acl_*`, little endian, version 2)
/// in JFFS2's own form: a version word, then short entries for the owner,
/// group, mask and other, long ones (with an id) for named users and groups.
pub(crate) fn acl_to_jffs2(value: &[u8], e: Endian) -> Option<Vec<u8>> {
    let (head, mut rest) = value.split_at_checked(4)?;
    if u32::from_le_bytes(head.try_into().ok()?) != 2 || rest.len() % 8 != 0 {
        return None;
    }
    let mut w = rootforge_common::bytes::RecordWriter::with_capacity(value.len());
    e.w32(&mut w, 1);
    while let Some((ent, tail)) = rest.split_at_checked(8) {
        rest = tail;
        let tag = u16::from_le_bytes([ent[0], ent[1]]);
        let perm = u16::from_le_bytes([ent[2], ent[3]]);
        let id = u32::from_le_bytes([ent[4], ent[5], ent[6], ent[7]]);
        e.w16(&mut w, tag);
        e.w16(&mut w, perm);
        match tag {
            // ACL_USER, ACL_GROUP.
            0x02 | 0x08 => e.w32(&mut w, id),
            // ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER.
            0x01 | 0x04 | 0x10 | 0x20 => {}
            _ => return None,
        }
    }
    Some(w.into_bytes())
}

impl Jffs2Encoder {
    /// Numbers every inode in write order, checks every name and limit, and
    /// gives every distinct xattr its datum.
    fn walk<'v>(&self, view: &View<'v>, warnings: &mut Vec<String>) -> Result<Vec<Item<'v>>> {
        let mut inos: HashMap<InodeId, u32> = HashMap::new();
        let mut datums: HashMap<(u8, Vec<u8>, Vec<u8>), u32> = HashMap::new();
        let mut skipped: HashMap<String, u64> = HashMap::new();
        let mut xid = 0u32;
        let mut xseqno = 0u32;
        let mut version = 0u32;
        let mut next_ino = 1u32;
        let mut items = Vec::new();
        let mut planned = |id: InodeId, ino: u32, path: String| -> Result<Planned> {
            let inode = view.inode(id);
            let mut xattrs = Vec::new();
            let first = xseqno.saturating_add(2);
            if self.xattrs {
                for x in &inode.xattrs {
                    let Some(&(prefix, pname)) = XPREFIXES.iter().find(|(p, n)| match *p {
                        XPREFIX_ACL_ACCESS | XPREFIX_ACL_DEFAULT => *x.name == **n,
                        _ => x.name.starts_with(n),
                    }) else {
                        *skipped
                            .entry(String::from_utf8_lossy(&x.name).into_owned())
                            .or_default() += 1;
                        continue;
                    };
                    let name = x.name[pname.len()..].to_vec();
                    let value = match prefix {
                        XPREFIX_ACL_ACCESS | XPREFIX_ACL_DEFAULT => {
                            acl_to_jffs2(&x.value, self.endian).ok_or_else(|| {
                                Error::Unsupported {
                                    path: path.clone(),
                                    format: FORMAT,
                                    what: format!(
                                        "the malformed ACL {}",
                                        String::from_utf8_lossy(&x.name)
                                    ),
                                }
                            })?
                        }
                        _ => x.value.to_vec(),
                    };
                    if name.len() > 255 {
                        return Err(limit(&path, "xattr name length", name.len() as u64, 255));
                    }
                    if value.len() > usize::from(u16::MAX) {
                        return Err(limit(
                            &path,
                            "xattr value size",
                            value.len() as u64,
                            u16::MAX.into(),
                        ));
                    }
                    let key = (prefix, name, value);
                    let (id, new) = match datums.get(&key) {
                        Some(&id) => (id, false),
                        None => {
                            let id = count(&path, "xattr count", &mut xid, 1)?;
                            datums.insert(key.clone(), id);
                            (id, true)
                        }
                    };
                    count(&path, "xattr count", &mut xseqno, 2)?;
                    xattrs.push(XattrRef {
                        xid: id,
                        new,
                        prefix: key.0,
                        name: key.1,
                        value: key.2,
                    });
                }
            }
            Ok(Planned {
                id,
                ino,
                path,
                xattrs,
                xseqno: first,
            })
        };
        inos.insert(view.root(), 1);
        items.push(Item {
            dirent: None,
            inode: Some(planned(view.root(), 1, "/".into())?),
        });
        // Directories to populate, in mkfs.jffs2's order: each directory's
        // entries, then its subdirectories in turn.
        let mut stack = vec![(view.root(), 1u32, String::new())];
        while let Some((dir, pino, dpath)) = stack.pop() {
            let mctime = time32(&format!("{dpath}/"), view.inode(dir).meta.mtime.sec)?;
            let mut subdirs = Vec::new();
            for (name, child) in view.children(dir) {
                let path = format!("{dpath}{}", display_path(name));
                if name.len() > MAX_NAME_LEN {
                    return Err(limit(
                        &path,
                        "name length",
                        name.len() as u64,
                        MAX_NAME_LEN as u64,
                    ));
                }
                let version = count(&path, "node count", &mut version, 1)?;
                let kind = view.inode(child).kind();
                let (ino, new) = match inos.get(&child) {
                    Some(&ino) => (ino, false),
                    None => {
                        let ino = count(&path, "inode count", &mut next_ino, 1)?;
                        inos.insert(child, ino);
                        (ino, true)
                    }
                };
                let dirent = Dirent {
                    pino,
                    version,
                    ino,
                    mctime,
                    dtype: dtype(kind.mode_bits()),
                    name,
                };
                let inode = if new {
                    if kind == Kind::Dir {
                        subdirs.push((child, ino, path.clone()));
                    }
                    Some(planned(child, ino, path)?)
                } else {
                    None
                };
                items.push(Item {
                    dirent: Some(dirent),
                    inode,
                });
            }
            stack.extend(subdirs.into_iter().rev());
        }
        let mut skipped: Vec<_> = skipped.into_iter().collect();
        skipped.sort();
        for (name, n) in skipped {
            warnings.push(format!(
                "jffs2: xattr {name} dropped from {n} entries (JFFS2 stores user., security., trusted. and POSIX ACLs)"
            ));
        }
        Ok(items)
    }

    /// The nodes of one item, file pages compressed.
    fn pieces(&self, view: &View<'_>, item: &Item<'_>, codec: &mut Codec) -> Result<Vec<Piece>> {
        let e = self.endian;
        let mut out = Vec::new();
        if let Some(d) = &item.dirent {
            out.push(Piece::Node(d.encode(e)));
        }
        let Some(p) = &item.inode else {
            return Ok(out);
        };
        let inode = view.inode(p.id);
        let m = inode.meta;
        let path = &p.path;
        let uid = u16::try_from(m.uid).map_err(|_| limit(path, "uid", m.uid.into(), 65535))?;
        let gid = u16::try_from(m.gid).map_err(|_| limit(path, "gid", m.gid.into(), 65535))?;
        let t = time32(path, m.mtime.sec)?;
        let ri = RawInode {
            ino: p.ino,
            version: 1,
            mode: inode.mode(),
            uid,
            gid,
            atime: t,
            mtime: t,
            ctime: t,
            ..RawInode::default()
        };
        let whole = |data: &[u8], isize: u32| -> Vec<u8> {
            let n = data.len() as u32;
            RawInode {
                isize,
                dsize: n,
                compr: COMPR_NONE,
                ..ri
            }
            .encode(e, data)
        };
        match &inode.content {
            Content::Dir(_) | Content::Fifo | Content::Socket => {
                out.push(Piece::Node(ri.encode(e, &[])));
            }
            Content::Symlink(target) => {
                if target.len() > MAX_SYMLINK_LEN {
                    return Err(limit(
                        path,
                        "symlink target length",
                        target.len() as u64,
                        MAX_SYMLINK_LEN as u64,
                    ));
                }
                out.push(Piece::Node(whole(target, target.len() as u32)));
            }
            Content::CharDev { major, minor } | Content::BlockDev { major, minor } => {
                let (major, minor) = (*major, *minor);
                // The old 16-bit encoding when it holds the numbers, as
                // mkfs.jffs2 writes them; else the kernel's new_encode_dev.
                let dev = if major < 256 && minor < 256 {
                    e.bytes16(((major << 8) | minor) as u16).to_vec()
                } else if major < 4096 && minor < (1 << 20) {
                    e.bytes32((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12))
                        .to_vec()
                } else {
                    return Err(limit(path, "device major", major.into(), 4095));
                };
                out.push(Piece::Node(whole(&dev, 0)));
            }
            Content::File(data) => {
                let size = data.size();
                let isize = u32::try_from(size)
                    .ok()
                    .filter(|&s| s < u32::MAX)
                    .ok_or_else(|| limit(path, "file size", size, u64::from(u32::MAX) - 1))?;
                let ri = RawInode { isize, ..ri };
                if size == 0 {
                    out.push(Piece::Node(ri.encode(e, &[])));
                }
                let mut offset = 0u64;
                let mut buf = vec![0u8; PAGE_SIZE];
                while offset < size {
                    let n = (size - offset).min(PAGE_SIZE as u64) as usize;
                    data.read_at(offset, &mut buf[..n])
                        .map_err(|err| Error::io(format!("reading {path}"), err))?;
                    let raw = buf[..n].to_vec();
                    let (compr, cdata) = codec.compress(&raw);
                    out.push(Piece::Data {
                        ri,
                        offset: offset as u32,
                        raw,
                        compr,
                        data: cdata,
                    });
                    offset += n as u64;
                }
            }
        }
        for (i, x) in p.xattrs.iter().enumerate() {
            if x.new {
                out.push(Piece::Node(xattr_node(
                    e, x.xid, x.prefix, &x.name, &x.value,
                )));
            }
            let seq = p.xseqno.saturating_add(2 * i as u32);
            out.push(Piece::Node(xref_node(e, p.ino, x.xid, seq)));
        }
        Ok(out)
    }

    /// Places the nodes in erase blocks.
    fn lay_out(&self, items: Vec<Vec<Piece>>) -> Result<Vec<u8>> {
        let eb = self.erase_block as usize;
        let mut img = Out {
            buf: Vec::new(),
            eb,
            cleanmarker: self.cleanmarkers.then(|| cleanmarker(self.endian)),
            summary: self.summary.then_some(self.endian),
            entries: Vec::new(),
            sum_num: 0,
        };
        let mut codec = Codec::new(self.compr);
        for pieces in items {
            let mut version = 0u32;
            for piece in pieces {
                match piece {
                    Piece::Node(node) => {
                        let mut entry = Vec::new();
                        if img.summary.is_some() {
                            summary_entry(self.endian, &node, 0, &mut entry);
                        }
                        img.room_for(node.len(), entry.len());
                        img.put(&node);
                    }
                    Piece::Data {
                        ri,
                        offset,
                        raw,
                        compr,
                        data,
                    } => {
                        let mut next = Some((offset, raw, compr, data));
                        while let Some((offset, raw, compr, data)) = next.take() {
                            img.room_for(INODE_LEN + MIN_DATA_LEN.min(data.len()), SUM_INODE_LEN);
                            let room = img.room() - INODE_LEN;
                            version += 1;
                            let mut node = RawInode {
                                version,
                                offset,
                                dsize: raw.len() as u32,
                                compr,
                                ..ri
                            };
                            if data.len() <= room {
                                img.put(&node.encode(self.endian, &data));
                                continue;
                            }
                            // Fill the block's end with a prefix of the page,
                            // as mkfs.jffs2 does; the rest starts the next.
                            let mut d = (raw.len() * room / data.len()).clamp(1, raw.len() - 1);
                            let mut fit = None;
                            for _ in 0..2 {
                                let (c, cd) = codec.compress(&raw[..d]);
                                if cd.len() <= room {
                                    fit = Some((c, cd));
                                    break;
                                }
                                d = (d * 3 / 4).max(1);
                            }
                            let (c, cd) = fit.unwrap_or_else(|| {
                                d = room.min(raw.len() - 1);
                                (COMPR_NONE, raw[..d].to_vec())
                            });
                            node.dsize = d as u32;
                            node.compr = c;
                            img.put(&node.encode(self.endian, &cd));
                            let rest = raw[d..].to_vec();
                            let (c, cd) = codec.compress(&rest);
                            next = Some((offset + d as u32, rest, c, cd));
                        }
                    }
                }
            }
        }
        // A block's summary ends it: the last block is whole.
        if self.summary {
            img.pad_block();
        }
        match self.pad {
            Pad::None => {}
            Pad::Block => img.pad_block(),
            Pad::To(size) => {
                let len = img.buf.len() as u64;
                if len > size {
                    return Err(limit("/", "image size", len, size));
                }
                if img.cleanmarker.is_some() {
                    img.pad_block();
                    while (img.buf.len() as u64) < size {
                        img.room_for(0, 0);
                        img.pad_block();
                    }
                } else {
                    img.buf.resize(size as usize, 0xff);
                }
            }
        }
        let len = img.buf.len() as u64;
        if len > u64::from(u32::MAX) + 1 {
            return Err(limit("/", "image size", len, u64::from(u32::MAX) + 1));
        }
        Ok(img.buf)
    }
}

/// The image being laid out.
struct Out {
    buf: Vec<u8>,
    eb: usize,
    cleanmarker: Option<Vec<u8>>,
    /// Summary nodes (sumtool's), in this byte order: the entries of the
    /// current erase block's nodes.
    summary: Option<Endian>,
    entries: Vec<u8>,
    sum_num: u32,
}

/// `sizeof(struct jffs2_raw_summary)` and `sizeof(struct jffs2_sum_marker)`.
const SUMMARY_LEN: usize = 32;
const SUM_MARKER_LEN: usize = 8;
/// `JFFS2_SUMMARY_INODE_SIZE`: the largest entry but a dirent's.
const SUM_INODE_LEN: usize = 18;

impl Out {
    /// Bytes a summary of the block's entries and `extra` more needs.
    fn reserve(&self, extra: usize) -> usize {
        match self.summary {
            // Rounded up, so that a node that fits leaves the summary a
            // 4-byte aligned start.
            Some(_) => {
                (SUMMARY_LEN + self.entries.len() + extra + SUM_MARKER_LEN).next_multiple_of(4)
            }
            None => 0,
        }
    }

    /// Room for a data node (header and data) in this block.
    fn room(&self) -> usize {
        self.eb - self.buf.len() % self.eb - self.reserve(SUM_INODE_LEN)
    }

    /// mkfs.jffs2's `pad_block_if_less_than`: a cleanmarker at a block's
    /// start, and a fresh block when `need` bytes (and their summary entry
    /// of `entry` bytes) do not fit.
    fn room_for(&mut self, need: usize, entry: usize) {
        self.mark();
        if self.buf.len() % self.eb + need.next_multiple_of(4) + self.reserve(entry) > self.eb {
            self.pad_block();
        }
        self.mark();
    }

    fn mark(&mut self) {
        if let Some(cm) = &self.cleanmarker
            && self.buf.len() % self.eb == 0
        {
            self.buf.extend_from_slice(cm);
        }
    }

    /// A node, and erased flash to the next 4-byte boundary.
    fn put(&mut self, node: &[u8]) {
        if let Some(e) = self.summary {
            let at = (self.buf.len() % self.eb) as u32;
            if summary_entry(e, node, at, &mut self.entries) {
                self.sum_num += 1;
            }
        }
        self.buf.extend_from_slice(node);
        let pad = self.buf.len().next_multiple_of(4);
        self.buf.resize(pad, 0xff);
    }

    /// Ends the block: its summary, or erased flash.
    fn pad_block(&mut self) {
        let end = self.buf.len().next_multiple_of(self.eb);
        if let Some(e) = self.summary
            && self.sum_num > 0
        {
            let at = self.buf.len() % self.eb;
            let totlen = end - self.buf.len();
            let mut w = rootforge_common::bytes::RecordWriter::with_capacity(SUMMARY_LEN);
            w.bytes(&crate::records::header(
                e,
                crate::records::NODETYPE_SUMMARY,
                totlen as u32,
            ));
            e.w32(&mut w, self.sum_num);
            e.w32(
                &mut w,
                if self.cleanmarker.is_some() {
                    UNKNOWN_NODE_LEN as u32
                } else {
                    0
                },
            );
            // The bytes of padding nodes: none.
            e.w32(&mut w, 0);
            let head = w.into_bytes();
            let mut data = std::mem::take(&mut self.entries);
            data.resize(totlen - SUMMARY_LEN - SUM_MARKER_LEN, 0xff);
            data.extend_from_slice(&e.bytes32(at as u32));
            data.extend_from_slice(&e.bytes32(crate::records::SUM_MAGIC));
            self.buf.extend_from_slice(&head);
            self.buf
                .extend_from_slice(&e.bytes32(crate::records::crc(&data)));
            self.buf
                .extend_from_slice(&e.bytes32(crate::records::crc(&head)));
            self.buf.extend_from_slice(&data);
            self.sum_num = 0;
        }
        self.buf.resize(end, 0xff);
    }
}

/// The summary entry of `node` at `at` in its block (`jffs2_sum_*_flash`),
/// appended to `out`; whether the node has one.
fn summary_entry(e: Endian, node: &[u8], at: u32, out: &mut Vec<u8>) -> bool {
    let f16 = |i: usize| e.r16([node[i], node[i + 1]]);
    let f32 = |i: usize| e.r32([node[i], node[i + 1], node[i + 2], node[i + 3]]);
    let mut w = rootforge_common::bytes::RecordWriter::with_capacity(32);
    let nodetype = f16(2);
    e.w16(&mut w, nodetype);
    match nodetype {
        crate::records::NODETYPE_INODE => {
            for v in [f32(12), f32(16), at, f32(4)] {
                e.w32(&mut w, v);
            }
        }
        crate::records::NODETYPE_DIRENT => {
            for v in [f32(4), at, f32(12), f32(16), f32(20)] {
                e.w32(&mut w, v);
            }
            let nsize = usize::from(node[28]);
            w.u8(node[28]).u8(node[29]).bytes(&node[40..40 + nsize]);
        }
        crate::records::NODETYPE_XATTR => {
            for v in [f32(12), f32(16), at, f32(4)] {
                e.w32(&mut w, v);
            }
        }
        crate::records::NODETYPE_XREF => e.w32(&mut w, at),
        _ => return false,
    }
    out.extend_from_slice(&w.into_bytes());
    true
}

/// A planned image: its bytes.
struct Jffs2Plan {
    image: Vec<u8>,
    warnings: Vec<String>,
}

impl ImagePlan for Jffs2Plan {
    fn size(&self) -> Option<u64> {
        Some(self.image.len() as u64)
    }

    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        out.write_all(&self.image)
            .map_err(|e| Error::io("writing the jffs2 image", e))?;
        Ok(Report {
            bytes: self.image.len() as u64,
            warnings: self.warnings,
        })
    }
}
