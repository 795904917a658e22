#!/usr/bin/env bash
# Times rootforge and the tools Buildroot uses on the same rootfs tarball, in
# one session, and prints a markdown table of medians and ratios.
#
#   benches/peers.sh TARBALL [RUNS]        RUNS defaults to 5
#
# Environment:
#   ROOTFORGE  the binary (default: target/release/rootforge of this checkout);
#              its jobs are skipped when it is missing
#   ONLY       space-separated job keys to run (default: all; see add_job)
#   WORKDIR    scratch directory (default: a fresh one under ${TMPDIR:-/tmp});
#              outputs can be a few times the tarball's size
#   TSV        also append one tab-separated row per job to this file (key,
#              name, reference key, median s, min s, peak RSS KiB, bytes);
#              benches/peer-table.sh gathers several tarballs' rows this way
#
# Needs Debian's fakeroot, cpio, libarchive-tools (bsdtar), time, GNU tar and
# gzip; missing ones are installed with apt-get when running as root.
#
# Runs are interleaved (run 1 of every job, then run 2, ...) so a slow spell
# of a noisy machine hits every job alike. Each run gets a fresh output
# directory, deleted afterwards. Wall time is taken inside the timed shell
# (bash $EPOCHREALTIME), so it includes the job's own process start-up but
# not the wrapper's. Peak RSS is GNU time's %M: the largest single process
# of the job (fakeroot's faked daemon is not counted). It counts mapped file
# pages, so a tool that mmaps its input reads about the input's size.
#
# shellcheck disable=SC2016 # the single-quoted scripts expand in their own shell
set -euo pipefail

usage() { echo "usage: $0 TARBALL [RUNS]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
TARBALL=$(realpath -- "$1")
RUNS=${2:-5}
[ -f "$TARBALL" ] || { echo "$0: no such tarball: $1" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || usage
RF=$(realpath -m -- "${ROOTFORGE:-$(dirname -- "$0")/../target/release/rootforge}")

need() {
    command -v "$1" >/dev/null && return
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
        echo "$0: $1 is missing (Debian package $2)" >&2
        exit 1
    fi
}
need fakeroot fakeroot
need cpio cpio
need bsdtar libarchive-tools
need gzip gzip
need mksquashfs squashfs-tools
need mke2fs e2fsprogs
need xorriso xorriso
need tar2sqfs squashfs-tools-ng
need genext2fs genext2fs
[ -x /usr/bin/time ] || need /usr/bin/time time

# --- jobs ------------------------------------------------------------------
# add_job KEY NAME REF OUTPUT: job_KEY runs in a fresh directory (its cwd);
# OUTPUT is the file whose size is reported; REF is the job the ratio column
# divides by. Rootforge jobs are their own reference, so they read 1.00.
KEYS=()
declare -A NAME REF OUT
add_job() { KEYS+=("$1"); NAME[$1]=$2; REF[$1]=$3; OUT[$1]=$4; }

add_job floor_read   "floor-read (cat > /dev/null)"   rf_cpio    ""
add_job floor_copy   "floor-copy (cat > file)"        rf_cpio    copy.tar
add_job rf_cpio      "rootforge cpio"                 rf_cpio    rootfs.cpio
add_job rf_tar       "rootforge tar"                  rf_tar     rootfs.tar
add_job rf_cpio_gz   "rootforge cpio+gzip"            rf_cpio_gz rootfs.cpio.gz
add_job bsdtar_newc  "bsdtar newc"                    rf_cpio    x.cpio
add_job bsdtar_tar   "bsdtar pax"                     rf_tar     x.tar
add_job br_cpio      "buildroot cpio (extract + cpio)" rf_cpio   rootfs.cpio
add_job br_cpio_step "buildroot cpio (cpio step)"     rf_cpio    rootfs.cpio
add_job br_tar       "buildroot tar (extract + tar)"  rf_tar     rootfs.tar
add_job br_tar_step  "buildroot tar (tar step)"       rf_tar     rootfs.tar
add_job gzip9        "gzip -9 -n (buildroot cpio)"    rf_cpio_gz rootfs.cpio.gz
# ext4 at one fixed size (the tarball's size plus 30%), Buildroot's mke2fs
# options; Buildroot's way extracts under fakeroot first.
add_job rf_ext4      "rootforge ext4"                 rf_ext4    rootfs.ext4
add_job br_ext4      "buildroot ext4 (extract + mke2fs -d)" rf_ext4 rootfs.ext4
add_job mke2fs_ext4  "mke2fs -d (extracted tree)"     rf_ext4    rootfs.ext4
# ext2 at the same size: genext2fs reads the tarball itself.
add_job rf_ext2      "rootforge ext2"                 rf_ext2    rootfs.ext2
add_job genext2fs    "genext2fs -a (tarball)"         rf_ext2    x.ext2
# ISO9660 with Rock Ridge and Joliet.
add_job rf_iso       "rootforge iso9660"              rf_iso     rootfs.iso9660
add_job br_iso       "buildroot iso9660 (extract + xorriso)" rf_iso rootfs.iso9660
add_job xorriso_iso  "xorriso -as mkisofs -R -J (extracted tree)" rf_iso rootfs.iso9660
# Buildroot's whole image step on a target directory owned by the build
# user, with a device table: five images (cpio+gzip, squashfs gzip, ext4,
# iso9660, tar), Buildroot's way one after another, each on its own copy
# of the tree under fakeroot (chown 0:0, the table, the tool).
add_job rf_br5       "rootforge 5 images (buildroot)" rf_br5     ""
add_job br_br5       "buildroot 5 images, one by one" rf_br5     ""
# squashfs, 128 KiB blocks: mksquashfs reads the tree extracted beforehand
# (as root, so owners are real), tar2sqfs the tarball.
for c in gzip9 zstd15 xz lz4; do
    add_job "rf_sq_$c"   "rootforge squashfs $c"  "rf_sq_$c" rootfs.squashfs
    add_job "mksq_$c"    "mksquashfs $c"          "rf_sq_$c" x.sqfs
    add_job "t2s_$c"     "tar2sqfs $c"            "rf_sq_$c" x.sqfs
done

job_floor_read() { cat "$TARBALL" >/dev/null; }
job_floor_copy() { cat "$TARBALL" >copy.tar; }
job_rf_cpio() { "$RF" build "$TARBALL" -o . -f cpio; }
job_rf_tar() { "$RF" build "$TARBALL" -o . -f tar; }
job_rf_cpio_gz() { "$RF" build "$TARBALL" -o . -f cpio --compress gzip; }
job_bsdtar_newc() { bsdtar -cf x.cpio --format newc "@$TARBALL"; }
job_bsdtar_tar() { bsdtar -cf x.tar --format pax "@$TARBALL"; }
NPROC=$(nproc)
EXT_MIB=$(( $(stat -c %s -- "$TARBALL") * 13 / 10 / 1048576 + 1 ))
# mke2fs's "small" type (under 512 MiB) has 1 KiB blocks; ours gets the same.
EXT_BS=$([ "$EXT_MIB" -lt 512 ] && echo 1K || echo 4K)
job_rf_ext4() { "$RF" build "$TARBALL" -o . -f ext4 --ext-size "${EXT_MIB}M" --ext-block-size "$EXT_BS"; }
br_mke2fs() {
    mke2fs -q -t ext4 -d "$1" -N 0 -m 5 -L rootfs -I 256 -O ^64bit -E root_owner=0:0 \
        "$2" "${EXT_MIB}M"
}
job_br_ext4() { fakeroot -- bash -c '. "$LIB" && br_extract root && br_mke2fs root rootfs.ext4'; }
job_mke2fs_ext4() { br_mke2fs "$PREP/tree" rootfs.ext4; }
job_rf_ext2() { "$RF" build "$TARBALL" -o . -f ext2 --ext-size "${EXT_MIB}M" --ext-block-size "$EXT_BS"; }
# As many inodes as members plus lost+found's room, Buildroot's old formula's spirit.
EXT_INODES=$(( $(tar -tf "$TARBALL" | wc -l) + 400 ))
job_genext2fs() {
    local bs=$(( ${EXT_BS%K} * 1024 ))
    genext2fs -B "$bs" -b $(( EXT_MIB * 1048576 / bs )) -N "$EXT_INODES" \
        -m 5 -L rootfs -a "$TARBALL" x.ext2
}
job_rf_iso() { "$RF" build "$TARBALL" -o . -f iso9660; }
br_xorriso() { xorriso -as mkisofs -quiet -J -R -o "$2" "$1" 2>/dev/null; }
job_br_iso() { fakeroot -- bash -c '. "$LIB" && br_extract root && br_xorriso root rootfs.iso9660'; }
job_xorriso_iso() { br_xorriso "$PREP/tree" rootfs.iso9660; }
job_rf_br5() {
    "$RF" build "$PREP/target" -o . --profile buildroot -f cpio,squashfs,ext4,iso9660,tar \
        --cpio-compress gzip --squashfs-level 9 --ext-size "${EXT_MIB}M" --ext-block-size "$EXT_BS" \
        --device-table "$PREP/device_table.txt"
}
# makedevs' d and f lines, which are all Buildroot's default table holds.
br_table() {
    local name type mode uid gid rest
    while read -r name type mode uid gid rest; do
        case $name in '#'* | '') continue ;; esac
        case $type in d) mkdir -p "$1$name" ;; f) [ -e "$1$name" ] || continue ;; *) continue ;; esac
        chmod "$mode" "$1$name" && chown "$uid:$gid" "$1$name"
    done <"$PREP/device_table.txt"
}
br_image() {
    rm -rf copy && cp -a "$PREP/target" copy
    fakeroot -- bash -c '. "$LIB" && chown -h -R 0:0 copy && br_table copy && '"$1"
    rm -rf copy
}
job_br_br5() {
    br_image 'br_cpio copy rootfs.cpio && gzip -9 -n -f rootfs.cpio'
    br_image 'mksquashfs copy rootfs.squashfs -noappend -processors "$NPROC" -no-progress -quiet'
    br_image 'br_mke2fs copy rootfs.ext4'
    br_image 'br_xorriso copy rootfs.iso9660'
    br_image 'br_tar copy rootfs.tar'
}
rf_sq() { "$RF" build "$TARBALL" -o . -f squashfs "$@"; }
mksq() { mksquashfs "$PREP/tree" x.sqfs -processors "$NPROC" -no-progress -quiet "$@"; }
t2s() { tar2sqfs -j "$NPROC" -q x.sqfs "$@" <"$TARBALL"; }
job_rf_sq_gzip9() { rf_sq --squashfs-comp gzip --squashfs-level 9; }
job_mksq_gzip9() { mksq -comp gzip -Xcompression-level 9; }
job_t2s_gzip9() { t2s -c gzip -X level=9; }
job_rf_sq_zstd15() { rf_sq --squashfs-comp zstd --squashfs-level 15; }
job_mksq_zstd15() { mksq -comp zstd -Xcompression-level 15; }
job_t2s_zstd15() { t2s -c zstd -X level=15; }
job_rf_sq_xz() { rf_sq --squashfs-comp xz; }
job_mksq_xz() { mksq -comp xz; }
job_t2s_xz() { t2s -c xz; }
job_rf_sq_lz4() { rf_sq --squashfs-comp lz4; }
job_mksq_lz4() { mksq -comp lz4; }
job_t2s_lz4() { t2s -c lz4; }

# Buildroot's steps (fs/common.mk, fs/cpio/cpio.mk, fs/tar/tar.mk), run
# inside fakeroot. The extract stands in for Buildroot's rsync + chown of
# output/target, which every image repeats.
br_extract() {
    mkdir "$1"
    tar -xpf "$TARBALL" --xattrs --xattrs-include='*' --numeric-owner -C "$1"
}
br_cpio() { (cd "$1" && find . | LC_ALL=C sort | cpio --reproducible --quiet -o -H newc) >"$2"; }
br_tar() {
    local out
    out=$(realpath -m -- "$2")
    # shellcheck disable=SC2185 # Buildroot's command, verbatim
    (cd "$1" && find -print0 | LC_ALL=C sort -z |
        tar --pax-option=exthdr.name=%d/PaxHeaders/%f,atime:=0,ctime:=0 \
            -cf "$out" --null --xattrs-include='*' --no-recursion -T - --numeric-owner)
}
# fakeroot is a POSIX sh script, which drops exported bash functions from the
# environment, so the shell inside it sources them from $LIB.
job_br_cpio() { fakeroot -- bash -c '. "$LIB" && br_extract root && br_cpio root rootfs.cpio'; }
job_br_tar() { fakeroot -- bash -c '. "$LIB" && br_extract root && br_tar root rootfs.tar'; }
# The step alone works on the tree PREP extracted, with its fakeroot state.
job_br_cpio_step() {
    fakeroot -i "$PREP/faked.state" -- bash -c '. "$LIB" && br_cpio "$PREP/root" rootfs.cpio'
}
job_br_tar_step() {
    fakeroot -i "$PREP/faked.state" -- bash -c '. "$LIB" && br_tar "$PREP/root" rootfs.tar'
}
# Buildroot's outer compression of the cpio it made.
job_gzip9() { gzip -9 -c -n "$PREP/rootfs.cpio" >rootfs.cpio.gz; }

# --- selection -------------------------------------------------------------
SELECTED=()
for k in "${KEYS[@]}"; do
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $k "* ]]; then continue; fi
    if [[ $k == rf_* ]] && [ ! -x "$RF" ]; then continue; fi
    SELECTED+=("$k")
done
[ ${#SELECTED[@]} -gt 0 ] || { echo "$0: no job selected" >&2; exit 2; }
selected() { [[ " ${SELECTED[*]} " == *" $1 "* ]]; }

if [ -n "${WORKDIR:-}" ]; then
    mkdir -p "$WORKDIR"
    WORK=$(mktemp -d "$(realpath -- "$WORKDIR")/peers.XXXXXX")
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/peers.XXXXXX")
fi
trap 'rm -rf -- "$WORK"' EXIT
if [ -x "$RF" ]; then
    # A rebuild during the run must not mix two binaries in one table.
    cp -- "$RF" "$WORK/rootforge"
    RF_SRC=$RF
    RF=$WORK/rootforge
fi
PREP=$WORK/prep
LIB=$WORK/lib.sh
declare -f br_extract br_cpio br_tar br_mke2fs br_xorriso br_table >"$LIB"
export TARBALL RF PREP LIB NPROC EXT_MIB EXT_BS EXT_INODES
export -f rf_sq mksq t2s br_mke2fs br_xorriso br_image
export -f "${SELECTED[@]/#/job_}"

# --- header ----------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p;T;q' /proc/cpuinfo)
echo "## Peers on $(basename -- "$TARBALL")"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(nproc) cpus, ${cpu:-unknown cpu}, $(uname -sr)"
echo "- input: $TARBALL, $(stat -c %s -- "$TARBALL" | awk '{printf "%.1f", $1 / 1048576}') MiB," \
    "$(tar -tf "$TARBALL" | wc -l) members"
echo "- runs: $RUNS per job, interleaved; median and min wall seconds"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -x "$RF" ]; then
    echo "- rootforge: $RF_SRC ($("$RF" --version 2>/dev/null || echo 'version unknown'))"
else
    echo "- rootforge: $RF not found, its jobs are skipped"
fi
echo "- peers: $(tar --version | head -n1), $(cpio --version | head -n1)," \
    "$(bsdtar --version | cut -d' ' -f1-2), $(gzip --version | head -n1)," \
    "fakeroot $(fakeroot --version | awk '{print $NF}')," \
    "$(mksquashfs -version | head -n1 | cut -d' ' -f1-3), $(tar2sqfs --version | head -n1)," \
    "$(mke2fs -V 2>&1 | head -n1 | cut -d' ' -f1-2), genext2fs $(genext2fs -V 2>&1 | awk '{print $NF; exit}')," \
    "$(xorriso -version 2>/dev/null | head -n1 | cut -d' ' -f1-2)"
echo

# --- untimed preparation ---------------------------------------------------
cat "$TARBALL" >/dev/null # into the page cache
mkdir "$PREP"
if selected br_cpio_step || selected br_tar_step || selected gzip9; then
    (cd "$PREP" && fakeroot -s faked.state -- bash -c '. "$LIB" && br_extract root && br_cpio root rootfs.cpio')
fi
if selected rf_br5 || selected br_br5; then
    # Buildroot's output/target: owned by the build user; its default
    # device table's permission lines.
    mkdir "$PREP/target"
    tar -xf "$TARBALL" --no-same-owner -C "$PREP/target"
    chown -R 1000:1000 "$PREP/target"
    printf '%s\n' '/dev d 755 0 0 - - - - -' '/tmp d 1777 0 0 - - - - -' \
        '/etc d 755 0 0 - - - - -' '/root d 700 0 0 - - - - -' \
        '/var/www d 755 33 33 - - - - -' '/etc/shadow f 600 0 0 - - - - -' \
        '/etc/passwd f 644 0 0 - - - - -' '/etc/network/if-up.d d 755 0 0 - - - - -' \
        '/etc/network/if-pre-up.d d 755 0 0 - - - - -' \
        '/etc/network/if-down.d d 755 0 0 - - - - -' \
        '/etc/network/if-post-down.d d 755 0 0 - - - - -' >"$PREP/device_table.txt"
fi
if [[ " ${SELECTED[*]} " == *" mksq_"* ]] || selected mke2fs_ext4 || selected xorriso_iso; then
    # The peers that read a directory get it extracted for real, untimed.
    [ "$(id -u)" -eq 0 ] || { echo "$0: mksquashfs jobs need root for real owners" >&2; exit 1; }
    (cd "$PREP" && br_extract tree)
fi

# --- timed runs ------------------------------------------------------------
# A job that fails is reported, left out of later runs and marked in the table.
declare -A WALL RSS SIZE FAILED
for ((r = 1; r <= RUNS; r++)); do
    for k in "${SELECTED[@]}"; do
        [ -z "${FAILED[$k]:-}" ] || continue
        dir=$WORK/run
        rm -rf -- "$dir"
        mkdir "$dir"
        if ! /usr/bin/time -f %M -o "$WORK/rss" bash -c \
            'cd "$1" && s=$EPOCHREALTIME && "job_$2" && e=$EPOCHREALTIME && echo "$s $e" >"$3"' \
            _ "$dir" "$k" "$WORK/wall" >"$WORK/log" 2>&1; then
            echo "$0: job ${NAME[$k]} failed (run $r):" >&2
            tail -n 20 "$WORK/log" >&2
            FAILED[$k]=1
            rm -rf -- "$dir"
            continue
        fi
        WALL[$k]+="$(awk '{printf "%.6f", $2 - $1}' "$WORK/wall") "
        RSS[$k]+="$(tail -n1 "$WORK/rss") "
        if [ -n "${OUT[$k]}" ]; then
            SIZE[$k]=$(stat -c %s -- "$dir/${OUT[$k]}")
        fi
        rm -rf -- "$dir"
        sync # so this run's writeback does not land in the next one
    done
done

# --- table -----------------------------------------------------------------
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minimum() { tr ' ' '\n' | sed '/^$/d' | sort -g | head -n1; }
maximum() { tr ' ' '\n' | sed '/^$/d' | sort -g | tail -n1; }

declare -A MED
for k in "${SELECTED[@]}"; do
    [ -n "${FAILED[$k]:-}" ] || MED[$k]=$(median <<<"${WALL[$k]}")
done

echo "| job | median s | min s | peak RSS MiB | output bytes | ratio | reference |"
echo "|---|---:|---:|---:|---:|---:|---|"
for k in "${SELECTED[@]}"; do
    if [ -n "${FAILED[$k]:-}" ]; then
        echo "| ${NAME[$k]} | failed | | | | | |"
        [ -z "${TSV:-}" ] || printf '%s\t%s\t%s\tfailed\t\t\t\n' "$k" "${NAME[$k]}" "${REF[$k]}" >>"$TSV"
        continue
    fi
    ref=${REF[$k]}
    if [ -n "${MED[$ref]:-}" ]; then
        ratio=$(awk -v a="${MED[$k]}" -v b="${MED[$ref]}" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
        refname=${NAME[$ref]}
    else
        ratio="n/a"
        refname="${NAME[$ref]} (not run)"
    fi
    size="-"
    [ -n "${SIZE[$k]:-}" ] && size=${SIZE[$k]}
    printf '| %s | %.3f | %.3f | %.1f | %s | %s | %s |\n' "${NAME[$k]}" "${MED[$k]}" \
        "$(minimum <<<"${WALL[$k]}")" "$(awk -v k="$(maximum <<<"${RSS[$k]}")" 'BEGIN {print k / 1024}')" \
        "$size" "$ratio" "$refname"
    if [ -n "${TSV:-}" ]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "${NAME[$k]}" "$ref" "${MED[$k]}" \
            "$(minimum <<<"${WALL[$k]}")" "$(maximum <<<"${RSS[$k]}")" "$size" >>"$TSV"
    fi
done
echo
echo "ratio = median / median of the reference job; peak RSS is the highest of the runs;"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
[ -z "${FAILED[*]:-}" ] || exit 1
