//! `rootforge build`: its flags, turned into a [`Layer`] and resolved over
//! the config file into a [`BuildPlan`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::compress::Compression;
use crate::format::{self, Format, FormatOptions};
use crate::plan::{BuildPlan, Env, ImageLayer, Layer, Profile, SystemdSteps};
use crate::uimage::UimageArch;

/// `rootforge build`'s flags, as clap parses them.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  rootforge build -o out                       # the bundled example rootfs, every format\n  rootforge build rootfs.tar.xz -o out -f cpio --compress gzip\n  rootforge build rootfs.squashfs -o out -f ext4  # any image rootforge reads is an input\n  rootforge build target/ --all-root -o out --profile buildroot\n  rootforge build --config images.toml\n\nPrecedence: the command line, then the config file, then the profile, then the\ndefaults.\n\nExit status: 0 when every image was written, 1 on any error (nothing is left\nin the output directory), 2 on a usage error."
)]
pub struct BuildArgs {
    /// Rootfs tarball (plain, gzip, bzip2, lz4, lzip, lzma, lzop, xz or zstd),
    /// or an image rootforge reads (cpio, ext2/3/4, iso9660, jffs2, squashfs; all
    /// or an image rootforge reads (cpio, erofs, ext2/3/4, iso9660, squashfs; all
    /// sniffed from their bytes), `-` for stdin, or a directory. Default:
    /// the bundled example.
    pub input: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Formats to build, comma separated [default: cpio,ext2,ext3,ext4,iso9660,squashfs,tar; jffs2 only when named].
    /// Formats to build, comma separated [default: all: cpio,erofs,ext2,ext3,ext4,iso9660,squashfs,tar].
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
    /// Read a tar input past zero blocks instead of stopping at the first
    /// (GNU tar's --ignore-zeros).
    #[arg(long)]
    pub ignore_zeros: bool,
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
    /// Name the ext image as Buildroot does: rootfs.ext2, with rootfs.ext3
    /// or rootfs.ext4 a symlink to it.
    #[arg(long)]
    pub buildroot_names: bool,
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

    /// Outer compression of the images that take one (cpio, tar, ext):
    /// none, gzip, bzip2, lz4, lzma, lzo, xz, zstd.
    #[arg(long, value_name = "ALG", help_heading = "Compression")]
    pub compress: Option<Compression>,
    /// Compression level [default: Buildroot's: 9, zstd 19].
    #[arg(long, value_name = "N", help_heading = "Compression")]
    pub compress_level: Option<u32>,
    /// Keep the uncompressed image next to the compressed one.
    #[arg(long, help_heading = "Compression")]
    pub keep_uncompressed: bool,
    /// cpio outer compression (overrides --compress).
    #[arg(long, value_name = "ALG", help_heading = "cpio")]
    pub cpio_compress: Option<Compression>,
    /// tar outer compression (overrides --compress).
    #[arg(long, value_name = "ALG", help_heading = "tar")]
    pub tar_compress: Option<Compression>,
    /// Outer compression of ext images (overrides --compress).
    #[arg(long, value_name = "ALG", help_heading = "ext2/ext3/ext4")]
    pub ext_compress: Option<Compression>,

    /// Every format's own options.
    #[command(flatten)]
    pub cpio: format::cpio::Options,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tar: format::tar::Options,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub squashfs: format::squashfs::Options,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ext: format::ext::Options,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub iso9660: format::iso9660::Options,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub jffs2: format::jffs2::Options,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub vfat: format::vfat::Options,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub erofs: format::erofs::Options,
}

/// Splits `FORMAT:REST`, naming the flag in errors.
fn format_and(spec: &str, flag: &str, what: &str) -> Result<(Format, String)> {
    let (fmt, rest) = spec
        .split_once(':')
        .with_context(|| format!("{flag} {spec}: expected FORMAT:{what}"))?;
    let fmt: Format = fmt
        .parse()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{flag} {spec}"))?;
    Ok((fmt, rest.to_owned()))
}

impl BuildArgs {
    /// The command line's layer of the plan.
    ///
    /// # Errors
    ///
    /// A malformed `--overlay` or `--post-image`.
    pub fn layer(self) -> Result<Layer> {
        let mut images: std::collections::BTreeMap<Format, ImageLayer> = Default::default();
        for spec in &self.overlays {
            let (f, dir) = format_and(spec, "--overlay", "DIR")?;
            images.entry(f).or_default().overlays.push(dir.into());
        }
        for spec in &self.post_images {
            let (f, cmd) = format_and(spec, "--post-image", "CMD")?;
            images.entry(f).or_default().post_image.push(cmd);
        }
        for (formats, comp) in [
            (&[Format::Cpio][..], self.cpio_compress),
            (&[Format::Tar][..], self.tar_compress),
            (
                &[Format::Ext2, Format::Ext3, Format::Ext4][..],
                self.ext_compress,
            ),
        ] {
            if let Some(c) = comp {
                for f in formats {
                    images.entry(*f).or_default().compress = Some(c);
                }
            }
        }
        Ok(Layer {
            input: self.input,
            output: self.output,
            formats: self.formats,
            jobs: self.jobs,
            quiet: self.quiet,
            profile: self.profile,
            all_root: self.all_root,
            ignore_zeros: self.ignore_zeros,
            arch: self.arch,
            compress: self.compress,
            compress_level: self.compress_level,
            keep_uncompressed: self.keep_uncompressed,
            buildroot_names: self.buildroot_names,
            users_tables: self.users_tables,
            device_tables: self.device_tables,
            systemd: SystemdSteps {
                var_factory: self.systemd_var_factory,
                tmpfiles: self.systemd_tmpfiles,
                preset: self.systemd_preset_all,
            },
            images,
            options: FormatOptions {
                cpio: self.cpio,
                tar: self.tar,
                squashfs: self.squashfs,
                ext: self.ext,
                iso9660: self.iso9660,
                jffs2: self.jffs2,
                vfat: self.vfat,
                erofs: self.erofs,
            },
        })
    }

    /// Resolves the flags over the config file they name, if any.
    ///
    /// # Errors
    ///
    /// A config file that cannot be read or parsed, or what
    /// [`BuildPlan::resolve`] refuses.
    pub fn plan(self, env: Env) -> Result<BuildPlan> {
        let file = match &self.config {
            Some(p) => super::Config::load(p)?.layer(),
            None => Layer::default(),
        };
        BuildPlan::resolve(self.layer()?, file, env)
    }
}

/// Runs `rootforge build`.
///
/// # Errors
///
/// Any error of the plan or the build.
pub fn run(args: BuildArgs) -> Result<()> {
    let plan = args.plan(Env::current()?)?;
    crate::build::run(&plan)
}
