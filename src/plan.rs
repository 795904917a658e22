//! The typed build plan: every choice of a `rootforge build` run, resolved
//! once from the command line, the config file, the profile and the
//! defaults, in that order (see [`BuildPlan::resolve`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::compress::Compression;
use crate::format::{Format, FormatOptions, Merge};
use crate::input::Source;
use crate::uimage::UimageArch;

/// Sets of defaults applied in one switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Buildroot's: everything owned by 0:0, the cpio `/init` and
    /// `/dev/console`, `/run` and `/tmp` emptied.
    Buildroot,
}

/// Buildroot's read-only systemd rootfs steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemdSteps {
    /// Move /var to /usr/share/factory/var (`BR2_INIT_SYSTEMD_VAR_FACTORY`).
    pub var_factory: bool,
    /// Apply tmpfiles.d at build time (`BR2_INIT_SYSTEMD_POPULATE_TMPFILES`).
    pub tmpfiles: bool,
    /// `systemctl preset-all`.
    pub preset: bool,
}

/// What one image gets besides its format's options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSettings {
    /// Outer compression.
    pub compression: Compression,
    /// Its level; `None` is the compressor's default.
    pub level: Option<u32>,
    /// Directories added to this image only, in order.
    pub overlays: Vec<PathBuf>,
    /// Commands run on the finished image, in order.
    pub post_image: Vec<String>,
}

/// Every choice of one build, typed and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// Where the rootfs comes from.
    pub input: Source,
    /// The output directory.
    pub output: PathBuf,
    /// The formats to build, sorted, each once.
    pub formats: Vec<Format>,
    /// Worker threads.
    pub jobs: usize,
    /// No progress and no summary.
    pub quiet: bool,
    /// The profile whose defaults apply.
    pub profile: Option<Profile>,
    /// Every file owned by 0:0.
    pub all_root: bool,
    /// Read tar input past zero blocks, as GNU tar's `--ignore-zeros`.
    pub ignore_zeros: bool,
    /// The target architecture.
    pub arch: UimageArch,
    /// `SOURCE_DATE_EPOCH`, from the environment.
    pub source_date_epoch: Option<i64>,
    /// mkusers tables, in order.
    pub users_tables: Vec<PathBuf>,
    /// makedevs tables, in order.
    pub device_tables: Vec<PathBuf>,
    /// The systemd steps.
    pub systemd: SystemdSteps,
    /// Keep each uncompressed image beside its compressed one.
    pub keep_uncompressed: bool,
    /// Buildroot's output names: the ext image as `rootfs.ext2`, with
    /// `rootfs.ext3`/`rootfs.ext4` a symlink to it.
    pub buildroot_names: bool,
    /// Per image: compression, overlays, post-image commands.
    pub images: BTreeMap<Format, ImageSettings>,
    /// Every format's options.
    pub options: FormatOptions,
}

/// One layer of choices as given (the command line, or the config file):
/// everything optional, so that layers can be stacked.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// The input (`-` for stdin).
    pub input: Option<PathBuf>,
    /// `-o`.
    pub output: Option<PathBuf>,
    /// `-f`; empty is unset.
    pub formats: Vec<Format>,
    /// `-j`.
    pub jobs: Option<usize>,
    /// `-q` (command line only).
    pub quiet: bool,
    /// `--profile`.
    pub profile: Option<Profile>,
    /// `--all-root`.
    pub all_root: bool,
    /// `--ignore-zeros`.
    pub ignore_zeros: bool,
    /// `--arch`.
    pub arch: Option<UimageArch>,
    /// `--compress`: every image that takes an outer compression.
    pub compress: Option<Compression>,
    /// `--compress-level`.
    pub compress_level: Option<u32>,
    /// `--keep-uncompressed`.
    pub keep_uncompressed: bool,
    /// `--buildroot-names`.
    pub buildroot_names: bool,
    /// `--users-table`.
    pub users_tables: Vec<PathBuf>,
    /// `--device-table`.
    pub device_tables: Vec<PathBuf>,
    /// `--systemd-*`.
    pub systemd: SystemdSteps,
    /// Per-image compression, level, overlays and commands.
    pub images: BTreeMap<Format, ImageLayer>,
    /// Every format's options.
    pub options: FormatOptions,
}

/// One image's choices in one layer.
#[derive(Debug, Clone, Default)]
pub struct ImageLayer {
    /// `--cpio-compress`, `[images.cpio] compress`.
    pub compress: Option<Compression>,
    /// `[images.cpio] level`.
    pub level: Option<u32>,
    /// `--overlay cpio:DIR`, `[images.cpio] overlays`.
    pub overlays: Vec<PathBuf>,
    /// `--post-image cpio:CMD`, `[images.cpio] post_image`.
    pub post_image: Vec<String>,
}

/// What the environment gives a plan.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
    /// The number of cores, the default `--jobs`.
    pub cores: usize,
}

impl Env {
    /// This process's environment.
    ///
    /// # Errors
    ///
    /// `SOURCE_DATE_EPOCH` that is not a number.
    pub fn current() -> Result<Env> {
        Ok(Env {
            source_date_epoch: source_date_epoch()?,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }
}

/// `SOURCE_DATE_EPOCH` from the environment.
///
/// # Errors
///
/// A value that is not a number of seconds.
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

impl BuildPlan {
    /// Resolves the command line over the config file. Every choice takes
    /// the first of: the command line, the config file, the profile, the
    /// default. Within one layer an image's own setting beats the layer's
    /// setting for every image (`--cpio-compress` over `--compress`). Flags
    /// are set when any layer sets them; lists (tables, overlays, boot
    /// menus) are the config file's, then the command line's.
    ///
    /// # Errors
    ///
    /// A missing output directory, `--jobs 0`, an outer compression asked of
    /// a format that takes none, an overlay or post-image command for a
    /// format not being built, or `--iso-initrd` without cpio.
    pub fn resolve(cli: Layer, file: Layer, env: Env) -> Result<BuildPlan> {
        let profile = cli.profile.or(file.profile);
        let buildroot = profile == Some(Profile::Buildroot);
        let output = cli
            .output
            .clone()
            .or(file.output.clone())
            .context("no output directory: give -o DIR (or `output` in the config)")?;
        let mut formats = if !cli.formats.is_empty() {
            cli.formats.clone()
        } else if !file.formats.is_empty() {
            file.formats.clone()
        } else if !file.images.is_empty() {
            file.images.keys().copied().collect()
        } else {
            Format::DEFAULT.to_vec()
        };
        formats.sort();
        formats.dedup();
        let jobs = cli.jobs.or(file.jobs).unwrap_or(env.cores);
        if jobs == 0 {
            bail!("--jobs must be at least 1");
        }
        for (format, image) in &cli.images {
            let built = formats.contains(format);
            if !built && !image.post_image.is_empty() {
                bail!("--post-image {format}:…: {format} is not among the formats being built");
            }
            if !built && !image.overlays.is_empty() {
                bail!("--overlay {format}:…: {format} is not among the formats being built");
            }
        }
        let mut images = BTreeMap::new();
        for &format in &formats {
            let spec = format.spec();
            let (c, f) = (cli.images.get(&format), file.images.get(&format));
            let specific = |l: Option<&ImageLayer>| l.and_then(|i| i.compress);
            for (layer, what) in [(c, "the command line"), (f, "the config file")] {
                if let Some(comp) = specific(layer)
                    && comp != Compression::None
                    && !spec.outer_compression
                {
                    bail!(
                        "{what} asks for {comp} compression of {format}, which takes no outer compression"
                    );
                }
            }
            let global = |l: &Layer| l.compress.filter(|_| spec.outer_compression);
            let compression = specific(c)
                .or(global(&cli))
                .or(specific(f))
                .or(global(&file))
                .unwrap_or(Compression::None);
            let level = cli
                .compress_level
                .or(f.and_then(|i| i.level))
                .or(file.compress_level);
            let mut overlays = f.map(|i| i.overlays.clone()).unwrap_or_default();
            overlays.extend(c.map(|i| i.overlays.clone()).unwrap_or_default());
            let mut post_image = f.map(|i| i.post_image.clone()).unwrap_or_default();
            post_image.extend(c.map(|i| i.post_image.clone()).unwrap_or_default());
            images.insert(
                format,
                ImageSettings {
                    compression,
                    level,
                    overlays,
                    post_image,
                },
            );
        }
        let mut profile_options = FormatOptions::default();
        if buildroot {
            profile_options.cpio.init = true;
        }
        let options = cli.options.over(file.options).over(profile_options);
        if options.iso9660.initrd && formats.contains(&Format::Iso9660) {
            if !formats.contains(&Format::Cpio) {
                bail!("--iso-initrd puts this run's cpio image in the ISO: add cpio to -f");
            }
            if options.iso9660.kernel.is_none() {
                bail!("--iso-initrd needs --iso-kernel FILE");
            }
        }
        let mut users_tables = file.users_tables;
        users_tables.extend(cli.users_tables);
        let mut device_tables = file.device_tables;
        device_tables.extend(cli.device_tables);
        Ok(BuildPlan {
            input: Source::from_arg(cli.input.as_deref().or(file.input.as_deref())),
            output,
            formats,
            jobs,
            quiet: cli.quiet,
            profile,
            all_root: cli.all_root || file.all_root || buildroot,
            ignore_zeros: cli.ignore_zeros || file.ignore_zeros,
            arch: cli.arch.or(file.arch).unwrap_or(UimageArch::X86_64),
            source_date_epoch: env.source_date_epoch,
            users_tables,
            device_tables,
            systemd: SystemdSteps {
                var_factory: cli.systemd.var_factory || file.systemd.var_factory,
                tmpfiles: cli.systemd.tmpfiles || file.systemd.tmpfiles,
                preset: cli.systemd.preset || file.systemd.preset,
            },
            keep_uncompressed: cli.keep_uncompressed || file.keep_uncompressed,
            buildroot_names: cli.buildroot_names || file.buildroot_names,
            images,
            options,
        })
    }

    /// The plan as `rootforge build` arguments (without the program and
    /// subcommand names): parsing them back gives the same plan.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.input {
            Source::Example => {}
            Source::Stdin => out.push("-".to_owned()),
            Source::Path(p) => out.push(p.display().to_string()),
        }
        out.push("-o".to_owned());
        out.push(self.output.display().to_string());
        let names: Vec<&str> = self.formats.iter().map(|f| f.name()).collect();
        out.push("-f".to_owned());
        out.push(names.join(","));
        out.push("-j".to_owned());
        out.push(self.jobs.to_string());
        if self.quiet {
            out.push("-q".to_owned());
        }
        if let Some(Profile::Buildroot) = self.profile {
            out.extend(["--profile".to_owned(), "buildroot".to_owned()]);
        }
        // The profile implies these; say them only when it does not.
        let buildroot = self.profile == Some(Profile::Buildroot);
        if self.all_root && !buildroot {
            out.push("--all-root".to_owned());
        }
        if self.ignore_zeros {
            out.push("--ignore-zeros".to_owned());
        }
        if self.arch != UimageArch::X86_64 {
            out.extend(["--arch".to_owned(), self.arch.to_string()]);
        }
        for t in &self.users_tables {
            out.extend(["--users-table".to_owned(), t.display().to_string()]);
        }
        for t in &self.device_tables {
            out.extend(["--device-table".to_owned(), t.display().to_string()]);
        }
        for (on, flag) in [
            (self.systemd.var_factory, "--systemd-var-factory"),
            (self.systemd.tmpfiles, "--systemd-tmpfiles"),
            (self.systemd.preset, "--systemd-preset-all"),
            (self.keep_uncompressed, "--keep-uncompressed"),
            (self.buildroot_names, "--buildroot-names"),
        ] {
            if on {
                out.push(flag.to_owned());
            }
        }
        let levels: Vec<u32> = self.images.values().filter_map(|i| i.level).collect();
        if let Some(level) = levels.first() {
            out.extend(["--compress-level".to_owned(), level.to_string()]);
        }
        let mut ext_compress = None;
        for (format, image) in &self.images {
            if image.compression != Compression::None {
                let flag = match format {
                    Format::Ext2 | Format::Ext3 | Format::Ext4 => {
                        ext_compress = Some(image.compression);
                        None
                    }
                    f => Some(format!("--{f}-compress")),
                };
                if let Some(flag) = flag {
                    out.extend([flag, image.compression.to_string()]);
                }
            }
            for dir in &image.overlays {
                out.extend([
                    "--overlay".to_owned(),
                    format!("{format}:{}", dir.display()),
                ]);
            }
            for cmd in &image.post_image {
                out.extend(["--post-image".to_owned(), format!("{format}:{cmd}")]);
            }
        }
        if let Some(c) = ext_compress {
            out.extend(["--ext-compress".to_owned(), c.to_string()]);
        }
        let mut options = self.options.clone();
        if buildroot {
            options.cpio.init = false;
        }
        options.to_args(&mut out);
        out
    }
}
