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
