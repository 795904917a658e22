//! The reader: scans every node as the kernel's mount does
//! (`fs/jffs2/scan.c`), keeps the highest version of each inode's metadata
//! and each directory entry, and lays each file's data nodes over each
//! other in version order (`readinode.c`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rootforge_common::{
    Backing, Content, Edit, Error, Extent, FileData, Inode, Kind, Meta, Replace, Result, Time,
    Tree, TreeBuilder,
};

use crate::comp::decompress;
use crate::records::{
    COMPR_ZERO, DIRENT_LEN, Endian, INODE_LEN, MAGIC, NODE_ACCURATE, NODETYPE_CLEANMARKER,
    NODETYPE_DIRENT, NODETYPE_INODE, NODETYPE_PADDING, NODETYPE_SUMMARY, NODETYPE_XATTR,
    NODETYPE_XREF, UNKNOWN_NODE_LEN, XATTR_LEN, XPREFIX_ACL_ACCESS, XPREFIX_ACL_DEFAULT, XPREFIXES,
    XREF_DELETE_MARKER, XREF_LEN, crc,
};

const FORMAT: &str = "jffs2";
/// The largest data node the reader takes: 16 pages of 64 KiB.
const MAX_DSIZE: u32 = 1 << 20;
/// `JFFS2_FEATURE_INCOMPAT`: a node type a reader that does not know it
/// must refuse the file system for.
const FEATURE_INCOMPAT_MASK: u16 = 0xc000;

fn malformed(offset: usize, reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, offset as u64, reason)
}

/// Whether `head` starts with a JFFS2 node (of either byte order) whose
/// header CRC holds.
pub fn is_jffs2(head: &[u8]) -> bool {
    let Some(h) = head.get(..UNKNOWN_NODE_LEN) else {
        return false;
    };
    [Endian::Little, Endian::Big]
        .into_iter()
        .any(|e| header_at(h, 0, e).is_some())
}

/// The common header at `pos`: (node type, total length), if the magic and
/// the header CRC hold.
fn header_at(buf: &[u8], pos: usize, e: Endian) -> Option<(u16, u32)> {
    let h = buf.get(pos..pos.checked_add(UNKNOWN_NODE_LEN)?)?;
    if e.r16([h[0], h[1]]) != MAGIC {
        return None;
    }
    let nodetype = e.r16([h[2], h[3]]);
    let totlen = e.r32([h[4], h[5], h[6], h[7]]);
    // The kernel checks the CRC as if the node were not obsoleted.
    let mut check = h[..8].to_vec();
    check[2..4].copy_from_slice(&e.bytes16(nodetype | NODE_ACCURATE));
    (crc(&check) == e.r32([h[8], h[9], h[10], h[11]])).then_some((nodetype, totlen))
}

/// An inode node, its data left in the image.
#[derive(Debug, Clone)]
struct InodeNode {
    offset_in_image: usize,
    version: u32,
    mode: u32,
    uid: u16,
    gid: u16,
    isize: u32,
    mtime: u32,
    offset: u32,
    dsize: u32,
    compr: u8,
    data: (usize, usize),
}

#[derive(Debug)]
struct DirentNode {
    version: u32,
    ino: u32,
    offset_in_image: usize,
}

/// The image's nodes, by what they describe.
#[derive(Debug, Default)]
struct Nodes {
    inodes: HashMap<u32, Vec<InodeNode>>,
    /// pino -> name -> the dirent of the highest version.
    dirents: HashMap<u32, BTreeMap<Vec<u8>, DirentNode>>,
    /// xid -> (version, prefix, name, value).
    xattrs: HashMap<u32, (u32, u8, Vec<u8>, Vec<u8>)>,
    /// (ino, xid) -> highest xseqno.
    xrefs: BTreeMap<(u32, u32), u32>,
    /// The image's byte order.
    endian: Endian,
}

struct Fields<'a> {
    b: &'a [u8],
    e: Endian,
}

impl Fields<'_> {
    fn u16(&self, at: usize) -> u16 {
        self.e.r16([self.b[at], self.b[at + 1]])
    }
    fn u32(&self, at: usize) -> u32 {
        self.e
            .r32([self.b[at], self.b[at + 1], self.b[at + 2], self.b[at + 3]])
    }
}

fn scan(buf: &[u8]) -> Result<Nodes> {
    let mut nodes = Nodes::default();
    let mut endian = None;
    let mut pos = 0usize;
    while pos
        .checked_add(UNKNOWN_NODE_LEN)
        .is_some_and(|end| end <= buf.len())
    {
        let found = match endian {
            Some(e) => header_at(buf, pos, e).map(|h| (e, h)),
            None => [Endian::Little, Endian::Big]
                .into_iter()
                .find_map(|e| header_at(buf, pos, e).map(|h| (e, h))),
        };
        let Some((e, (nodetype, totlen))) = found else {
            pos += 4;
            continue;
        };
        endian = Some(e);
        let totlen = totlen as usize;
        let end = pos
            .checked_add(totlen)
            .filter(|&end| end <= buf.len() && totlen >= UNKNOWN_NODE_LEN)
            .ok_or_else(|| malformed(pos, format!("node of {totlen} bytes runs past the image")))?;
        let node = &buf[pos..end];
        let next = pos
            .checked_add(totlen.next_multiple_of(4))
            .unwrap_or(buf.len());
        if nodetype & NODE_ACCURATE == 0 {
            pos = next;
            continue;
        }
        let f = Fields { b: node, e };
        match nodetype {
            NODETYPE_INODE => {
                if totlen < INODE_LEN {
                    return Err(malformed(pos, "inode node shorter than its header"));
                }
                if crc(&node[..60]) != f.u32(64) {
                    return Err(malformed(pos, "inode node CRC mismatch"));
                }
                let csize = f.u32(48) as usize;
                let data_end = INODE_LEN
                    .checked_add(csize)
                    .filter(|&d| d <= totlen)
                    .ok_or_else(|| malformed(pos, "inode node data past its length"))?;
                let data = &node[INODE_LEN..data_end];
                if crc(data) != f.u32(60) {
                    return Err(malformed(pos, "inode node data CRC mismatch"));
                }
                let dsize = f.u32(52);
                if dsize > MAX_DSIZE {
                    return Err(malformed(
                        pos,
                        format!("inode node of {dsize} data bytes (at most {MAX_DSIZE})"),
                    ));
                }
                let ino = f.u32(12);
                nodes.inodes.entry(ino).or_default().push(InodeNode {
                    offset_in_image: pos,
                    version: f.u32(16),
                    mode: f.u32(20),
                    uid: f.u16(24),
                    gid: f.u16(26),
                    isize: f.u32(28),
                    mtime: f.u32(36),
                    offset: f.u32(44),
                    dsize,
                    compr: node[56],
                    data: (pos + INODE_LEN, pos + data_end),
                });
            }
            NODETYPE_DIRENT => {
                if totlen < DIRENT_LEN {
                    return Err(malformed(pos, "dirent node shorter than its header"));
                }
                if crc(&node[..32]) != f.u32(32) {
                    return Err(malformed(pos, "dirent node CRC mismatch"));
                }
                let nsize = usize::from(node[28]);
                let name = node
                    .get(DIRENT_LEN..DIRENT_LEN + nsize)
                    .ok_or_else(|| malformed(pos, "dirent name past the node"))?;
                if crc(name) != f.u32(36) {
                    return Err(malformed(pos, "dirent name CRC mismatch"));
                }
                if name.is_empty()
                    || name == b"."
                    || name == b".."
                    || name.iter().any(|&b| b == b'/' || b == 0)
                {
                    return Err(malformed(pos, "dirent with an invalid name"));
                }
                let (pino, version, ino) = (f.u32(12), f.u32(16), f.u32(20));
                let dir = nodes.dirents.entry(pino).or_default();
                let newer = dir.get(name).is_none_or(|d| d.version < version);
                if newer {
                    dir.insert(
                        name.to_vec(),
                        DirentNode {
                            version,
                            ino,
                            offset_in_image: pos,
                        },
                    );
                }
            }
            NODETYPE_XATTR => {
                if totlen < XATTR_LEN {
                    return Err(malformed(pos, "xattr node shorter than its header"));
                }
                if crc(&node[..28]) != f.u32(28) {
                    return Err(malformed(pos, "xattr node CRC mismatch"));
                }
                let name_len = usize::from(node[21]);
                let value_len = usize::from(f.u16(22));
                let body = node
                    .get(XATTR_LEN..XATTR_LEN + name_len + 1 + value_len)
                    .ok_or_else(|| malformed(pos, "xattr data past the node"))?;
                if crc(body) != f.u32(24) {
                    return Err(malformed(pos, "xattr data CRC mismatch"));
                }
                let (xid, version) = (f.u32(12), f.u32(16));
                let newer = nodes.xattrs.get(&xid).is_none_or(|x| x.0 < version);
                if newer {
                    nodes.xattrs.insert(
                        xid,
                        (
                            version,
                            node[20],
                            body[..name_len].to_vec(),
                            body[name_len + 1..].to_vec(),
                        ),
                    );
                }
            }
            NODETYPE_XREF => {
                if totlen < XREF_LEN {
                    return Err(malformed(pos, "xref node shorter than its header"));
                }
                if crc(&node[..24]) != f.u32(24) {
                    return Err(malformed(pos, "xref node CRC mismatch"));
                }
                let key = (f.u32(12), f.u32(16));
                let seq = f.u32(20);
                let cur = nodes.xrefs.entry(key).or_insert(seq);
                *cur = (*cur).max(seq);
            }
            NODETYPE_CLEANMARKER | NODETYPE_PADDING | NODETYPE_SUMMARY => {}
            t if t & FEATURE_INCOMPAT_MASK == FEATURE_INCOMPAT_MASK => {
                return Err(malformed(pos, format!("unknown node type {t:#06x}")));
            }
            _ => {}
        }
        pos = next;
    }
    nodes.endian = endian.ok_or_else(|| malformed(0, "no JFFS2 node in the image"))?;
    Ok(nodes)
}

/// Reads a JFFS2 image (either byte order) into a tree.
pub fn read(image: Backing) -> Result<Tree> {
    let owned;
    let buf: &[u8] = match image.as_slice() {
        Some(b) => b,
        None => {
            let mut all = vec![
                0u8;
                usize::try_from(image.len())
                    .map_err(|_| malformed(0, "image too large"))?
            ];
            image
                .read_at(0, &mut all)
                .map_err(|e| Error::io("reading the jffs2 image", e))?;
            owned = all;
            &owned
        }
    };
    let nodes = scan(buf)?;
    build(buf, nodes)
}

/// The inode node of the highest version.
fn latest(nodes: &[InodeNode]) -> Option<&InodeNode> {
    nodes.iter().max_by_key(|n| n.version)
}

fn node_data(buf: &[u8], n: &InodeNode) -> Result<Vec<u8>> {
    let mut out = vec![0u8; n.dsize as usize];
    let src = &buf[n.data.0..n.data.1];
    decompress(n.compr, src, &mut out).map_err(|r| malformed(n.offset_in_image, r))?;
    Ok(out)
}

fn build(buf: &[u8], nodes: Nodes) -> Result<Tree> {
    let root_meta = match nodes.inodes.get(&1).and_then(|n| latest(n)) {
        Some(n) => {
            if Kind::from_mode(n.mode) != Some(Kind::Dir) {
                return Err(malformed(
                    n.offset_in_image,
                    "the root inode is not a directory",
                ));
            }
            meta(n)
        }
        // The kernel's default for a root with no inode node.
        None => Meta::new(0o755, 0, 0, Time::default()),
    };
    let mut tree = TreeBuilder::new(Meta::new(0o755, 0, 0, Time::default()));
    tree.insert(b"", Inode::dir(root_meta), Replace::Always)?;

    // File data goes to one buffer that the files then refer to.
    let mut store: Vec<u8> = Vec::new();
    let mut pending: Vec<(Vec<u8>, usize, usize, u64)> = Vec::new();
    let mut first_path: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut visited_dirs: HashSet<u32> = HashSet::from([1]);
    let mut queue: Vec<(u32, Vec<u8>)> = vec![(1, Vec::new())];
    let mut xattr_targets: Vec<(u32, Vec<u8>)> = vec![(1, Vec::new())];
    while let Some((dino, dpath)) = queue.pop() {
        let Some(entries) = nodes.dirents.get(&dino) else {
            continue;
        };
        for (name, d) in entries {
            if d.ino == 0 {
                continue;
            }
            let mut path = dpath.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            if let Some(first) = first_path.get(&d.ino) {
                tree.hard_link(&path, first)
                    .map_err(|e| malformed(d.offset_in_image, e.to_string()))?;
                continue;
            }
            let list = nodes.inodes.get(&d.ino).ok_or_else(|| {
                malformed(
                    d.offset_in_image,
                    format!("directory entry for inode {}, which has no node", d.ino),
                )
            })?;
            let Some(last) = latest(list) else { continue };
            let kind = Kind::from_mode(last.mode).ok_or_else(|| {
                malformed(
                    last.offset_in_image,
                    format!("unknown file type in mode {:o}", last.mode),
                )
            })?;
            let content = match kind {
                Kind::Dir => {
                    if !visited_dirs.insert(d.ino) {
                        return Err(malformed(
                            d.offset_in_image,
                            "a directory with a second name (a loop)",
                        ));
                    }
                    queue.push((d.ino, path.clone()));
                    Content::Dir(BTreeMap::new())
                }
                Kind::File => {
                    let (stored, len) = file_data(buf, list, last, &mut store)?;
                    pending.push((path.clone(), stored, len, u64::from(last.isize)));
                    Content::File(FileData::empty())
                }
                Kind::Symlink => {
                    let target = node_data(buf, last)?;
                    if target.is_empty() || target.len() > 4095 {
                        return Err(malformed(last.offset_in_image, "bad symlink target length"));
                    }
                    Content::Symlink(target.into())
                }
                Kind::CharDev | Kind::BlockDev => {
                    let dev = node_data(buf, last)?;
                    let (major, minor) = match dev.len() {
                        2 => {
                            let v = u32::from(nodes.endian.r16([dev[0], dev[1]]));
                            (v >> 8, v & 0xff)
                        }
                        4 => {
                            let v = nodes.endian.r32([dev[0], dev[1], dev[2], dev[3]]);
                            ((v & 0xfff00) >> 8, (v & 0xff) | ((v >> 12) & 0xfff00))
                        }
                        n => {
                            return Err(malformed(
                                last.offset_in_image,
                                format!("device node with {n} bytes of data"),
                            ));
                        }
                    };
                    if kind == Kind::CharDev {
                        Content::CharDev { major, minor }
                    } else {
                        Content::BlockDev { major, minor }
                    }
                }
                Kind::Fifo => Content::Fifo,
                Kind::Socket => Content::Socket,
            };
            tree.insert(&path, Inode::new(meta(last), content), Replace::Always)
                .map_err(|e| malformed(d.offset_in_image, e.to_string()))?;
            first_path.insert(d.ino, path.clone());
            xattr_targets.push((d.ino, path));
        }
    }

    let store: Backing = Arc::new(store);
    for (path, stored, len, isize) in pending {
        let data = if len as u64 == isize {
            FileData::range(store.clone(), stored as u64, isize)
        } else {
            FileData::sparse(
                store.clone(),
                vec![Extent {
                    logical: 0,
                    stored: stored as u64,
                    len: len as u64,
                }],
                isize,
            )
        }
        .ok_or_else(|| malformed(0, "file data outside the data buffer"))?;
        tree.modify(&path, &mut |inode| {
            inode.content = Content::File(data.clone())
        })?;
    }

    // Xattrs, by the inodes their xrefs name.
    let paths: HashMap<u32, Vec<u8>> = xattr_targets.into_iter().collect();
    for (&(ino, xid), &seq) in &nodes.xrefs {
        if seq & XREF_DELETE_MARKER != 0 {
            continue;
        }
        let (Some(path), Some((_, prefix, name, value))) =
            (paths.get(&ino), nodes.xattrs.get(&xid))
        else {
            continue;
        };
        let Some(&(_, pname)) = XPREFIXES.iter().find(|(p, _)| p == prefix) else {
            continue;
        };
        let mut full = pname.to_vec();
        let value = match *prefix {
            XPREFIX_ACL_ACCESS | XPREFIX_ACL_DEFAULT => acl_from_jffs2(value, nodes.endian)
                .ok_or_else(|| malformed(0, "malformed ACL xattr"))?,
            _ => {
                full.extend_from_slice(name);
                value.clone()
            }
        };
        tree.modify(path, &mut |inode| inode.set_xattr(&full, &value))?;
    }
    Ok(tree.finish())
}

/// A JFFS2 ACL back in the POSIX xattr form.
fn acl_from_jffs2(value: &[u8], e: Endian) -> Option<Vec<u8>> {
    let (head, mut rest) = value.split_at_checked(4)?;
    if e.r32(head.try_into().ok()?) != 1 {
        return None;
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    while !rest.is_empty() {
        let (short, tail) = rest.split_at_checked(4)?;
        let tag = e.r16([short[0], short[1]]);
        let perm = e.r16([short[2], short[3]]);
        let id = match tag {
            0x02 | 0x08 => {
                let (id, tail) = tail.split_at_checked(4)?;
                rest = tail;
                e.r32(id.try_into().ok()?)
            }
            0x01 | 0x04 | 0x10 | 0x20 => {
                rest = tail;
                u32::MAX
            }
            _ => return None,
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

fn meta(n: &InodeNode) -> Meta {
    // The mask keeps 12 bits, which fit.
    let perm = (n.mode & 0o7777) as u16;
    Meta::new(
        perm,
        n.uid.into(),
        n.gid.into(),
        Time::from_secs(n.mtime.into()),
    )
}

/// A file's bytes up to the end of its last data node (at most its size),
/// appended to `store`: (where, how many).
fn file_data(
    buf: &[u8],
    list: &[InodeNode],
    last: &InodeNode,
    store: &mut Vec<u8>,
) -> Result<(usize, usize)> {
    let isize = u64::from(last.isize);
    let mut total = 0u64;
    let mut end = 0u64;
    for n in list {
        total = total.saturating_add(n.dsize.into());
        end = end.max(u64::from(n.offset) + u64::from(n.dsize));
    }
    let len = end.min(isize);
    if len > total {
        return Err(malformed(
            last.offset_in_image,
            format!("file data nodes cover {total} bytes but reach byte {len}"),
        ));
    }
    let len = len as usize;
    let start = store.len();
    store.resize(
        start
            .checked_add(len)
            .ok_or_else(|| malformed(last.offset_in_image, "file data too large"))?,
        0,
    );
    let mut sorted: Vec<&InodeNode> = list.iter().filter(|n| n.dsize > 0).collect();
    sorted.sort_by_key(|n| n.version);
    for n in sorted {
        let off = n.offset as usize;
        if off >= len {
            continue;
        }
        let keep = (n.dsize as usize).min(len - off);
        let dst = &mut store[start + off..start + off + keep];
        if n.compr == COMPR_ZERO {
            dst.fill(0);
            continue;
        }
        let data = node_data(buf, n)?;
        dst.copy_from_slice(&data[..keep]);
    }
    Ok((start, len))
}
