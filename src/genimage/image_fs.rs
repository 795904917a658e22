//! genimage's filesystem images (vfat, ext2/3/4, squashfs, cpio, tar,
//! iso), built through the format registry, and the file sink every
//! image is written through.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use rootforge_common::{
    Content as TreeContent, Edit, FileData, Inode, Meta, Replace, Sink, Time, Tree, TreeBuilder,
};
use rootforge_disk::config::Loc;

use super::{Image, Paths, at, cfg_err};
use crate::format::ext::ExtSize;
use crate::format::{EncoderContext, Format, FormatOptions};
use crate::uimage::UimageArch;

/// The tree of a vfat image: its `files` (from the input path, at the
/// root under their own names) and `file NAME { image = ... }` sections
/// (at NAME, directories made as needed), as genimage's mcopy calls place
/// them; without either, the root path (or its `mountpoint`).
fn vfat_tree(img: &Image<'_>, paths: &Paths, sde: Option<i64>) -> Result<Option<Tree>> {
    let ty = img.ty;
    let files = ty.list("files");
    let sections: Vec<_> = ty.sections().filter(|f| f.name == "file").collect();
    if files.is_empty() && sections.is_empty() {
        return Ok(None);
    }
    let time = Time::from_secs(sde.unwrap_or(0));
    let mut b = TreeBuilder::new(Meta::new(0o755, 0, 0, time));
    let source = |name: &str| -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_owned()
        } else {
            paths.inputpath.join(p)
        }
    };
    let mut entries: Vec<(String, PathBuf, &Loc)> = Vec::new();
    let files_loc = ty.opt("files").map_or(&ty.loc, |o| &o.loc);
    for f in &files {
        let name = Path::new(f)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        entries.push((name, source(f), files_loc));
    }
    for f in &sections {
        let name = f.title.clone().unwrap_or_default();
        let Some(image) = f.get("image") else {
            return Err(at(
                &f.loc,
                Some("file"),
                format!("image {}: file {name} names no image", img.file),
            ));
        };
        entries.push((name, source(image), &f.loc));
    }
    for (name, path, loc) in entries {
        let err = |e: String| at(loc, Some("files"), format!("image {}: {e}", img.file));
        add_host(&mut b, name.trim_start_matches('/'), &path, sde, 0).map_err(err)?;
    }
    Ok(Some(b.finish()))
}

/// Adds the host file or directory `path` (followed through symlinks, as
/// `mcopy -s` copies) at `name`, directories recursively.
fn add_host(
    b: &mut TreeBuilder,
    name: &str,
    path: &Path,
    sde: Option<i64>,
    depth: u32,
) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if depth > 64 {
        return Err(format!("{}: directories nest over 64 deep", path.display()));
    }
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let time = Time::from_secs(meta.mtime().min(sde.unwrap_or(i64::MAX)));
    if meta.is_dir() {
        let dir = Inode::new(
            Meta::new(0o755, 0, 0, time),
            TreeContent::Dir(Default::default()),
        );
        b.insert(name.as_bytes(), dir, Replace::Always)
            .map_err(|e| e.to_string())?;
        let mut children: Vec<_> = fs::read_dir(path)
            .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(|e: io::Error| format!("{}: {e}", path.display()))?;
        children.sort();
        for child in children {
            let child = child.to_string_lossy().into_owned();
            add_host(
                b,
                &format!("{name}/{child}"),
                &path.join(&child),
                sde,
                depth + 1,
            )?;
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Err(format!(
            "{} is neither a file nor a directory",
            path.display()
        ));
    }
    let file = Inode::new(
        Meta::new(0o644, 0, 0, time),
        TreeContent::File(FileData::host(path, meta.len())),
    );
    b.insert(name.as_bytes(), file, Replace::Always)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A vfat image: of its files, or of the root path (or its `mountpoint`).
pub(super) fn build_vfat(
    img: &Image<'_>,
    paths: &Paths,
    sde: Option<i64>,
    dest: &Path,
) -> Result<u64> {
    build_fs(img, Format::Vfat, paths, sde, dest)
}

/// A file sink: gaps are seeks, the length is set at the end.
pub(super) struct FileSink {
    w: BufWriter<File>,
    pub(super) pos: u64,
}

impl FileSink {
    pub(super) fn create(path: &Path) -> io::Result<FileSink> {
        Ok(FileSink {
            w: BufWriter::with_capacity(1 << 20, File::create(path)?),
            pos: 0,
        })
    }

    pub(super) fn finish(mut self, len: u64) -> io::Result<()> {
        self.w.flush()?;
        let f = self
            .w
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        f.set_len(len.max(self.pos))?;
        f.sync_all()
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl Sink for FileSink {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let step = i64::try_from(n)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "hole too large"))?;
        self.w.seek(SeekFrom::Current(step))?;
        self.pos += n;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.w.flush()?;
        self.w.get_ref().write_all_at(buf, offset)
    }
}

/// A filesystem image of the root path (or its `mountpoint`).
pub(super) fn build_fs(
    img: &Image<'_>,
    format: Format,
    paths: &Paths,
    sde: Option<i64>,
    dest: &Path,
) -> Result<u64> {
    let s = img.sec;
    let ty = img.ty;
    let empty = s.bool("empty").map_err(cfg_err)?.unwrap_or(false);
    let in_opts = crate::input::Options {
        source_date_epoch: sde,
        all_root: false,
        ignore_zeros: false,
    };
    let tree = if format == Format::Vfat
        && let Some(tree) = vfat_tree(img, paths, sde)?
    {
        tree
    } else if empty {
        TreeBuilder::new(Meta::new(0o755, 0, 0, Time::from_secs(sde.unwrap_or(0)))).finish()
    } else {
        let root = match s.get("srcpath") {
            Some(src) => PathBuf::from(src),
            None => {
                let mp = s.get("mountpoint").unwrap_or("").trim_start_matches('/');
                if mp.is_empty() {
                    paths.rootpath.clone()
                } else {
                    paths.rootpath.join(mp)
                }
            }
        };
        crate::input::read_dir(&root, &in_opts)
            .map_err(|e| at(&s.loc, Some("image"), format!("image {}: {e}", img.file)))?
            .tree
    };
    let mut opts = FormatOptions::default();
    let refuse = |key: &str| -> Result<()> {
        if let Some(o) = ty.opt(key)
            && o.values.iter().any(|v| !v.trim().is_empty())
        {
            return Err(at(
                &o.loc,
                Some(key),
                format!(
                    "image {}: rootforge runs no external tool and cannot follow '{key}'",
                    img.file
                ),
            ));
        }
        Ok(())
    };
    let size = s.size("size", true).map_err(cfg_err)?;
    if let Some((_, true)) = size {
        let o = s.opt("size").map_or(&s.loc, |o| &o.loc);
        return Err(at(
            o,
            Some("size"),
            format!(
                "image {}: a '%' size is not supported by rootforge yet",
                img.file
            ),
        ));
    }
    match format {
        Format::Ext2 | Format::Ext3 | Format::Ext4 => {
            for key in [
                "extraargs",
                "features",
                "fs-timestamp",
                "usage-type",
                "mke2fs-conf",
            ] {
                refuse(key)?;
            }
            if let Some(o) = ty.opt("root-owner")
                && ty.get("root-owner") != Some("0:0")
            {
                return Err(at(
                    &o.loc,
                    Some("root-owner"),
                    "only root-owner = \"0:0\" is supported",
                ));
            }
            opts.ext.size = Some(size.map_or(ExtSize::Auto, |(n, _)| ExtSize::Bytes(n)));
            opts.ext.label = Some(ty.get("label").unwrap_or("").to_owned());
        }
        Format::Squashfs => {
            refuse("extraargs")?;
            let comp = ty.get("compression").unwrap_or("gzip");
            opts.squashfs.comp = Some(
                rootforge_squashfs::Comp::ALL
                    .into_iter()
                    .find(|c| c.name() == comp)
                    .ok_or_else(|| {
                        at(
                            ty.opt("compression").map_or(&ty.loc, |o| &o.loc),
                            Some("compression"),
                            format!("unknown squashfs compression '{comp}'"),
                        )
                    })?,
            );
            // genimage's default block size is 4 KiB.
            opts.squashfs.block_size = Some(
                ty.size("block-size", false)
                    .map_err(cfg_err)?
                    .map_or(4096, |s| s.0),
            );
        }
        Format::Cpio => {
            refuse("extraargs")?;
            refuse("compress")?;
            if let Some(f) = ty.get("format")
                && f != "newc"
            {
                return Err(at(
                    ty.opt("format").map_or(&ty.loc, |o| &o.loc),
                    Some("format"),
                    format!("cpio format '{f}': only newc is supported"),
                ));
            }
        }
        Format::Tar => {
            let lower = img.file.to_ascii_lowercase();
            if [
                ".gz", ".tgz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".lzo",
            ]
            .iter()
            .any(|x| lower.ends_with(x))
            {
                return Err(at(
                    &s.loc,
                    Some("image"),
                    format!(
                        "image {}: compressed tar images are not supported here (name it .tar)",
                        img.file
                    ),
                ));
            }
        }
        Format::Vfat => {
            refuse("extraargs")?;
            // genimage's vfat images have the size they are given.
            let Some((bytes, _)) = size else {
                return Err(at(
                    &s.loc,
                    Some("size"),
                    format!("image {}: a vfat image needs a size", img.file),
                ));
            };
            opts.vfat.size = Some(crate::format::vfat::VfatSize::Bytes(bytes));
            if let Some(label) = ty.get("label") {
                opts.vfat.label = Some(label.to_owned());
            }
        }
        Format::Erofs => {
            return Err(at(
                &ty.loc,
                Some("erofs"),
                format!(
                    "image {}: genimage's erofs type is not built here yet",
                    img.file
                ),
            ));
        }
        Format::Jffs2 => {
            return Err(at(
                &ty.loc,
                Some("jffs2"),
                format!(
                    "image {}: genimage's jffs2 type is not built here yet",
                    img.file
                ),
            ));
        }
        Format::Iso9660 => {
            for key in ["boot-image", "bootargs", "extraargs", "input-charset"] {
                refuse(key)?;
            }
            if let Some(v) = ty.get("volume-id") {
                opts.iso9660.volume_id = Some(v.to_owned());
            }
        }
    }
    let root_mtime = tree.view().inode(tree.view().root()).meta.mtime;
    let ctx = EncoderContext {
        source_date_epoch: sde,
        arch: UimageArch::X86_64,
        created: sde.map_or(root_mtime, Time::from_secs),
    };
    let encoder = (format.spec().encoder)(format, &opts, &ctx).map_err(|e| {
        at(
            &img.ty.loc,
            Some(&img.ty.name),
            format!("image {}: {e:#}", img.file),
        )
    })?;
    let plan = encoder.plan(tree.view()).map_err(|e| {
        at(
            &img.ty.loc,
            Some(&img.ty.name),
            format!("image {}: {e}", img.file),
        )
    })?;
    let mut sink =
        FileSink::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let report = plan
        .write(&mut sink)
        .map_err(|e| anyhow!("image {}: {e}", img.file))?;
    let len = sink.pos;
    sink.finish(len)
        .with_context(|| format!("writing {}", dest.display()))?;
    if let Some((want, _)) = size
        && format != Format::Ext2
        && format != Format::Ext3
        && format != Format::Ext4
        && len > want
    {
        return Err(at(
            s.opt("size").map_or(&s.loc, |o| &o.loc),
            Some("size"),
            format!(
                "image {} is {len} bytes, larger than its size {want}",
                img.file
            ),
        ));
    }
    for w in report.warnings {
        eprintln!("warning: image {}: {w}", img.file);
    }
    Ok(len)
}
