#!/bin/bash
# Byte identity between two versions of rootforge.
#
#   scripts/identity.sh [BASE_REV] [INPUT...]
#
# Builds BASE_REV (default HEAD~1) in a temporary git worktree and the current
# work tree, both in release, then runs a matrix of `rootforge build` options
# with both binaries on every input and compares the sha256 of every output
# file. One line per case, then `identity: N same, M differ`; exit 1 if any
# case differs or fails on either side.
#
# Inputs default to target/corpus/tiny.tar, the corner tree of
# tests/data/make-corner.py, and /work/corpus/minbase.tar when present. If the
# first argument is an existing file, it is an input and BASE_REV is the
# default. The input `corner` names the corner tree. ISO9660 cannot hold the
# corner tree's 255-byte names and 4095-byte symlinks: those cases (and the
# all-format ones) get a corner tree made with --name-max 253 --symlink-max
# 1023. 1 KiB ext blocks cannot hold its largest xattr set: those cases skip
# it.
#
# The base builds in target/identity/base-target, so a rerun only recompiles
# the workspace's own crates; a rerun on the same base recompiles nothing.
# The matrix uses only options that existed at d92f6d1.
set -euo pipefail

repo=$(git rev-parse --show-toplevel)
cd "$repo"

rev=HEAD~1
if [[ $# -gt 0 && ! -e $1 ]]; then
    rev=$1
    shift
fi
base_sha=$(git rev-parse --verify "$rev^{commit}")

id_dir=$repo/target/identity
mkdir -p "$id_dir"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1690000000}

inputs=("$@")
if [[ ${#inputs[@]} -eq 0 ]]; then
    inputs=("$repo/target/corpus/tiny.tar" corner)
    [[ -f /work/corpus/minbase.tar ]] && inputs+=(/work/corpus/minbase.tar)
fi
for i in "${!inputs[@]}"; do
    if [[ ${inputs[$i]} == corner ]]; then
        inputs[$i]=$id_dir/corner.tar
        python3 tests/data/make-corner.py "$id_dir/corner.tar"
        python3 tests/data/make-corner.py "$id_dir/corner-small.tar" \
            --name-max 253 --symlink-max 1023
    fi
    [[ -e ${inputs[$i]} ]] || { echo "identity: no input ${inputs[$i]}" >&2; exit 2; }
done

# The base's worktree sits at one fixed path, so cargo sees the same package
# paths on every run.
worktree=$id_dir/worktree
run_dir=$id_dir/run
cleanup() {
    rm -rf "$run_dir"
    git worktree remove --force "$worktree" 2>/dev/null || true
}
trap cleanup EXIT
git worktree remove --force "$worktree" 2>/dev/null || true
git worktree prune
git worktree add --quiet --detach "$worktree" "$base_sha"
# A fresh checkout is newer than every earlier build. For a rerun on the same
# base, date the files back to the commit so cargo reuses that build; for
# another base, the fresh times make cargo rebuild what changed.
stamp=$id_dir/base-target/built-rev
if [[ -f $stamp && $(cat "$stamp") == "$base_sha" ]]; then
    commit_time=$(git log -1 --format=%ct "$base_sha")
    (cd "$worktree" && git ls-files -z | xargs -0 touch -h -d "@$commit_time")
fi

echo "identity: building base $(git log -1 --format='%h %s' "$base_sha")"
cargo build --release --quiet --manifest-path "$worktree/Cargo.toml" \
    --target-dir "$id_dir/base-target" --bin rootforge
echo "$base_sha" >"$stamp"
base_bin=$id_dir/base-target/release/rootforge

echo "identity: building the work tree"
new_target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release --quiet --target-dir "$new_target" --bin rootforge
new_bin=$new_target/release/rootforge

# name|options|corner; options are split on spaces; corner: `small` to take
# the small corner tree in place of the corner tree, `skip` to leave it out.
cases=()
add() { cases+=("$1|$2|${3:-}"); }
compressors=(gzip bzip2 lz4 lzma lzo xz zstd)
for fmt in newc crc; do
    add "cpio-$fmt" "-f cpio --cpio-format $fmt"
    for c in "${compressors[@]}"; do
        add "cpio-$fmt-$c" "-f cpio --cpio-format $fmt --compress $c"
    done
done
add cpio-init "-f cpio --cpio-init"
add cpio-init-crc-zstd "-f cpio --cpio-init --cpio-format crc --cpio-compress zstd"
add cpio-gzip-level1-keep "-f cpio --compress gzip --compress-level 1 --keep-uncompressed"
add tar "-f tar"
for c in "${compressors[@]}"; do
    add "tar-$c" "-f tar --tar-compress $c"
done
for c in gzip lzo xz lz4 zstd none; do
    add "squashfs-$c" "-f squashfs --squashfs-comp $c"
done
add squashfs-block-4K "-f squashfs --squashfs-block-size 4K"
add squashfs-block-64K-xz "-f squashfs --squashfs-block-size 64K --squashfs-comp xz"
add squashfs-block-1M "-f squashfs --squashfs-block-size 1M"
for c in gzip xz zstd; do
    add "squashfs-extreme-$c" "-f squashfs --squashfs-extreme --squashfs-comp $c"
done
add squashfs-always-fragments "-f squashfs --squashfs-always-fragments"
add squashfs-no-exports-no-pad "-f squashfs --squashfs-no-exports --squashfs-no-pad"
for v in ext2 ext3 ext4; do
    add "$v-auto" "-f $v"
    add "$v-fixed" "-f $v --ext-size FIXED"
    add "$v-1K" "-f $v --ext-block-size 1024" skip
    add "$v-no-csum" "-f $v --ext-features ^metadata_csum"
done
add ext4-headroom-gzip "-f ext4 --ext-headroom 1M --ext-compress gzip"
add iso9660 "-f iso9660" small
add iso9660-zisofs "-f iso9660 --iso-zisofs" small
add iso9660-no-joliet "-f iso9660 --iso-no-joliet" small
add profile-buildroot "--profile buildroot" small
add all-j1 "-j 1" small
add all-j2 "-j 2" small

# A fixed ext size that holds the input: twice its size plus 16 MiB.
fixed_size() {
    local bytes
    bytes=$(stat -L -c %s "$1")
    echo "$((bytes * 2 / 1048576 + 16))M"
}

# The sha256 of every file under a directory, by relative path.
digest() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

same=0 differ=0 failed=0
start=$SECONDS
for given in "${inputs[@]}"; do
    for entry in "${cases[@]}"; do
        IFS='|' read -r name options corner <<<"$entry"
        input=$given
        if [[ $input == "$id_dir/corner.tar" ]]; then
            [[ $corner == skip ]] && continue
            [[ $corner == small ]] && input=$id_dir/corner-small.tar
        fi
        label=$(basename "$input")
        read -r -a opts <<<"$options"
        opts=("${opts[@]/#FIXED/$(fixed_size "$input")}")
        rm -rf "$run_dir"
        mkdir -p "$run_dir"
        status=()
        t0=${EPOCHREALTIME/./}
        for side in base new; do
            bin=$base_bin
            [[ $side == new ]] && bin=$new_bin
            if "$bin" build "$input" -o "$run_dir/$side" -q "${opts[@]}" \
                >"$run_dir/$side.log" 2>&1; then
                status+=(0)
            else
                status+=($?)
            fi
        done
        ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
        if [[ ${status[0]} != 0 || ${status[1]} != 0 ]]; then
            failed=$((failed + 1))
            echo "FAILED  $label $name (base exit ${status[0]}, new exit ${status[1]})"
            for side in base new; do
                sed "s/^/    $side: /" "$run_dir/$side.log" | head -5
            done
            continue
        fi
        if diff <(digest "$run_dir/base") <(digest "$run_dir/new") >"$run_dir/diff"; then
            same=$((same + 1))
            files=$(digest "$run_dir/new" | wc -l)
            echo "same    $label $name ($files files, $ms ms)"
        else
            differ=$((differ + 1))
            echo "DIFFER  $label $name"
            sed 's/^/    /' "$run_dir/diff"
        fi
    done
done

echo "identity: base $(git rev-parse --short "$base_sha") vs work tree" \
    "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (modified)'):" \
    "$((same + differ + failed)) cases on ${#inputs[@]} inputs in $((SECONDS - start)) s"
if [[ $failed -gt 0 ]]; then
    echo "identity: $same same, $differ differ ($failed failed)"
else
    echo "identity: $same same, $differ differ"
fi
[[ $differ -eq 0 && $failed -eq 0 ]]
