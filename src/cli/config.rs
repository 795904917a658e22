//! The TOML config file of `rootforge build --config`, typed as it is
//! parsed, and turned into the config layer of the plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::compress::Compression;
use crate::format::{Format, FormatOptions, parsed};
use crate::plan::{ImageLayer, Layer, Profile, SystemdSteps};
use crate::uimage::UimageArch;

/// The config file: the same choices as the command line's flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The input, relative to the file.
    pub input: Option<PathBuf>,
    /// The output directory, relative to the file.
    pub output: Option<PathBuf>,
    /// The formats to build.
    pub formats: Option<Vec<Format>>,
    /// Worker threads.
    pub jobs: Option<usize>,
    /// Every file owned by 0:0.
    #[serde(default)]
    pub all_root: bool,
    /// Read tar input past zero blocks.
    #[serde(default)]
    pub ignore_zeros: bool,
    /// A set of defaults.
    pub profile: Option<Profile>,
    /// The target architecture.
    #[serde(default, deserialize_with = "parsed")]
    pub arch: Option<UimageArch>,
    /// Outer compression of every image that takes one.
    #[serde(default, deserialize_with = "parsed")]
    pub compress: Option<Compression>,
    /// Its level.
    pub compress_level: Option<u32>,
    /// Keep uncompressed images too.
    #[serde(default)]
    pub keep_uncompressed: bool,
    /// Buildroot's ext output names.
    #[serde(default)]
    pub buildroot_names: bool,
    /// mkusers tables, applied in order before the device tables.
    #[serde(default)]
    pub users_tables: Vec<PathBuf>,
    /// makedevs device and permission tables, applied in order.
    #[serde(default)]
    pub device_tables: Vec<PathBuf>,
    /// `--systemd-var-factory`.
    #[serde(default)]
    pub systemd_var_factory: bool,
    /// `--systemd-tmpfiles`.
    #[serde(default)]
    pub systemd_tmpfiles: bool,
    /// `--systemd-preset-all`.
    #[serde(default)]
    pub systemd_preset_all: bool,
    /// `[images.FORMAT]` sections, parsed by [`Config::parse`] into
    /// `image_layers` and `options`.
    #[serde(default)]
    images: BTreeMap<Format, toml::Table>,
    #[serde(skip)]
    image_layers: BTreeMap<Format, ImageLayer>,
    #[serde(skip)]
    options: FormatOptions,
}

/// What every `[images.X]` section may hold besides its format's options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageKeys {
    #[serde(default, deserialize_with = "parsed")]
    compress: Option<Compression>,
    level: Option<u32>,
    #[serde(default)]
    overlays: Vec<PathBuf>,
    post_image: Option<String>,
}

impl Config {
    /// Reads and parses the config file at `path`.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or what [`Config::parse`] refuses.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text, path)
    }

    /// Parses the text of the config file at `path`, which names it in
    /// errors and is what relative paths in it are relative to.
    ///
    /// # Errors
    ///
    /// Bad TOML, an unknown key, a value of the wrong type, or an outer
    /// compression for a format that takes none.
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
        for (format, mut table) in std::mem::take(&mut cfg.images) {
            let at = || format!("{}: [images.{format}]", path.display());
            // Formats without an outer compression take `compress` and
            // `level` as their own options (squashfs's compressor).
            let shared: &[&str] = if format.spec().outer_compression {
                &["compress", "level", "overlays", "post_image"]
            } else {
                &["overlays", "post_image"]
            };
            let mut keys = toml::Table::new();
            for k in shared {
                if let Some(v) = table.remove(*k) {
                    keys.insert((*k).to_owned(), v);
                }
            }
            if format == Format::Iso9660 && table.contains_key("compress") {
                bail!(
                    "{}: compress: an ISO image takes no outer compression",
                    at()
                );
            }
            let keys: ImageKeys = toml::Value::Table(keys).try_into().with_context(at)?;
            cfg.options.set_from_table(format, table).with_context(at)?;
            let mut overlays = keys.overlays;
            overlays.iter_mut().for_each(fix);
            cfg.image_layers.insert(
                format,
                ImageLayer {
                    compress: keys.compress,
                    level: keys.level,
                    overlays,
                    post_image: keys.post_image.into_iter().collect(),
                },
            );
        }
        Ok(cfg)
    }

    /// The config file's layer of the plan.
    pub fn layer(self) -> Layer {
        Layer {
            input: self.input,
            output: self.output,
            formats: self.formats.unwrap_or_default(),
            jobs: self.jobs,
            quiet: false,
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
            images: self.image_layers,
            options: self.options,
        }
    }
}
