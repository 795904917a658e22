#!/bin/sh
# Buildroot post-image script: builds the root filesystem images with
# rootforge instead of Buildroot's fs/ infrastructure.
#
#   BR2_ROOTFS_POST_IMAGE_SCRIPT="path/to/contrib/buildroot/post-image.sh"
#   BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS="path/to/rootfs.config"
#
# rootfs.config holds the BR2_TARGET_ROOTFS_* options (in .config syntax)
# of the images you want, which stay disabled in Buildroot's own .config so
# that Buildroot does not build them too; the tables, systemd choices and
# BR2_ARCH are read from Buildroot's .config ($BR2_CONFIG). Buildroot runs
# this script with the images directory as $1 and exports BR2_CONFIG,
# TARGET_DIR, BINARIES_DIR and (with BR2_REPRODUCIBLE) SOURCE_DATE_EPOCH.
set -eu

images=${1:?usage: post-image.sh IMAGES_DIR ROOTFS_CONFIG}
fragment=${2:?the BR2_TARGET_ROOTFS_* fragment (BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS)}
: "${BR2_CONFIG:?run from Buildroot: BR2_CONFIG is not set}"
: "${TARGET_DIR:?run from Buildroot: TARGET_DIR is not set}"

# Later lines win, so the fragment's image options override the .config.
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat "$BR2_CONFIG" "$fragment" >"$config"

# Table paths in the .config are relative to Buildroot's top directory,
# where Buildroot runs post-image scripts.
exec "${ROOTFORGE:-rootforge}" buildroot --config "$config" \
    --target-dir "$TARGET_DIR" --output "$images" --topdir "$(pwd)"
