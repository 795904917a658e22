//! The command line and the TOML config file, merged into one build plan.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use rootforge_common::{Content, Edit, Encoder, FileData, Inode, Overlay, Replace, Time};
use serde::Deserialize;

use crate::compress::Compression;
pub use crate::image::Format;
use crate::input::{self, Source};
use crate::overlay;
use crate::pipeline::{self, ImageJob, ProgressMode};
use crate::tables;
use crate::uimage::UimageArch;

/// rootforge turns one root filesystem into every image a build needs, natively
/// and in parallel, with no external tools.
#[derive(Debug, Parser)]
#[command(
    name = "rootforge",
    version,
    about = "Build root filesystem images (cpio, tar, squashfs, ext2/3/4, iso9660) from one read of a rootfs, natively and in parallel",
    long_about = None,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build images from a rootfs tarball, a directory or stdin.
    Build(Box<BuildArgs>),
    /// Print one line per entry of an image: type, mode, uid, gid, size,
    /// sha256 / link target / device numbers, mtime and path.
    Inspect {
        /// An image rootforge can read back (cpio, tar, squashfs, ext2/3/4
        /// or iso9660; cpio, tar and ext optionally compressed or U-Boot
        /// wrapped).
        image: PathBuf,
    },
    /// Build the images a Buildroot configuration enables, from its target
    /// directory, as Buildroot names them (no fakeroot, no host tools).
    Buildroot(BuildrootArgs),
    /// Build every format × compressor × block size from one read of a
    /// rootfs and print sizes, build times and read-back times.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
#[command(after_help = crate::compare::MATRIX_HELP)]
pub struct CompareArgs {
    /// Rootfs tarball (plain or compressed), `-` for stdin, or a directory.
    /// Default: the bundled example.
    pub input: Option<PathBuf>,
    /// Formats to compare, comma separated [default: all].
    #[arg(short, long, value_name = "LIST", value_delimiter = ',')]
    pub formats: Vec<Format>,
    /// Compressors to compare, comma separated; `none` is every
    /// uncompressed image [default: all].
    #[arg(short, long = "comp", value_name = "LIST", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(crate::compare::COMP_NAMES))]
    pub comps: Vec<String>,
    /// squashfs block sizes to try with every compressor, instead of the
    /// matrix's.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_size)]
    pub squashfs_block_sizes: Vec<u64>,
    /// Own every file by 0:0 (for a directory owned by the build user).
    #[arg(long)]
    pub all_root: bool,
    /// Worker threads [default: number of cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the rows as a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw image size against build time as an SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Reads BR2_TARGET_ROOTFS_{CPIO,TAR,SQUASHFS,EXT2,ISO9660}* (compression, sizes,\nlabels, block sizes), the device, permission and users tables, the systemd\nsteps and BR2_ARCH, and runs the equivalent `rootforge build` (--print shows it)."
)]
pub struct BuildrootArgs {
    /// Buildroot's .config, or any file in its syntax.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The target directory (output/target), owned by the build user.
    #[arg(long, value_name = "DIR")]
    pub target_dir: PathBuf,
    /// Where the images go (Buildroot's output/images).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Buildroot's top directory, which table paths are relative to.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub topdir: PathBuf,
    /// Worker threads [default: number of cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the equivalent `rootforge build` command and exit.
    #[arg(long)]
    pub print: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Sets of defaults applied in one switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Buildroot's: everything owned by 0:0, the cpio `/init` and
    /// `/dev/console`, `/run` and `/tmp` emptied.
    Buildroot,
}

/// cpio header formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CpioFormatArg {
    Newc,
    Crc,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  rootforge build -o out                       # the bundled example rootfs, every format\n  rootforge build rootfs.tar.xz -o out -f cpio --compress gzip\n  rootforge build target/ --all-root -o out --profile buildroot\n  rootforge build --config images.toml\n\nExit status: 0 when every image was written, 1 on any error (nothing is left\nin the output directory), 2 on a usage error."
)]
pub struct BuildArgs {
    /// Rootfs tarball (plain, gzip, zstd, xz, bzip2, lz4; sniffed from its
    /// bytes), `-` for stdin, or a directory. Default: the bundled example.
    pub input: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Formats to build, comma separated [default: all: cpio,ext2,ext3,ext4,iso9660,squashfs,tar].
    #[arg(short, long, value_name = "LIST", value_delimiter = ',')]
    pub formats: Vec<Format>,
    /// Worker threads [default: number of cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress and no summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// TOML file describing the input, options and images; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Own every file by 0:0 (for a directory owned by the build user).
    #[arg(long)]
    pub all_root: bool,
    /// Apply a set of defaults.
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
    /// Target architecture, as mkimage -A names it (U-Boot header) [default: x86_64].
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<UimageArch>,
    /// Add a directory's contents to one image only (FORMAT:DIR), repeatable.
    #[arg(long = "overlay", value_name = "FORMAT:DIR")]
    pub overlays: Vec<String>,
    /// After every image is written, run CMD (with sh -c) on one format's
    /// image, e.g. to sign or wrap it: its path is $1 and ROOTFORGE_IMAGE,
    /// the output directory BINARIES_DIR. Repeatable; run in order.
    #[arg(long = "post-image", value_name = "FORMAT:CMD")]
    pub post_images: Vec<String>,
    /// Buildroot users table (mkusers format), repeatable; applied to every
    /// image before the device tables.
    #[arg(long = "users-table", value_name = "FILE")]
    pub users_tables: Vec<PathBuf>,
    /// Buildroot device or permission table (makedevs format), repeatable;
    /// later lines win.
    #[arg(long = "device-table", value_name = "FILE")]
    pub device_tables: Vec<PathBuf>,
    /// Read-only systemd rootfs: move /var to /usr/share/factory/var and
    /// restore it at boot with tmpfiles.d and var.mount (Buildroot's
    /// BR2_INIT_SYSTEMD_VAR_FACTORY).
    #[arg(long, help_heading = "systemd")]
    pub systemd_var_factory: bool,
    /// Apply the tree's tmpfiles.d as `systemd-tmpfiles --create --boot`
    /// would, with Buildroot's exclusions (BR2_INIT_SYSTEMD_POPULATE_TMPFILES).
    #[arg(long, help_heading = "systemd")]
    pub systemd_tmpfiles: bool,
    /// Create the enablement symlinks of `systemctl preset-all`.
    #[arg(long, help_heading = "systemd")]
    pub systemd_preset_all: bool,

    /// Outer compression of cpio and tar images: none, gzip, bzip2, lz4,
    /// lzma, lzo, xz, zstd.
    #[arg(long, value_name = "ALG", help_heading = "Compression")]
    pub compress: Option<Compression>,
    /// Compression level [default: Buildroot's: 9, zstd 19].
    #[arg(long, value_name = "N", help_heading = "Compression")]
    pub compress_level: Option<u32>,
    /// Keep the uncompressed image next to the compressed one.
    #[arg(long, help_heading = "Compression")]
    pub keep_uncompressed: bool,

    /// cpio header format.
    #[arg(long, value_enum, value_name = "FMT", help_heading = "cpio")]
    pub cpio_format: Option<CpioFormatArg>,
    /// cpio outer compression (overrides --compress).
    #[arg(long, value_name = "ALG", help_heading = "cpio")]
    pub cpio_compress: Option<Compression>,
    /// Add Buildroot's /init and /dev/console to the cpio image only.
    #[arg(long, help_heading = "cpio")]
    pub cpio_init: bool,
    /// Also write rootfs.cpio.uboot, the U-Boot legacy ramdisk image.
    #[arg(long, help_heading = "cpio")]
    pub cpio_uimage: bool,

    /// tar outer compression (overrides --compress).
    #[arg(long, value_name = "ALG", help_heading = "tar")]
    pub tar_compress: Option<Compression>,

    /// squashfs compressor: gzip, lzo, xz, lz4, zstd, none [default: gzip].
    #[arg(long, value_name = "ALG", help_heading = "squashfs", value_parser = parse_squashfs_comp)]
    pub squashfs_comp: Option<rootforge_squashfs::Comp>,
    /// squashfs compression level: gzip 1-12, lzo 9, xz 0-9, lz4 0 (fast)
    /// or 1-12 (HC), zstd 1-22 [default: gzip 6, xz 6, zstd 15, lz4 0].
    #[arg(long, value_name = "N", help_heading = "squashfs")]
    pub squashfs_level: Option<u32>,
    /// squashfs data block size, 4K to 1M [default: 128K].
    #[arg(long, value_name = "SIZE", help_heading = "squashfs", value_parser = parse_size)]
    pub squashfs_block_size: Option<u64>,
    /// Buildroot's extreme compression: gzip and lzo level 9, lz4 HC, zstd
    /// 22, xz with the BCJ filters of --arch.
    #[arg(long, help_heading = "squashfs")]
    pub squashfs_extreme: bool,
    /// xz BCJ filters to try on each block, as mksquashfs -Xbcj takes them
    /// (x86, powerpc, ia64, arm, armthumb, sparc; comma separated). The
    /// kernel that mounts the image needs each one's decoder
    /// (CONFIG_XZ_DEC_*): give the target's architecture.
    #[arg(long, value_name = "LIST", help_heading = "squashfs", value_parser = rootforge_squashfs::Bcj::parse)]
    pub squashfs_bcj: Option<rootforge_squashfs::Bcj>,
    /// Leave out the NFS export table.
    #[arg(long, help_heading = "squashfs")]
    pub squashfs_no_exports: bool,
    /// Do not pad the image to a multiple of 4 KiB.
    #[arg(long, help_heading = "squashfs")]
    pub squashfs_no_pad: bool,
    /// Pack the tail ends of large files into fragments too, as
    /// mksquashfs -always-use-fragments does.
    #[arg(long, help_heading = "squashfs")]
    pub squashfs_always_fragments: bool,

    /// ext2/3/4 image size: `auto` (the smallest that fits, plus
    /// --ext-headroom) or a size such as 60M [default: auto].
    #[arg(long, value_name = "SIZE", help_heading = "ext2/ext3/ext4", value_parser = parse_ext_size)]
    pub ext_size: Option<ExtSizeArg>,
    /// Free space added to an `auto` size [default: 0].
    #[arg(long, value_name = "SIZE", help_heading = "ext2/ext3/ext4", value_parser = parse_size)]
    pub ext_headroom: Option<u64>,
    /// Block size: 1024, 2048 or 4096 [default: 4096].
    #[arg(long, value_name = "SIZE", help_heading = "ext2/ext3/ext4", value_parser = parse_size)]
    pub ext_block_size: Option<u64>,
    /// Inode count [default: what the tree needs (auto size), else one per 16 KiB].
    #[arg(long, value_name = "N", help_heading = "ext2/ext3/ext4")]
    pub ext_inodes: Option<u32>,
    /// Inode size, 128 or 256 [default: 256].
    #[arg(long, value_name = "BYTES", help_heading = "ext2/ext3/ext4")]
    pub ext_inode_size: Option<u16>,
    /// Blocks reserved for root, in percent [default: 5].
    #[arg(long, value_name = "PCT", help_heading = "ext2/ext3/ext4")]
    pub ext_reserved_percent: Option<u8>,
    /// Volume label, at most 16 bytes [default: rootfs].
    #[arg(long, value_name = "LABEL", help_heading = "ext2/ext3/ext4")]
    pub ext_label: Option<String>,
    /// Filesystem UUID [default: derived from the content].
    #[arg(long, value_name = "UUID", help_heading = "ext2/ext3/ext4", value_parser = parse_uuid)]
    pub ext_uuid: Option<[u8; 16]>,
    /// Features to add or remove, in mke2fs -O syntax (e.g. ^metadata_csum).
    #[arg(long, value_name = "LIST", help_heading = "ext2/ext3/ext4")]
    pub ext_features: Option<String>,
    /// Outer compression of ext images (overrides --compress).
    #[arg(long, value_name = "ALG", help_heading = "ext2/ext3/ext4")]
    pub ext_compress: Option<Compression>,

    /// Volume id, at most 32 d-characters [default: ROOTFS].
    #[arg(long, value_name = "ID", help_heading = "iso9660")]
    pub iso_volume_id: Option<String>,
    /// Leave out the Joliet tree.
    #[arg(long, help_heading = "iso9660")]
    pub iso_no_joliet: bool,
    /// El Torito BIOS boot image: a path inside the image (with a boot
    /// info table), e.g. isolinux/isolinux.bin.
    #[arg(long, value_name = "PATH", help_heading = "iso9660")]
    pub iso_boot_bios: Option<String>,
    /// El Torito EFI boot image: a path inside the image of a FAT image.
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "iso9660",
        conflicts_with = "iso_efi_dir"
    )]
    pub iso_boot_efi: Option<String>,
    /// Build the EFI boot image natively as a FAT image of this directory
    /// (e.g. one holding EFI/BOOT/BOOTX64.EFI).
    #[arg(long, value_name = "DIR", help_heading = "iso9660")]
    pub iso_efi_dir: Option<PathBuf>,
    /// Make the image isohybrid with this MBR boot code (syslinux's
    /// isohdpfx.bin), with a GPT entry for the EFI image.
    #[arg(long, value_name = "FILE", help_heading = "iso9660")]
    pub iso_hybrid: Option<PathBuf>,
    /// Compress files with zisofs, which Linux reads transparently.
    #[arg(long, help_heading = "iso9660")]
    pub iso_zisofs: bool,
    /// Buildroot's initrd layout: the ISO holds only boot/ with the kernel
    /// (--iso-kernel), this run's cpio image as boot/initrd, the boot
    /// loader files (--overlay iso9660:DIR) and the menu (--iso-boot-menu),
    /// instead of the rootfs.
    #[arg(long, help_heading = "iso9660", requires = "iso_kernel")]
    pub iso_initrd: bool,
    /// The kernel image for --iso-initrd, stored in boot/ under its file name.
    #[arg(long, value_name = "FILE", help_heading = "iso9660")]
    pub iso_kernel: Option<PathBuf>,
    /// A boot menu template SRC stored at DEST inside the ISO, with
    /// __KERNEL_PATH__ and __INITRD_PATH__ replaced (e.g.
    /// board/isolinux.cfg:isolinux/isolinux.cfg). Repeatable.
    #[arg(long, value_name = "SRC:DEST", help_heading = "iso9660")]
    pub iso_boot_menu: Vec<String>,
}

/// `--ext-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtSizeArg {
    Auto,
    Bytes(u64),
}

fn parse_ext_size(s: &str) -> Result<ExtSizeArg, String> {
    if s == "auto" {
        Ok(ExtSizeArg::Auto)
    } else {
        parse_size(s).map(ExtSizeArg::Bytes)
    }
}

/// A UUID in its usual form, 32 hex digits with optional dashes.
fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
    let bad = || format!("`{s}` is not a UUID (32 hex digits, dashes allowed)");
    if hex.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub formats: Option<Vec<String>>,
    pub jobs: Option<usize>,
    #[serde(default)]
    pub all_root: bool,
    pub profile: Option<Profile>,
    pub arch: Option<String>,
    pub compress: Option<String>,
    pub compress_level: Option<u32>,
    #[serde(default)]
    pub keep_uncompressed: bool,
    /// mkusers tables, applied in order before the device tables.
    #[serde(default)]
    pub users_tables: Vec<PathBuf>,
    /// makedevs device and permission tables, applied in order.
    #[serde(default)]
    pub device_tables: Vec<PathBuf>,
    #[serde(default)]
    pub systemd_var_factory: bool,
    #[serde(default)]
    pub systemd_tmpfiles: bool,
    #[serde(default)]
    pub systemd_preset_all: bool,
    #[serde(default)]
    pub images: BTreeMap<String, ImageConfig>,
}

/// One image's section, `[images.cpio]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    pub compress: Option<String>,
    pub level: Option<u32>,
    /// Directories overlaid on this image only.
    #[serde(default)]
    pub overlays: Vec<PathBuf>,
    /// A command run on the finished image (see --post-image).
    pub post_image: Option<String>,
    /// cpio: header format.
    pub format: Option<CpioFormatArg>,
    /// cpio: add /init and /dev/console.
    pub init: Option<bool>,
    /// cpio: also write the U-Boot wrapper.
    pub uimage: Option<bool>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text, path)
    }

    /// Parses the text of the config file at `path`, which names it in
    /// errors and is what relative paths in it are relative to.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut cfg: Config =
            toml::from_str(text).with_context(|| format!("{}", path.display()))?;
        // Paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                *p = base.join(&*p);
            }
        };
        cfg.input.as_mut().map(fix);
        cfg.output.as_mut().map(fix);
        cfg.users_tables.iter_mut().for_each(fix);
        cfg.device_tables.iter_mut().for_each(fix);
        for img in cfg.images.values_mut() {
            img.overlays.iter_mut().for_each(fix);
        }
        for name in cfg.images.keys() {
            name.parse::<Format>()
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}: [images.{name}]", path.display()))?;
        }
        Ok(cfg)
    }
}

fn parse_opt<T: FromStr>(v: &Option<String>, what: &str) -> Result<Option<T>>
where
    T::Err: fmt::Display,
{
    v.as_deref()
        .map(|s| {
            s.parse::<T>()
                .map_err(|e| anyhow::anyhow!("config {what}: {e}"))
        })
        .transpose()
}

/// `SOURCE_DATE_EPOCH` from the environment.
pub fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH={v} is not a number of seconds")),
        Err(_) => Ok(None),
    }
}

/// Runs `rootforge buildroot`.
pub fn buildroot(args: &BuildrootArgs) -> Result<()> {
    use crate::buildroot::{Kconfig, plan, rename_ext};
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let plan = plan(
        &Kconfig::parse(&text),
        &args.target_dir,
        &args.output,
        &args.topdir,
    )
    .with_context(|| args.config.display().to_string())?;
    let mut argv: Vec<std::ffi::OsString> = vec!["rootforge".into(), "build".into()];
    argv.extend(plan.args.iter().cloned());
    if let Some(j) = args.jobs {
        argv.extend(["-j".into(), j.to_string().into()]);
    }
    if args.quiet {
        argv.push("-q".into());
    }
    if args.print {
        let words: Vec<String> = argv
            .iter()
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect();
        println!("{}", words.join(" "));
        return Ok(());
    }
    for what in &plan.ignored {
        eprintln!("warning: {}: ignored {what}", args.config.display());
    }
    let Cli {
        command: Command::Build(build_args),
    } = Cli::try_parse_from(&argv).context("the configuration gives bad build options")?
    else {
        bail!("internal error: the translated command is not `build`");
    };
    build(*build_args)?;
    if let Some(r) = &plan.ext_rename {
        rename_ext(&args.output, r)?;
    }
    Ok(())
}

/// A word as a POSIX shell reads it back.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,^+@".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs `rootforge build`.
pub fn build(args: BuildArgs) -> Result<()> {
    let cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let sde = source_date_epoch()?;
    let profile = args.profile.or(cfg.profile);
    let buildroot = profile == Some(Profile::Buildroot);
    let out_dir = args
        .output
        .clone()
        .or(cfg.output.clone())
        .context("no output directory: give -o DIR (or `output` in the config)")?;
    let formats: Vec<Format> = if !args.formats.is_empty() {
        args.formats.clone()
    } else if let Some(list) = &cfg.formats {
        list.iter()
            .map(|s| s.parse::<Format>().map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?
    } else if !cfg.images.is_empty() {
        cfg.images
            .keys()
            .map(|k| k.parse::<Format>().map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?
    } else {
        Format::ALL.to_vec()
    };
    let mut formats = formats;
    formats.sort();
    formats.dedup();
    let jobs = args
        .jobs
        .or(cfg.jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let arch = match args.arch {
        Some(a) => a,
        None => parse_opt::<UimageArch>(&cfg.arch, "arch")?.unwrap_or(UimageArch::X86_64),
    };
    let compress_all = match args.compress {
        Some(c) => Some(c),
        None => parse_opt::<Compression>(&cfg.compress, "compress")?,
    };
    let mut overlay_dirs: BTreeMap<Format, Vec<PathBuf>> = BTreeMap::new();
    for spec in &args.overlays {
        let (fmt, dir) = spec
            .split_once(':')
            .with_context(|| format!("--overlay {spec}: expected FORMAT:DIR"))?;
        let fmt: Format = fmt
            .parse()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--overlay {spec}"))?;
        overlay_dirs
            .entry(fmt)
            .or_default()
            .push(PathBuf::from(dir));
    }

    let mut post_images: Vec<(Format, String)> = Vec::new();
    for (name, icfg) in &cfg.images {
        if let Some(cmd) = &icfg.post_image {
            post_images.push((name.parse().map_err(anyhow::Error::msg)?, cmd.clone()));
        }
    }
    for spec in &args.post_images {
        let (fmt, cmd) = spec
            .split_once(':')
            .with_context(|| format!("--post-image {spec}: expected FORMAT:CMD"))?;
        let fmt: Format = fmt
            .parse()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--post-image {spec}"))?;
        if !formats.contains(&fmt) {
            bail!("--post-image {spec}: {fmt} is not among the formats being built");
        }
        post_images.push((fmt, cmd.to_owned()));
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressMode::Bars
    } else {
        ProgressMode::Lines
    };

    let source = Source::from_arg(args.input.as_deref().or(cfg.input.as_deref()));
    let start = Instant::now();
    let in_opts = input::Options {
        source_date_epoch: sde,
        all_root: args.all_root || cfg.all_root || buildroot,
    };
    let loaded = pool.install(|| input::load(&source, &in_opts))?;
    for w in &loaded.warnings {
        eprintln!("warning: {source}: {w}");
    }
    if mode != ProgressMode::Quiet {
        eprintln!(
            "read {} entries from {source} in {:.2} s",
            loaded.entries,
            start.elapsed().as_secs_f64()
        );
    }
    let implicit = in_opts.implicit_dir();
    let tweak_time = Time::from_secs(sde.unwrap_or(0));
    let users: Vec<&PathBuf> = cfg.users_tables.iter().chain(&args.users_tables).collect();
    let devices: Vec<&PathBuf> = cfg
        .device_tables
        .iter()
        .chain(&args.device_tables)
        .collect();
    let steps = BaseSteps {
        users: &users,
        devices: &devices,
        systemd: SystemdSteps {
            var_factory: args.systemd_var_factory || cfg.systemd_var_factory,
            tmpfiles: args.systemd_tmpfiles || cfg.systemd_tmpfiles,
            preset: args.systemd_preset_all || cfg.systemd_preset_all,
        },
    };
    let base = Arc::new(apply_tables(
        loaded.tree,
        implicit,
        &steps,
        sde,
        tweak_time,
    )?);

    // In the initrd layout the ISO is made of the boot files and the cpio
    // image, so it is built after the others; everything it reads is read
    // now, so that a bad path fails before any image is written.
    let initrd_iso = if args.iso_initrd && formats.contains(&Format::Iso9660) {
        if !formats.contains(&Format::Cpio) {
            bail!("--iso-initrd puts this run's cpio image in the ISO: add cpio to -f");
        }
        let dirs = overlay_dirs
            .get(&Format::Iso9660)
            .cloned()
            .unwrap_or_default();
        Some(IsoBoot::read(&args, &dirs, sde)?)
    } else {
        None
    };
    let mut jobs_list = Vec::new();
    for &format in &formats {
        if format == Format::Iso9660 && initrd_iso.is_some() {
            continue;
        }
        let icfg = cfg.images.get(format.name());
        let mut ov = Overlay::new(base.clone(), implicit);
        if buildroot {
            overlay::empty_volatile_dirs(&mut ov)?;
        }
        let dirs = icfg
            .map(|c| c.overlays.clone())
            .unwrap_or_default()
            .into_iter()
            .chain(overlay_dirs.get(&format).cloned().unwrap_or_default());
        for dir in dirs {
            let extra = overlay::read_overlay_dir(&dir, sde)
                .with_context(|| format!("overlay {}", dir.display()))?;
            overlay::merge_tree(&mut ov, &extra)
                .with_context(|| format!("overlay {}", dir.display()))?;
        }
        let per_format_compress = match format {
            Format::Cpio => args.cpio_compress,
            Format::Tar => args.tar_compress,
            Format::Ext2 | Format::Ext3 | Format::Ext4 => args.ext_compress,
            // The filesystem compresses itself; a compressed ISO cannot boot.
            Format::Squashfs | Format::Iso9660 => Some(Compression::None),
        };
        let compression = match per_format_compress {
            Some(c) => c,
            None => {
                match parse_opt::<Compression>(&icfg.and_then(|c| c.compress.clone()), "compress")?
                {
                    Some(c) => c,
                    None => compress_all.unwrap_or(Compression::None),
                }
            }
        };
        let level = icfg
            .and_then(|c| c.level)
            .or(args.compress_level)
            .or(cfg.compress_level);
        let mut uimage = None;
        let encoder: Box<dyn Encoder> = match format {
            Format::Cpio => {
                let fmt = args
                    .cpio_format
                    .or(icfg.and_then(|c| c.format))
                    .unwrap_or(CpioFormatArg::Newc);
                if args.cpio_init || buildroot || icfg.and_then(|c| c.init).unwrap_or(false) {
                    overlay::add_cpio_init(&mut ov, tweak_time)?;
                }
                if args.cpio_uimage || icfg.and_then(|c| c.uimage).unwrap_or(false) {
                    let time = u32::try_from(sde.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
                    uimage = Some((arch, time));
                }
                Box::new(rootforge_cpio::CpioEncoder {
                    format: match fmt {
                        CpioFormatArg::Newc => rootforge_cpio::CpioFormat::Newc,
                        CpioFormatArg::Crc => rootforge_cpio::CpioFormat::Crc,
                    },
                })
            }
            Format::Tar => Box::new(rootforge_tar::TarEncoder),
            Format::Ext2 | Format::Ext3 | Format::Ext4 => Box::new(ext_encoder(format, &args)?),
            Format::Iso9660 => Box::new(iso_encoder(&args, &base, sde)?),
            Format::Squashfs => {
                let mut enc = rootforge_squashfs::SquashfsEncoder::new(
                    args.squashfs_comp.unwrap_or(rootforge_squashfs::Comp::Gzip),
                );
                if args.squashfs_extreme {
                    enc = enc.extreme(&arch.to_string());
                }
                if let Some(level) = args.squashfs_level {
                    enc.level = level;
                }
                if let Some(bcj) = args.squashfs_bcj {
                    enc.bcj = bcj;
                }
                if let Some(bs) = args.squashfs_block_size {
                    enc.block_size = u32::try_from(bs).context("--squashfs-block-size")?;
                }
                enc.exportable = !args.squashfs_no_exports;
                enc.pad = !args.squashfs_no_pad;
                enc.always_fragments = args.squashfs_always_fragments;
                Box::new(enc)
            }
        };
        jobs_list.push(ImageJob {
            name: format!("rootfs.{}", format.name()),
            encoder,
            overlay: (!ov.is_empty()).then_some(ov),
            compression,
            level,
            // Only an initramfs needs members to end between entries.
            cut_anywhere: format != Format::Cpio,
            keep_uncompressed: args.keep_uncompressed || cfg.keep_uncompressed,
            uimage,
        });
    }

    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut built = pool.install(|| pipeline::build(&base, &jobs_list, &out_dir, mode))?;
    if let Some(boot) = initrd_iso {
        let iso = boot.build(&args, &built, sde).and_then(|(tree, job)| {
            pool.install(|| pipeline::build(&tree, &[job], &out_dir, mode))
                .map_err(anyhow::Error::from)
        });
        match iso {
            Ok(b) => built.extend(b),
            Err(e) => {
                // Nothing is left behind when one image fails.
                for (path, _) in built.iter().flat_map(|b| &b.files) {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        }
    }
    for b in &built {
        for w in &b.warnings {
            eprintln!("warning: {}: {w}", b.name);
        }
    }
    if mode != ProgressMode::Quiet {
        print_summary(&built, start.elapsed().as_secs_f64());
    }
    for (format, cmd) in &post_images {
        let name = format!("rootfs.{}", format.name());
        let Some(image) = built
            .iter()
            .find(|b| b.name == name)
            .and_then(|b| b.files.first())
        else {
            continue;
        };
        run_post_image(cmd, &image.0, &out_dir)?;
    }
    Ok(())
}

/// What the ISO's initrd layout holds besides the cpio image, read before
/// any image is written.
struct IsoBoot {
    /// The kernel's name under boot/, and its data.
    kernel: (Vec<u8>, FileData),
    /// Menus: where, and the text with the paths put in.
    menus: Vec<(Vec<u8>, Vec<u8>)>,
    overlays: Vec<rootforge_common::Tree>,
}

impl IsoBoot {
    fn read(args: &BuildArgs, overlay_dirs: &[PathBuf], sde: Option<i64>) -> Result<IsoBoot> {
        let path = args
            .iso_kernel
            .as_deref()
            .context("--iso-initrd needs --iso-kernel FILE")?;
        let size = std::fs::metadata(path)
            .with_context(|| format!("--iso-kernel {}", path.display()))?
            .len();
        let name = path
            .file_name()
            .with_context(|| format!("--iso-kernel {}: not a file name", path.display()))?;
        let name = std::os::unix::ffi::OsStrExt::as_bytes(name).to_vec();
        let kernel_path = [&b"/boot/"[..], &name].concat();
        let mut menus = Vec::new();
        for spec in &args.iso_boot_menu {
            let (src, dest) = spec
                .split_once(':')
                .with_context(|| format!("--iso-boot-menu {spec}: expected SRC:DEST"))?;
            let text = std::fs::read(src).with_context(|| format!("--iso-boot-menu {src}"))?;
            let text = replace(&text, b"__KERNEL_PATH__", &kernel_path);
            let text = replace(&text, b"__INITRD_PATH__", b"/boot/initrd");
            menus.push((dest.trim_start_matches('/').as_bytes().to_vec(), text));
        }
        let overlays = overlay_dirs
            .iter()
            .map(|d| {
                overlay::read_overlay_dir(d, sde)
                    .with_context(|| format!("overlay {}", d.display()))
            })
            .collect::<Result<_>>()?;
        Ok(IsoBoot {
            kernel: (name, FileData::host(path, size)),
            menus,
            overlays,
        })
    }

    /// The ISO's tree and job, with the cpio image just written as
    /// boot/initrd.
    fn build(
        self,
        args: &BuildArgs,
        built: &[pipeline::Built],
        sde: Option<i64>,
    ) -> Result<(Arc<rootforge_common::Tree>, ImageJob)> {
        let (initrd, size) = built
            .iter()
            .find(|b| b.name == "rootfs.cpio")
            .and_then(|b| b.files.first())
            .context("the cpio image for --iso-initrd was not built")?;
        let time = Time::from_secs(sde.unwrap_or(0));
        let meta = |perm| rootforge_common::Meta::new(perm, 0, 0, time);
        let root = rootforge_common::TreeBuilder::new(meta(0o755)).finish();
        let base = Arc::new(root);
        let mut ov = Overlay::new(base.clone(), meta(0o755));
        let file = |data| Inode::new(meta(0o644), Content::File(data));
        let (name, kernel) = self.kernel;
        ov.insert(
            &[&b"boot/"[..], &name].concat(),
            file(kernel),
            Replace::Always,
        )?;
        ov.insert(
            b"boot/initrd",
            file(FileData::host(initrd.as_path(), *size)),
            Replace::Always,
        )?;
        for extra in &self.overlays {
            overlay::merge_tree(&mut ov, extra)?;
        }
        for (dest, text) in self.menus {
            ov.insert(&dest, file(FileData::bytes(text)), Replace::Always)?;
        }
        let encoder = iso_encoder(args, &base, sde)?;
        let job = ImageJob {
            name: "rootfs.iso9660".to_owned(),
            encoder: Box::new(encoder),
            overlay: Some(ov),
            compression: Compression::None,
            level: None,
            cut_anywhere: true,
            keep_uncompressed: false,
            uimage: None,
        };
        Ok((base, job))
    }
}

/// `text` with every `from` replaced by `to`.
fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Runs a post-image command as `sh -c CMD`, with the image's path as `$1`
/// and in `ROOTFORGE_IMAGE`, and the output directory in `BINARIES_DIR`
/// (the name Buildroot's post-image scripts know).
fn run_post_image(cmd: &str, image: &Path, out_dir: &Path) -> Result<()> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .arg("rootforge-post-image")
        .arg(image)
        .env("ROOTFORGE_IMAGE", image)
        .env("BINARIES_DIR", out_dir)
        .status()
        .with_context(|| format!("post-image command `{cmd}` for {}", image.display()))?;
    if !status.success() {
        bail!(
            "post-image command `{cmd}` for {} failed ({status}); the images are in {}",
            image.display(),
            out_dir.display()
        );
    }
    Ok(())
}

/// What is done to the shared base before any image sees it.
struct BaseSteps<'a> {
    users: &'a [&'a PathBuf],
    devices: &'a [&'a PathBuf],
    systemd: SystemdSteps,
}

/// Buildroot's read-only systemd rootfs steps.
#[derive(Debug, Clone, Copy, Default)]
struct SystemdSteps {
    var_factory: bool,
    tmpfiles: bool,
    preset: bool,
}

/// Buildroot's order on the shared base: users (with their homes and
/// /etc files), then the device and permission tables, every file's lines
/// concatenated so a later line wins; then the systemd steps in the order
/// its skeleton and systemd package hooks run (the /var factory, tmpfiles,
/// preset-all).
fn apply_tables(
    tree: rootforge_common::Tree,
    implicit: rootforge_common::Meta,
    steps: &BaseSteps<'_>,
    sde: Option<i64>,
    mtime: Time,
) -> Result<rootforge_common::Tree> {
    let SystemdSteps {
        var_factory,
        tmpfiles,
        preset,
    } = steps.systemd;
    if steps.users.is_empty() && steps.devices.is_empty() && !(var_factory || tmpfiles || preset) {
        return Ok(tree);
    }
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let mut b = tree.into_builder(implicit);
    let mut user_lines = Vec::new();
    for p in steps.users {
        user_lines.extend(tables::parse_users_table(&read(p)?, p)?);
    }
    let opts = tables::UsersOptions {
        source_date_epoch: sde,
        mtime,
    };
    tables::apply_users(&mut b, &user_lines, &opts)?;
    let mut device_lines = Vec::new();
    for p in steps.devices {
        device_lines.extend(tables::parse_device_table(&read(p)?, p)?);
    }
    tables::apply_device_table(&mut b, &device_lines, mtime)?;
    if var_factory {
        tables::var_factory(&mut b, mtime)?;
    }
    if tmpfiles {
        for skipped in tables::apply_tmpfiles(&mut b, mtime)? {
            eprintln!(
                "warning: {}:{}: {}",
                skipped.origin.file, skipped.origin.line, skipped.reason
            );
        }
    }
    if preset {
        tables::preset_all(&mut b, mtime)?;
    }
    Ok(b.finish())
}

fn print_summary(built: &[pipeline::Built], total: f64) {
    println!("{:<24} {:>14} {:>9}", "image", "size", "time");
    for b in built {
        for (path, size) in &b.files {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            println!(
                "{:<24} {:>14} {:>8.2}s",
                name,
                human(*size),
                b.elapsed.as_secs_f64()
            );
        }
    }
    println!("{:<24} {:>14} {:>8.2}s", "total", "", total);
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn ext_encoder(format: Format, args: &BuildArgs) -> Result<rootforge_ext::ExtEncoder> {
    use rootforge_ext::{ExtEncoder, Size, Variant};
    let mut enc = ExtEncoder::new(format.ext_variant().unwrap_or(Variant::Ext4));
    if let Some(edits) = &args.ext_features {
        enc = enc.with_features(edits).context("--ext-features")?;
    }
    enc.size = match args.ext_size {
        Some(ExtSizeArg::Bytes(n)) => {
            if args.ext_headroom.is_some() {
                bail!("--ext-headroom goes with --ext-size auto, not a fixed size");
            }
            Size::Fixed(n)
        }
        Some(ExtSizeArg::Auto) | None => Size::Auto {
            headroom: args.ext_headroom.unwrap_or(0),
        },
    };
    if let Some(bs) = args.ext_block_size {
        enc.block_size = u32::try_from(bs).context("--ext-block-size")?;
    }
    enc.inodes = args.ext_inodes;
    enc.inode_size = args.ext_inode_size;
    if let Some(pct) = args.ext_reserved_percent {
        enc.reserved_percent = pct;
    }
    if let Some(label) = &args.ext_label {
        enc.label.clone_from(label);
    }
    enc.uuid = args.ext_uuid;
    Ok(enc)
}

fn iso_encoder(
    args: &BuildArgs,
    base: &rootforge_common::Tree,
    sde: Option<i64>,
) -> Result<rootforge_iso9660::IsoEncoder> {
    let mut enc = rootforge_iso9660::IsoEncoder::default();
    if let Some(id) = &args.iso_volume_id {
        enc.volume_id.clone_from(id);
    }
    enc.joliet = !args.iso_no_joliet;
    let inside = |p: &str| p.trim_start_matches('/').as_bytes().to_vec();
    enc.boot_bios = args.iso_boot_bios.as_deref().map(inside);
    enc.boot_efi = args.iso_boot_efi.as_deref().map(inside);
    if let Some(dir) = &args.iso_efi_dir {
        let tree = overlay::read_overlay_dir(dir, sde)
            .with_context(|| format!("--iso-efi-dir {}", dir.display()))?;
        enc.efi_tree = Some(Arc::new(tree));
    }
    if let Some(mbr) = &args.iso_hybrid {
        enc.hybrid_mbr =
            Some(std::fs::read(mbr).with_context(|| format!("--iso-hybrid {}", mbr.display()))?);
    }
    enc.zisofs = args.iso_zisofs;
    // The volume dates: SOURCE_DATE_EPOCH, else the root directory's mtime,
    // so that they never come from the clock.
    enc.created = match sde {
        Some(t) => Time::from_secs(t),
        None => base.view().inode(base.view().root()).meta.mtime,
    };
    Ok(enc)
}

fn parse_squashfs_comp(s: &str) -> Result<rootforge_squashfs::Comp, String> {
    use rootforge_squashfs::Comp;
    Comp::ALL
        .into_iter()
        .find(|c| c.name() == s)
        .ok_or_else(|| {
            let names: Vec<_> = Comp::ALL.iter().map(|c| c.name()).collect();
            format!("unknown squashfs compressor `{s}` ({})", names.join(", "))
        })
}

/// Runs `rootforge compare`.
pub fn compare(args: &CompareArgs) -> Result<()> {
    crate::compare::run(args)
}

/// Runs `rootforge inspect`.
pub fn inspect(image: &Path) -> Result<()> {
    let lines = crate::inspect::listing(image)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for l in &lines {
        std::io::Write::write_all(&mut out, format!("{l}\n").as_bytes())?;
    }
    std::io::Write::flush(&mut out)?;
    Ok(())
}

/// Parses a size with an optional K/M/G/T suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad size suffix in `{s}` (use K, M, G or T)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size `{s}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn config_parses_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "input = \"r.tar\"\noutput = \"out\"\ncompress = \"gzip\"\n[images.cpio]\ninit = true\noverlays = [\"extra\"]\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.input.unwrap(), dir.path().join("r.tar"));
        assert_eq!(c.images["cpio"].overlays, [dir.path().join("extra")]);
        std::fs::write(&p, "inptu = 1\n").unwrap();
        assert!(Config::load(&p).is_err());
        std::fs::write(&p, "[images.zip]\n").unwrap();
        assert!(format!("{:#}", Config::load(&p).unwrap_err()).contains("unknown format"));
    }
}
