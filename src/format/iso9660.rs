//! ISO9660's option group and registry functions.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use rootforge_common::Encoder;
use rootforge_iso9660::IsoEncoder;
use serde::Deserialize;

use super::{EncoderContext, Format, FormatOptions, merge_fields, push_flag, push_opt};

/// `--iso-*` and `[images.iso9660]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Volume id, at most 32 d-characters [default: ROOTFS].
    #[arg(
        id = "iso-volume-id",
        long = "iso-volume-id",
        value_name = "ID",
        help_heading = "iso9660"
    )]
    pub volume_id: Option<String>,
    /// Leave out the Joliet tree.
    #[arg(id = "iso-no-joliet", long = "iso-no-joliet", help_heading = "iso9660")]
    #[serde(default)]
    pub no_joliet: bool,
    /// El Torito BIOS boot image: a path inside the image (with a boot
    /// info table), e.g. isolinux/isolinux.bin.
    #[arg(
        id = "iso-boot-bios",
        long = "iso-boot-bios",
        value_name = "PATH",
        help_heading = "iso9660"
    )]
    pub boot_bios: Option<String>,
    /// El Torito EFI boot image: a path inside the image of a FAT image.
    #[arg(
        id = "iso-boot-efi",
        long = "iso-boot-efi",
        value_name = "PATH",
        help_heading = "iso9660",
        conflicts_with = "iso-efi-dir"
    )]
    pub boot_efi: Option<String>,
    /// Build the EFI boot image natively as a FAT image of this directory
    /// (e.g. one holding EFI/BOOT/BOOTX64.EFI).
    #[arg(
        id = "iso-efi-dir",
        long = "iso-efi-dir",
        value_name = "DIR",
        help_heading = "iso9660"
    )]
    pub efi_dir: Option<PathBuf>,
    /// Make the image isohybrid with this MBR boot code (syslinux's
    /// isohdpfx.bin), with a GPT entry for the EFI image.
    #[arg(
        id = "iso-hybrid",
        long = "iso-hybrid",
        value_name = "FILE",
        help_heading = "iso9660"
    )]
    pub hybrid: Option<PathBuf>,
    /// Compress files with zisofs, which Linux reads transparently.
    #[arg(id = "iso-zisofs", long = "iso-zisofs", help_heading = "iso9660")]
    #[serde(default)]
    pub zisofs: bool,
    /// Buildroot's initrd layout: the ISO holds only boot/ with the kernel
    /// (--iso-kernel), this run's cpio image as boot/initrd, the boot
    /// loader files (--overlay iso9660:DIR) and the menu (--iso-boot-menu),
    /// instead of the rootfs.
    #[arg(id = "iso-initrd", long = "iso-initrd", help_heading = "iso9660")]
    #[serde(default)]
    pub initrd: bool,
    /// The kernel image for --iso-initrd, stored under boot/ by its file name.
    #[arg(
        id = "iso-kernel",
        long = "iso-kernel",
        value_name = "FILE",
        help_heading = "iso9660"
    )]
    pub kernel: Option<PathBuf>,
    /// A boot menu template SRC stored at DEST inside the ISO, with
    /// __KERNEL_PATH__ and __INITRD_PATH__ replaced (e.g.
    /// board/isolinux.cfg:isolinux/isolinux.cfg). Repeatable.
    #[arg(
        id = "iso-boot-menu",
        long = "iso-boot-menu",
        value_name = "SRC:DEST",
        help_heading = "iso9660"
    )]
    #[serde(default)]
    pub boot_menu: Vec<String>,
}

merge_fields!(Options { volume_id, boot_bios, boot_efi, efi_dir, hybrid, kernel } flags { no_joliet, zisofs, initrd } lists { boot_menu });

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        push_opt(out, "--iso-volume-id", self.volume_id.as_ref());
        push_flag(out, "--iso-no-joliet", self.no_joliet);
        push_opt(out, "--iso-boot-bios", self.boot_bios.as_ref());
        push_opt(out, "--iso-boot-efi", self.boot_efi.as_ref());
        push_opt(
            out,
            "--iso-efi-dir",
            self.efi_dir.as_ref().map(|p| p.display()).as_ref(),
        );
        push_opt(
            out,
            "--iso-hybrid",
            self.hybrid.as_ref().map(|p| p.display()).as_ref(),
        );
        push_flag(out, "--iso-zisofs", self.zisofs);
        push_flag(out, "--iso-initrd", self.initrd);
        push_opt(
            out,
            "--iso-kernel",
            self.kernel.as_ref().map(|p| p.display()).as_ref(),
        );
        for m in &self.boot_menu {
            push_opt(out, "--iso-boot-menu", Some(m));
        }
    }
}

pub(super) fn encoder(
    _: Format,
    opts: &FormatOptions,
    ctx: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    let o = &opts.iso9660;
    let mut enc = IsoEncoder::default();
    if let Some(id) = &o.volume_id {
        enc.volume_id.clone_from(id);
    }
    enc.joliet = !o.no_joliet;
    let inside = |p: &str| p.trim_start_matches('/').as_bytes().to_vec();
    enc.boot_bios = o.boot_bios.as_deref().map(inside);
    enc.boot_efi = o.boot_efi.as_deref().map(inside);
    if let Some(dir) = &o.efi_dir {
        let tree = crate::overlay::read_overlay_dir(dir, ctx.source_date_epoch)
            .with_context(|| format!("--iso-efi-dir {}", dir.display()))?;
        enc.efi_tree = Some(Arc::new(tree));
    }
    if let Some(mbr) = &o.hybrid {
        enc.hybrid_mbr =
            Some(std::fs::read(mbr).with_context(|| format!("--iso-hybrid {}", mbr.display()))?);
    }
    enc.zisofs = o.zisofs;
    enc.created = ctx.created;
    Ok(Box::new(enc))
}

pub(super) fn compare(_: &[u32]) -> Vec<super::CompareRow> {
    let mut zisofs = super::CompareRow::plain("zisofs");
    zisofs.options.iso9660.zisofs = true;
    vec![super::CompareRow::plain("none"), zisofs]
}
