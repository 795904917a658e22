#!/bin/bash
# Prepares what tests/it/vm.rs boots under qemu: Debian's amd64 kernel and the
# test harness, a small newc initramfs under the private prefix /.rftest
# holding busybox-static, tests/vm/init and the kernel modules disk images
# need, decompressed and numbered in load order.
#
# Usage: tests/vm/prepare.sh [CACHE_DIR]   (default: target/vm in the repo)
#
# Idempotent: once CACHE_DIR/ready matches the harness sources it returns at
# once, offline. The kernel is the newest linux-image-X.Y.Z-...-amd64 that
# apt-cache lists when it is first downloaded; delete CACHE_DIR to move on.
# Needs the Debian packages kmod, cpio, busybox-static, xz-utils and zstd
# (and qemu-system-x86 to boot the result); root only for `apt-get update`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${1:-$here/../../target/vm}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# Modules the harness loads (with their dependencies and soft dependencies):
# virtio disks, the read-only mounts of disk mode, NLS for Joliet names,
# erofs, vfat with its default codepage (cp437) and iocharset (ascii), and jffs2
# for the flash images.
modules=(virtio_pci virtio_blk squashfs isofs nls_utf8 ext4 erofs vfat nls_cp437 nls_ascii jffs2)
# Modules init loads later, with parameters (the simulated flash chips and
# UBI attaching one): their dependencies load with the others, the modules
# themselves go to /.rftest/modules/late/NAME.ko.
late_modules=(mtdram nandsim ubi)

say() { echo "vm/prepare: $*" >&2; }

# Parallel test processes share the cache: one prepares, the others wait.
exec 9>"$cache/.lock"
flock 9

stamp=$(cat "$here/prepare.sh" "$here/init" | sha256sum | cut -d' ' -f1)
if [[ -f $cache/ready && $(<"$cache/ready") == "$stamp" ]]; then
    exit 0
fi
rm -f "$cache/ready"

for tool in apt-get apt-cache dpkg depmod modprobe cpio xz zstd; do
    command -v "$tool" >/dev/null || {
        say "$tool is missing: apt-get install kmod cpio xz-utils zstd busybox-static"
        exit 1
    }
done

newest_kernel() {
    apt-cache search --names-only '^linux-image-[0-9]' | cut -d' ' -f1 |
        grep -E '^linux-image-[0-9]+\.[0-9]+\.[0-9]+[-+][^-]+-amd64$' |
        sort -V | tail -n1 || true
}

kdir=$cache/kernel
if [[ ! -f $kdir/version ]]; then
    pkg=$(newest_kernel)
    if [[ -z $pkg ]]; then
        say "apt-get update (no linux-image package listed)"
        apt-get update -qq
        pkg=$(newest_kernel)
    fi
    [[ -n $pkg ]] || { say "no linux-image-*-amd64 package in apt-cache"; exit 1; }
    say "downloading $pkg"
    rm -rf "$kdir" "$cache/download"
    mkdir -p "$cache/download"
    (cd "$cache/download" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
    dpkg -x "$cache"/download/*.deb "$kdir"
    rm -rf "$cache/download"
    # Trixie and later ship the modules under /usr/lib only.
    if [[ ! -d $kdir/lib/modules && -d $kdir/usr/lib/modules ]]; then
        ln -s usr/lib "$kdir/lib"
    fi
    version=${pkg#linux-image-}
    [[ -f $kdir/boot/vmlinuz-$version && -d $kdir/lib/modules/$version ]] ||
        { say "$pkg has no vmlinuz-$version or modules"; exit 1; }
    say "depmod $version"
    depmod -b "$kdir" "$version"
    echo "$version" >"$kdir/version"
fi
version=$(<"$kdir/version")
cp "$kdir/boot/vmlinuz-$version" "$cache/vmlinuz.tmp"
mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"

busybox=$(dpkg -L busybox-static | grep -E '/bin/busybox$' | head -n1)
[[ -x $busybox ]] || { say "busybox-static is not installed"; exit 1; }

say "building the harness initramfs for $version"
stage=$cache/stage
rm -rf "$stage"
mkdir -p "$stage/.rftest/modules"
cp "$busybox" "$stage/.rftest/busybox"
install -m 0755 "$here/init" "$stage/.rftest/init"

# modprobe resolves modules.dep and the soft dependencies (ext4 wants
# crc32c) into insmod lines in load order; built-in modules print `builtin`.
n=0
declare -A seen=()
for m in "${modules[@]}"; do
    while read -r kind path _; do
        [[ $kind == insmod && -z ${seen[$path]:-} ]] || continue
        seen[$path]=1
        n=$((n + 1))
        base=$(basename "$path")
        out=$stage/.rftest/modules/$(printf '%02d' "$n")-${base%%.ko*}.ko
        # busybox insmod takes plain ELF objects only.
        case $path in
        *.ko.xz) xz -dc "$path" >"$out" ;;
        *.ko.zst) zstd -dcq "$path" >"$out" ;;
        *.ko.gz) gzip -dc "$path" >"$out" ;;
        *.ko) cp "$path" "$out" ;;
        *) say "unexpected module file $path"; exit 1 ;;
        esac
    done < <(modprobe -d "$kdir" -S "$version" --show-depends "$m")
done
mkdir -p "$stage/.rftest/modules/late"
for m in "${late_modules[@]}"; do
    mapfile -t lines < <(modprobe -d "$kdir" -S "$version" --show-depends "$m")
    last=$((${#lines[@]} - 1))
    for i in "${!lines[@]}"; do
        read -r kind path _ <<<"${lines[$i]}"
        [[ $kind == insmod && -z ${seen[$path]:-} ]] || continue
        seen[$path]=1
        if [[ $i -eq $last ]]; then
            out=$stage/.rftest/modules/late/$m.ko
        else
            n=$((n + 1))
            base=$(basename "$path")
            out=$stage/.rftest/modules/$(printf '%02d' "$n")-${base%%.ko*}.ko
        fi
        case $path in
        *.ko.xz) xz -dc "$path" >"$out" ;;
        *.ko.zst) zstd -dcq "$path" >"$out" ;;
        *.ko.gz) gzip -dc "$path" >"$out" ;;
        *.ko) cp "$path" "$out" ;;
        *) say "unexpected module file $path"; exit 1 ;;
        esac
    done
done
say "modules: $(cd "$stage/.rftest/modules" && echo * late/*)"

# GNU cpio pads the archive (after its trailer) to 512 bytes, so the image
# under test can follow it directly.
(cd "$stage" && find .rftest -print0 | LC_ALL=C sort -z |
    cpio -o -0 -H newc -R 0:0 --reproducible --quiet) >"$cache/harness.cpio.tmp"
mv "$cache/harness.cpio.tmp" "$cache/harness.cpio"
rm -rf "$stage"

echo "$stamp" >"$cache/ready"
say "ready: $cache/vmlinuz ($version), $cache/harness.cpio"
