//! `rootforge buildroot`: a Buildroot `.config` (or any file in its syntax)
//! turned into the `rootforge build` command that makes exactly the images
//! it enables, with Buildroot's options and names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rootforge_squashfs::Comp;

use crate::compress::Compression;
use crate::format::ext::ExtSize;
use crate::format::{Format, parse_size};
use crate::plan::{BuildPlan, Env, Layer, Profile};

/// A `.config`: `BR2_X=y`, `BR2_X="text"`, `# BR2_X is not set`.
#[derive(Debug, Default)]
pub struct Kconfig(BTreeMap<String, String>);

impl Kconfig {
    pub fn parse(text: &str) -> Kconfig {
        let mut map = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            // A later "not set" undoes an earlier value (a fragment
            // appended to a .config).
            if let Some(key) = line
                .strip_prefix("# ")
                .and_then(|l| l.strip_suffix(" is not set"))
            {
                map.remove(key);
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .map_or_else(|| value.to_owned(), |v| v.replace("\\\"", "\""));
                map.insert(key.trim().to_owned(), value);
            }
        }
        Kconfig(map)
    }

    fn on(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| v == "y")
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// What a `.config` asks for: a typed build plan, and what rootforge does
/// not follow.
#[derive(Debug)]
pub struct Translated {
    /// The plan, as `rootforge build` would resolve it.
    pub plan: BuildPlan,
    /// Options rootforge does not follow, said as warnings.
    pub ignored: Vec<String>,
}

const COMPRESSIONS: [(&str, Compression); 7] = [
    ("GZIP", Compression::Gzip),
    ("BZIP2", Compression::Bzip2),
    ("LZ4", Compression::Lz4),
    ("LZMA", Compression::Lzma),
    ("LZO", Compression::Lzo),
    ("XZ", Compression::Xz),
    ("ZSTD", Compression::Zstd),
];

/// The outer compression Buildroot's `BR2_TARGET_ROOTFS_<FS>_<ALG>` sets.
fn compression(k: &Kconfig, fs: &str) -> Option<Compression> {
    COMPRESSIONS
        .iter()
        .find(|(alg, _)| k.on(&format!("BR2_TARGET_ROOTFS_{fs}_{alg}")))
        .map(|&(_, c)| c)
}

/// Buildroot's table paths are relative to its top directory; several are
/// separated by spaces.
fn paths(k: &Kconfig, key: &str, topdir: &Path) -> Vec<PathBuf> {
    k.text(key)
        .map(|v| v.split_whitespace().map(|p| topdir.join(p)).collect())
        .unwrap_or_default()
}

/// Buildroot's sizes: a number of KiB, or with a k/m/g/t suffix.
fn ext_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let bad = || anyhow::anyhow!("BR2_TARGET_ROOTFS_EXT2_SIZE=\"{text}\" is not a size");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let with_unit = match &t[digits.len()..] {
        "" => format!("{digits}K"),
        unit => format!("{digits}{}", unit.to_ascii_uppercase()),
    };
    parse_size(&with_unit).map_err(|_| bad())
}

/// The `-O` list of `BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS`; other mke2fs
/// options are reported as ignored.
fn mkfs_features(text: &str, ignored: &mut Vec<String>) -> Option<String> {
    let mut words = text.split_whitespace();
    let mut features = Vec::new();
    while let Some(w) = words.next() {
        match w {
            "-O" => features.extend(words.next()),
            _ => match w.strip_prefix("-O") {
                Some(list) => features.push(list),
                None => ignored.push(format!(
                    "BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS: `{w}` (only -O is followed)"
                )),
            },
        }
    }
    (!features.is_empty()).then(|| features.join(","))
}

/// Translates a `.config` into the plan of the `rootforge build` that makes
/// its images, for a target directory owned by the build user (everything
/// becomes 0:0, as under Buildroot's fakeroot).
///
/// # Errors
///
/// A configuration that asks for what rootforge cannot build, or a bad
/// size.
pub fn plan(
    k: &Kconfig,
    target_dir: &Path,
    output: &Path,
    topdir: &Path,
    env: Env,
) -> Result<Translated> {
    let mut layer = Layer {
        input: Some(target_dir.to_path_buf()),
        output: Some(output.to_path_buf()),
        profile: Some(Profile::Buildroot),
        ..Layer::default()
    };
    let mut ignored = Vec::new();
    let mut formats = Vec::new();
    let compress = |layer: &mut Layer, formats: &[Format], fs: &str| {
        if let Some(c) = compression(k, fs) {
            for f in formats {
                layer.images.entry(*f).or_default().compress = Some(c);
            }
        }
    };

    if k.on("BR2_TARGET_ROOTFS_CPIO") {
        formats.push(Format::Cpio);
        compress(&mut layer, &[Format::Cpio], "CPIO");
        layer.options.cpio.uimage = k.on("BR2_TARGET_ROOTFS_CPIO_UIMAGE");
        if k.on("BR2_TARGET_ROOTFS_CPIO_DRACUT") {
            bail!(
                "BR2_TARGET_ROOTFS_CPIO_DRACUT: dracut images run dracut's module scripts; rootforge builds full cpio images only"
            );
        }
    }
    if k.on("BR2_TARGET_ROOTFS_TAR") {
        formats.push(Format::Tar);
        compress(&mut layer, &[Format::Tar], "TAR");
        if let Some(opts) = k.text("BR2_TARGET_ROOTFS_TAR_OPTIONS") {
            ignored.push(format!("BR2_TARGET_ROOTFS_TAR_OPTIONS=\"{opts}\""));
        }
    }
    if k.on("BR2_TARGET_ROOTFS_SQUASHFS") {
        formats.push(Format::Squashfs);
        if k.on("BR2_TARGET_ROOTFS_SQUASHFS4_LZMA") {
            bail!(
                "BR2_TARGET_ROOTFS_SQUASHFS4_LZMA: the legacy lzma compressor is not supported (the kernel does not read it)"
            );
        }
        let comp = [
            ("GZIP", Comp::Gzip),
            ("LZ4", Comp::Lz4),
            ("LZO", Comp::Lzo),
            ("XZ", Comp::Xz),
            ("ZSTD", Comp::Zstd),
            ("NONE", Comp::None),
        ]
        .into_iter()
        .find(|(c, _)| k.on(&format!("BR2_TARGET_ROOTFS_SQUASHFS4_{c}")))
        .map_or(Comp::Gzip, |(_, c)| c);
        let o = &mut layer.options.squashfs;
        o.comp = Some(comp);
        let bs = [4u64, 8, 16, 32, 64, 128, 256, 512, 1024]
            .into_iter()
            .find(|kib| k.on(&format!("BR2_TARGET_ROOTFS_SQUASHFS_BS_{kib}K")))
            .unwrap_or(128);
        o.block_size = Some(bs << 10);
        o.extreme = k.on("BR2_TARGET_ROOTFS_SQUASHFS_EXTREME_COMP");
        o.no_pad = !k.on("BR2_TARGET_ROOTFS_SQUASHFS_PAD");
    }
    if k.on("BR2_TARGET_ROOTFS_EROFS") {
        formats.push(Format::Erofs);
        for (key, what) in [
            ("LZMA", "the lzma compressor"),
            ("DEDUPE", "dedupe"),
            ("FRAGMENTS", "fragments"),
            ("ALL_FRAGMENTS", "all-fragments"),
            ("ZTAILPACKING", "ztailpacking"),
        ] {
            if k.on(&format!("BR2_TARGET_ROOTFS_EROFS_{key}")) {
                bail!("BR2_TARGET_ROOTFS_EROFS_{key}: erofs {what} is not supported yet");
            }
        }
        let o = &mut layer.options.erofs;
        let level = |key: &str| -> Result<Option<u32>> {
            k.text(key)
                .map(str::parse)
                .transpose()
                .with_context(|| key.to_owned())
        };
        if k.on("BR2_TARGET_ROOTFS_EROFS_LZ4HC") {
            o.compress = Some(rootforge_erofs::Comp::Lz4hc);
            o.level = level("BR2_TARGET_ROOTFS_EROFS_LZ4HC_LEVEL")?;
        } else if k.on("BR2_TARGET_ROOTFS_EROFS_CUSTOM_COMPRESSION") {
            let spec = k
                .text("BR2_TARGET_ROOTFS_EROFS_COMPRESSION_ALGORITHMS")
                .unwrap_or("");
            if k.text("BR2_TARGET_ROOTFS_EROFS_COMPRESSION_HINTS")
                .is_some_and(|h| !h.is_empty())
            {
                bail!(
                    "BR2_TARGET_ROOTFS_EROFS_COMPRESSION_HINTS: compress hints are not supported yet"
                );
            }
            let (alg, lvl) = spec.split_once(',').unwrap_or((spec, ""));
            let comp = rootforge_erofs::Comp::ALL
                .into_iter()
                .find(|c| c.name() == alg.trim())
                .with_context(|| {
                    format!("BR2_TARGET_ROOTFS_EROFS_COMPRESSION_ALGORITHMS=\"{spec}\": only one of lz4, lz4hc, deflate, zstd with an optional level is supported")
                })?;
            o.compress = Some(comp);
            if !lvl.trim().is_empty() {
                o.level = Some(lvl.trim().parse().with_context(|| {
                    format!("BR2_TARGET_ROOTFS_EROFS_COMPRESSION_ALGORITHMS=\"{spec}\"")
                })?);
            }
        } else {
            o.compress = Some(rootforge_erofs::Comp::None);
        }
        o.pcluster_size = k
            .text("BR2_TARGET_ROOTFS_EROFS_PCLUSTERSIZE")
            .filter(|n| *n != "0")
            .map(str::parse)
            .transpose()
            .context("BR2_TARGET_ROOTFS_EROFS_PCLUSTERSIZE")?;
        if k.on("BR2_REPRODUCIBLE") {
            o.uuid = Some(crate::format::ext::Uuid([0; 16]));
        }
    }
    if k.on("BR2_TARGET_ROOTFS_EXT2") {
        let variant = if k.on("BR2_TARGET_ROOTFS_EXT2_4") {
            Format::Ext4
        } else if k.on("BR2_TARGET_ROOTFS_EXT2_3") {
            Format::Ext3
        } else {
            Format::Ext2
        };
        formats.push(variant);
        let size = ext_size(k.text("BR2_TARGET_ROOTFS_EXT2_SIZE").unwrap_or("60M"))?;
        let o = &mut layer.options.ext;
        o.size = Some(ExtSize::Bytes(size));
        // Buildroot's default size is below 512 MiB: mke2fs's "small" type.
        if size < 512 << 20 {
            o.block_size = Some(1024);
        }
        o.label = Some(
            k.text("BR2_TARGET_ROOTFS_EXT2_LABEL")
                .unwrap_or("rootfs")
                .to_owned(),
        );
        let nonzero = |key: &str| k.text(key).filter(|n| *n != "0");
        o.inodes = nonzero("BR2_TARGET_ROOTFS_EXT2_INODES")
            .map(str::parse)
            .transpose()
            .context("BR2_TARGET_ROOTFS_EXT2_INODES")?;
        o.inode_size = nonzero("BR2_TARGET_ROOTFS_EXT2_INODE_SIZE")
            .map(str::parse)
            .transpose()
            .context("BR2_TARGET_ROOTFS_EXT2_INODE_SIZE")?;
        o.reserved_percent = k
            .text("BR2_TARGET_ROOTFS_EXT2_RESBLKS")
            .map(str::parse)
            .transpose()
            .context("BR2_TARGET_ROOTFS_EXT2_RESBLKS")?;
        let mkfs = k
            .text("BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS")
            .unwrap_or("-O ^64bit");
        o.features = mkfs_features(mkfs, &mut ignored);
        compress(&mut layer, &[variant], "EXT2");
        layer.buildroot_names = variant != Format::Ext2;
    }
    if k.on("BR2_TARGET_ROOTFS_ISO9660") {
        if k.on("BR2_TARGET_ROOTFS_ISO9660_INITRD") || k.on("BR2_TARGET_ROOTFS_INITRAMFS") {
            bail!(
                "BR2_TARGET_ROOTFS_ISO9660_INITRD: the initrd layout is not supported yet; build the ISO in rootfs mode (BR2_TARGET_ROOTFS_ISO9660_INITRD is not set)"
            );
        }
        formats.push(Format::Iso9660);
        layer.options.iso9660.zisofs = k.on("BR2_TARGET_ROOTFS_ISO9660_TRANSPARENT_COMPRESSION");
    }
    if k.on("BR2_TARGET_ROOTFS_JFFS2") {
        // fs/jffs2/jffs2.mk: -e EBSIZE, -n for NAND or no cleanmarkers,
        // -l/-b, -p[=PADSIZE], sumtool for the summary.
        formats.push(Format::Jffs2);
        let hex = |key: &str| -> Result<Option<u64>> {
            k.text(key)
                .map(|v| {
                    let v = v.trim_start_matches("0x").trim_start_matches("0X");
                    u64::from_str_radix(v, 16).with_context(|| format!("{key}: not a hex size"))
                })
                .transpose()
        };
        let o = &mut layer.options.jffs2;
        o.eraseblock = hex("BR2_TARGET_ROOTFS_JFFS2_EBSIZE")?;
        o.no_cleanmarkers = k.on("BR2_TARGET_ROOTFS_JFFS2_NANDFLASH")
            || k.on("BR2_TARGET_ROOTFS_JFFS2_NOCLEANMARKER");
        if k.on("BR2_TARGET_ROOTFS_JFFS2_PAD") {
            o.pad = Some(hex("BR2_TARGET_ROOTFS_JFFS2_PADSIZE")?.unwrap_or(0));
        }
        o.endian = Some(if k.on("BR2_TARGET_ROOTFS_JFFS2_BE") {
            rootforge_jffs2::Endian::Big
        } else if k.on("BR2_TARGET_ROOTFS_JFFS2_LE") {
            rootforge_jffs2::Endian::Little
        } else if k.on("BR2_ENDIAN_BIG") || k.text("BR2_ENDIAN") == Some("BIG") {
            rootforge_jffs2::Endian::Big
        } else {
            rootforge_jffs2::Endian::Little
        });
        o.summary = k.on("BR2_TARGET_ROOTFS_JFFS2_SUMMARY");
        if hex("BR2_TARGET_ROOTFS_JFFS2_PAGESIZE")?.is_some_and(|p| p != 0x1000) {
            ignored.push(
                "BR2_TARGET_ROOTFS_JFFS2_PAGESIZE: data nodes hold 4 KiB, which every kernel reads"
                    .to_owned(),
            );
        }
    }
    if formats.is_empty() {
        bail!(
            "the configuration enables no image rootforge builds (BR2_TARGET_ROOTFS_CPIO, _TAR, _SQUASHFS, _EROFS, _EXT2, _ISO9660, _JFFS2)"
        );
    }
    layer.formats = formats;

    layer.device_tables = paths(k, "BR2_ROOTFS_DEVICE_TABLE", topdir);
    if k.on("BR2_ROOTFS_DEVICE_CREATION_STATIC") {
        layer
            .device_tables
            .extend(paths(k, "BR2_ROOTFS_STATIC_DEVICE_TABLE", topdir));
    }
    layer.users_tables = paths(k, "BR2_ROOTFS_USERS_TABLES", topdir);
    if k.on("BR2_INIT_SYSTEMD") {
        let read_only = !k.on("BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW");
        layer.systemd.var_factory = read_only && k.on("BR2_INIT_SYSTEMD_VAR_FACTORY");
        layer.systemd.tmpfiles = k.on("BR2_INIT_SYSTEMD_POPULATE_TMPFILES");
        layer.systemd.preset = true;
    }
    if let Some(arch) = k.text("BR2_ARCH") {
        let name = uimage_arch(arch);
        layer.arch = Some(
            name.parse()
                .map_err(|e| anyhow::anyhow!("BR2_ARCH=\"{arch}\": {e}"))?,
        );
    }
    for key in ["BR2_ROOTFS_POST_FAKEROOT_SCRIPT", "BR2_ROOTFS_OVERLAY"] {
        if let Some(v) = k.text(key) {
            ignored.push(format!(
                "{key}=\"{v}\" (Buildroot applies it before the images; run it on the target directory first)"
            ));
        }
    }
    Ok(Translated {
        plan: BuildPlan::resolve(layer, Layer::default(), env)?,
        ignored,
    })
}

/// Buildroot's `BR2_ARCH` as mkimage names it.
fn uimage_arch(arch: &str) -> &str {
    match arch {
        "i386" | "i486" | "i586" | "i686" => "x86",
        "aarch64" | "aarch64_be" => "arm64",
        "arm" | "armeb" => "arm",
        "powerpc" | "powerpc64" | "powerpc64le" => "powerpc",
        "mips" | "mipsel" => "mips",
        "mips64" | "mips64el" => "mips64",
        "riscv" | "riscv32" | "riscv64" => "riscv",
        other => other,
    }
}
