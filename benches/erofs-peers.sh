#!/usr/bin/env bash
# Times rootforge's erofs images against mkfs.erofs on the same tree, with
# the same compressor, level and pcluster size, and prints a markdown table
# of median wall times and image sizes.
#
#   benches/erofs-peers.sh TARBALL [RUNS]     RUNS defaults to 3
#
# mkfs.erofs reads a directory (Debian's 1.5 has no tar input), so the
# tarball is extracted once, as root, untimed; rootforge reads the tarball
# itself, which its time includes. Both get SOURCE_DATE_EPOCH=0 and an
# all-zero UUID, as Buildroot passes them. Environment: ROOTFORGE (the
# binary, default target/release/rootforge), WORKDIR (scratch directory).
set -euo pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 TARBALL [RUNS]" >&2; exit 2; }
TARBALL=$(realpath -- "$1")
RUNS=${2:-3}
RF=$(realpath -m -- "${ROOTFORGE:-$(dirname -- "$0")/../target/release/rootforge}")
command -v mkfs.erofs >/dev/null || { echo "$0: mkfs.erofs is missing (apt-get install erofs-utils)" >&2; exit 1; }
[ -x "$RF" ] || { echo "$0: $RF is missing (cargo build --release)" >&2; exit 1; }
WORK=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/erofs-peers.XXXXXX")}
mkdir -p "$WORK/tree"
tar -xpf "$TARBALL" -C "$WORK/tree" --numeric-owner
UUID=00000000-0000-0000-0000-000000000000
export SOURCE_DATE_EPOCH=0

# name | mkfs.erofs compression flags | rootforge flags
jobs=(
    "none||--erofs-compress none"
    "lz4|-zlz4|--erofs-compress lz4"
    "lz4hc 9|-zlz4hc,9|--erofs-compress lz4hc --erofs-level 9"
    "lz4hc 12, 64K pclusters|-zlz4hc,12 -C65536|--erofs-compress lz4hc --erofs-level 12 --erofs-pcluster-size 64K"
)

now() { echo "${EPOCHREALTIME/./}"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| variant | mkfs.erofs s | bytes | rootforge s | bytes | speed-up | size ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for job in "${jobs[@]}"; do
    IFS='|' read -r name mflags rflags <<<"$job"
    mt=() rt=()
    for ((r = 0; r < RUNS; r++)); do
        rm -f "$WORK/m.erofs"
        t0=$(now)
        # shellcheck disable=SC2086
        mkfs.erofs --quiet $mflags -T0 -U "$UUID" "$WORK/m.erofs" "$WORK/tree" >/dev/null
        mt+=($(( $(now) - t0 )))
        rm -rf "$WORK/r"
        t0=$(now)
        # shellcheck disable=SC2086
        "$RF" build -q "$TARBALL" -o "$WORK/r" -f erofs $rflags --erofs-uuid "$UUID"
        rt+=($(( $(now) - t0 )))
    done
    m=$(printf '%s\n' "${mt[@]}" | median)
    r=$(printf '%s\n' "${rt[@]}" | median)
    ms=$(stat -c %s "$WORK/m.erofs")
    rs=$(stat -c %s "$WORK/r/rootfs.erofs")
    awk -v n="$name" -v m="$m" -v r="$r" -v ms="$ms" -v rs="$rs" 'BEGIN {
        printf "| %s | %.3f | %d | %.3f | %d | %.2fx | %.3f |\n", n, m / 1e6, ms, r / 1e6, rs, m / r, rs / ms }'
done
[ -n "${WORKDIR:-}" ] || rm -rf "$WORK"
