//! Tarball ingest: ustar, GNU (long names and links, old sparse) and pax
//! (path, linkpath, size, uid/gid, fractional and negative mtime, global
//! headers, xattrs, sparse 0.1 and 1.0) into a [`Tree`] whose file data
//! points into the input buffer.
//!
//! The headers are walked here rather than with the `tar` crate: its pax
//! parser splits records at newlines (binary xattr values such as
//! `security.capability` may hold one, and a value could then smuggle in a
//! record), it reads device numbers in octal only, and it hides the sparse
//! map. Every size and offset is checked against the buffer, so a hostile
//! archive costs no more memory than its metadata.

use rootforge_common::{
    Backing, Blob, Content, Edit, Error, Extent, FileData, Inode, Meta, Replace, Result, Time,
    Tree, TreeBuilder, display_path,
};

const BLOCK: u64 = 512;

/// How to read a tarball.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Metadata of the root and of directories only implied by deeper names.
    pub implicit_dir: Meta,
    /// Clamp every mtime to this (`SOURCE_DATE_EPOCH`).
    pub clamp_mtime: Option<i64>,
}

/// A tarball read into a tree.
#[derive(Debug)]
pub struct Ingest {
    pub tree: Tree,
    /// Archive members read (pax and long-name headers not counted).
    pub members: u64,
    /// What was read but cannot be kept (e.g. POSIX ACL records), once each.
    pub warnings: Vec<String>,
}

/// pax records: key and value bytes, in archive order.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// What the headers before a member say about it.
#[derive(Debug, Default)]
struct Pending {
    pax: Records,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

/// The largest extended header (pax records, GNU long name) or sparse map
/// read into memory. Real ones are tiny (xattr values are at most 64 KiB on
/// Linux); the bound keeps a hostile size field from costing memory.
const MAX_META: u64 = 64 << 20;

/// Buffered random access to the archive for the header walk. File data is
/// never read here; the 16 KiB window holds several headers of small files,
/// and after a large file only its next header is read (1 MiB windows
/// doubled the bytes copied on a Debian rootfs: 0.35 s against 0.12 s).
struct Input<'a> {
    blob: &'a dyn Blob,
    len: u64,
    /// How much to read on a miss: a window after small members (the next
    /// headers are near), one block after a large one (the window would be
    /// file data read for nothing).
    read_ahead: u64,
    start: u64,
    window: Vec<u8>,
}

impl<'a> Input<'a> {
    const WINDOW: u64 = 16 << 10;

    fn new(blob: &'a dyn Blob) -> Self {
        Input {
            blob,
            len: blob.len(),
            read_ahead: Self::WINDOW,
            start: 0,
            window: Vec::new(),
        }
    }

    /// `len` bytes at `pos`, or `None` if they run past the end.
    fn get(&mut self, pos: u64, len: u64) -> Result<Option<&[u8]>> {
        let Some(end) = pos.checked_add(len).filter(|&e| e <= self.len) else {
            return Ok(None);
        };
        if let Some(all) = self.blob.as_slice() {
            return Ok(all.get(to_usize(pos)?..to_usize(end)?));
        }
        let cached =
            pos >= self.start && end <= self.start.saturating_add(self.window.len() as u64);
        if !cached {
            let n = len.max(self.read_ahead).min(self.len - pos);
            self.window.resize(to_usize(n)?, 0);
            self.blob
                .read_at(pos, &mut self.window)
                .map_err(|e| Error::io(format!("reading the archive at byte {pos}"), e))?;
            self.start = pos;
        }
        let from = to_usize(pos - self.start)?;
        Ok(self.window.get(from..from.saturating_add(to_usize(len)?)))
    }

    fn block(&mut self, pos: u64) -> Result<Option<[u8; 512]>> {
        Ok(self.get(pos, BLOCK)?.and_then(|b| b.try_into().ok()))
    }
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::malformed("tar", v, "offset does not fit in memory"))
}

/// Reads a whole uncompressed tarball held in `backing`.
pub fn read(backing: Backing, opts: &ReadOptions) -> Result<Ingest> {
    let mut input = Input::new(&*backing);
    if input.len == 0 {
        return Err(Error::malformed("tar", 0, "the input is empty"));
    }
    let mut builder = TreeBuilder::new(opts.implicit_dir);
    let mut globals = Globals::default();
    let mut pending = Pending::default();
    let mut members = 0u64;
    let mut acl_records = 0u64;
    let mut pos = 0u64;
    loop {
        let h = input.block(pos)?.ok_or_else(|| {
            Error::malformed(
                "tar",
                pos,
                "the archive ends without an end-of-archive block: truncated archive?",
            )
        })?;
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let h = &h;
        if pos == 0 && verify_checksum(h, pos).is_err() {
            return Err(Error::malformed(
                "tar",
                0,
                "not a tar archive (nor gzip, zstd, xz, bzip2 or lz4 compressed): the first header is not valid",
            ));
        }
        verify_checksum(h, pos)?;
        let kind = h[156];
        let header_size = numeric(&h[124..136]);
        let data_pos = pos.saturating_add(BLOCK);
        if matches!(kind, b'x' | b'g' | b'L' | b'K') {
            let header_size =
                header_size.ok_or_else(|| Error::malformed("tar", pos, "bad size field"))?;
            if header_size > MAX_META {
                return Err(Error::malformed(
                    "tar",
                    pos,
                    format!(
                        "extended header of {header_size} bytes is over the {MAX_META}-byte limit"
                    ),
                ));
            }
            let data = input.get(data_pos, header_size)?.ok_or_else(|| {
                Error::malformed(
                    "tar",
                    pos,
                    format!("{header_size}-byte extended header runs past the end of the input"),
                )
            })?;
            match kind {
                b'x' => pending.pax.extend(parse_pax(data, pos)?),
                b'g' => globals.apply(&parse_pax(data, pos)?, pos)?,
                b'L' => pending.long_name = Some(cstr(data).to_vec()),
                _ => pending.long_link = Some(cstr(data).to_vec()),
            }
            pos = next_header(data_pos, header_size, pos)?;
            continue;
        }
        let p = std::mem::take(&mut pending);
        let path = member_path(h, &p);
        let size = match (get(&p.pax, b"size"), header_size) {
            (Some(v), _) => parse_u64(v, "size", pos).map_err(of_member(&path))?,
            (None, Some(s)) => s,
            (None, None) => {
                return Err(Error::malformed(
                    "tar",
                    pos,
                    format!(
                        "{}: bad size field (not octal, or over 64 bits)",
                        display_path(&path)
                    ),
                ));
            }
        };
        // Old GNU sparse members keep more of their map in blocks between
        // the header and the data.
        let ext_blocks = if kind == b'S' {
            sparse_ext_blocks(&mut input, pos, h, &path)?
        } else {
            0
        };
        let data_pos = data_pos.saturating_add(ext_blocks.saturating_mul(BLOCK));
        // A size so large that the offset overflows is past the end too.
        let Some(end) = next_header(data_pos, size, pos)
            .ok()
            .filter(|&e| e <= input.len)
        else {
            return Err(Error::malformed(
                "tar",
                pos,
                format!(
                    "{}: {size} bytes of data run past the end of the input ({} bytes): truncated archive?",
                    display_path(&path),
                    input.len
                ),
            ));
        };
        members = members.saturating_add(1);
        acl_records = acl_records.saturating_add(
            p.pax
                .iter()
                .filter(|(k, _)| k.starts_with(b"SCHILY.acl."))
                .count() as u64,
        );
        let at = Member {
            header: h,
            pos,
            data_pos,
            size,
            path,
            pending: p,
        };
        add_member(&mut builder, &backing, &mut input, &at, &globals)?;
        input.read_ahead = if end - pos <= Input::WINDOW {
            Input::WINDOW
        } else {
            BLOCK
        };
        pos = end;
    }
    if let Some(max) = opts.clamp_mtime {
        builder.clamp_mtimes(Time::from_secs(max));
    }
    let mut warnings = Vec::new();
    if acl_records > 0 {
        warnings.push(format!(
            "dropped {acl_records} POSIX ACL records (SCHILY.acl.*): ACLs are not carried yet"
        ));
    }
    Ok(Ingest {
        tree: builder.finish(),
        members,
        warnings,
    })
}

fn next_header(data_pos: u64, size: u64, at: u64) -> Result<u64> {
    size.checked_next_multiple_of(BLOCK)
        .and_then(|s| data_pos.checked_add(s))
        .ok_or_else(|| Error::malformed("tar", at, "member size overflows"))
}

/// The bytes before the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

/// The header checksum: the sum of its bytes with the checksum field read
/// as spaces, unsigned as POSIX says or signed as some old writers did.
fn verify_checksum(h: &[u8; 512], at: u64) -> Result<()> {
    let stored = numeric(&h[148..156])
        .ok_or_else(|| Error::malformed("tar", at, "bad header checksum field"))?;
    let rest = || h[..148].iter().chain(&h[156..]);
    let spaces = 8 * u64::from(b' ');
    let unsigned = rest().map(|&b| u64::from(b)).sum::<u64>() + spaces;
    let signed = rest().map(|&b| i64::from(b as i8)).sum::<i64>() + 8 * i64::from(b' ');
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(Error::malformed(
            "tar",
            at,
            format!(
                "header checksum mismatch (stored {stored}, computed {unsigned}): corrupt archive or not a tarball"
            ),
        ))
    }
}

/// The member's name: pax `path`, else a GNU long name, else the ustar
/// prefix and name fields.
fn member_path(h: &[u8; 512], p: &Pending) -> Vec<u8> {
    if let Some(v) = get(&p.pax, b"GNU.sparse.name").or_else(|| get(&p.pax, b"path")) {
        return v.to_vec();
    }
    if let Some(n) = &p.long_name {
        return n.clone();
    }
    let name = cstr(&h[..100]);
    // Only POSIX ustar has the prefix field; GNU's magic ("ustar  ") uses
    // those bytes for other things.
    if &h[257..263] == b"ustar\0" && h[345] != 0 {
        let mut p = cstr(&h[345..500]).to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        return p;
    }
    name.to_vec()
}

fn member_link(h: &[u8; 512], p: &Pending) -> Vec<u8> {
    if let Some(v) = get(&p.pax, b"linkpath") {
        return v.to_vec();
    }
    if let Some(l) = &p.long_link {
        return l.clone();
    }
    cstr(&h[157..257]).to_vec()
}

/// Parses pax records (`"<len> <key>=<value>\n"`) by their length prefix,
/// so values may hold any byte, newlines included.
fn parse_pax(mut data: &[u8], at: u64) -> Result<Records> {
    let bad = |why: &str| Error::malformed("tar", at, format!("bad pax record: {why}"));
    let mut out = Vec::new();
    // GNU tar pads the data of some extended headers with NULs.
    while !data.is_empty() && data[0] != 0 {
        let sp = data
            .iter()
            .take(20)
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad length"))?;
        if len <= sp + 1 || len > data.len() {
            return Err(bad("length out of range"));
        }
        let rec = &data[sp + 1..len];
        let rec = rec
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("record does not end with a newline"))?;
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("no `=`"))?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

fn get<'r>(pax: &'r Records, key: &[u8]) -> Option<&'r [u8]> {
    // The last record for a key wins; an empty value unsets it.
    let v = pax
        .iter()
        .rev()
        .find(|(k, _)| k.as_slice() == key)?
        .1
        .as_slice();
    (!v.is_empty()).then_some(v)
}

/// Keys of pax global headers that apply to every later member.
#[derive(Debug, Default)]
struct Globals {
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<Time>,
}

impl Globals {
    fn apply(&mut self, pax: &Records, at: u64) -> Result<()> {
        for (k, v) in pax {
            let empty = v.is_empty();
            match &**k {
                b"uid" => {
                    self.uid = if empty {
                        None
                    } else {
                        Some(parse_id(v, "uid", at)?)
                    }
                }
                b"gid" => {
                    self.gid = if empty {
                        None
                    } else {
                        Some(parse_id(v, "gid", at)?)
                    }
                }
                b"mtime" => {
                    self.mtime = if empty {
                        None
                    } else {
                        Some(parse_time(v, at)?)
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Names the member in an error about one of its pax values (which are
/// parsed where the member's path may not be known yet).
fn of_member(path: &[u8]) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Malformed {
            format,
            offset,
            reason,
        } => Error::malformed(format, offset, format!("{}: {reason}", display_path(path))),
        e => e,
    }
}

fn bad(at: u64, what: &str, v: &[u8]) -> Error {
    Error::malformed(
        "tar",
        at,
        format!("bad pax {what} value {:?}", String::from_utf8_lossy(v)),
    )
}

fn parse_u64(v: &[u8], what: &str, at: u64) -> Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(at, what, v))
}

fn parse_id(v: &[u8], what: &str, at: u64) -> Result<u32> {
    let n = parse_u64(v, what, at)?;
    u32::try_from(n).map_err(|_| bad(at, what, v))
}

/// A pax time: `[-]seconds[.fraction]`. For negative times the fraction
/// counts away from zero (`-1.5` is half a second before `-1`).
fn parse_time(v: &[u8], at: u64) -> Result<Time> {
    let s = std::str::from_utf8(v).map_err(|_| bad(at, "mtime", v))?;
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad(at, "mtime", v));
    }
    let secs: i64 = secs.parse().map_err(|_| bad(at, "mtime", v))?;
    let mut nsec = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Ok(if !neg {
        Time { sec: secs, nsec }
    } else if nsec == 0 {
        Time {
            sec: -secs,
            nsec: 0,
        }
    } else {
        Time {
            sec: (-secs).checked_sub(1).ok_or_else(|| bad(at, "mtime", v))?,
            nsec: 1_000_000_000 - nsec,
        }
    })
}

/// One archive member with everything its headers said.
struct Member<'a> {
    header: &'a [u8; 512],
    /// Offset of its header, for messages.
    pos: u64,
    data_pos: u64,
    size: u64,
    path: Vec<u8>,
    pending: Pending,
}

fn field(h: &[u8; 512], range: std::ops::Range<usize>, what: &str, m: &Member<'_>) -> Result<u64> {
    numeric(&h[range]).ok_or_else(|| {
        Error::malformed(
            "tar",
            m.pos,
            format!("{}: bad {what} field", display_path(&m.path)),
        )
    })
}

fn id32(v: u64, m: &Member<'_>, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::malformed(
            "tar",
            m.pos,
            format!(
                "{}: {what} {v} does not fit in 32 bits",
                display_path(&m.path)
            ),
        )
    })
}

/// Owner, mode, mtime and xattrs, with pax and global overrides applied.
fn member_meta(m: &Member<'_>, globals: &Globals) -> Result<(Meta, Records)> {
    let (h, pax, at) = (m.header, &m.pending.pax, m.pos);
    let uid = match (get(pax, b"uid"), globals.uid) {
        (Some(v), _) => parse_id(v, "uid", at).map_err(of_member(&m.path))?,
        (None, Some(u)) => u,
        (None, None) => id32(field(h, 108..116, "uid", m)?, m, "uid")?,
    };
    let gid = match (get(pax, b"gid"), globals.gid) {
        (Some(v), _) => parse_id(v, "gid", at).map_err(of_member(&m.path))?,
        (None, Some(g)) => g,
        (None, None) => id32(field(h, 116..124, "gid", m)?, m, "gid")?,
    };
    let mtime = match (get(pax, b"mtime"), globals.mtime) {
        (Some(v), _) => parse_time(v, at).map_err(of_member(&m.path))?,
        (None, Some(t)) => t,
        (None, None) => Time::from_secs(signed_numeric(&h[136..148]).ok_or_else(|| {
            Error::malformed(
                "tar",
                at,
                format!("{}: bad mtime field", display_path(&m.path)),
            )
        })?),
    };
    let mode = field(h, 100..108, "mode", m)?;
    let mut xattrs = Vec::new();
    for (k, v) in pax {
        if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
            xattrs.push((name.to_vec(), v.clone()));
        } else if let Some(name) = k.strip_prefix(b"LIBARCHIVE.xattr.") {
            let name = percent_decode(name).ok_or_else(|| bad(at, "LIBARCHIVE.xattr name", k))?;
            let value = base64_decode(v).ok_or_else(|| bad(at, "LIBARCHIVE.xattr value", v))?;
            xattrs.push((name, value));
        } else if &**k == b"RHT.security.selinux" {
            xattrs.push((b"security.selinux".to_vec(), v.clone()));
        }
    }
    // Lossless after the mask.
    let perm = u16::try_from(mode & 0o7777).unwrap_or(0);
    Ok((Meta::new(perm, uid, gid, mtime), xattrs))
}

fn add_member(
    b: &mut TreeBuilder,
    backing: &Backing,
    input: &mut Input<'_>,
    m: &Member<'_>,
    globals: &Globals,
) -> Result<()> {
    let (h, path, at) = (m.header, &m.path, m.pos);
    let (meta, xattrs) = member_meta(m, globals)?;
    let pax = &m.pending.pax;
    let dev = |range: std::ops::Range<usize>, what: &str| -> Result<u32> {
        let v = field(h, range, what, m)?;
        u32::try_from(v).map_err(|_| {
            Error::malformed(
                "tar",
                at,
                format!(
                    "{}: device {what} {v} does not fit in 32 bits",
                    display_path(path)
                ),
            )
        })
    };
    let content = match h[156] {
        b'0' | b'\0' | b'7' if path.ends_with(b"/") && m.size == 0 => {
            // Pre-POSIX archives mark directories with a trailing slash only.
            Content::Dir(Default::default())
        }
        b'0' | b'\0' | b'7' => {
            if get(pax, b"GNU.sparse.major").is_some() || get(pax, b"GNU.sparse.map").is_some() {
                Content::File(pax_sparse(
                    backing, input, m.data_pos, m.size, pax, at, path,
                )?)
            } else {
                Content::File(range(backing, m.data_pos, m.size, at, path)?)
            }
        }
        b'S' => Content::File(gnu_sparse(backing, input, m)?),
        // `D` is a GNU incremental dump directory: a directory with a listing
        // as data.
        b'5' | b'D' => Content::Dir(Default::default()),
        b'2' => Content::Symlink(member_link(h, &m.pending).into()),
        b'3' => Content::CharDev {
            major: dev(329..337, "major")?,
            minor: dev(337..345, "minor")?,
        },
        b'4' => Content::BlockDev {
            major: dev(329..337, "major")?,
            minor: dev(337..345, "minor")?,
        },
        b'6' => Content::Fifo,
        b'1' => {
            let id = b.hard_link(path, &member_link(h, &m.pending))?;
            // A pax hard link may carry the data again; the names share it.
            if m.size > 0 {
                let data = range(backing, m.data_pos, m.size, at, path)?;
                if let Content::File(d) = &mut b.inode_mut(id).content {
                    *d = data;
                }
            }
            return Ok(());
        }
        // A GNU volume label is not a file.
        b'V' => return Ok(()),
        other => {
            return Err(Error::malformed(
                "tar",
                at,
                format!(
                    "{}: unsupported tar entry type {:?}",
                    display_path(path),
                    char::from(other)
                ),
            ));
        }
    };
    let mut inode = Inode::new(meta, content);
    for (name, value) in xattrs {
        inode.set_xattr(&name, &value);
    }
    b.insert(path, inode, Replace::Always)?;
    Ok(())
}

fn range(backing: &Backing, pos: u64, size: u64, at: u64, path: &[u8]) -> Result<FileData> {
    FileData::range(backing.clone(), pos, size).ok_or_else(|| {
        Error::malformed(
            "tar",
            at,
            format!(
                "{}: {size} bytes of data run past the end of the input",
                display_path(path)
            ),
        )
    })
}

fn sparse_err(at: u64, path: &[u8], why: &str) -> Error {
    Error::malformed(
        "tar",
        at,
        format!("{}: bad sparse map: {why}", display_path(path)),
    )
}

/// Builds a sparse file from a map of (offset, length) pairs whose data is
/// stored back to back from `data_pos`, `stored` bytes in all.
fn sparse_file(
    backing: &Backing,
    map: &[(u64, u64)],
    data_pos: u64,
    stored: u64,
    real_size: u64,
    at: u64,
    path: &[u8],
) -> Result<FileData> {
    let mut extents = Vec::with_capacity(map.len());
    let mut used = 0u64;
    for &(logical, len) in map {
        if len == 0 {
            continue;
        }
        let stored_at = data_pos
            .checked_add(used)
            .ok_or_else(|| sparse_err(at, path, "offset overflow"))?;
        extents.push(Extent {
            logical,
            stored: stored_at,
            len,
        });
        used = used
            .checked_add(len)
            .ok_or_else(|| sparse_err(at, path, "length overflow"))?;
    }
    if used > stored {
        return Err(sparse_err(
            at,
            path,
            "the map lists more data than the member holds",
        ));
    }
    FileData::sparse(backing.clone(), extents, real_size).ok_or_else(|| {
        sparse_err(
            at,
            path,
            "extents overlap, are unsorted or lie outside the file",
        )
    })
}

/// Counts the extension blocks of an old GNU sparse header (type `S`).
fn sparse_ext_blocks(input: &mut Input<'_>, pos: u64, h: &[u8; 512], path: &[u8]) -> Result<u64> {
    let mut n = 0u64;
    let mut extended = h[482] != 0;
    while extended {
        n = n.saturating_add(1);
        let at = pos
            .checked_add(n.saturating_mul(BLOCK))
            .ok_or_else(|| sparse_err(pos, path, "offset overflow"))?;
        let ext = input
            .block(at)?
            .ok_or_else(|| sparse_err(pos, path, "extension block past the end"))?;
        extended = ext[504] != 0;
    }
    Ok(n)
}

/// Old GNU sparse (type `S`): four map entries in the header, 21 more in
/// each extension block that follows it; `realsize` is the file's size.
fn gnu_sparse(backing: &Backing, input: &mut Input<'_>, m: &Member<'_>) -> Result<FileData> {
    let (h, at, path) = (m.header, m.pos, &m.path[..]);
    let mut map = Vec::new();
    let mut push = |raw: &[u8]| -> Result<()> {
        let off = numeric(&raw[..12]).ok_or_else(|| sparse_err(at, path, "bad offset"))?;
        let len = numeric(&raw[12..24]).ok_or_else(|| sparse_err(at, path, "bad length"))?;
        if off != 0 || len != 0 {
            map.push((off, len));
        }
        Ok(())
    };
    for entry in h[386..482].chunks_exact(24) {
        push(entry)?;
    }
    let real_size = numeric(&h[483..495]).ok_or_else(|| sparse_err(at, path, "bad real size"))?;
    let mut ext_pos = at;
    while ext_pos.saturating_add(BLOCK) < m.data_pos {
        ext_pos = ext_pos.saturating_add(BLOCK);
        let ext = input
            .block(ext_pos)?
            .ok_or_else(|| sparse_err(at, path, "extension block past the end"))?;
        for entry in ext[..504].chunks_exact(24) {
            push(entry)?;
        }
    }
    sparse_file(backing, &map, m.data_pos, m.size, real_size, at, path)
}

/// A tar numeric field: octal (space or NUL terminated) or GNU base-256.
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != 0 && b != b' ');
    let mut v = 0u64;
    for &b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// A numeric field that may be negative (GNU base-256 with the sign bit,
/// used for mtimes before 1970).
fn signed_numeric(field: &[u8]) -> Option<i64> {
    if field.first() == Some(&0xff) {
        let mut v: i64 = -1;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(i64::from(b))?;
        }
        // Two's complement: -1 followed by the remaining bytes.
        return Some(v);
    }
    i64::try_from(numeric(field)?).ok()
}

/// pax sparse formats: 0.1 (`GNU.sparse.map` in the header) and 1.0 (the
/// map in decimal lines at the start of the data, padded to a block).
fn pax_sparse(
    backing: &Backing,
    input: &mut Input<'_>,
    pos: u64,
    stored: u64,
    pax: &Records,
    at: u64,
    path: &[u8],
) -> Result<FileData> {
    let real_size = get(pax, b"GNU.sparse.realsize")
        .or_else(|| get(pax, b"GNU.sparse.size"))
        .ok_or_else(|| sparse_err(at, path, "no GNU.sparse.realsize"))
        .and_then(|v| parse_u64(v, "GNU.sparse.realsize", at))?;
    let major = get(pax, b"GNU.sparse.major");
    if major.is_none_or(|m| m == b"0") {
        let map_text =
            get(pax, b"GNU.sparse.map").ok_or_else(|| sparse_err(at, path, "no GNU.sparse.map"))?;
        let nums = map_text
            .split(|&b| b == b',')
            .map(|n| parse_u64(n, "GNU.sparse.map", at))
            .collect::<Result<Vec<_>>>()?;
        if nums.len() % 2 != 0 {
            return Err(sparse_err(at, path, "odd number of map values"));
        }
        let map: Vec<_> = nums.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        return sparse_file(backing, &map, pos, stored, real_size, at, path);
    }
    if major != Some(b"1") {
        return Err(sparse_err(at, path, "unknown GNU.sparse.major"));
    }
    // The map is at most MAX_META bytes of text at the start of the data.
    let data = input
        .get(pos, stored.min(MAX_META))?
        .ok_or_else(|| sparse_err(at, path, "data past the end"))?;
    let mut consumed = 0usize;
    let next = |consumed: &mut usize| -> Result<u64> {
        let rest = &data[*consumed..];
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| sparse_err(at, path, "map cut short"))?;
        *consumed = consumed.saturating_add(nl).saturating_add(1);
        parse_u64(&rest[..nl], "GNU.sparse map", at)
    };
    let count = next(&mut consumed)?;
    // Each pair takes at least four bytes of map text, which bounds the
    // allocation by the member's size.
    if count > stored / 4 {
        return Err(sparse_err(
            at,
            path,
            "more map entries than the data can hold",
        ));
    }
    let mut map = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for _ in 0..count {
        map.push((next(&mut consumed)?, next(&mut consumed)?));
    }
    let text_len = (consumed as u64).next_multiple_of(BLOCK);
    let data_pos = pos
        .checked_add(text_len)
        .ok_or_else(|| sparse_err(at, path, "offset overflow"))?;
    let left = stored
        .checked_sub(text_len)
        .ok_or_else(|| sparse_err(at, path, "map longer than the member"))?;
    sparse_file(backing, &map, data_pos, left, real_size, at, path)
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = std::str::from_utf8(s.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(
            parse_time(b"1700000000.5", 0).unwrap(),
            Time {
                sec: 1700000000,
                nsec: 500_000_000
            }
        );
        assert_eq!(
            parse_time(b"-1.25", 0).unwrap(),
            Time {
                sec: -2,
                nsec: 750_000_000
            }
        );
        assert_eq!(parse_time(b"-3", 0).unwrap(), Time { sec: -3, nsec: 0 });
        assert_eq!(
            parse_time(b"4102444800.123456789123", 0).unwrap().nsec,
            123_456_789
        );
        assert!(parse_time(b"12x", 0).is_err());
        assert!(parse_time(b"99999999999999999999999", 0).is_err());
    }

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"0000644\0"), Some(0o644));
        assert_eq!(numeric(b"   17 \0"), Some(0o17));
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(numeric(b"0009"), None);
    }

    #[test]
    fn base64_and_percent() {
        assert_eq!(base64_decode(b"AQIDBA==").unwrap(), [1, 2, 3, 4]);
        assert_eq!(base64_decode(b"aGk=").unwrap(), b"hi");
        assert_eq!(percent_decode(b"user.a%3Db").unwrap(), b"user.a=b");
        assert!(percent_decode(b"x%4").is_none());
    }
}
