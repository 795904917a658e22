//! JFFS2's on-disk records, as `include/uapi/linux/jffs2.h` names them.
//!
//! Every node starts with the common header (`jffs2_unknown_node`: magic,
//! node type, total length, header CRC); multi-byte fields are in the image's
//! byte order, and each node starts on a 4-byte boundary. The CRCs are the
//! kernel's `crc32(0, ...)`: reflected CRC-32 with a zero seed and no final
//! inversion.

use rootforge_common::bytes::RecordWriter;

/// `JFFS2_MAGIC_BITMASK`.
pub const MAGIC: u16 = 0x1985;
/// `JFFS2_NODE_ACCURATE`: set on every node that is not obsolete.
pub const NODE_ACCURATE: u16 = 0x2000;
/// `JFFS2_NODETYPE_DIRENT`.
pub const NODETYPE_DIRENT: u16 = 0xe001;
/// `JFFS2_NODETYPE_INODE`.
pub const NODETYPE_INODE: u16 = 0xe002;
/// `JFFS2_NODETYPE_CLEANMARKER`.
pub const NODETYPE_CLEANMARKER: u16 = 0x2003;
/// `JFFS2_NODETYPE_PADDING`.
pub const NODETYPE_PADDING: u16 = 0x2004;
/// `JFFS2_NODETYPE_SUMMARY`.
pub const NODETYPE_SUMMARY: u16 = 0x2006;
/// `JFFS2_NODETYPE_XATTR`.
pub const NODETYPE_XATTR: u16 = 0xe008;
/// `JFFS2_NODETYPE_XREF`.
pub const NODETYPE_XREF: u16 = 0xe009;

/// `JFFS2_SUM_MAGIC`: the marker that ends an erase block with a summary.
pub const SUM_MAGIC: u32 = 0x0285_1885;

/// `sizeof(struct jffs2_unknown_node)`.
pub const UNKNOWN_NODE_LEN: usize = 12;
/// `sizeof(struct jffs2_raw_dirent)`, before the name.
pub const DIRENT_LEN: usize = 40;
/// `sizeof(struct jffs2_raw_inode)`, before the data.
pub const INODE_LEN: usize = 68;
/// `sizeof(struct jffs2_raw_xattr)`, before the name and value.
pub const XATTR_LEN: usize = 32;
/// `sizeof(struct jffs2_raw_xref)`.
pub const XREF_LEN: usize = 28;

/// `JFFS2_MAX_NAME_LEN`: a name's length is one byte, and 0xff is erased
/// flash.
pub const MAX_NAME_LEN: usize = 254;
/// The longest symlink target the kernel's `jffs2_symlink` creates.
pub const MAX_SYMLINK_LEN: usize = 254;
/// `JFFS2_MIN_DATA_LEN`: no data node is started with less room than this.
pub const MIN_DATA_LEN: usize = 128;

/// `JFFS2_COMPR_*`.
pub const COMPR_NONE: u8 = 0x00;
pub const COMPR_ZERO: u8 = 0x01;
pub const COMPR_RTIME: u8 = 0x02;
pub const COMPR_ZLIB: u8 = 0x06;
pub const COMPR_LZO: u8 = 0x07;

/// `JFFS2_XPREFIX_*`: the xattr name spaces, stored as a number with the
/// rest of the name.
pub const XPREFIX_USER: u8 = 1;
pub const XPREFIX_SECURITY: u8 = 2;
pub const XPREFIX_ACL_ACCESS: u8 = 3;
pub const XPREFIX_ACL_DEFAULT: u8 = 4;
pub const XPREFIX_TRUSTED: u8 = 5;

/// The name spaces with their full prefixes; the ACL ones are whole names.
pub const XPREFIXES: [(u8, &[u8]); 5] = [
    (XPREFIX_USER, b"user."),
    (XPREFIX_SECURITY, b"security."),
    (XPREFIX_ACL_ACCESS, b"system.posix_acl_access"),
    (XPREFIX_ACL_DEFAULT, b"system.posix_acl_default"),
    (XPREFIX_TRUSTED, b"trusted."),
];

/// `XREF_DELETE_MARKER`: an xref whose sequence number is odd removes the
/// attribute.
pub const XREF_DELETE_MARKER: u32 = 1;

/// The kernel's `crc32(0, data, len)`.
pub fn crc(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!0);
    h.update(data);
    !h.finalize()
}

/// The image's byte order (`-l`, `-b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Endian {
    #[default]
    Little,
    Big,
}

impl Endian {
    pub fn name(self) -> &'static str {
        match self {
            Endian::Little => "little",
            Endian::Big => "big",
        }
    }

    pub(crate) fn w16(self, w: &mut RecordWriter, v: u16) {
        match self {
            Endian::Little => w.le16(v),
            Endian::Big => w.be16(v),
        };
    }

    pub(crate) fn w32(self, w: &mut RecordWriter, v: u32) {
        match self {
            Endian::Little => w.le32(v),
            Endian::Big => w.be32(v),
        };
    }

    pub(crate) fn bytes16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    pub(crate) fn bytes32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    pub(crate) fn r16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    pub(crate) fn r32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
}

/// The common header of a node of `nodetype` and `totlen` bytes, with its CRC.
pub(crate) fn header(e: Endian, nodetype: u16, totlen: u32) -> Vec<u8> {
    let mut w = RecordWriter::with_capacity(UNKNOWN_NODE_LEN);
    e.w16(&mut w, MAGIC);
    e.w16(&mut w, nodetype);
    e.w32(&mut w, totlen);
    with_crc(e, w)
}

/// The record's bytes followed by their CRC.
pub(crate) fn with_crc(e: Endian, w: RecordWriter) -> Vec<u8> {
    let mut v = w.into_bytes();
    let c = crc(&v);
    v.extend_from_slice(&e.bytes32(c));
    v
}

/// A writer that continues after `prefix`.
fn after(prefix: Vec<u8>) -> RecordWriter {
    let mut w = RecordWriter::with_capacity(prefix.len() + 64);
    w.bytes(&prefix);
    w
}

/// `jffs2_raw_dirent`: the name `name` in directory `pino` for inode `ino`.
pub(crate) struct Dirent<'a> {
    pub pino: u32,
    pub version: u32,
    pub ino: u32,
    pub mctime: u32,
    pub dtype: u8,
    pub name: &'a [u8],
}

impl Dirent<'_> {
    /// The node's bytes (not padded). `name` is at most [`MAX_NAME_LEN`].
    pub(crate) fn encode(&self, e: Endian) -> Vec<u8> {
        let nsize = u8::try_from(self.name.len()).unwrap_or(u8::MAX);
        let totlen = (DIRENT_LEN + usize::from(nsize)) as u32;
        let mut w = after(header(e, NODETYPE_DIRENT, totlen));
        e.w32(&mut w, self.pino);
        e.w32(&mut w, self.version);
        e.w32(&mut w, self.ino);
        e.w32(&mut w, self.mctime);
        w.u8(nsize).u8(self.dtype).zeros(2);
        let name = &self.name[..usize::from(nsize)];
        let mut v = with_crc(e, w);
        v.extend_from_slice(&e.bytes32(crc(name)));
        v.extend_from_slice(name);
        v
    }
}

/// `jffs2_raw_inode`: metadata of inode `ino` and a range of its data.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawInode {
    pub ino: u32,
    pub version: u32,
    pub mode: u32,
    pub uid: u16,
    pub gid: u16,
    pub isize: u32,
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
    pub offset: u32,
    pub dsize: u32,
    pub compr: u8,
}

impl RawInode {
    /// The node with `data` (already compressed with `compr`) after it.
    pub(crate) fn encode(&self, e: Endian, data: &[u8]) -> Vec<u8> {
        let csize = data.len() as u32;
        let mut w = after(header(
            e,
            NODETYPE_INODE,
            (INODE_LEN as u32).saturating_add(csize),
        ));
        e.w32(&mut w, self.ino);
        e.w32(&mut w, self.version);
        e.w32(&mut w, self.mode);
        e.w16(&mut w, self.uid);
        e.w16(&mut w, self.gid);
        e.w32(&mut w, self.isize);
        e.w32(&mut w, self.atime);
        e.w32(&mut w, self.mtime);
        e.w32(&mut w, self.ctime);
        e.w32(&mut w, self.offset);
        e.w32(&mut w, csize);
        e.w32(&mut w, self.dsize);
        // compr, usercompr, flags.
        w.u8(self.compr).u8(0);
        e.w16(&mut w, 0);
        let mut v = w.into_bytes();
        // node_crc covers the header up to data_crc.
        let node_crc = crc(&v);
        v.extend_from_slice(&e.bytes32(crc(data)));
        v.extend_from_slice(&e.bytes32(node_crc));
        v.extend_from_slice(data);
        v
    }
}

/// `jffs2_raw_xattr`: one attribute value, shared by every inode whose xref
/// names its `xid`.
pub(crate) fn xattr_node(e: Endian, xid: u32, xprefix: u8, name: &[u8], value: &[u8]) -> Vec<u8> {
    let name_len = u8::try_from(name.len()).unwrap_or(u8::MAX);
    let value_len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    let body = usize::from(name_len) + 1 + usize::from(value_len);
    let totlen = (XATTR_LEN + body).next_multiple_of(4) as u32;
    let mut w = after(header(e, NODETYPE_XATTR, totlen));
    e.w32(&mut w, xid);
    // The version of the datum.
    e.w32(&mut w, 1);
    w.u8(xprefix).u8(name_len);
    e.w16(&mut w, value_len);
    let mut data = Vec::with_capacity(body);
    data.extend_from_slice(&name[..usize::from(name_len)]);
    data.push(0);
    data.extend_from_slice(&value[..usize::from(value_len)]);
    e.w32(&mut w, crc(&data));
    let mut v = with_crc(e, w);
    v.extend_from_slice(&data);
    v
}

/// `jffs2_raw_xref`: inode `ino` has the attribute `xid`.
pub(crate) fn xref_node(e: Endian, ino: u32, xid: u32, xseqno: u32) -> Vec<u8> {
    let mut w = after(header(e, NODETYPE_XREF, XREF_LEN as u32));
    e.w32(&mut w, ino);
    e.w32(&mut w, xid);
    e.w32(&mut w, xseqno);
    with_crc(e, w)
}

/// The cleanmarker that starts every erase block of a NOR image.
pub(crate) fn cleanmarker(e: Endian) -> Vec<u8> {
    header(e, NODETYPE_CLEANMARKER, UNKNOWN_NODE_LEN as u32)
}

/// The `d_type` of a dirent: the `S_IFMT` bits shifted down, as `IFTODT`.
pub(crate) fn dtype(mode: u32) -> u8 {
    ((mode >> 12) & 0xf) as u8
}
