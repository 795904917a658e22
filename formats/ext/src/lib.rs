//! ext2, ext3 and ext4 images.
//!
//! One planner serves the three variants: it numbers the inodes in the
//! order `find | sort` lists them, renders directories (htree-indexed when
//! they outgrow a block), sizes the filesystem, places every block with one
//! forward cursor, and only then writes the image in increasing offset
//! order. Everything is a pure function of the tree and the options, so the
//! bytes do not depend on the thread count.

// The crate's own guard rails (the workspace lints apply as well).
#![warn(missing_docs, unreachable_pub, clippy::cast_possible_truncation)]

mod disk;
mod hash;
mod layout;
mod raw;
mod read;
mod write;
mod xattr;

#[cfg(test)]
mod tests;

use rootforge_common::{Encoder, Error, ImagePlan, Result, View};

pub use read::{is_ext, read};

/// Which member of the family to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// ext2: no journal, block maps.
    Ext2,
    /// ext3: ext2 with a journal.
    Ext3,
    /// ext4: extents, flex_bg, checksums.
    Ext4,
}

impl Variant {
    /// The variant's name, as `-f` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Variant::Ext2 => "ext2",
            Variant::Ext3 => "ext3",
            Variant::Ext4 => "ext4",
        }
    }
}

/// How large the image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The smallest filesystem that holds the tree, plus `headroom` free bytes.
    Auto {
        /// Free bytes to leave.
        headroom: u64,
    },
    /// Exactly this many bytes (a sparse file where nothing is written).
    Fixed(u64),
}

/// The three feature words of the superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `s_feature_compat`.
    pub compat: u32,
    /// `s_feature_incompat`.
    pub incompat: u32,
    /// `s_feature_ro_compat`.
    pub ro_compat: u32,
}

/// Where a feature's bit lives.
#[derive(Debug, Clone, Copy)]
enum Word {
    Compat,
    Incompat,
    RoCompat,
}

/// The features this writer implements, by their mke2fs names.
const KNOWN: &[(&str, Word, u32)] = &[
    ("has_journal", Word::Compat, disk::COMPAT_HAS_JOURNAL),
    ("ext_attr", Word::Compat, disk::COMPAT_EXT_ATTR),
    ("dir_index", Word::Compat, disk::COMPAT_DIR_INDEX),
    ("filetype", Word::Incompat, disk::INCOMPAT_FILETYPE),
    ("extent", Word::Incompat, disk::INCOMPAT_EXTENTS),
    ("extents", Word::Incompat, disk::INCOMPAT_EXTENTS),
    ("flex_bg", Word::Incompat, disk::INCOMPAT_FLEX_BG),
    ("sparse_super", Word::RoCompat, disk::RO_COMPAT_SPARSE_SUPER),
    ("large_file", Word::RoCompat, disk::RO_COMPAT_LARGE_FILE),
    ("huge_file", Word::RoCompat, disk::RO_COMPAT_HUGE_FILE),
    ("dir_nlink", Word::RoCompat, disk::RO_COMPAT_DIR_NLINK),
    ("extra_isize", Word::RoCompat, disk::RO_COMPAT_EXTRA_ISIZE),
    (
        "metadata_csum",
        Word::RoCompat,
        disk::RO_COMPAT_METADATA_CSUM,
    ),
];

/// Features mke2fs would add for a size or a version that this writer
/// leaves out anyway; removing them is accepted and changes nothing.
const ALWAYS_OFF: &[&str] = &[
    "64bit",
    "resize_inode",
    "orphan_file",
    "metadata_csum_seed",
    "inline_data",
    "uninit_bg",
    "gdt_csum",
];

impl Features {
    /// The feature set `mke2fs.conf` gives a variant, without `64bit` and
    /// `resize_inode` (online growth of a rootfs image is not a use case).
    pub const fn of(variant: Variant) -> Features {
        let base = Features {
            compat: disk::COMPAT_EXT_ATTR | disk::COMPAT_DIR_INDEX,
            incompat: disk::INCOMPAT_FILETYPE,
            ro_compat: disk::RO_COMPAT_SPARSE_SUPER | disk::RO_COMPAT_LARGE_FILE,
        };
        match variant {
            Variant::Ext2 => base,
            Variant::Ext3 => Features {
                compat: base.compat | disk::COMPAT_HAS_JOURNAL,
                ..base
            },
            Variant::Ext4 => Features {
                compat: base.compat | disk::COMPAT_HAS_JOURNAL,
                incompat: base.incompat | disk::INCOMPAT_EXTENTS | disk::INCOMPAT_FLEX_BG,
                ro_compat: base.ro_compat
                    | disk::RO_COMPAT_HUGE_FILE
                    | disk::RO_COMPAT_DIR_NLINK
                    | disk::RO_COMPAT_EXTRA_ISIZE
                    | disk::RO_COMPAT_METADATA_CSUM,
            },
        }
    }

    /// Applies mke2fs `-O` edits: a comma-separated list of feature names,
    /// each prefixed with `^` to remove it.
    pub fn edit(mut self, edits: &str) -> Result<Features> {
        for item in edits.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (remove, name) = match item.strip_prefix('^') {
                Some(n) => (true, n),
                None => (false, item),
            };
            if remove && ALWAYS_OFF.contains(&name) {
                continue;
            }
            let &(_, word, bit) =
                KNOWN
                    .iter()
                    .find(|(n, ..)| *n == name)
                    .ok_or_else(|| Error::Unsupported {
                        path: "/".into(),
                        format: "ext",
                        what: format!("the feature {name:?}"),
                    })?;
            let slot = match word {
                Word::Compat => &mut self.compat,
                Word::Incompat => &mut self.incompat,
                Word::RoCompat => &mut self.ro_compat,
            };
            if remove {
                *slot &= !bit;
            } else {
                *slot |= bit;
            }
        }
        Ok(self)
    }

    /// Whether a compatible feature is on.
    pub const fn has_compat(&self, bit: u32) -> bool {
        self.compat & bit != 0
    }

    /// Whether an incompatible feature is on.
    pub const fn has_incompat(&self, bit: u32) -> bool {
        self.incompat & bit != 0
    }

    /// Whether a read-only compatible feature is on.
    pub const fn has_ro_compat(&self, bit: u32) -> bool {
        self.ro_compat & bit != 0
    }
}

/// The ext2/ext3/ext4 encoder and its options.
#[derive(Debug, Clone)]
pub struct ExtEncoder {
    /// ext2, ext3 or ext4.
    pub variant: Variant,
    /// 1024, 2048 or 4096.
    pub block_size: u32,
    /// The image size.
    pub size: Size,
    /// Inode count; by default the tree's own count (auto size) or one per
    /// 16 KiB (fixed size), whichever is larger.
    pub inodes: Option<u32>,
    /// 128 or 256 (the default).
    pub inode_size: Option<u16>,
    /// Blocks reserved for the superuser, in percent of the total.
    pub reserved_percent: u8,
    /// The volume label, at most 16 bytes.
    pub label: String,
    /// By default derived from the tree, never random.
    pub uuid: Option<[u8; 16]>,
    /// The feature set.
    pub features: Features,
}

impl ExtEncoder {
    /// The encoder with mke2fs's defaults for `variant`.
    pub fn new(variant: Variant) -> Self {
        ExtEncoder {
            variant,
            block_size: 4096,
            size: Size::Auto { headroom: 0 },
            inodes: None,
            inode_size: None,
            reserved_percent: 5,
            label: "rootfs".to_owned(),
            uuid: None,
            features: Features::of(variant),
        }
    }

    /// Edits the feature set with mke2fs `-O` syntax (`"^metadata_csum,dir_index"`).
    pub fn with_features(mut self, edits: &str) -> Result<Self> {
        self.features = self.features.edit(edits)?;
        Ok(self)
    }

    fn option_error(&self, what: String) -> Error {
        Error::Unsupported {
            path: "/".into(),
            format: self.variant.name(),
            what,
        }
    }

    fn check_options(&self) -> Result<()> {
        if !matches!(self.block_size, 1024 | 2048 | 4096) {
            return Err(self.option_error(format!("a block size of {}", self.block_size)));
        }
        if !matches!(self.inode_size(), 128 | 256) {
            return Err(self.option_error(format!("an inode size of {}", self.inode_size())));
        }
        if self.reserved_percent > 50 {
            return Err(self.option_error(format!(
                "{}% reserved blocks (at most 50)",
                self.reserved_percent
            )));
        }
        if self.label.len() > 16 {
            return Err(self.option_error(format!(
                "a label of {} bytes (at most 16)",
                self.label.len()
            )));
        }
        let f = &self.features;
        if f.has_ro_compat(disk::RO_COMPAT_METADATA_CSUM) && !f.has_incompat(disk::INCOMPAT_EXTENTS)
        {
            // The kernel checksums extent blocks but not indirect blocks,
            // and e2fsprogs refuses the mix.
            return Err(self.option_error("metadata_csum without extent".into()));
        }
        Ok(())
    }

    pub(crate) fn inode_size(&self) -> u16 {
        self.inode_size.unwrap_or(256)
    }
}

impl Encoder for ExtEncoder {
    fn format(&self) -> &'static str {
        self.variant.name()
    }

    fn plan<'v>(&'v self, view: View<'v>) -> Result<Box<dyn ImagePlan + 'v>> {
        self.check_options()?;
        layout::check_tree(self, &view)?;
        Ok(Box::new(write::plan(self, &view)?))
    }
}
