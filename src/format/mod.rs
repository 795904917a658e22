//! The format registry: every image format rootforge writes and reads, with
//! its names, its rules, its reader and sniffer, and how its encoder is built
//! from its typed options.
//!
//! `build`, `inspect`, `compare`, `buildroot`, [`crate::image`] and the fuzz
//! targets all go through [`Format::spec`]; nothing else spells out a list
//! of formats. A new format adds its crate, one [`Spec`] here (a variant, a
//! static and a `spec` arm) and its option group module beside this one.

pub mod cpio;
pub mod erofs;
pub mod ext;
pub mod iso9660;
pub mod jffs2;
pub mod squashfs;
pub mod tar;
pub mod vfat;

use std::fmt;
use std::str::FromStr;

use rootforge_common::{Backing, Encoder, Meta, Time, Tree};
use serde::Deserialize;

use crate::uimage::UimageArch;

/// The image formats rootforge writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// SVR4 newc/crc cpio, the kernel's initramfs.
    Cpio,
    /// EROFS.
    Erofs,
    /// ext2.
    Ext2,
    /// ext3 (ext2 with a journal).
    Ext3,
    /// ext4.
    Ext4,
    /// ISO9660 with Rock Ridge and Joliet.
    Iso9660,
    /// JFFS2, as mkfs.jffs2 writes it.
    Jffs2,
    /// squashfs 4.0.
    Squashfs,
    /// POSIX pax tar.
    Tar,
    /// FAT12/16/32 with long names (a boot partition, not a rootfs: built
    /// only when asked for).
    Vfat,
}

/// What the rest of rootforge knows of a format.
pub struct Spec {
    /// The name `-f` takes, and the output's suffix (`rootfs.<name>`).
    pub name: &'static str,
    /// Whether the image may be wrapped in an outer compression
    /// (`--compress`); a filesystem that compresses itself, or a bootable
    /// ISO, may not.
    pub outer_compression: bool,
    /// Whether compressed members must end between archive entries, as the
    /// kernel's initramfs unpacker needs.
    pub member_boundaries: bool,
    /// Paths every image of the format has though the tree may lack them
    /// (mke2fs's lost+found): a read-back ignores them.
    pub implicit_entries: &'static [&'static str],
    /// Whether `head` (the first bytes of an uncompressed image, at least
    /// [`SNIFF_LEN`] when the image is that long) is an image of this format.
    pub sniff: fn(&[u8]) -> bool,
    /// Reads an image of this format back into a tree.
    pub read: fn(Backing, &ReadOptions) -> rootforge_common::Result<ReadBack>,
    /// Builds the format's encoder from the resolved options.
    pub encoder: fn(Format, &FormatOptions, &EncoderContext) -> anyhow::Result<Box<dyn Encoder>>,
    /// The variants `rootforge compare` builds, given its squashfs block
    /// sizes (empty for the matrix's own).
    pub compare: fn(&[u32]) -> Vec<CompareRow>,
}

/// One variant of a format in `rootforge compare`'s matrix.
#[derive(Debug, Clone)]
pub struct CompareRow {
    /// The compressor column (see `compare::COMP_NAMES`).
    pub comp: &'static str,
    /// The level column.
    pub level: Option<u32>,
    /// The block size column.
    pub block_size: Option<u32>,
    /// The options the encoder is built with.
    pub options: FormatOptions,
    /// The outer compression.
    pub outer: crate::compress::Compression,
    /// Only in `compare --all`, not in the quick default matrix.
    pub full_only: bool,
    /// Sets the row's compressor level for `compare --levels` (the level
    /// column and the options alike), false when the compressor does not
    /// take that level; `None` when the row has no level to set. Rows with
    /// an outer compression are re-levelled by `compare` itself.
    pub relevel: Option<fn(&mut CompareRow, u32) -> bool>,
}

impl CompareRow {
    /// A row with the default options, uncompressed.
    pub(crate) fn plain(comp: &'static str) -> CompareRow {
        CompareRow {
            comp,
            level: None,
            block_size: None,
            options: FormatOptions::default(),
            outer: crate::compress::Compression::None,
            full_only: false,
            relevel: None,
        }
    }
}

/// The level the compressor's own command-line tool uses when given none
/// (`gzip`, `xz`, `zstd`...): the quick default matrix's, since Buildroot's
/// (9, zstd 19) take minutes on a real rootfs. lz4 and lzo have one encoder
/// here whatever the level, so they keep Buildroot's.
fn tool_level(c: crate::compress::Compression) -> u32 {
    use crate::compress::Compression;
    match c {
        Compression::Gzip | Compression::Lzma | Compression::Xz => 6,
        Compression::Zstd => 3,
        _ => c.default_level(),
    }
}

/// cpio and tar: uncompressed and every outer compressor, at its tool's
/// default level and (`--all`) at Buildroot's.
fn outer_rows(_: &[u32]) -> Vec<CompareRow> {
    use crate::compress::Compression;
    let mut out = Vec::new();
    for c in Compression::ALL {
        let row = |level: u32, full_only| CompareRow {
            level: (c != Compression::None).then_some(level),
            outer: c,
            full_only,
            ..CompareRow::plain(c.name())
        };
        out.push(row(tool_level(c), false));
        if tool_level(c) != c.default_level() {
            out.push(row(c.default_level(), true));
        }
    }
    out
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How many bytes of an image the sniffers look at: enough for the ISO9660
/// primary volume descriptor at 32 KiB and the ext superblock at 1 KiB.
pub const SNIFF_LEN: usize = 0x8800;

/// How an image is read back into a tree.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Metadata of directories an image implies without recording them (tar).
    pub implicit_dir: Meta,
    /// `SOURCE_DATE_EPOCH`: every mtime is clamped to it.
    pub clamp_mtime: Option<i64>,
    /// Read a tar archive on past zero blocks (GNU tar's `--ignore-zeros`).
    pub ignore_zeros: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            implicit_dir: Meta::new(0o755, 0, 0, Time::default()),
            clamp_mtime: None,
            ignore_zeros: false,
        }
    }
}

/// An image read back.
#[derive(Debug)]
pub struct ReadBack {
    /// The tree the image holds.
    pub tree: Tree,
    /// Entries read (tar members, or the tree's entries).
    pub entries: u64,
    /// What the reader accepted with a warning.
    pub warnings: Vec<String>,
    /// The image ended as its format says images end (a tar archive with
    /// its end-of-archive blocks); an input may be read without, an image
    /// given to `inspect` may not.
    pub complete: bool,
}

impl ReadBack {
    /// A tree from a reader that counts nothing itself, with `clamp`
    /// applied to its mtimes.
    fn of_tree(tree: Tree, opts: &ReadOptions) -> ReadBack {
        let tree = match opts.clamp_mtime {
            Some(max) => {
                let mut b = tree.into_builder(opts.implicit_dir);
                b.clamp_mtimes(Time::from_secs(max));
                b.finish()
            }
            None => tree,
        };
        let entries = tree.view().sorted_entries().len() as u64;
        ReadBack {
            tree,
            entries,
            warnings: Vec::new(),
            complete: true,
        }
    }
}

/// What encoders need besides their options: facts of the run.
#[derive(Debug, Clone, Copy)]
pub struct EncoderContext {
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
    /// The target architecture (BCJ filters, U-Boot headers).
    pub arch: UimageArch,
    /// The volume dates of formats that have them: `SOURCE_DATE_EPOCH`,
    /// else the root directory's mtime, never the clock.
    pub created: Time,
}

/// Every format's option group, as resolved for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatOptions {
    /// `--cpio-*`, `[images.cpio]`.
    pub cpio: cpio::Options,
    /// `--tar-*`, `[images.tar]`.
    pub tar: tar::Options,
    /// `--squashfs-*`, `[images.squashfs]`.
    pub squashfs: squashfs::Options,
    /// `--ext-*`, `[images.ext2]`, `[images.ext3]`, `[images.ext4]`.
    pub ext: ext::Options,
    /// `--iso-*`, `[images.iso9660]`.
    pub iso9660: iso9660::Options,
    /// `--jffs2-*`, `[images.jffs2]`.
    pub jffs2: jffs2::Options,
    /// `--vfat-*`, `[images.vfat]`.
    pub vfat: vfat::Options,
    /// `--erofs-*`, `[images.erofs]`.
    pub erofs: erofs::Options,
}

static CPIO: Spec = Spec {
    name: "cpio",
    outer_compression: true,
    member_boundaries: true,
    implicit_entries: &[],
    sniff: rootforge_cpio::is_cpio,
    read: |b, o| rootforge_cpio::read(b).map(|t| ReadBack::of_tree(t, o)),
    encoder: cpio::encoder,
    compare: outer_rows,
};

static TAR: Spec = Spec {
    name: "tar",
    outer_compression: true,
    member_boundaries: false,
    implicit_entries: &[],
    sniff: rootforge_tar::is_tar,
    read: tar::read,
    encoder: tar::encoder,
    compare: outer_rows,
};

static SQUASHFS: Spec = Spec {
    name: "squashfs",
    outer_compression: false,
    member_boundaries: false,
    implicit_entries: &[],
    sniff: rootforge_squashfs::is_squashfs,
    read: |b, o| rootforge_squashfs::read(b).map(|t| ReadBack::of_tree(t, o)),
    encoder: squashfs::encoder,
    compare: squashfs::compare,
};

static EROFS: Spec = Spec {
    name: "erofs",
    outer_compression: false,
    member_boundaries: false,
    implicit_entries: &[],
    sniff: rootforge_erofs::is_erofs,
    read: |b, o| rootforge_erofs::read(b).map(|t| ReadBack::of_tree(t, o)),
    encoder: erofs::encoder,
    compare: erofs::compare,
};

/// The ext family shares one reader and one option group.
macro_rules! ext_spec {
    ($name:literal, $sniff:path, $compare:path) => {
        Spec {
            name: $name,
            outer_compression: true,
            member_boundaries: false,
            implicit_entries: &["/lost+found"],
            sniff: $sniff,
            read: |b, o| rootforge_ext::read(b).map(|t| ReadBack::of_tree(t, o)),
            encoder: ext::encoder,
            compare: $compare,
        }
    };
}

static EXT2: Spec = ext_spec!("ext2", ext::sniff_ext2, ext::compare_4k);
static EXT3: Spec = ext_spec!("ext3", ext::sniff_ext3, ext::compare_4k);
static EXT4: Spec = ext_spec!("ext4", ext::sniff_ext4, ext::compare_1k_4k);

static ISO9660: Spec = Spec {
    name: "iso9660",
    outer_compression: false,
    member_boundaries: false,
    implicit_entries: &[],
    sniff: rootforge_iso9660::is_iso,
    read: |b, o| rootforge_iso9660::read(b).map(|t| ReadBack::of_tree(t, o)),
    encoder: iso9660::encoder,
    compare: iso9660::compare,
};

static JFFS2: Spec = Spec {
    name: "jffs2",
    outer_compression: false,
    member_boundaries: false,
    implicit_entries: &[],
    sniff: rootforge_jffs2::is_jffs2,
    read: |b, o| rootforge_jffs2::read(b).map(|t| ReadBack::of_tree(t, o)),
    encoder: jffs2::encoder,
    compare: jffs2::compare,
};

static VFAT: Spec = Spec {
    name: "vfat",
    outer_compression: true,
    member_boundaries: false,
    implicit_entries: &[],
    sniff: rootforge_fat::is_fat,
    read: |b, o| rootforge_fat::read(b).map(|t| ReadBack::of_tree(t, o)),
    encoder: vfat::encoder,
    compare: vfat::compare,
};

impl Format {
    /// Every format, in the order outputs and tables list them.
    pub const ALL: [Format; 10] = [
        Format::Cpio,
        Format::Erofs,
        Format::Ext2,
        Format::Ext3,
        Format::Ext4,
        Format::Iso9660,
        Format::Jffs2,
        Format::Squashfs,
        Format::Tar,
        Format::Vfat,
    ];

    /// What `rootforge build` writes when no format is named: the rootfs
    /// formats. Not the flash ones, whose images only fit the flash they
    /// are made for (its erase block size, NOR or NAND), nor vfat, which
    /// cannot hold a rootfs's symlinks and devices.
    pub const DEFAULT: [Format; 8] = [
        Format::Cpio,
        Format::Erofs,
        Format::Ext2,
        Format::Ext3,
        Format::Ext4,
        Format::Iso9660,
        Format::Squashfs,
        Format::Tar,
    ];

    /// The format's registry entry.
    pub fn spec(self) -> &'static Spec {
        match self {
            Format::Cpio => &CPIO,
            Format::Erofs => &EROFS,
            Format::Ext2 => &EXT2,
            Format::Ext3 => &EXT3,
            Format::Ext4 => &EXT4,
            Format::Iso9660 => &ISO9660,
            Format::Jffs2 => &JFFS2,
            Format::Squashfs => &SQUASHFS,
            Format::Tar => &TAR,
            Format::Vfat => &VFAT,
        }
    }

    /// The name `-f` takes.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The output's base name, before any compression suffix.
    pub fn output_name(self) -> String {
        format!("rootfs.{}", self.name())
    }

    /// The ext variant, for the ext formats.
    pub fn ext_variant(self) -> Option<rootforge_ext::Variant> {
        match self {
            Format::Ext2 => Some(rootforge_ext::Variant::Ext2),
            Format::Ext3 => Some(rootforge_ext::Variant::Ext3),
            Format::Ext4 => Some(rootforge_ext::Variant::Ext4),
            _ => None,
        }
    }

    /// The format's encoder with its default options.
    pub fn encoder(self) -> Box<dyn Encoder> {
        let ctx = EncoderContext {
            source_date_epoch: None,
            arch: UimageArch::X86_64,
            created: Time::default(),
        };
        // The defaults are valid options for every format.
        (self.spec().encoder)(self, &FormatOptions::default(), &ctx)
            .unwrap_or_else(|_| Box::new(rootforge_tar::TarEncoder::default()))
    }

    /// The format whose sniffer accepts `head`, the first bytes of an
    /// uncompressed image. An ext image's own superblock says which variant
    /// it is.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        // cpio and squashfs have magic numbers at 0, ext at 1 KiB and
        // ISO9660 at 32 KiB; tar (a checksummed header) is tried last.
        [
            Format::Cpio,
            Format::Squashfs,
            Format::Erofs,
            Format::Ext4,
            Format::Ext3,
            Format::Ext2,
            Format::Iso9660,
            Format::Jffs2,
            Format::Vfat,
            Format::Tar,
        ]
        .into_iter()
        .find(|f| (f.spec().sniff)(head))
    }

    /// Reads an image of this format into a tree.
    ///
    /// # Errors
    ///
    /// The reader's error for a corrupt or unsupported image.
    pub fn read(self, image: Backing, opts: &ReadOptions) -> rootforge_common::Result<ReadBack> {
        (self.spec().read)(image, opts)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown format `{s}` (this build writes: {})",
                    names.join(", ")
                )
            })
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A config value parsed with its type's `FromStr`, as the flag is: for
/// `#[serde(deserialize_with)]`.
pub(crate) fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// A size with an optional K/M/G/T suffix (powers of 1024), in a config
/// file as a string or a number of bytes.
pub(crate) fn size<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Bytes(n)) => Ok(Some(n)),
        Some(Raw::Text(s)) => parse_size(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Parses a size with an optional K/M/G/T suffix (powers of 1024).
///
/// # Errors
///
/// A message naming the text when it is not a size or overflows.
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

/// A size as [`parse_size`] reads it back: the largest exact unit.
pub fn size_text(n: u64) -> String {
    for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if n != 0 && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// Options resolved from several layers, higher first: a value set in a
/// higher layer wins, a flag set anywhere is set.
pub trait Merge {
    /// `self` over `lower`.
    #[must_use]
    fn over(self, lower: Self) -> Self;
}

/// [`Merge`] for a struct of `Option`s (the higher `Some` wins), `bool`
/// flags (set in any layer), and `Vec`s (the lower layer's first).
macro_rules! merge_fields {
    ($ty:ty { $($opt:ident),* $(,)? } flags { $($flag:ident),* $(,)? } lists { $($list:ident),* $(,)? }) => {
        impl $crate::format::Merge for $ty {
            #[allow(unused_variables)]
            fn over(self, lower: Self) -> Self {
                #[allow(unused_mut)]
                let mut out = self;
                $( out.$opt = out.$opt.or(lower.$opt); )*
                $( out.$flag = out.$flag || lower.$flag; )*
                $(
                    let mut list = lower.$list;
                    list.append(&mut out.$list);
                    out.$list = list;
                )*
                out
            }
        }
    };
}
pub(crate) use merge_fields;

/// Pushes `--flag value` when `value` is set: rendering a plan as flags.
pub(crate) fn push_opt<T: fmt::Display>(out: &mut Vec<String>, flag: &str, value: Option<&T>) {
    if let Some(v) = value {
        out.push(flag.to_owned());
        out.push(v.to_string());
    }
}

/// Pushes `--flag` when `on`.
pub(crate) fn push_flag(out: &mut Vec<String>, flag: &str, on: bool) {
    if on {
        out.push(flag.to_owned());
    }
}

impl Merge for FormatOptions {
    fn over(self, lower: Self) -> Self {
        FormatOptions {
            cpio: self.cpio.over(lower.cpio),
            tar: self.tar.over(lower.tar),
            squashfs: self.squashfs.over(lower.squashfs),
            ext: self.ext.over(lower.ext),
            iso9660: self.iso9660.over(lower.iso9660),
            jffs2: self.jffs2.over(lower.jffs2),
            vfat: self.vfat.over(lower.vfat),
            erofs: self.erofs.over(lower.erofs),
        }
    }
}

impl FormatOptions {
    /// The options as `rootforge build` flags.
    pub fn to_args(&self, out: &mut Vec<String>) {
        self.cpio.to_args(out);
        self.tar.to_args(out);
        self.squashfs.to_args(out);
        self.ext.to_args(out);
        self.iso9660.to_args(out);
        self.jffs2.to_args(out);
        self.vfat.to_args(out);
        self.erofs.to_args(out);
    }

    /// Sets `format`'s group from its `[images.NAME]` table (the keys
    /// every image shares already taken out).
    ///
    /// # Errors
    ///
    /// An unknown key or a value of the wrong type.
    pub fn set_from_table(
        &mut self,
        format: Format,
        table: toml::Table,
    ) -> Result<(), toml::de::Error> {
        let v = toml::Value::Table(table);
        match format {
            Format::Cpio => self.cpio = v.try_into()?,
            Format::Tar => self.tar = v.try_into()?,
            Format::Squashfs => self.squashfs = v.try_into()?,
            Format::Ext2 | Format::Ext3 | Format::Ext4 => {
                let group: ext::Options = v.try_into()?;
                self.ext = std::mem::take(&mut self.ext).over(group);
            }
            Format::Iso9660 => self.iso9660 = v.try_into()?,
            Format::Jffs2 => self.jffs2 = v.try_into()?,
            Format::Vfat => self.vfat = v.try_into()?,
            Format::Erofs => self.erofs = v.try_into()?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_its_own_entry_and_name() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(f.output_name(), format!("rootfs.{f}"));
        }
        let mut names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
        names.dedup();
        assert_eq!(names.len(), Format::ALL.len());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("99999999999T").is_err());
        for n in [0, 1, 1000, 1024, 3 << 20, (5 << 30) + 1024] {
            assert_eq!(parse_size(&size_text(n)), Ok(n));
        }
    }
}
