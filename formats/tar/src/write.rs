//! The pax writer: the archive Buildroot's `fs/tar` makes with
//! `find | LC_ALL=C sort | tar --format=posix --numeric-owner --xattrs
//! --pax-option=exthdr.name=%d/PaxHeaders/%f,atime:=0,ctime:=0`, field for
//! field as GNU tar 1.34 writes it, with these deliberate differences:
//!
//! - GNU tar gives every member an extended header holding `ctime=0` and
//!   `atime=0` (its `:=` override creates the header before it checks the
//!   override). Those records say nothing, so only members that need a pax
//!   record get an extended header, and none gets atime or ctime.
//! - A name of 101 to 256 bytes is split into the ustar prefix and name
//!   fields when a `/` allows it, where GNU tar writes a pax `path` record.
//! - A non-ASCII name that fits the ustar fields stays there as raw bytes.
//!   GNU tar also puts it in a `path` record, which pax defines as UTF-8:
//!   bsdtar fails on such a record holding a name that is not UTF-8.
//! - xattrs are in name order; GNU tar keeps the order the filesystem
//!   lists them in.
//!
//! Extended header names follow `%d/PaxHeaders/%f` (`./bin/PaxHeaders/ping`;
//! the root's is `./PaxHeaders/.`, as GNU tar names it), cut to the 100-byte
//! name field as GNU tar cuts them; readers ignore them.

use std::collections::HashMap;
use std::io;

use rootforge_common::{
    Batch, Content, Encoder, Entry, Error, FileData, ImagePlan, Inode, InodeId, Kind, Report,
    Result, Sink, Time, View, display_path,
};

/// The format name used in errors.
const FORMAT: &str = "tar";
const BLOCK: usize = 512;
/// GNU tar's default record size (`-b 20`): the archive is padded to it.
const RECORD: u64 = 10240;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// The largest values of the 8-byte (7 octal digits) and 12-byte (11 octal
/// digits) numeric fields.
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Writes a view as a POSIX pax archive in `find . | LC_ALL=C sort` order
/// with `./`-prefixed names, numeric owners, xattrs as `SCHILY.xattr.*`
/// records and hard links pointing at the first name of their group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarEncoder;

/// One archive member, decided before anything is written.
struct Member {
    entry: Entry,
    /// For a later name of a hard-link group, the index (in the member list)
    /// of the name that carries the inode.
    link_to: Option<usize>,
}

struct Plan {
    members: Vec<Member>,
    warnings: Vec<String>,
}

impl Encoder for TarEncoder {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        let plan = plan(&view)?;
        Ok(Box::new(Planned { view, plan }))
    }
}

/// A tar archive planned for one view.
struct Planned<'v> {
    view: View<'v>,
    plan: Plan,
}

impl ImagePlan for Planned<'_> {
    fn write(self: Box<Self>, out: &mut dyn Sink) -> Result<Report> {
        write_plan(&self.view, self.plan, out)
    }
}

fn write_plan(view: &View<'_>, plan: Plan, out: &mut dyn Sink) -> Result<Report> {
    let mut w = Writer {
        batch: Batch::new(out),
        name: Vec::new(),
        link: Vec::new(),
        pax: Vec::new(),
    };
    for m in &plan.members {
        w.member(view, &plan.members, m)?;
    }
    // End of archive: two zero blocks, then zeros to the record size.
    w.batch.zeros(2 * BLOCK);
    let tail = (RECORD - w.batch.pos() % RECORD) % RECORD;
    w.batch.zeros(usize::try_from(tail).unwrap_or(0));
    w.batch.finish().map_err(write_error)?;
    Ok(Report {
        bytes: w.batch.pos(),
        warnings: plan.warnings,
    })
}

/// Checks every entry and decides which name carries each hard-link group,
/// before a byte is written.
fn plan(view: &View<'_>) -> Result<Plan> {
    let entries = view.sorted_entries();
    let mut members = Vec::with_capacity(entries.len());
    let mut first_name: HashMap<InodeId, usize> = HashMap::new();
    let mut sockets = Skipped::default();
    for entry in entries {
        let inode = view.inode(entry.ino);
        check_entry(&entry, inode)?;
        let kind = inode.kind();
        if kind == Kind::Socket {
            sockets.note(&entry);
            continue;
        }
        let mut link_to = None;
        if kind != Kind::Dir && entry.nlink >= 2 {
            let next = members.len();
            let first = *first_name.entry(entry.ino).or_insert(next);
            link_to = (first != next).then_some(first);
        }
        members.push(Member { entry, link_to });
    }
    Ok(Plan {
        members,
        warnings: sockets.warning().into_iter().collect(),
    })
}

/// What no pax reader could make sense of. Nothing a Linux filesystem holds
/// is refused here; sockets are skipped later with a warning.
fn check_entry(entry: &Entry, inode: &Inode) -> Result<()> {
    let unsupported = |what: &str| Error::Unsupported {
        path: display_path(&entry.path),
        format: FORMAT,
        what: what.to_owned(),
    };
    if entry.path.contains(&0) {
        return Err(unsupported("a NUL byte in a name"));
    }
    if let Content::Symlink(target) = &inode.content {
        if target.contains(&0) {
            return Err(unsupported("a NUL byte in a symlink target"));
        }
    }
    // A pax key ends at the first `=`.
    if inode
        .xattrs
        .iter()
        .any(|x| x.name.is_empty() || x.name.contains(&0) || x.name.contains(&b'='))
    {
        return Err(unsupported(
            "an xattr name that is empty or holds `=` or NUL",
        ));
    }
    let nsec = inode.meta.mtime.nsec;
    if nsec >= 1_000_000_000 {
        return Err(Error::Limit {
            path: display_path(&entry.path),
            format: FORMAT,
            what: "mtime nanoseconds",
            value: u64::from(nsec),
            limit: 999_999_999,
        });
    }
    Ok(())
}

/// Counts sockets, which tar cannot hold, for one warning.
#[derive(Default)]
struct Skipped {
    count: u64,
    first: Option<String>,
}

impl Skipped {
    fn note(&mut self, entry: &Entry) {
        self.count = self.count.saturating_add(1);
        self.first.get_or_insert_with(|| display_path(&entry.path));
    }

    fn warning(self) -> Option<String> {
        let first = self.first?;
        Some(format!(
            "tar cannot store sockets: skipped {} (first: {first})",
            self.count
        ))
    }
}

/// The archive being written, with scratch buffers reused across members.
struct Writer<'a> {
    batch: Batch<'a>,
    /// The member name: `./`, `./bin/`, `./bin/sh`.
    name: Vec<u8>,
    /// A hard link's target name.
    link: Vec<u8>,
    /// The member's pax records.
    pax: Vec<u8>,
}

impl Writer<'_> {
    fn member(&mut self, view: &View<'_>, members: &[Member], m: &Member) -> Result<()> {
        let inode = view.inode(m.entry.ino);
        let path = &m.entry.path;
        let kind = inode.kind();
        self.name.clear();
        self.name.extend_from_slice(b"./");
        self.name.extend_from_slice(path);
        if kind == Kind::Dir && !path.is_empty() {
            self.name.push(b'/');
        }

        let mut data = None;
        let (typeflag, link): (u8, &[u8]) =
            match (m.link_to.and_then(|i| members.get(i)), &inode.content) {
                (Some(first), _) => {
                    self.link.clear();
                    self.link.extend_from_slice(b"./");
                    self.link.extend_from_slice(&first.entry.path);
                    (b'1', &self.link)
                }
                (None, Content::File(d)) => {
                    data = Some(d);
                    (b'0', b"")
                }
                (None, Content::Dir(_)) => (b'5', b""),
                (None, Content::Symlink(target)) => (b'2', target),
                (None, Content::CharDev { .. }) => (b'3', b""),
                (None, Content::BlockDev { .. }) => (b'4', b""),
                (None, Content::Fifo) => (b'6', b""),
                // Left out by the plan.
                (None, Content::Socket) => return Ok(()),
            };
        let size = data.map_or(0, FileData::size);
        let meta = &inode.meta;

        // Records in the order GNU tar stores them.
        self.pax.clear();
        if link.len() > NAME_LEN {
            record(&mut self.pax, b"linkpath", link);
        }
        let (prefix, name) = match split_name(&self.name) {
            Some(split) => split,
            None => {
                record(&mut self.pax, b"path", &self.name);
                (&b""[..], &self.name[..])
            }
        };
        let uid = id_field(&mut self.pax, b"uid", meta.uid);
        let gid = id_field(&mut self.pax, b"gid", meta.gid);
        let size_field = if size > MAX_OCTAL_11 {
            record(&mut self.pax, b"size", size.to_string().as_bytes());
            0
        } else {
            size
        };
        let mtime = octal_time(meta.mtime.sec);
        if mtime.is_none() || meta.mtime.nsec != 0 {
            record(&mut self.pax, b"mtime", pax_time(meta.mtime).as_bytes());
        }
        // A hard link's xattrs are those of the name it points at.
        if m.link_to.is_none() {
            for x in &inode.xattrs {
                let mut key = Vec::with_capacity(x.name.len().saturating_add(13));
                key.extend_from_slice(b"SCHILY.xattr.");
                key.extend_from_slice(&x.name);
                record(&mut self.pax, &key, &x.value);
            }
        }

        if !self.pax.is_empty() {
            let xname = pax_header_name(path);
            let header = Header {
                name: &xname,
                prefix: b"",
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: self.pax.len() as u64,
                mtime: mtime.unwrap_or(if meta.mtime.sec < 0 { 0 } else { MAX_OCTAL_11 }),
                typeflag: b'x',
                link: b"",
                dev: None,
            };
            self.batch.put(&header.encode());
            self.batch.put(&self.pax);
            self.batch.pad(BLOCK as u64);
        }

        let header = Header {
            name,
            prefix,
            mode: u32::from(meta.perm & 0o7777),
            uid,
            gid,
            size: size_field,
            mtime: mtime.unwrap_or(0),
            typeflag,
            link,
            dev: Some(inode.rdev().unwrap_or((0, 0))),
        };
        self.batch.put(&header.encode());
        if let Some(data) = data {
            self.batch.data(data).map_err(|e| {
                Error::io(
                    format!("writing {} into the tar image", display_path(path)),
                    e,
                )
            })?;
            self.batch.pad(BLOCK as u64);
        }
        self.batch.end_member().map_err(write_error)
    }
}

/// A uid or gid for its 7-digit field; a larger one goes in a pax record
/// and the field holds 0.
fn id_field(pax: &mut Vec<u8>, key: &[u8], id: u32) -> u32 {
    if u64::from(id) > MAX_OCTAL_7 {
        record(pax, key, id.to_string().as_bytes());
        0
    } else {
        id
    }
}

/// The seconds for the 11-digit mtime field, if they fit there.
fn octal_time(sec: i64) -> Option<u64> {
    u64::try_from(sec).ok().filter(|&s| s <= MAX_OCTAL_11)
}

/// A pax time value: seconds and the fraction with trailing zeros trimmed.
/// Before the epoch the value is the real number, as GNU tar writes it
/// (`sec = -2, nsec = 5e8` is `-1.5`).
fn pax_time(t: Time) -> String {
    if t.nsec == 0 {
        return t.sec.to_string();
    }
    let (sign, whole, frac) = if t.sec < 0 {
        // |sec + 1| and 1e9 - nsec (the plan refused nsec >= 1e9); no
        // overflow for sec = i64::MIN.
        (
            "-",
            t.sec.unsigned_abs() - 1,
            1_000_000_000u32.saturating_sub(t.nsec),
        )
    } else {
        ("", t.sec.unsigned_abs(), t.nsec)
    };
    let digits = format!("{frac:09}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// Appends one `"<len> <key>=<value>\n"` record, where `len` counts the
/// whole record including its own digits.
fn record(pax: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // Key and value are in memory, so their lengths are far from overflow.
    let rest = key.len().saturating_add(value.len()).saturating_add(3);
    let mut len = rest.saturating_add(decimal_digits(rest));
    if decimal_digits(len) != decimal_digits(rest) {
        len = rest.saturating_add(decimal_digits(len));
    }
    pax.extend_from_slice(len.to_string().as_bytes());
    pax.push(b' ');
    pax.extend_from_slice(key);
    pax.push(b'=');
    pax.extend_from_slice(value);
    pax.push(b'\n');
}

fn decimal_digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Splits a member name into the ustar prefix and name fields, or `None`
/// when it needs a pax `path` record. A directory's trailing `/` stays in
/// the name field, which is never left empty.
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_LEN {
        return Some((b"", name));
    }
    let (_, head) = name.split_last()?;
    let head = head.get(..=PREFIX_LEN).unwrap_or(head);
    let slash = head.iter().rposition(|&b| b == b'/')?;
    let rest = name.get(slash.checked_add(1)?..)?;
    (rest.len() <= NAME_LEN).then(|| (&name[..slash], rest))
}

/// GNU tar's `%d/PaxHeaders/%f` for a tree path (the root is the empty path).
fn pax_header_name(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len().saturating_add(14));
    out.extend_from_slice(b"./");
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => {
            out.extend_from_slice(&path[..slash]);
            out.extend_from_slice(b"/PaxHeaders/");
            out.extend_from_slice(&path[slash + 1..]);
        }
        None if path.is_empty() => out.extend_from_slice(b"PaxHeaders/."),
        None => {
            out.extend_from_slice(b"PaxHeaders/");
            out.extend_from_slice(path);
        }
    }
    out
}

/// The fields of one ustar header block. Names longer than their field are
/// cut (the caller has put the full one in a pax record).
struct Header<'a> {
    name: &'a [u8],
    prefix: &'a [u8],
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &'a [u8],
    /// Device numbers; `None` leaves the fields empty, as GNU tar does in
    /// extended headers.
    dev: Option<(u32, u32)>,
}

impl Header<'_> {
    fn encode(&self) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        put_bytes(&mut b[0..100], self.name);
        put_number(&mut b[100..108], u64::from(self.mode));
        put_number(&mut b[108..116], u64::from(self.uid));
        put_number(&mut b[116..124], u64::from(self.gid));
        put_number(&mut b[124..136], self.size);
        put_number(&mut b[136..148], self.mtime);
        b[156] = self.typeflag;
        put_bytes(&mut b[157..257], self.link);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        // uname and gname stay empty: owners are numeric.
        if let Some((major, minor)) = self.dev {
            put_number(&mut b[329..337], u64::from(major));
            put_number(&mut b[337..345], u64::from(minor));
        }
        put_bytes(&mut b[345..500], self.prefix);
        // The sum is taken with the checksum field as spaces, and written as
        // six octal digits, a NUL and a space (at most 512 * 255 < 8^6).
        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        put_octal(&mut b[148..155], u64::from(sum));
        b
    }
}

fn put_bytes(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
}

/// A numeric field: zero-padded octal digits and a NUL, or, for a value too
/// large for them, GNU's base-256 form (a 0x80 marker byte, then the value
/// big-endian), which GNU tar and libarchive read. The types of the fields
/// keep every value within the base-256 range.
fn put_number(field: &mut [u8], v: u64) {
    if !put_octal(field, v) {
        field.fill(0);
        if let Some((marker, rest)) = field.split_first_mut() {
            *marker = 0x80;
            for (slot, byte) in rest.iter_mut().rev().zip(v.to_be_bytes().into_iter().rev()) {
                *slot = byte;
            }
        }
    }
}

/// Writes `v` as `field.len() - 1` octal digits and a NUL; false when it
/// does not fit.
fn put_octal(field: &mut [u8], mut v: u64) -> bool {
    let Some((nul, digits)) = field.split_last_mut() else {
        return false;
    };
    *nul = 0;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    v == 0
}

fn write_error(e: io::Error) -> Error {
    Error::io("writing the tar image", e)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use rootforge_common::{
        Content, Edit, FileData, Inode, Meta, Plain, Replace, Time, Tree, TreeBuilder,
    };

    use super::*;

    const T0: i64 = 1_700_000_000;

    fn meta(perm: u16) -> Meta {
        Meta::new(perm, 0, 0, Time::from_secs(T0))
    }

    fn put(b: &mut TreeBuilder, path: &str, meta: Meta, content: Content) -> InodeId {
        b.insert(path.as_bytes(), Inode::new(meta, content), Replace::Always)
            .unwrap()
    }

    fn file(data: &[u8]) -> Content {
        Content::File(FileData::bytes(data.to_vec()))
    }

    fn rep(c: char, n: usize) -> String {
        c.to_string().repeat(n)
    }

    const CAPABILITY: &[u8] =
        b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

    /// A 148-byte member name that splits into prefix and name.
    fn split_path() -> String {
        format!("long/{}/{}", rep('d', 60), rep('e', 80))
    }

    /// A 301-byte member name that cannot be split.
    fn unsplit_path() -> String {
        format!("deep/{}/{}", rep('g', 200), rep('h', 93))
    }

    /// A directory whose 129-byte name splits before its last component.
    fn split_dir() -> String {
        format!("dirs/{}/{}", rep('m', 60), rep('n', 60))
    }

    /// Every kind of entry, and every case that needs a pax record.
    fn sample() -> Tree {
        let mut b = TreeBuilder::new(meta(0o755));
        put(&mut b, "bin", meta(0o755), Content::Dir(BTreeMap::new()));
        let busybox = put(
            &mut b,
            "bin/busybox",
            meta(0o4755),
            file(&b"busybox\n".repeat(75)),
        );
        b.inode_mut(busybox)
            .set_xattr(b"security.capability", CAPABILITY);
        b.inode_mut(busybox).set_xattr(b"user.comment", b"hi");
        b.hard_link(b"sbin/init", b"bin/busybox").unwrap();
        b.hard_link(b"usr/bin/env", b"bin/busybox").unwrap();
        put(
            &mut b,
            "bin/sh",
            meta(0o777),
            Content::Symlink((*b"busybox").into()),
        );
        put(
            &mut b,
            "dev/console",
            meta(0o600),
            Content::CharDev { major: 5, minor: 1 },
        );
        b.hard_link(b"dev/console-again", b"dev/console").unwrap();
        put(
            &mut b,
            "dev/sda",
            Meta::new(0o660, 0, 6, Time::from_secs(T0)),
            Content::BlockDev { major: 8, minor: 0 },
        );
        put(
            &mut b,
            "dev/huge",
            meta(0o600),
            Content::CharDev {
                major: 3_000_000,
                minor: 4_000_000,
            },
        );
        put(&mut b, "dev/initctl", meta(0o600), Content::Fifo);
        put(&mut b, "run/socket", meta(0o755), Content::Socket);
        put(&mut b, "etc/empty", meta(0o644), file(b""));
        let at = |sec, nsec| Meta::new(0o644, 0, 0, Time { sec, nsec });
        put(&mut b, "etc/nanos", at(T0, 123_450_000), file(b"n"));
        put(&mut b, "etc/negative", at(-2, 500_000_000), file(b"-"));
        put(&mut b, "etc/negative-whole", at(-100, 0), file(b"-"));
        put(&mut b, "etc/y2038", at(4_000_000_000, 0), file(b"y"));
        put(&mut b, "etc/far", at(10_000_000_000, 0), file(b"f"));
        let id = |uid, gid| Meta::new(0o640, uid, gid, Time::from_secs(T0));
        put(
            &mut b,
            "etc/owner",
            id(4_000_000_000, 4_000_000_001),
            file(b"o"),
        );
        put(&mut b, "etc/maxid", id(0o7777777, 0o7777777), file(b"m"));
        let pattern: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        put(&mut b, "data/direct", meta(0o644), file(&pattern));
        put(
            &mut b,
            "data/zeros",
            meta(0o644),
            Content::File(FileData::zeros(100_000)),
        );
        put(&mut b, &split_path(), meta(0o644), file(b"split"));
        put(&mut b, &unsplit_path(), meta(0o644), file(b"unsplit"));
        put(
            &mut b,
            &split_dir(),
            meta(0o700),
            Content::Dir(BTreeMap::new()),
        );
        put(
            &mut b,
            "links/far",
            meta(0o777),
            Content::Symlink(rep('t', 200).into_bytes().into()),
        );
        put(
            &mut b,
            "links/near",
            meta(0o777),
            Content::Symlink(rep('u', 100).into_bytes().into()),
        );
        b.hard_link(b"links/hard-to-deep", unsplit_path().as_bytes())
            .unwrap();
        b.finish()
    }

    fn encode(tree: &Tree) -> (Vec<u8>, Report) {
        let mut out = Plain(Vec::new());
        let report = TarEncoder.write(&tree.view(), &mut out).unwrap();
        (out.0, report)
    }

    type Records = Vec<(Vec<u8>, Vec<u8>)>;

    /// Pax records parsed by their length prefix, as POSIX defines them (the
    /// `tar` crate splits at newlines, which values may hold).
    fn parse_records(mut data: &[u8]) -> Records {
        let mut out = Vec::new();
        while !data.is_empty() {
            let space = data.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&data[..space])
                .unwrap()
                .parse()
                .unwrap();
            let rec = &data[space + 1..len];
            assert_eq!(data[len - 1], b'\n', "record ends in a newline");
            let eq = rec.iter().position(|&b| b == b'=').unwrap();
            out.push((rec[..eq].to_vec(), rec[eq + 1..rec.len() - 1].to_vec()));
            data = &data[len..];
        }
        out
    }

    fn octal(field: &[u8]) -> u64 {
        let digits = field.split(|&b| b == 0).next().unwrap();
        u64::from_str_radix(std::str::from_utf8(digits).unwrap(), 8).unwrap()
    }

    fn cstr(field: &[u8]) -> &[u8] {
        field.split(|&b| b == 0).next().unwrap()
    }

    /// One header block and what follows it, straight from the bytes.
    struct Raw {
        header: [u8; BLOCK],
        data: Vec<u8>,
    }

    impl Raw {
        fn typeflag(&self) -> u8 {
            self.header[156]
        }

        fn name(&self) -> Vec<u8> {
            let prefix = cstr(&self.header[345..500]);
            let name = cstr(&self.header[..100]);
            if prefix.is_empty() {
                name.to_vec()
            } else {
                [prefix, b"/", name].concat()
            }
        }
    }

    /// Walks the archive block by block up to the first zero block, checking
    /// every header's magic and checksum on the way.
    fn raw_members(bytes: &[u8]) -> (Vec<Raw>, usize) {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let header: [u8; BLOCK] = bytes[at..at + BLOCK].try_into().unwrap();
            if header == [0; BLOCK] {
                return (out, at);
            }
            assert_eq!(&header[257..265], b"ustar\x0000");
            let mut blank = header;
            blank[148..156].fill(b' ');
            let sum: u32 = blank.iter().map(|&b| u32::from(b)).sum();
            assert_eq!(&header[148..156], format!("{sum:06o}\0 ").as_bytes());
            let size = usize::try_from(octal(&header[124..136])).unwrap();
            let start = at + BLOCK;
            out.push(Raw {
                header,
                data: bytes[start..start + size].to_vec(),
            });
            at = start + size.div_ceil(BLOCK) * BLOCK;
        }
    }

    /// The members that carry an extended header, by member name.
    fn pax_of(members: &[Raw]) -> BTreeMap<Vec<u8>, (Raw, Records)> {
        let mut out = BTreeMap::new();
        for pair in members.windows(2) {
            if pair[0].typeflag() == b'x' {
                let records = parse_records(&pair[0].data);
                let name = records
                    .iter()
                    .find(|(k, _)| k == b"path")
                    .map_or_else(|| pair[1].name(), |(_, v)| v.clone());
                let x = Raw {
                    header: pair[0].header,
                    data: pair[0].data.clone(),
                };
                out.insert(name, (x, records));
            }
        }
        out
    }

    #[test]
    fn reads_back_with_the_tar_crate() {
        let tree = sample();
        let view = tree.view();
        let (bytes, report) = encode(&tree);
        assert_eq!(bytes.len() % RECORD as usize, 0);
        assert_eq!(report.bytes, bytes.len() as u64);
        assert_eq!(
            report.warnings,
            ["tar cannot store sockets: skipped 1 (first: /run/socket)"]
        );

        let mut archive = tar::Archive::new(&bytes[..]);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path_bytes().into_owned();
            names.push(String::from_utf8(name.clone()).unwrap());
            let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            if let Some(exts) = entry.pax_extensions().unwrap() {
                for ext in exts {
                    let ext = ext.unwrap();
                    pax.insert(ext.key_bytes().to_vec(), ext.value_bytes().to_vec());
                }
            }
            assert!(!pax.contains_key(&b"atime"[..]) && !pax.contains_key(&b"ctime"[..]));
            let h = entry.header().clone();
            let kind = h.entry_type();
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();

            let path = name.strip_prefix(b"./").unwrap();
            let is_dir = kind == tar::EntryType::Directory;
            assert_eq!(name.ends_with(b"/"), is_dir, "{}", names.last().unwrap());
            let inode = view.inode(view.lookup(path).unwrap());
            let m = inode.meta;

            // A pax record wins over its field, which holds the seconds if
            // they fit.
            let number = |key: &[u8], field: u64, fallback: u64| match pax.get(key) {
                Some(v) => {
                    assert_eq!(field, fallback, "{key:?} field");
                    String::from_utf8(v.clone()).unwrap()
                }
                None => field.to_string(),
            };
            let sec = m.mtime.sec;
            let mtime_field = if (0..=0o77777777777).contains(&sec) {
                sec as u64
            } else {
                0
            };
            assert_eq!(h.mode().unwrap(), u32::from(m.perm));
            // The tar crate applies pax uid and gid to the header itself.
            assert_eq!(h.uid().unwrap(), u64::from(m.uid));
            assert_eq!(h.gid().unwrap(), u64::from(m.gid));
            let mtime = number(b"mtime", h.mtime().unwrap(), mtime_field);
            let want_mtime = match (m.mtime.sec, m.mtime.nsec) {
                (s, 0) => s.to_string(),
                (T0, 123_450_000) => "1700000000.12345".to_owned(),
                (-2, 500_000_000) => "-1.5".to_owned(),
                other => panic!("unexpected mtime {other:?}"),
            };
            assert_eq!(mtime, want_mtime);
            assert_eq!(h.username_bytes(), Some(&b""[..]));
            assert_eq!(h.groupname_bytes(), Some(&b""[..]));

            let xattrs: Vec<(Vec<u8>, Vec<u8>)> = pax
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(b"SCHILY.xattr.")?.to_vec(), v.clone())))
                .collect();
            if kind == tar::EntryType::Link {
                assert!(xattrs.is_empty());
                assert!(data.is_empty());
                continue;
            }
            let want: Vec<_> = inode
                .xattrs
                .iter()
                .map(|x| (x.name.to_vec(), x.value.to_vec()))
                .collect();
            assert_eq!(xattrs, want);
            match &inode.content {
                Content::Dir(_) => assert!(is_dir),
                Content::File(d) => {
                    assert_eq!(kind, tar::EntryType::Regular);
                    assert_eq!(data, d.to_vec().unwrap());
                }
                Content::Symlink(t) => {
                    assert_eq!(kind, tar::EntryType::Symlink);
                    assert_eq!(link.as_deref(), Some(&t[..]));
                }
                Content::CharDev { .. } | Content::BlockDev { .. } => {
                    let block = matches!(inode.content, Content::BlockDev { .. });
                    assert_eq!(kind.is_block_special(), block);
                    assert_eq!(kind.is_character_special(), !block);
                    // The tar crate reads device fields as octal only; the
                    // base-256 ones of dev/huge are checked byte by byte.
                    if path != b"dev/huge" {
                        let (major, minor) = inode.rdev().unwrap();
                        assert_eq!(h.device_major().unwrap(), Some(major));
                        assert_eq!(h.device_minor().unwrap(), Some(minor));
                    }
                }
                Content::Fifo => assert_eq!(kind, tar::EntryType::Fifo),
                Content::Socket => panic!("socket stored"),
            }
        }

        let mut want: Vec<String> = [
            "./",
            "./bin/",
            "./bin/busybox",
            "./bin/sh",
            "./data/",
            "./data/direct",
            "./data/zeros",
            "./deep/",
        ]
        .map(String::from)
        .to_vec();
        want.push(format!("./deep/{}/", rep('g', 200)));
        want.push(format!("./{}", unsplit_path()));
        want.extend(
            [
                "./dev/",
                "./dev/console",
                "./dev/console-again",
                "./dev/huge",
            ]
            .map(String::from),
        );
        want.extend(["./dev/initctl", "./dev/sda", "./dirs/"].map(String::from));
        want.push(format!("./dirs/{}/", rep('m', 60)));
        want.push(format!("./{}/", split_dir()));
        want.push("./etc/".into());
        for f in [
            "empty",
            "far",
            "maxid",
            "nanos",
            "negative",
            "negative-whole",
            "owner",
            "y2038",
        ] {
            want.push(format!("./etc/{f}"));
        }
        want.extend(
            [
                "./links/",
                "./links/far",
                "./links/hard-to-deep",
                "./links/near",
            ]
            .map(String::from),
        );
        want.push("./long/".into());
        want.push(format!("./long/{}/", rep('d', 60)));
        want.push(format!("./{}", split_path()));
        want.extend(
            [
                "./run/",
                "./sbin/",
                "./sbin/init",
                "./usr/",
                "./usr/bin/",
                "./usr/bin/env",
            ]
            .map(String::from),
        );
        assert_eq!(names, want);
    }

    #[test]
    fn hard_links_point_at_the_first_name() {
        let (bytes, _) = encode(&sample());
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut links = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            if entry.header().entry_type() == tar::EntryType::Link {
                assert_eq!(entry.size(), 0);
                let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
                let target = entry.link_name_bytes().unwrap().into_owned();
                links.insert(name, String::from_utf8(target).unwrap());
            }
        }
        let want = BTreeMap::from([
            ("./dev/console-again".to_owned(), "./dev/console".to_owned()),
            (
                "./links/hard-to-deep".to_owned(),
                format!("./{}", unsplit_path()),
            ),
            ("./sbin/init".to_owned(), "./bin/busybox".to_owned()),
            ("./usr/bin/env".to_owned(), "./bin/busybox".to_owned()),
        ]);
        assert_eq!(links, want);
    }

    #[test]
    fn raw_layout_follows_gnu_tar() {
        let (bytes, _) = encode(&sample());
        let (members, end) = raw_members(&bytes);
        // Two zero blocks end the archive, then zeros to the record size.
        assert!(bytes.len() - end >= 2 * BLOCK);
        assert!(bytes[end..].iter().all(|&b| b == 0));

        let pax = pax_of(&members);
        let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, (x, records)) in &pax {
            let name = String::from_utf8(name.clone()).unwrap();
            keys.insert(
                name.clone(),
                records
                    .iter()
                    .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
                    .collect(),
            );
            // GNU tar's extended header fields.
            let h = &x.header;
            assert_eq!(&h[100..124], b"0000644\x000000000\x000000000\x00");
            assert_eq!(&h[329..345], &[0; 16]);
            assert_eq!(&h[265..329], &[0; 64]);
            assert_eq!(octal(&h[124..136]), x.data.len() as u64);
            let path = name.trim_start_matches("./").trim_end_matches('/');
            let (dir, base) = match path.rsplit_once('/') {
                Some((d, b)) => (format!("./{d}"), b),
                None if path.is_empty() => (".".to_owned(), "."),
                None => (".".to_owned(), path),
            };
            let xname = format!("{dir}/PaxHeaders/{base}");
            let cut = &xname.as_bytes()[..xname.len().min(100)];
            assert_eq!(cstr(&h[..100]), cut, "{name}");
        }
        let mtime = |n: &str| (n.to_owned(), vec!["mtime".to_owned()]);
        let want = BTreeMap::from([
            (
                "./bin/busybox".to_owned(),
                vec![
                    "SCHILY.xattr.security.capability".to_owned(),
                    "SCHILY.xattr.user.comment".to_owned(),
                ],
            ),
            (
                format!("./deep/{}/", rep('g', 200)),
                vec!["path".to_owned()],
            ),
            (format!("./{}", unsplit_path()), vec!["path".to_owned()]),
            mtime("./etc/far"),
            mtime("./etc/nanos"),
            mtime("./etc/negative"),
            mtime("./etc/negative-whole"),
            (
                "./etc/owner".to_owned(),
                vec!["uid".to_owned(), "gid".to_owned()],
            ),
            ("./links/far".to_owned(), vec!["linkpath".to_owned()]),
            (
                "./links/hard-to-deep".to_owned(),
                vec!["linkpath".to_owned()],
            ),
        ]);
        assert_eq!(keys, want);

        let value = |name: &str, key: &str| {
            let (_, records) = &pax[name.as_bytes()];
            records
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            value("./bin/busybox", "SCHILY.xattr.security.capability"),
            CAPABILITY
        );
        assert_eq!(value("./etc/nanos", "mtime"), b"1700000000.12345");
        assert_eq!(value("./etc/negative", "mtime"), b"-1.5");
        assert_eq!(value("./etc/negative-whole", "mtime"), b"-100");
        assert_eq!(value("./etc/far", "mtime"), b"10000000000");
        assert_eq!(value("./etc/owner", "uid"), b"4000000000");
        assert_eq!(value("./etc/owner", "gid"), b"4000000001");
        assert_eq!(value("./links/far", "linkpath"), rep('t', 200).as_bytes());

        let by_name = |name: &str| {
            members
                .iter()
                .find(|m| m.typeflag() != b'x' && m.name() == name.as_bytes())
                .unwrap()
        };
        // Extended headers carry the entry's mtime, clamped to the field.
        let x_mtime = |name: &str| octal(&pax[name.as_bytes()].0.header[136..148]);
        assert_eq!(x_mtime("./etc/nanos"), T0 as u64);
        assert_eq!(x_mtime("./etc/negative"), 0);
        assert_eq!(x_mtime("./etc/far"), MAX_OCTAL_11);
        assert_eq!(octal(&by_name("./etc/far").header[136..148]), 0);
        assert_eq!(octal(&by_name("./etc/negative").header[136..148]), 0);
        assert_eq!(
            octal(&by_name("./etc/y2038").header[136..148]),
            4_000_000_000
        );
        assert_eq!(octal(&by_name("./etc/maxid").header[108..116]), 0o7777777);
        assert_eq!(
            &by_name("./etc/owner").header[108..124],
            b"0000000\x000000000\x00"
        );

        // 148 bytes: prefix and name, no pax record.
        let split = by_name(&format!("./{}", split_path()));
        assert_eq!(
            cstr(&split.header[345..500]),
            format!("./long/{}", rep('d', 60)).as_bytes()
        );
        assert_eq!(cstr(&split.header[..100]), rep('e', 80).as_bytes());
        let dir = by_name(&format!("./{}/", split_dir()));
        assert_eq!(
            cstr(&dir.header[..100]),
            format!("{}/", rep('n', 60)).as_bytes()
        );
        // Too long to split: the first 100 bytes, the rest in `path`.
        let deep = format!("./{}", unsplit_path());
        let unsplit = members
            .iter()
            .find(|m| m.typeflag() == b'0' && m.header[..100] == deep.as_bytes()[..100])
            .unwrap();
        assert_eq!(cstr(&unsplit.header[345..500]), b"");
        assert_eq!(value(&deep, "path"), deep.as_bytes());
        // A long symlink target: the first 100 bytes in the field.
        assert_eq!(
            &by_name("./links/far").header[157..257],
            rep('t', 100).as_bytes()
        );
        assert_eq!(
            &by_name("./links/near").header[157..257],
            rep('u', 100).as_bytes()
        );

        // Numeric field formats, as GNU tar writes them.
        let sda = by_name("./dev/sda");
        assert_eq!(
            &sda.header[100..148],
            b"0000660\x000000000\x000000006\x0000000000000\x0014524770400\x00"
        );
        assert_eq!(&sda.header[329..345], b"0000010\x000000000\x00");
        assert_eq!(
            &by_name("./bin/").header[329..345],
            b"0000000\x000000000\x00"
        );
        // Device numbers beyond 7 octal digits: base-256.
        let huge = by_name("./dev/huge");
        assert_eq!(&huge.header[329..337], b"\x80\0\0\0\0\x2d\xc6\xc0");
        assert_eq!(&huge.header[337..345], b"\x80\0\0\0\0\x3d\x09\x00");
    }

    /// A header block as GNU tar 1.34 writes it (`--format=posix
    /// --numeric-owner`), from its fields as text.
    #[allow(clippy::too_many_arguments)]
    fn gnu_block(
        name: &str,
        mode: &str,
        size: &str,
        mtime: &str,
        chksum: &str,
        typeflag: u8,
        link: &str,
        dev: (&str, &str),
    ) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        let mut put = |at: usize, s: &str| b[at..at + s.len()].copy_from_slice(s.as_bytes());
        put(0, name);
        put(100, mode);
        put(108, "0000000");
        put(116, "0000000");
        put(124, size);
        put(136, mtime);
        put(148, chksum);
        put(155, " ");
        put(157, link);
        put(257, "ustar");
        put(263, "00");
        put(329, dev.0);
        put(337, dev.1);
        b[156] = typeflag;
        b
    }

    #[test]
    fn headers_are_byte_identical_to_gnu_tar() {
        let t = Time::from_secs(T0);
        let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, t));
        put(&mut b, "bin", meta(0o755), Content::Dir(BTreeMap::new()));
        let nanos = Time {
            sec: 1_577_836_800,
            nsec: 500_000_000,
        };
        put(
            &mut b,
            "bin/busybox",
            Meta::new(0o644, 0, 0, nanos),
            file(b"hello\n"),
        );
        b.hard_link(b"bin/sh2", b"bin/busybox").unwrap();
        put(
            &mut b,
            "bin/sh",
            meta(0o777),
            Content::Symlink((*b"busybox").into()),
        );
        put(&mut b, "dev", meta(0o755), Content::Dir(BTreeMap::new()));
        put(&mut b, "dev/fifo", meta(0o644), Content::Fifo);
        put(
            &mut b,
            "dev/null",
            meta(0o644),
            Content::CharDev { major: 1, minor: 3 },
        );
        let (bytes, _) = encode(&b.finish());
        let (members, _) = raw_members(&bytes);

        // GNU tar's own output for the same tree, checksums included.
        let z = ("0000000", "0000000");
        let none = "00000000000";
        let t0 = "14524770400";
        let want = [
            gnu_block("./", "0000755", none, t0, "007404", b'5', "", z),
            gnu_block("./bin/", "0000755", none, t0, "010154", b'5', "", z),
            gnu_block(
                "./bin/busybox",
                "0000644",
                "00000000006",
                "13602760400",
                "011561",
                b'0',
                "",
                z,
            ),
            gnu_block(
                "./bin/sh", "0000777", none, t0, "012124", b'2', "busybox", z,
            ),
            gnu_block(
                "./bin/sh2",
                "0000644",
                none,
                "13602760400",
                "013076",
                b'1',
                "./bin/busybox",
                z,
            ),
            gnu_block("./dev/", "0000755", none, t0, "010162", b'5', "", z),
            gnu_block("./dev/fifo", "0000644", none, t0, "011024", b'6', "", z),
            gnu_block(
                "./dev/null",
                "0000644",
                none,
                t0,
                "011054",
                b'3',
                "",
                ("0000001", "0000003"),
            ),
        ];
        let headers: Vec<_> = members.iter().filter(|m| m.typeflag() != b'x').collect();
        assert_eq!(headers.len(), want.len());
        for (got, want) in headers.iter().zip(&want) {
            assert_eq!(
                got.header,
                *want,
                "{}",
                String::from_utf8_lossy(cstr(&want[..100]))
            );
        }
        assert_eq!(headers[2].data, b"hello\n");

        // Only the nanosecond mtimes get an extended header, named as GNU
        // tar names it; GNU tar's adds `ctime=0` and `atime=0`.
        let x: Vec<_> = members.iter().filter(|m| m.typeflag() == b'x').collect();
        assert_eq!(x.len(), 2);
        for m in x {
            let mut want = gnu_block(
                "./bin/PaxHeaders/busybox",
                "0000644",
                "00000000026",
                "13602760400",
                "",
                b'x',
                "",
                ("", ""),
            );
            want[148..156].copy_from_slice(&m.header[148..156]);
            let name = cstr(&m.header[..100]);
            want[..100].fill(0);
            want[..name.len()].copy_from_slice(name);
            assert!(name == b"./bin/PaxHeaders/busybox" || name == b"./bin/PaxHeaders/sh2");
            assert_eq!(m.header, want);
            assert_eq!(m.data, b"22 mtime=1577836800.5\n");
        }
        // GNU tar names the root's extended header `./PaxHeaders/.`.
        assert_eq!(pax_header_name(b""), b"./PaxHeaders/.");
        assert_eq!(pax_header_name(b"bin"), b"./PaxHeaders/bin");
        assert_eq!(pax_header_name(b"bin/ping"), b"./bin/PaxHeaders/ping");
    }

    #[test]
    fn output_is_deterministic_and_record_padded() {
        let tree = sample();
        let (a, _) = encode(&tree);
        let (b, _) = encode(&tree);
        assert!(a == b);
        assert_eq!(a.len() % 10240, 0);

        // The smallest archive: the root, two zero blocks, one record.
        let empty = TreeBuilder::new(meta(0o755)).finish();
        let (bytes, report) = encode(&empty);
        assert_eq!(bytes.len(), 10240);
        assert_eq!(report.bytes, 10240);
        assert!(report.warnings.is_empty());
        assert_eq!(cstr(&bytes[..100]), b"./");
        assert!(bytes[BLOCK..].iter().all(|&b| b == 0));
    }

    /// A sink that records where boundaries are marked.
    struct Marks {
        bytes: Vec<u8>,
        marks: Vec<usize>,
        writes: usize,
    }

    impl std::io::Write for Marks {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Marks {
        fn boundary(&mut self) -> io::Result<()> {
            self.marks.push(self.bytes.len());
            Ok(())
        }
    }

    #[test]
    fn boundaries_fall_between_members() {
        let tree = sample();
        let mut sink = Marks {
            bytes: Vec::new(),
            marks: Vec::new(),
            writes: 0,
        };
        TarEncoder.write(&tree.view(), &mut sink).unwrap();
        let (members, end) = raw_members(&sink.bytes);
        // Where each member (with its extended header) ends.
        let mut ends = Vec::new();
        let mut at = 0;
        for m in &members {
            at += BLOCK + m.data.len().div_ceil(BLOCK) * BLOCK;
            if m.typeflag() != b'x' {
                ends.push(at);
            }
        }
        assert_eq!(at, end);
        let (last, inner) = sink.marks.split_last().unwrap();
        assert_eq!(*last, sink.bytes.len());
        assert!(!inner.is_empty());
        for mark in inner {
            assert!(ends.contains(mark), "boundary at {mark} is inside a member");
        }
        // The large files go out directly, the rest in a few big writes.
        assert!(sink.writes < 10, "{} writes", sink.writes);
    }

    #[test]
    fn check_refuses_only_what_pax_cannot_say() {
        let tree = sample();
        TarEncoder.check(&tree.view()).unwrap();

        let mut b = TreeBuilder::new(meta(0o755));
        put(
            &mut b,
            "a",
            meta(0o777),
            Content::Symlink((*b"x\0y").into()),
        );
        let err = TarEncoder.check(&b.finish().view()).unwrap_err();
        assert!(
            err.to_string().contains("/a: tar cannot store a NUL byte"),
            "{err}"
        );

        let mut b = TreeBuilder::new(meta(0o755));
        let f = put(&mut b, "f", meta(0o644), file(b""));
        b.inode_mut(f).set_xattr(b"user.a=b", b"1");
        let tree = b.finish();
        let err = TarEncoder.check(&tree.view()).unwrap_err();
        assert!(
            err.to_string()
                .contains("/f: tar cannot store an xattr name"),
            "{err}"
        );
        let mut out = Plain(Vec::new());
        assert!(TarEncoder.write(&tree.view(), &mut out).is_err());
        assert!(out.0.is_empty(), "nothing written before the check");

        let mut b = TreeBuilder::new(meta(0o755));
        let bad = Meta::new(
            0o644,
            0,
            0,
            Time {
                sec: 0,
                nsec: 1_000_000_000,
            },
        );
        put(&mut b, "t", bad, file(b""));
        assert!(TarEncoder.check(&b.finish().view()).is_err());
    }

    #[test]
    fn record_lengths_count_themselves() {
        let mut pax = Vec::new();
        // Around every change in the number of digits of the length.
        for n in 0..1100 {
            pax.clear();
            let value = vec![b'v'; n];
            record(&mut pax, b"path", &value);
            let records = parse_records(&pax);
            assert_eq!(records, [(b"path".to_vec(), value)]);
        }
    }

    #[test]
    fn values_may_hold_newlines_and_any_byte() {
        let mut b = TreeBuilder::new(meta(0o755));
        let f = put(&mut b, "f", meta(0o644), file(b"x"));
        let value: Vec<u8> = (0..=255u8).collect();
        b.inode_mut(f).set_xattr(b"user.bytes", &value);
        b.inode_mut(f)
            .set_xattr(b"security.selinux", b"system_u:object_r:bin_t:s0\0");
        let (bytes, _) = encode(&b.finish());
        let (members, _) = raw_members(&bytes);
        let pax = pax_of(&members);
        let (_, records) = &pax[&b"./f"[..]];
        assert_eq!(
            records,
            &[
                (
                    b"SCHILY.xattr.security.selinux".to_vec(),
                    b"system_u:object_r:bin_t:s0\0".to_vec()
                ),
                (b"SCHILY.xattr.user.bytes".to_vec(), value),
            ]
        );
    }

    #[test]
    fn names_split_only_at_a_slash_that_fits() {
        let name = |s: String| s.into_bytes();
        // 100 bytes fit the name field as they are.
        let n = name(format!("./{}", rep('a', 98)));
        assert_eq!(split_name(&n), Some((&b""[..], &n[..])));
        // The prefix holds at most 155 bytes.
        let n = name(format!("./{}/{}", rep('a', 153), rep('b', 10)));
        assert_eq!(split_name(&n).map(|(p, _)| p.len()), Some(155));
        let n = name(format!("./{}/{}", rep('a', 154), rep('b', 10)));
        assert_eq!(split_name(&n), None);
        // The name part holds at most 100 bytes.
        let n = name(format!("./a/{}", rep('b', 101)));
        assert_eq!(split_name(&n), None);
        // A directory's own trailing slash is not a split point.
        let n = name(format!("./{}/", rep('a', 120)));
        assert_eq!(split_name(&n), None);
        let n = name(format!("./x/{}/", rep('a', 99)));
        assert_eq!(split_name(&n), Some((&b"./x"[..], &n[4..])));
    }
}
