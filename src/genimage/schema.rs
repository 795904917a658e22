//! Which sections and keys genimage's configuration has (genimage.c,
//! config.c and every image-*.c's option table), so that an unknown key
//! or type is an error that names its line.

use rootforge_disk::config::{ConfigError, Item, Section};

/// A section's keys and subsections.
#[derive(Debug)]
pub struct Schema {
    /// `None`: any key (a section of `name = value` pairs).
    pub keys: Option<&'static [&'static str]>,
    pub sections: &'static [(&'static str, &'static Schema)],
}

/// `image NAME { ... }` without its type section.
pub const IMAGE_KEYS: &[&str] = &[
    "name",
    "size",
    "mountpoint",
    "srcpath",
    "empty",
    "temporary",
    "exec-pre",
    "exec-post",
    "flashtype",
];

pub static PARTITION: Schema = Schema {
    keys: Some(&[
        "offset",
        "size",
        "align",
        "partition-type",
        "bootable",
        "forced-primary",
        "read-only",
        "hidden",
        "no-automount",
        "fill",
        "sparse",
        "image",
        "holes",
        "imageoffset",
        "autoresize",
        "in-partition-table",
        "partition-uuid",
        "partition-type-uuid",
    ]),
    sections: &[],
};

pub static FLASH_CHIP: Schema = Schema {
    keys: Some(&[
        "pebsize",
        "lebsize",
        "numpebs",
        "minimum-io-unit-size",
        "vid-header-offset",
        "sub-page-size",
    ]),
    sections: &[],
};

/// The `config { }` section: genimage's global options.
pub static CONFIG: Schema = Schema {
    keys: Some(&[
        "loglevel",
        "rootpath",
        "tmppath",
        "inputpath",
        "outputpath",
        "includepath",
        "config",
        "configdump",
        "randomseed",
        "cpio",
        "dd",
        "debugfs",
        "e2fsck",
        "genext2fs",
        "genisoimage",
        "mcopy",
        "mmd",
        "mkcramfs",
        "mkdosfs",
        "mke2fs",
        "mkfserofs",
        "mkfsjffs2",
        "mkfsf2fs",
        "mkfsbtrfs",
        "mkfsfbtrfs",
        "openssl",
        "sloadf2fs",
        "mkfsubifs",
        "mksquashfs",
        "qemu-img",
        "rauc",
        "tar",
        "tune2fs",
        "ubinize",
        "mkimage",
        "fiptool",
        "veritysetup",
    ]),
    sections: &[("gpt-shortcuts", &GPT_SHORTCUTS)],
};

/// `config { gpt-shortcuts { name = "uuid" } }`.
pub static GPT_SHORTCUTS: Schema = Schema {
    keys: None,
    sections: &[],
};

pub static HDIMAGE: Schema = Schema {
    keys: Some(&[
        "align",
        "disk-signature",
        "disk-uuid",
        "partition-table",
        "extended-partition",
        "partition-table-type",
        "gpt",
        "gpt-location",
        "gpt-no-backup",
        "fill",
    ]),
    sections: &[],
};

pub static EXT: Schema = Schema {
    keys: Some(&[
        "root-owner",
        "extraargs",
        "features",
        "label",
        "fs-timestamp",
        "use-mke2fs",
        "usage-type",
        "mke2fs-conf",
    ]),
    sections: &[],
};

pub static SQUASHFS: Schema = Schema {
    keys: Some(&["extraargs", "compression", "block-size"]),
    sections: &[],
};

pub static CPIO: Schema = Schema {
    keys: Some(&["format", "extraargs", "compress"]),
    sections: &[],
};

pub static TAR: Schema = Schema {
    keys: Some(&[]),
    sections: &[],
};

pub static ISO: Schema = Schema {
    keys: Some(&[
        "boot-image",
        "bootargs",
        "extraargs",
        "input-charset",
        "volume-id",
    ]),
    sections: &[],
};

static VFAT_FILE: Schema = Schema {
    keys: Some(&["image"]),
    sections: &[],
};

pub static VFAT: Schema = Schema {
    keys: Some(&["extraargs", "label", "files"]),
    sections: &[("file", &VFAT_FILE)],
};

/// Image types rootforge builds.
pub static TYPES: &[(&str, &Schema)] = &[
    ("hdimage", &HDIMAGE),
    ("ext2", &EXT),
    ("ext3", &EXT),
    ("ext4", &EXT),
    ("squashfs", &SQUASHFS),
    ("cpio", &CPIO),
    ("tar", &TAR),
    ("iso", &ISO),
    ("vfat", &VFAT),
];

/// Image types genimage has and rootforge does not build.
pub const FOREIGN_TYPES: &[&str] = &[
    "android-sparse",
    "btrfs",
    "cramfs",
    "custom",
    "erofs",
    "f2fs",
    "file",
    "fip",
    "fit",
    "flash",
    "jffs2",
    "mdraid",
    "qemu",
    "rauc",
    "ubi",
    "ubifs",
    "verity",
    "verity-sig",
];

/// Checks every key and subsection of `s` against `schema`.
///
/// # Errors
///
/// The first unknown key or section, with its line.
pub fn check(s: &Section, schema: &Schema, what: &str) -> Result<(), ConfigError> {
    for item in &s.items {
        match item {
            Item::Opt(o) => {
                if schema.keys.is_some_and(|k| !k.contains(&o.key.as_str())) {
                    return Err(ConfigError::new(
                        &o.loc,
                        Some(&o.key),
                        format!("unknown option in {what}"),
                    ));
                }
            }
            Item::Section(sub) => {
                let Some((_, sub_schema)) = schema.sections.iter().find(|(n, _)| *n == sub.name)
                else {
                    return Err(ConfigError::new(
                        &sub.loc,
                        Some(&sub.name),
                        format!("unknown section in {what}"),
                    ));
                };
                check(sub, sub_schema, &format!("{what} > {}", sub.name))?;
            }
        }
    }
    Ok(())
}
