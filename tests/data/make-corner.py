#!/usr/bin/env python3
"""Writes the corner-case rootfs tarball that the integration tests feed to
every encoder (and that the VM tests boot as an initramfs).

    python3 tests/data/make-corner.py OUT.tar [--files N] [--with-newline]
                                              [--negative-mtime]

Python 3 stdlib only, no root needed. The output is byte-identical on every
run: fixed mtimes, sorted members, pax format, numeric owners with empty user
and group names, and file contents from a seeded hash (SHAKE-256).
Headers are written the way GNU tar writes them (see `member`).

Each top-level directory holds one group of cases; the comment above each
`add_*` function says what it exercises. Every member is written in
`find . | LC_ALL=C sort` order of its path, with one deliberate exception
(see `add_links`). About 5.6 MiB with the default 5000-file directory.

Known reactions of other tools: GNU tar extracts it cleanly, but restores a
directory's mtime when it leaves the directory in archive order, so sort/x
and links/y end up with the extraction time; bsdtar lists and extracts the
non-UTF-8 name but exits 1 ("can't be converted from UTF-8"), as it does for
any GNU tar archive holding such a name.

Options that make the tree unrepresentable in some formats are opt-in:
  --with-newline    a file name containing "\\n" (breaks line-based listings
                    and `find | cpio`)
  --negative-mtime  a file dated before 1970 (newc, squashfs and ISO9660
                    cannot hold it)
"""

import argparse
import hashlib
import os
import struct
import tarfile
from dataclasses import dataclass, field

MTIME = 1700000000  # 2023-11-14T22:13:20Z, the default for every member


@dataclass
class Entry:
    """One tar member. `path` is the name without "./", as bytes."""

    path: bytes
    kind: bytes  # a tarfile *TYPE constant
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = MTIME
    mtime_ns: int = 0
    data: bytes = b""
    link: bytes = b""  # symlink target, or the target path of a hard link
    dev: tuple = (0, 0)
    xattrs: dict = field(default_factory=dict)


class Tree:
    def __init__(self):
        self.entries = {}

    def add(self, path, kind, mode, **fields):
        if path in self.entries:
            raise ValueError(f"duplicate path {path!r}")
        self.entries[path] = Entry(path, kind, mode, **fields)

    def dir(self, path, mode=0o755, **fields):
        self.add(path, tarfile.DIRTYPE, mode, **fields)

    def file(self, path, data=b"", mode=0o644, **fields):
        self.add(path, tarfile.REGTYPE, mode, data=data, **fields)

    def symlink(self, path, target, **fields):
        self.add(path, tarfile.SYMTYPE, 0o777, link=target, **fields)

    def hardlink(self, path, target):
        """`path` becomes another name of the regular file `target`."""
        t = self.entries[target]
        self.add(
            path, tarfile.LNKTYPE, t.mode, uid=t.uid, gid=t.gid, mtime=t.mtime,
            mtime_ns=t.mtime_ns, link=target,
        )

    def parents(self):
        """Adds every missing ancestor directory with default metadata."""
        for path in list(self.entries):
            while b"/" in path:
                path = path.rsplit(b"/", 1)[0]
                if path not in self.entries:
                    self.dir(path)
        if b"" not in self.entries:
            self.dir(b"")

    def ordered(self):
        """Members in path order, except that a hard link whose name sorts
        before its target follows the target: tar needs the target first."""
        deferred = {}
        main = []
        for path in sorted(self.entries):
            e = self.entries[path]
            if e.kind == tarfile.LNKTYPE and path < e.link:
                deferred.setdefault(e.link, []).append(e)
            else:
                main.append(e)
        for e in main:
            yield e
            yield from deferred.get(e.path, [])


def noise(seed, size):
    """Deterministic pseudo-random bytes."""
    return hashlib.shake_256(seed).digest(size)


def member_name(path):
    return b"./" + path if path else b"./"


def octal(value, width):
    """A NUL-terminated octal field of `width` bytes."""
    field = b"%0*o\0" % (width - 1, value)
    if len(field) != width:
        raise ValueError(f"{value} does not fit a {width}-byte field")
    return field


def pax_record(key, value):
    """`LEN key=value\n`, where LEN counts its own digits."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n += 1
    return b"%d" % n + body


def ustar(name, mode, uid, gid, size, mtime, kind, link, dev):
    fields = [
        name[:100].ljust(100, b"\0"),
        octal(mode, 8),
        octal(uid, 8),
        octal(gid, 8),
        octal(size, 12),
        octal(mtime, 12),
        b" " * 8,  # checksum, summed as spaces
        kind,
        link[:100].ljust(100, b"\0"),
        b"ustar\x0000",
        bytes(64),  # uname, gname: numeric owners only
        octal(dev[0], 8),
        octal(dev[1], 8),
        bytes(155),  # prefix: long names go in pax records instead
    ]
    block = b"".join(fields).ljust(512, b"\0")
    checksum = b"%06o\0 " % sum(block)
    return block[:148] + checksum + block[156:]


def padded(data):
    return data + bytes(-len(data) % 512)


def member(e):
    """The pax header (when needed), ustar header and data of one entry.

    Written by hand rather than with tarfile: tarfile adds `hdrcharset=BINARY`
    when a value is not UTF-8, which GNU tar warns about. This writes what GNU
    tar writes: raw bytes in `path`, `linkpath` and `SCHILY.xattr.*`."""
    name = member_name(e.path)
    if e.kind == tarfile.DIRTYPE and not name.endswith(b"/"):
        name += b"/"
    link = member_name(e.link) if e.kind == tarfile.LNKTYPE else e.link
    records = []
    if len(name) > 100 or not name.isascii():
        records.append(pax_record(b"path", name))
    if len(link) > 100 or not link.isascii():
        records.append(pax_record(b"linkpath", link))
    uid, gid, mtime = e.uid, e.gid, e.mtime
    if uid >= 8**7:
        records.append(pax_record(b"uid", b"%d" % uid))
        uid = 0
    if gid >= 8**7:
        records.append(pax_record(b"gid", b"%d" % gid))
        gid = 0
    if e.mtime_ns or not 0 <= mtime < 8**11:
        frac = (b".%09d" % e.mtime_ns).rstrip(b"0").rstrip(b".")
        records.append(pax_record(b"mtime", b"%d" % mtime + frac))
        mtime = min(max(mtime, 0), 8**11 - 1)
    for key, value in sorted(e.xattrs.items()):
        records.append(pax_record(b"SCHILY.xattr." + key, value))
    out = b""
    if records:
        # GNU tar's deterministic extended header name, as Buildroot sets it.
        parent, _, base = name.rstrip(b"/").rpartition(b"/")
        pax_name = parent + b"/PaxHeaders/" + base
        data = b"".join(records)
        kind = tarfile.XHDTYPE
        out += ustar(pax_name, 0o644, 0, 0, len(data), mtime, kind, b"", (0, 0))
        out += padded(data)
    out += ustar(name, e.mode, uid, gid, len(e.data), mtime, e.kind, link, e.dev)
    return out + padded(e.data)


def write(tree, out):
    with open(out, "wb") as f:
        written = 0
        for e in tree.ordered():
            written += f.write(member(e))
        # End of archive: two zero blocks, then pad to GNU tar's 10 KiB record.
        written += f.write(bytes(1024))
        f.write(bytes(-written % 10240))


# Names: a 255-byte name (ASCII and 3-byte UTF-8), a path over 1024 bytes
# through nested directories, unicode in NFC and NFD (two distinct names),
# emoji, CJK, whitespace, shell and glob metacharacters, dots, and bytes that
# are not UTF-8.
def add_names(t, with_newline, name_max):
    # The longest names: 255 bytes (NAME_MAX), or the --name-max a format
    # allows (Linux reads Rock Ridge names of at most 253 bytes).
    t.file(b"names/" + b"n" * (name_max - 4) + b".%d" % name_max,
           b"%d-byte name\n" % name_max)
    t.file(b"names/" + "漢".encode() * (name_max // 3),
           b"%d bytes, %d characters\n" % (name_max // 3 * 3, name_max // 3))
    long_dir = b"names/long"
    for i in range(6):
        long_dir += b"/" + (b"%d-" % i) + b"d" * 198
    t.file(long_dir + b"/leaf", b"path over 1024 bytes\n")
    assert len(long_dir) > 1024
    plain = [
        "caf\u00e9",  # NFC
        "cafe\u0301",  # NFD: same glyphs, other bytes
        "\U0001f980 crab",
        "漢字テスト",
        "with space",
        "trailing space ",
        " leading space",
        "tab\there",
        "-leading-dash",
        "--double-dash",
        "#hash",
        "back\\slash",
        "quote'single",
        'quote"double',
        "glob*?[x]",
        "$dollar",
        "colon:semi;",
        "...",
        ".hidden",
    ]
    for name in plain:
        t.file(b"names/" + name.encode(), name.encode() + b"\n")
    t.file(b"names/\xff\xfe-not-utf8", b"invalid UTF-8 name\n")
    if with_newline:
        t.file(b"names/new\nline", b"newline in name\n")


# Sort order: whole-path byte order (`find | LC_ALL=C sort`) puts "x-1",
# "x.txt" and "x y" between "x" and "x/y"; per-directory order does not.
# Uppercase sorts before lowercase.
def add_sort(t):
    t.dir(b"sort/x")
    t.file(b"sort/x/y", b"y\n")
    for name in (b"x-1", b"x.txt", b"x y", b"x0", b"X", b"x~"):
        t.file(b"sort/" + name, name + b"\n")


# One directory with many entries (ext htree, squashfs directory index, cpio
# and tar throughput). Every tenth file has a little content.
def add_bigdir(t, files):
    for i in range(files):
        data = b"file %d\n" % i if i % 10 == 0 else b""
        t.file(b"bigdir/f%05d" % i, data)


# Hard links across directories: a group of 2, a group of 3, a group of two
# empty files, and a group whose link sorts before its target. Tar needs the
# target first, so that link is written right after the target, out of path
# order: readers must not assume sorted input, and writers that put the data
# on the first (tar) or last (cpio) name must pick it themselves.
def add_links(t):
    t.file(b"links/a/two", noise(b"links/two", 1000))
    t.hardlink(b"links/b/two", b"links/a/two")
    t.file(b"links/a/three", noise(b"links/three", 5000), mode=0o755)
    t.hardlink(b"links/b/three", b"links/a/three")
    t.hardlink(b"links/c/three", b"links/a/three")
    t.file(b"links/a/empty")
    t.hardlink(b"links/c/empty", b"links/a/empty")
    t.file(b"links/z/reversed", b"data lives under z/, the first name is y/\n")
    t.hardlink(b"links/y/reversed", b"links/z/reversed")


# Owners beyond 16 bits and beyond 31 bits (pax uid/gid records, ext high
# 16-bit fields, squashfs id table), on files, a directory and a symlink.
def add_owners(t):
    for uid in (65534, 65536, 2147483647, 4000000000):
        t.file(b"owners/uid-%d" % uid, b"", uid=uid, gid=uid)
    t.file(b"owners/mixed", b"", uid=0, gid=4000000000)
    t.dir(b"owners/dir-65536", uid=65536, gid=65536)
    t.symlink(b"owners/symlink-4000000000", b"mixed", uid=4000000000, gid=1)


# Device numbers at the Linux limits (12-bit major, 20-bit minor) and a pair
# that needs the new-style encoding (minor > 255), as char and block nodes.
def add_devices(t):
    for major, minor in ((4095, 1048575), (259, 256)):
        t.add(b"dev/char-%d-%d" % (major, minor), tarfile.CHRTYPE, 0o600,
              dev=(major, minor))
        t.add(b"dev/block-%d-%d" % (major, minor), tarfile.BLKTYPE, 0o660,
              dev=(major, minor), gid=6)


# Timestamps: the epoch, after 2038 (needs more than 31 bits), the last
# second a u32 holds (2106-02-07), nanoseconds, and optionally before 1970.
def add_times(t, negative):
    t.file(b"times/epoch", mtime=0)
    t.file(b"times/epoch-plus-1ns", mtime=0, mtime_ns=1)
    t.file(b"times/y2038-plus-1", mtime=2**31)
    t.file(b"times/y2100", mtime=4102444800)
    t.file(b"times/y2100-ns", mtime=4102444800, mtime_ns=999999999)
    t.file(b"times/u32-max", mtime=2**32 - 1)
    t.file(b"times/ns", mtime=MTIME, mtime_ns=123456789)
    t.dir(b"times/dir-y2100", mtime=4102444800)
    t.symlink(b"times/symlink-ns", b"ns", mtime=MTIME, mtime_ns=500000000)
    if negative:
        t.file(b"times/before-1970", mtime=-86400)


# Extended attributes: a v2 file capability whose bytes are not UTF-8, an
# SELinux label with its trailing NUL, a 1 KiB binary user.* value, an empty
# value, trusted.*, all on one file, and labels on a directory and a symlink.
def add_xattrs(t):
    cap_setuid, cap_net_raw = 7, 13
    cap = struct.pack(
        "<5I", 0x02000000 | 0x000001, (1 << cap_setuid) | (1 << cap_net_raw), 0, 0, 0
    )  # revision 2 + effective flag; permitted; inheritable; high words
    label = b"system_u:object_r:bin_t:s0\x00"
    t.file(b"xattrs/capability", b"#!/bin/sh\n", mode=0o755,
           xattrs={b"security.capability": cap})
    t.file(b"xattrs/selinux", xattrs={b"security.selinux": label})
    t.file(b"xattrs/user-1k", xattrs={b"user.big": noise(b"user.big", 1024)})
    t.file(b"xattrs/user-empty", xattrs={b"user.empty": b""})
    t.file(b"xattrs/trusted", xattrs={b"trusted.overlay.opaque": b"y"})
    t.file(b"xattrs/all", b"every kind\n", mode=0o4755, xattrs={
        b"security.capability": cap,
        b"security.selinux": label,
        b"user.big": noise(b"user.big", 1024),
        b"user.mime_type": b"text/plain",
        b"trusted.md5sum": noise(b"trusted.md5sum", 16),
    })
    etc_label = b"system_u:object_r:etc_t:s0\x00"
    t.dir(b"xattrs/dir", xattrs={b"security.selinux": etc_label})
    t.symlink(b"xattrs/symlink", b"selinux", xattrs={b"security.selinux": label})


# File sizes around 512-byte (tar, cpio), 4 KiB (ext, squashfs metadata) and
# 128 KiB (squashfs block) boundaries, an all-zero 1 MiB file (sparse
# blocks), a file with a 128 KiB zero hole between data, and two distinct
# files with the same content (squashfs duplicate detection).
def add_sizes(t):
    t.file(b"sizes/empty")
    for size in (1, 511, 512, 513, 4095, 4096, 4097, 65536, 131072, 131073, 1048577):
        t.file(b"sizes/%d" % size, noise(b"size %d" % size, size))
    t.file(b"sizes/zero-1MiB", bytes(1 << 20))
    hole = noise(b"hole head", 131072) + bytes(131072) + noise(b"hole tail", 4096)
    t.file(b"sizes/hole-128KiB", hole)
    t.file(b"sizes/same-as-131073", noise(b"size 131073", 131073))


# Permission bits: none, all, setuid, setgid, sticky, group-readable, on
# files, and setgid/sticky/private directories.
def add_perms(t):
    for mode in (0o000, 0o777, 0o4755, 0o2755, 0o1777, 0o640, 0o6711):
        t.file(b"perms/%04o" % mode, b"mode %04o\n" % mode, mode=mode)
    for mode in (0o1777, 0o2775, 0o700, 0o555):
        t.dir(b"perms/dir-%04o" % mode, mode=mode)


# Symlinks: short, 59/60/61-byte targets (ext stores targets under 60 bytes
# in the inode), a 4095-byte target (the longest Linux allows; or
# --symlink-max, as libisofs reads at most 1023), dangling relative and
# absolute targets, a link to a directory, and a self-loop.
def add_symlinks(t, symlink_max):
    t.symlink(b"symlinks/short", b"to")
    t.file(b"symlinks/to", b"target\n")
    for n in (59, 60, 61):
        target = b"to-" + b"x" * (n - 3)
        t.symlink(b"symlinks/len-%d" % n, target)
    t.symlink(b"symlinks/len-%d" % symlink_max,
              (b"a/" * 2048)[:symlink_max - 1] + b"z")
    t.symlink(b"symlinks/dangling", b"does/not/exist")
    t.symlink(b"symlinks/absolute", b"/etc/passwd")
    t.symlink(b"symlinks/to-dir", b"../sizes")
    t.symlink(b"symlinks/loop", b"loop")


# Other types: fifos; empty directories, nested and not; a directory chain
# 100 deep (ISO9660 relocates beyond 8 levels) with a file at the bottom.
def add_special(t):
    t.add(b"special/fifo", tarfile.FIFOTYPE, 0o644)
    t.add(b"special/fifo-private", tarfile.FIFOTYPE, 0o600, uid=1000, gid=1000)
    t.dir(b"empty/a")
    t.dir(b"empty/b/c")
    chain = b"deep/" + b"/".join(b"%02d" % i for i in range(100))
    t.file(chain + b"/bottom", b"depth 100\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", metavar="OUT.tar")
    ap.add_argument("--files", type=int, default=5000, metavar="N",
                    help="entries in bigdir/ (default 5000)")
    ap.add_argument("--with-newline", action="store_true")
    ap.add_argument("--negative-mtime", action="store_true")
    ap.add_argument("--name-max", type=int, default=255, metavar="N",
                    help="length of the longest names (default 255)")
    ap.add_argument("--symlink-max", type=int, default=4095, metavar="N",
                    help="length of the longest symlink target (default 4095)")
    args = ap.parse_args()
    if args.files < 0:
        ap.error("--files must be >= 0")

    t = Tree()
    add_names(t, args.with_newline, args.name_max)
    add_sort(t)
    add_bigdir(t, args.files)
    add_links(t)
    add_owners(t)
    add_devices(t)
    add_times(t, args.negative_mtime)
    add_xattrs(t)
    add_sizes(t)
    add_perms(t)
    add_symlinks(t, args.symlink_max)
    add_special(t)
    t.parents()

    tmp = args.out + ".tmp"
    write(t, tmp)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
