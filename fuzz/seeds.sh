#!/bin/bash
# Seeds the fuzz corpora from the repo's own generators (no committed blobs).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/tar_ingest corpus/cpio_read corpus/decompress
python3 ../example/make-rootfs.py corpus/tar_ingest/example.tar
python3 ../tests/data/make-corner.py corpus/tar_ingest/corner.tar --files 20
rf=${CARGO_TARGET_DIR:-../target}/release/rootforge
[ -x "$rf" ] || (cd .. && cargo build --release -q)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$rf" build -q corpus/tar_ingest/example.tar -o "$tmp" -f cpio --cpio-format crc
cp "$tmp/rootfs.cpio" corpus/cpio_read/example-crc.cpio
i=0
for c in gzip bzip2 lz4 lzma lzo xz zstd; do
    "$rf" build -q corpus/tar_ingest/example.tar -o "$tmp/$c" -f tar --compress "$c" --compress-level 1
    # The decompress target's first byte picks the decoder (Compression::ALL order, none first).
    i=$((i + 1))
    { printf "\\x$(printf %02x $i)"; cat "$tmp/$c"/rootfs.tar.*; } > corpus/decompress/$c
done
# The filesystem readers: small images of the example and of a cut-down
# corner-case tree, with every squashfs compressor and each ext variant.
mkdir -p corpus/squashfs_read corpus/ext_read corpus/iso_read
python3 ../tests/data/make-corner.py "$tmp/corner.tar" --files 20 --name-max 253 --symlink-max 1023
for input in corpus/tar_ingest/example.tar "$tmp/corner.tar"; do
    base=$(basename "$input" .tar)
    for c in gzip lzo xz lz4 zstd none; do
        "$rf" build -q "$input" -o "$tmp/sq-$c" -f squashfs --squashfs-comp "$c" --squashfs-block-size 4K
        cp "$tmp/sq-$c/rootfs.squashfs" "corpus/squashfs_read/$base-$c"
    done
    # No journal: it would be most of a small seed.
    "$rf" build -q "$input" -o "$tmp/ext" -f ext2,ext4 --ext-features ^has_journal
    cp "$tmp/ext/rootfs.ext2" "corpus/ext_read/$base-ext2"
    cp "$tmp/ext/rootfs.ext4" "corpus/ext_read/$base-ext4"
    "$rf" build -q "$input" -o "$tmp/iso" -f iso9660 --iso-zisofs
    cp "$tmp/iso/rootfs.iso9660" "corpus/iso_read/$base-zisofs"
done
# tar_diff: the tar_ingest seeds, and GNU tar's every format and sparse
# flavour of a small tree.
mkdir -p corpus/tar_diff "$tmp/small/d"
cp corpus/tar_ingest/*.tar corpus/tar_diff/
printf 'hello\n' > "$tmp/small/d/f"; ln -f "$tmp/small/d/f" "$tmp/small/d/h"; ln -sf f "$tmp/small/d/s"
python3 -c 'import sys; f = open(sys.argv[1], "wb"); f.seek(70000); f.write(b"x"); f.truncate(140000)' "$tmp/small/sparse"
for f in v7 oldgnu gnu ustar posix; do
    tar -C "$tmp/small" --format=$f -cf corpus/tar_diff/$f.tar d
done
for v in 0.0 0.1 1.0; do
    tar -C "$tmp/small" --format=posix --sparse --sparse-version=$v -cf corpus/tar_diff/sparse-$v.tar sparse d
done
tar -C "$tmp/small" --format=gnu --sparse -cf corpus/tar_diff/sparse-gnu.tar sparse d
# split_reads: a read-size header (count, then sizes), then a stream, plain
# or compressed as the decompress seeds are.
mkdir -p corpus/split_reads
{ printf '\x01\x00\x0b'; cat corpus/tar_ingest/example.tar; } > corpus/split_reads/example
{ printf '\x00\x00'; cat corpus/tar_ingest/example.tar; } > corpus/split_reads/example-bytes
for c in gzip bzip2 lz4 lzma lzo xz zstd; do
    { printf '\x02\x00\x05\xff'; cat "$tmp/$c"/rootfs.tar.*; } > corpus/split_reads/$c
done
# tables: a selector byte, then the text (see fuzz_targets/tables.rs).
mkdir -p corpus/tables
seed() { { printf '%s' "$1"; cat; } > "corpus/tables/$2"; }
seed d devices <<'T'
# name          type mode uid gid major minor start inc count
/dev            d    755  0   0   -     -     -     -   -
/dev/mem        c    640  0   0   1     1     -     -   -
/dev/ttyS       c    666  0   0   4     64    0     1   4
/dev/loop       b    640  0   0   7     0     0     1   3
/dev/initctl    p    600  0   0   -     -     -     -   -
/var/log        r    750  daemon adm -  -     -     -   -
/bin/sh         f    755  0   0   -     -     -     -   -
|xattr cap_net_raw,cap_net_admin+ep
/sbin/sh        f    4755 root root -   -     -     -   -
/opt/missing    F    644  0   0   -     -     -     -   -
T
seed u users <<'T'
# username uid group gid password home shell groups comment
www -1 www -1 =secret /var/www /bin/sh - Web server
admin 1000 admin 1000 !=locked /home/admin /bin/sh adm,daemon Admin
daemon2 -2 daemon -1 * - /bin/false - -
- -1 audio -1 - - - - -
T
seed t tmpfiles <<'T'
d /var/cache/app 0750 daemon adm - -
f /var/lib/misc/state 0644 root root - hello
w /etc/motd - - - - welcome
L /var/lock - - - - ../run/lock
L+ /etc/mtab - - - - ../proc/self/mounts
C /var/lib/copy - - - - /etc/group
p /var/fifo 0600
c /var/null 0666 - - - 1:3
z /var/log 0755 root adm
Z /etc 0755 - -
e /var/lib 0755
D /tmp/x 1777
d /var/%u/home - - - -
d /var/lib/%m - - - -
r /var/gone
T
seed p preset <<'T'
# comments and blank lines

enable sshd.service
disable ssh*.service
enable getty@.service tty1 tty2
disable *
T
seed n unit <<'T'
[Unit]
Description=A fuzz service
[Service]
ExecStart=/bin/sh
[Install]
WantedBy=multi-user.target getty.target
RequiredBy=sysinit.target
UpheldBy=default.target
Alias=alias.service
Also=sshd.service
DefaultInstance=one
T
printf 'ccap_setuid,cap_net_raw+ep cap_chown=i' > corpus/tables/caps
printf 'c=ep all-i 12+p' > corpus/tables/caps-all
# A revision 3 security.capability value (rootid 1000).
printf 'c\x01\x00\x00\x03\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe8\x03\x00\x00' > corpus/tables/caps-v3
# config: the README's example TOML file and a Buildroot .config.
mkdir -p corpus/config
{ printf 't'; sed -n '/^```toml$/,/^```$/p' ../README.md | sed '1d;$d'; } > corpus/config/images.toml
{ printf 'k'; cat; } > corpus/config/buildroot.config <<'T'
BR2_ARCH="x86_64"
BR2_ROOTFS_DEVICE_TABLE="system/device_table.txt"
BR2_ROOTFS_USERS_TABLES="system/users.txt"
BR2_INIT_SYSTEMD=y
BR2_TARGET_ROOTFS_CPIO=y
BR2_TARGET_ROOTFS_CPIO_GZIP=y
BR2_TARGET_ROOTFS_CPIO_UIMAGE=y
BR2_TARGET_ROOTFS_EXT2=y
BR2_TARGET_ROOTFS_EXT2_4=y
BR2_TARGET_ROOTFS_EXT2_SIZE="8M"
BR2_TARGET_ROOTFS_EXT2_INODES=0
BR2_TARGET_ROOTFS_EXT2_LABEL="root \"fs\""
BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS="-O ^64bit -E lazy_itable_init=0"
BR2_TARGET_ROOTFS_SQUASHFS=y
BR2_TARGET_ROOTFS_SQUASHFS4_ZSTD=y
BR2_TARGET_ROOTFS_SQUASHFS_BS_64K=y
BR2_TARGET_ROOTFS_SQUASHFS_PAD=y
BR2_TARGET_ROOTFS_ISO9660=y
BR2_TARGET_ROOTFS_ISO9660_INITRD=y
BR2_TARGET_ROOTFS_TAR=y
BR2_TARGET_ROOTFS_TAR_XZ=y
# BR2_TARGET_ROOTFS_TAR is not set
T
# overlay: structure-aware (arbitrary); a few fixed pseudo-random inputs
# start it with non-trivial trees.
mkdir -p corpus/overlay
python3 -c '
import random, sys
for i in range(4):
    r = random.Random(i)
    open(f"corpus/overlay/seed{i}", "wb").write(bytes(r.randrange(256) for _ in range(512 << i)))
'
