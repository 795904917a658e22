#!/usr/bin/env python3
"""Writes example/rootfs.tar, the rootfs that `rootforge build -o DIR` uses
when no input is given (the binary embeds it with include_bytes!).

It is a small but recognisable Linux root: busybox-style symlinks, /etc files,
device nodes, a setuid program with a file capability, a hard link, a fifo,
owners other than root and one sub-second mtime. The programs are shell-script
stand-ins, so the tarball stays a few tens of KiB.

Regenerate (no root needed, Python 3 stdlib only; the output is byte-identical
on every run):

    python3 example/make-rootfs.py [OUT]        # OUT defaults to example/rootfs.tar

Members are written the way Buildroot's tar writes a rootfs: pax format,
`./`-prefixed names sorted as `find . | LC_ALL=C sort` would, numeric owners
(empty user and group names), and every mtime fixed.
"""

import io
import os
import struct
import sys
import tarfile

MTIME = 1700000000  # 2023-11-14T22:13:20Z

# struct vfs_cap_data, revision 2: magic_etc (revision | effective flag), then
# permitted/inheritable pairs for capabilities 0-31 and 32-63.
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
CAP_NET_RAW = 13
CAP_NET_RAW_EP = struct.pack(
    "<5I", VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, 1 << CAP_NET_RAW, 0, 0, 0
)

BUSYBOX = b"""#!/bin/sh
# Stand-in for busybox in rootforge's example rootfs: the applets below link
# here so the tree looks like a real one, but nothing is implemented.
echo "${0##*/}: placeholder applet in rootforge's example rootfs" >&2
exit 1
"""

PING = b"""#!/bin/sh
# Stand-in for a setuid-root program that also carries cap_net_raw+ep.
echo "ping: placeholder in rootforge's example rootfs" >&2
exit 1
"""

RCS = b"""#!/bin/sh
# Runs once at boot, from /etc/inittab.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
hostname -F /etc/hostname
echo "Welcome to the rootforge example rootfs"
"""

FILES = {
    b"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
    b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    b"user:x:1000:1000:Example user:/home/user:/bin/sh\n",
    b"etc/group": b"root:x:0:\ndaemon:x:1:\ndisk:x:6:\nshadow:x:42:\nuser:x:1000:\n",
    b"etc/shadow": b"root::19675:0:99999:7:::\ndaemon:*:19675:0:99999:7:::\n"
    b"user:!:19675:0:99999:7:::\n",
    b"etc/hostname": b"rootforge\n",
    b"etc/fstab": b"# <file system> <mount pt> <type> <options> <dump> <pass>\n"
    b"/dev/root       /          auto   ro        0      1\n"
    b"proc            /proc      proc   defaults  0      0\n"
    b"sysfs           /sys       sysfs  defaults  0      0\n"
    b"tmpfs           /tmp       tmpfs  mode=1777 0      0\n",
    b"etc/inittab": b"::sysinit:/etc/init.d/rcS\n"
    b"console::respawn:/sbin/getty -L console 0 vt100\n"
    b"::ctrlaltdel:/sbin/reboot\n"
    b"::shutdown:/bin/umount -a -r\n",
    b"etc/profile": b'export PATH="/usr/sbin:/usr/bin:/sbin:/bin"\n'
    b"export PS1='\\u@\\h:\\w\\$ '\n",
    b"usr/lib/os-release": b"NAME=rootforge-example\nID=rootforge-example\n"
    b'PRETTY_NAME="rootforge example rootfs"\n',
    b"home/user/.profile": b"[ -f /etc/profile ] && . /etc/profile\n",
    b"var/log/messages": b"",
}

# directory: (symlink target, applet names)
APPLETS = {
    b"bin": (b"busybox", [b"cat", b"echo", b"ls", b"mount", b"sh", b"umount"]),
    b"sbin": (b"../bin/busybox", [b"getty", b"halt", b"init", b"reboot"]),
    b"usr/bin": (b"../../bin/busybox", [b"env", b"vi"]),
}


def entries():
    """Yields (path, TarInfo, data) for every member, in no particular order."""

    def node(path, kind, mode, uid=0, gid=0, data=b"", **attrs):
        info = tarfile.TarInfo("./" + path.decode() if path else ".")
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = MTIME
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        for key, value in attrs.items():
            setattr(info, key, value)
        return path, info, data

    dirs = {
        b"": 0o755, b"bin": 0o755, b"dev": 0o755, b"etc": 0o755,
        b"etc/init.d": 0o755, b"home": 0o755, b"proc": 0o555, b"root": 0o700,
        b"run": 0o755, b"sbin": 0o755, b"sys": 0o555, b"tmp": 0o1777,
        b"usr": 0o755, b"usr/bin": 0o755, b"usr/lib": 0o755, b"usr/sbin": 0o755,
        b"var": 0o755, b"var/log": 0o755,
    }
    for path, mode in dirs.items():
        yield node(path, tarfile.DIRTYPE, mode)
    yield node(b"home/user", tarfile.DIRTYPE, 0o750, 1000, 1000)

    for path, data in FILES.items():
        uid = gid = 1000 if path.startswith(b"home/user/") else 0
        mode, gid = (0o640, 42) if path == b"etc/shadow" else (0o644, gid)
        pax = {}
        if path == b"etc/hostname":
            # A sub-second mtime, which only a pax record can carry.
            pax = {"mtime": f"{MTIME}.123456789"}
        yield node(path, tarfile.REGTYPE, mode, uid, gid, data, pax_headers=pax)
    yield node(b"bin/busybox", tarfile.REGTYPE, 0o755, data=BUSYBOX)
    yield node(b"etc/init.d/rcS", tarfile.REGTYPE, 0o755, data=RCS)

    # tarfile takes str values. This blob happens to be valid UTF-8, so it is
    # written as raw bytes, as GNU tar writes it; a value that is not would
    # make tarfile add `hdrcharset=BINARY`, which GNU tar warns about.
    cap = CAP_NET_RAW_EP.decode("utf-8")
    ping_pax = {"SCHILY.xattr.security.capability": cap}
    yield node(
        b"usr/bin/ping", tarfile.REGTYPE, 0o4755, data=PING, pax_headers=ping_pax
    )
    # The older iputils layout: ping6 is a hard link to ping.
    yield node(
        b"usr/bin/ping6", tarfile.LNKTYPE, 0o4755, linkname="./usr/bin/ping"
    )

    for directory, (target, names) in APPLETS.items():
        for name in names:
            yield node(
                directory + b"/" + name, tarfile.SYMTYPE, 0o777,
                linkname=target.decode(),
            )
    os_release = "../usr/lib/os-release"
    yield node(b"etc/os-release", tarfile.SYMTYPE, 0o777, linkname=os_release)
    yield node(b"var/run", tarfile.SYMTYPE, 0o777, linkname="../run")

    devices = [
        (b"dev/console", tarfile.CHRTYPE, 0o622, 0, 5, 1),
        (b"dev/null", tarfile.CHRTYPE, 0o666, 0, 1, 3),
        (b"dev/zero", tarfile.CHRTYPE, 0o666, 0, 1, 5),
        (b"dev/sda", tarfile.BLKTYPE, 0o660, 6, 8, 0),
    ]
    for path, kind, mode, gid, major, minor in devices:
        yield node(path, kind, mode, 0, gid, devmajor=major, devminor=minor)
    # sysvinit's control fifo.
    yield node(b"run/initctl", tarfile.FIFOTYPE, 0o600)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "rootfs.tar")
    members = sorted(entries(), key=lambda e: e[0])
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"
    ) as tar:
        for _, info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    with open(out + ".tmp", "wb") as f:
        f.write(buf.getvalue())
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
