#!/bin/bash
# Seeds the fuzz corpora from the repo's own generators (no committed blobs).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/tar_ingest corpus/cpio_read corpus/decompress
python3 ../example/make-rootfs.py corpus/tar_ingest/example.tar
python3 ../tests/data/make-corner.py corpus/tar_ingest/corner.tar --files 20
rf=../target/release/rootforge
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
