//! `rootforge genimage`: a genimage configuration built natively, with
//! genimage's options and semantics: hdimage disks (MBR, GPT, hybrid)
//! from input files and from the configuration's other images, and every
//! filesystem format rootforge writes, built from the root path.
//!
//! Every image is planned and written into a staging directory inside the
//! output path, and moved into place only when all were written, so a
//! failure leaves the output directory as it was.

mod image_fs;
pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use rootforge_disk::config::{self, ConfigError, Loc, Section, parse_hole};
use rootforge_disk::plan::{DiskSignature, DiskSpec, ImageRef, PartSpec, TableType};
use rootforge_disk::{Content, DiskError, DiskPlan, FileContent};

use crate::format::Format;
use image_fs::{FileSink, build_fs, build_vfat};

/// What the command line gave; everything unset comes from the
/// configuration's `config { }` section, then from `GENIMAGE_<OPTION>`,
/// then genimage's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub config: Option<PathBuf>,
    pub rootpath: Option<PathBuf>,
    pub tmppath: Option<PathBuf>,
    pub inputpath: Option<PathBuf>,
    pub outputpath: Option<PathBuf>,
    /// Colon-separated, as genimage takes it.
    pub includepath: Option<String>,
    pub loglevel: Option<u32>,
}

/// The resolved paths of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config: PathBuf,
    pub rootpath: PathBuf,
    pub tmppath: PathBuf,
    pub inputpath: PathBuf,
    pub outputpath: PathBuf,
    pub loglevel: u32,
    /// `config { gpt-shortcuts { } }`.
    pub type_shortcuts: Vec<(String, rootforge_disk::Guid)>,
}

/// The process environment, as the run sees it.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What a run wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// Every image file put in place, with its size.
    pub files: Vec<(PathBuf, u64)>,
}

/// What kind of image a section builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hd,
    Fs(Format),
    /// Of its files, or of the root path: see [`build_vfat`].
    Vfat,
}

/// One `image` section.
struct Image<'c> {
    /// The section's title: the output's file name.
    file: String,
    sec: &'c Section,
    kind: Kind,
    ty: &'c Section,
}

fn cfg_err(e: ConfigError) -> anyhow::Error {
    anyhow!(e)
}

fn at(loc: &Loc, key: Option<&str>, msg: impl Into<String>) -> anyhow::Error {
    cfg_err(ConfigError::new(loc, key, msg))
}

/// Runs genimage's job for `req`.
///
/// # Errors
///
/// The first configuration error (with its file, line and key), missing
/// input, image that does not fit, or I/O error. Nothing is left in the
/// output path then.
pub fn run(req: &Request, env: Env<'_>, source_date_epoch: Option<i64>) -> Result<Written> {
    let config_path = req
        .config
        .clone()
        .or_else(|| env("GENIMAGE_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("genimage.cfg"));
    let includepath = req
        .includepath
        .clone()
        .or_else(|| env("GENIMAGE_INCLUDEPATH"));
    let include_path: Vec<PathBuf> = includepath
        .iter()
        .flat_map(|s| s.split(':'))
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    let read = |p: &Path| fs::read_to_string(p);
    let top = config::parse(
        &config_path,
        &config::Source {
            include_path,
            env,
            read: &read,
        },
    )
    .map_err(cfg_err)?;
    let mut paths = resolve_paths(req, &top, env, config_path)?;
    let images = check_config(&top)?;
    for sc in top
        .sections()
        .filter(|s| s.name == "config")
        .flat_map(|c| c.sections())
        .filter(|s| s.name == "gpt-shortcuts")
    {
        for o in sc.opts() {
            let v = o.values.last().map(String::as_str).unwrap_or_default();
            let g = rootforge_disk::Guid::parse(v)
                .ok_or_else(|| at(&o.loc, Some(&o.key), format!("'{v}' is not a UUID")))?;
            paths.type_shortcuts.push((o.key.clone(), g));
        }
    }
    build_all(&images, &paths, source_date_epoch)
}

fn resolve_paths(req: &Request, top: &Section, env: Env<'_>, config: PathBuf) -> Result<Paths> {
    let cfg = top.sections().filter(|s| s.name == "config").last();
    let pick = |given: &Option<PathBuf>, key: &str, default: &str| -> PathBuf {
        given
            .clone()
            .or_else(|| cfg.and_then(|c| c.get(key)).map(PathBuf::from))
            .or_else(|| env(&format!("GENIMAGE_{}", key.to_ascii_uppercase())).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let loglevel = match req.loglevel {
        Some(l) => l,
        None => match cfg
            .map(|c| c.int("loglevel"))
            .transpose()
            .map_err(cfg_err)?
            .flatten()
        {
            Some(l) => u32::try_from(l).unwrap_or(0),
            None => env("GENIMAGE_LOGLEVEL")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        },
    };
    if let Some(c) = cfg
        && let Some(o) = c.opt("configdump")
    {
        return Err(at(
            &o.loc,
            Some("configdump"),
            "rootforge does not write configuration dumps",
        ));
    }
    Ok(Paths {
        config,
        rootpath: pick(&req.rootpath, "rootpath", "root"),
        tmppath: pick(&req.tmppath, "tmppath", "tmp"),
        inputpath: pick(&req.inputpath, "inputpath", "input"),
        outputpath: pick(&req.outputpath, "outputpath", "images"),
        loglevel,
        type_shortcuts: Vec::new(),
    })
}

/// Checks every section and key, and finds each image's type.
fn check_config(top: &Section) -> Result<Vec<Image<'_>>> {
    if let Some(o) = top.opts().next() {
        return Err(at(
            &o.loc,
            Some(&o.key),
            "unknown top-level option (image, flash and config are sections)",
        ));
    }
    let mut images = Vec::new();
    let mut seen: BTreeMap<&str, &Loc> = BTreeMap::new();
    for s in top.sections() {
        match s.name.as_str() {
            "config" => schema::check(s, &schema::CONFIG, "config").map_err(cfg_err)?,
            "flash" => {
                schema::check(s, &schema::FLASH_CHIP, "flash").map_err(cfg_err)?;
            }
            "image" => {
                let Some(file) = s.title.clone() else {
                    return Err(at(
                        &s.loc,
                        Some("image"),
                        "an image section needs a title (its file name)",
                    ));
                };
                if let Some(first) = seen.insert(s.title.as_deref().unwrap_or_default(), &s.loc) {
                    return Err(at(
                        &s.loc,
                        Some("image"),
                        format!("image {file} is defined twice (first at {first})"),
                    ));
                }
                for o in s.opts() {
                    if !schema::IMAGE_KEYS.contains(&o.key.as_str()) {
                        return Err(at(
                            &o.loc,
                            Some(&o.key),
                            format!("unknown option in image {file}"),
                        ));
                    }
                }
                let mut ty: Option<(&Section, Kind)> = None;
                for sub in s.sections() {
                    if sub.name == "partition" {
                        if sub.title.is_none() {
                            return Err(at(
                                &sub.loc,
                                Some("partition"),
                                "a partition section needs a title (its name)",
                            ));
                        }
                        schema::check(
                            sub,
                            &schema::PARTITION,
                            &format!("partition {}", sub.title.as_deref().unwrap_or_default()),
                        )
                        .map_err(cfg_err)?;
                        continue;
                    }
                    let kind = match sub.name.as_str() {
                        "hdimage" => Kind::Hd,
                        "vfat" => Kind::Vfat,
                        "ext2" => Kind::Fs(Format::Ext2),
                        "ext3" => Kind::Fs(Format::Ext3),
                        "ext4" => Kind::Fs(Format::Ext4),
                        "squashfs" => Kind::Fs(Format::Squashfs),
                        "cpio" => Kind::Fs(Format::Cpio),
                        "tar" => Kind::Fs(Format::Tar),
                        "iso" => Kind::Fs(Format::Iso9660),
                        t if schema::FOREIGN_TYPES.contains(&t) => {
                            return Err(at(
                                &sub.loc,
                                Some(t),
                                format!(
                                    "image {file}: rootforge does not build genimage's '{t}' images"
                                ),
                            ));
                        }
                        t => {
                            return Err(at(
                                &sub.loc,
                                Some(t),
                                format!("image {file}: unknown image type or section '{t}'"),
                            ));
                        }
                    };
                    if let Some((first, _)) = ty {
                        return Err(at(
                            &sub.loc,
                            Some(&sub.name),
                            format!(
                                "image {file} has two types: {} (line {}) and {}",
                                first.name, first.loc.line, sub.name
                            ),
                        ));
                    }
                    let (_, sch) = schema::TYPES
                        .iter()
                        .find(|(n, _)| *n == sub.name)
                        .ok_or_else(|| anyhow!("{}: no schema for {}", sub.loc, sub.name))?;
                    schema::check(sub, sch, &format!("image {file} > {}", sub.name))
                        .map_err(cfg_err)?;
                    ty = Some((sub, kind));
                }
                let Some((ty, kind)) = ty else {
                    return Err(at(
                        &s.loc,
                        Some("image"),
                        format!("image {file} has no type section (hdimage, vfat, ext4, ...)"),
                    ));
                };
                if kind != Kind::Hd && s.sections().any(|p| p.name == "partition") {
                    let p = s
                        .sections()
                        .find(|p| p.name == "partition")
                        .map(|p| &p.loc)
                        .unwrap_or(&s.loc);
                    return Err(at(
                        p,
                        Some("partition"),
                        format!("image {file}: partitions are only for hdimage images here"),
                    ));
                }
                for key in ["exec-pre", "exec-post"] {
                    if let Some(o) = s.opt(key) {
                        return Err(at(
                            &o.loc,
                            Some(key),
                            "rootforge runs no commands: exec-pre and exec-post are not supported",
                        ));
                    }
                }
                if let Some(o) = s.opt("flashtype")
                    && kind != Kind::Hd
                {
                    return Err(at(
                        &o.loc,
                        Some("flashtype"),
                        format!(
                            "image {file}: flash types are for flash, ubi and jffs2 images, which rootforge does not build"
                        ),
                    ));
                }
                images.push(Image {
                    file,
                    sec: s,
                    kind,
                    ty,
                });
            }
            other => {
                return Err(at(
                    &s.loc,
                    Some(other),
                    "unknown top-level section (image, flash or config)",
                ));
            }
        }
    }
    Ok(images)
}

/// Where a partition's data comes from.
enum Child {
    /// An image of this configuration, by index.
    Image(usize),
    /// A file in the input path.
    File(PathBuf),
}

fn child_of(images: &[Image<'_>], paths: &Paths, name: &str) -> Child {
    if let Some(i) = images.iter().position(|i| i.file == name) {
        return Child::Image(i);
    }
    let p = Path::new(name);
    Child::File(if p.is_absolute() {
        p.to_owned()
    } else {
        paths.inputpath.join(p)
    })
}

/// The order images are built in: each after the images its partitions
/// hold.
fn build_order(images: &[Image<'_>], paths: &Paths) -> Result<Vec<usize>> {
    fn visit(
        i: usize,
        images: &[Image<'_>],
        paths: &Paths,
        state: &mut [u8],
        out: &mut Vec<usize>,
    ) -> Result<()> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                return Err(at(
                    &images[i].sec.loc,
                    Some("image"),
                    format!(
                        "image {} contains itself through its partitions",
                        images[i].file
                    ),
                ));
            }
            _ => {}
        }
        state[i] = 1;
        for p in images[i].sec.sections().filter(|s| s.name == "partition") {
            if let Some(name) = p.get("image")
                && let Child::Image(j) = child_of(images, paths, name)
            {
                visit(j, images, paths, state, out)?;
            }
        }
        state[i] = 2;
        out.push(i);
        Ok(())
    }
    let mut state = vec![0u8; images.len()];
    let mut out = Vec::new();
    for i in 0..images.len() {
        visit(i, images, paths, &mut state, &mut out)?;
    }
    Ok(out)
}

fn build_all(images: &[Image<'_>], paths: &Paths, sde: Option<i64>) -> Result<Written> {
    let order = build_order(images, paths)?;
    if !paths.outputpath.is_dir() {
        bail!(
            "{}: the output path does not exist or is no directory",
            paths.outputpath.display()
        );
    }
    let staging = tempfile::Builder::new()
        .prefix(".rootforge-genimage-")
        .tempdir_in(&paths.outputpath)
        .with_context(|| {
            format!(
                "creating a staging directory in {}",
                paths.outputpath.display()
            )
        })?;
    let mut built: HashMap<usize, (PathBuf, u64)> = HashMap::new();
    for &i in &order {
        let img = &images[i];
        let dest = staging.path().join(&img.file);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let size = match img.kind {
            Kind::Hd => build_hd(images, i, paths, &built, &dest)?,
            Kind::Fs(f) => build_fs(img, f, paths, sde, &dest)?,
            Kind::Vfat => build_vfat(img, paths, sde, &dest)?,
        };
        if paths.loglevel >= 1 {
            eprintln!("INFO: {}({}): {} bytes", img.ty.name, img.file, size);
        }
        built.insert(i, (dest, size));
    }
    // Everything was written: put the images in place.
    let mut files = Vec::new();
    for &i in &order {
        let img = &images[i];
        let temporary = img.sec.bool("temporary").map_err(cfg_err)?.unwrap_or(false);
        if temporary {
            continue;
        }
        let (staged, size) = &built[&i];
        let dest = paths.outputpath.join(&img.file);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::rename(staged, &dest)
            .with_context(|| format!("moving the image into {}", dest.display()))?;
        files.push((dest, *size));
    }
    drop(staging);
    Ok(Written { files })
}

fn size_of(sec: &Section, key: &str) -> Result<u64> {
    Ok(sec.size(key, false).map_err(cfg_err)?.map_or(0, |s| s.0))
}

fn bool_of(sec: &Section, key: &str, default: bool) -> Result<bool> {
    Ok(sec.bool(key).map_err(cfg_err)?.unwrap_or(default))
}

/// An hdimage: its spec from the configuration, planned and written.
fn build_hd(
    images: &[Image<'_>],
    i: usize,
    paths: &Paths,
    built: &HashMap<usize, (PathBuf, u64)>,
    dest: &Path,
) -> Result<u64> {
    let img = &images[i];
    let hd = img.ty;
    let mut spec = DiskSpec::default();
    let ptt = hd.opt("partition-table-type");
    spec.table = match hd.get("partition-table-type").unwrap_or("mbr") {
        "none" => TableType::None,
        "mbr" | "dos" => TableType::Mbr,
        "gpt" => TableType::Gpt,
        "hybrid" => TableType::Hybrid,
        other => {
            return Err(at(
                ptt.map_or(&hd.loc, |o| &o.loc),
                Some("partition-table-type"),
                format!("'{other}' is not a partition table type (none, mbr, gpt, hybrid)"),
            ));
        }
    };
    if let Some(b) = hd.bool("partition-table").map_err(cfg_err)? {
        spec.table = if b { TableType::Mbr } else { TableType::None };
    }
    if let Some(b) = hd.bool("gpt").map_err(cfg_err)? {
        spec.table = if b { TableType::Gpt } else { TableType::Mbr };
    }
    spec.align = size_of(hd, "align")?;
    if let Some(o) = hd.opt("extended-partition") {
        let v = hd.int("extended-partition").map_err(cfg_err)?.unwrap_or(0);
        spec.extended_partition = u32::try_from(v).map_err(|_| {
            at(
                &o.loc,
                Some("extended-partition"),
                format!("{v} is not a partition index (1 to 4, 0 for automatic)"),
            )
        })?;
    }
    if let Some(o) = hd.opt("disk-signature") {
        let v = hd.get("disk-signature").unwrap_or("");
        spec.disk_signature = Some(if v == "random" {
            DiskSignature::Derived
        } else {
            let n = config::parse_size(v)
                .ok()
                .filter(|(_, pct)| !pct)
                .and_then(|(n, _)| u32::try_from(n).ok())
                .ok_or_else(|| {
                    at(
                        &o.loc,
                        Some("disk-signature"),
                        format!("'{v}' is not a 32-bit number or 'random'"),
                    )
                })?;
            DiskSignature::Value(n)
        });
    }
    spec.disk_guid = hd.get("disk-uuid").map(str::to_owned);
    spec.gpt_location = size_of(hd, "gpt-location")?;
    spec.gpt_no_backup = bool_of(hd, "gpt-no-backup", false)?;
    spec.fill = bool_of(hd, "fill", false)?;
    spec.type_shortcuts.clone_from(&paths.type_shortcuts);
    if let Some((n, pct)) = img.sec.size("size", true).map_err(cfg_err)? {
        if pct {
            return Err(at(
                img.sec.opt("size").map_or(&img.sec.loc, |o| &o.loc),
                Some("size"),
                "a '%' size is only valid for filesystem images",
            ));
        }
        spec.size = n;
    }
    let parts: Vec<&Section> = img
        .sec
        .sections()
        .filter(|s| s.name == "partition")
        .collect();
    let mut contents: Vec<Option<Box<dyn Content>>> = Vec::new();
    for p in &parts {
        let name = p.title.clone().unwrap_or_default();
        let mut ps = PartSpec {
            name: name.clone(),
            offset: size_of(p, "offset")?,
            size: size_of(p, "size")?,
            align: size_of(p, "align")?,
            bootable: bool_of(p, "bootable", false)?,
            forced_primary: bool_of(p, "forced-primary", false)?,
            read_only: bool_of(p, "read-only", false)?,
            hidden: bool_of(p, "hidden", false)?,
            no_automount: bool_of(p, "no-automount", false)?,
            fill: bool_of(p, "fill", false)?,
            in_table: bool_of(p, "in-partition-table", true)?,
            autoresize: bool_of(p, "autoresize", false)?,
            image_offset: size_of(p, "imageoffset")?,
            type_guid: p.get("partition-type-uuid").map(str::to_owned),
            guid: p.get("partition-uuid").map(str::to_owned),
            ..PartSpec::default()
        };
        bool_of(p, "sparse", true)?;
        if let Some(o) = p.opt("partition-type") {
            let v = p.int("partition-type").map_err(cfg_err)?.unwrap_or(0);
            ps.mbr_type = u8::try_from(v).map_err(|_| {
                at(
                    &o.loc,
                    Some("partition-type"),
                    format!("{v} is not an MBR partition type (0 to 255)"),
                )
            })?;
        }
        let holes: Vec<(u64, u64)> = p
            .list("holes")
            .iter()
            .map(|h| {
                parse_hole(h)
                    .map_err(|e| at(p.opt("holes").map_or(&p.loc, |o| &o.loc), Some("holes"), e))
            })
            .collect::<Result<_>>()?;
        let content: Option<Box<dyn Content>> = match p.get("image") {
            None => None,
            Some(child) => {
                let key_loc = p.opt("image").map_or(&p.loc, |o| &o.loc);
                let (path, size) = match child_of(images, paths, child) {
                    Child::Image(j) => {
                        if !holes.is_empty() {
                            return Err(at(
                                p.opt("holes").map_or(&p.loc, |o| &o.loc),
                                Some("holes"),
                                format!(
                                    "partition {name}: holes are only valid for input files, not for the image {child} of this configuration"
                                ),
                            ));
                        }
                        built.get(&j).cloned().ok_or_else(|| {
                            anyhow!("{key_loc}: image {child} was not built before {}", img.file)
                        })?
                    }
                    Child::File(path) => {
                        let md = fs::metadata(&path).map_err(|e| {
                            at(
                                key_loc,
                                Some("image"),
                                format!("partition {name}: {}: {e}", path.display()),
                            )
                        })?;
                        if !md.is_file() {
                            return Err(at(
                                key_loc,
                                Some("image"),
                                format!(
                                    "partition {name}: {} is not a regular file",
                                    path.display()
                                ),
                            ));
                        }
                        (path, md.len())
                    }
                };
                ps.image = Some(ImageRef {
                    name: path.display().to_string(),
                    size,
                    holes,
                });
                Some(Box::new(FileContent { path, len: size }))
            }
        };
        spec.partitions.push(ps);
        contents.push(content);
    }
    let disk_err = |e: DiskError| -> anyhow::Error {
        let loc = e
            .blame()
            .and_then(|k| parts.get(k))
            .map_or(&hd.loc, |p| &p.loc);
        at(loc, None, format!("image {}: {e}", img.file))
    };
    let layout = rootforge_disk::plan(&spec).map_err(disk_err)?;
    let plan = DiskPlan::new(layout, contents).map_err(disk_err)?;
    let mut sink =
        FileSink::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let len = plan.write(&mut sink).map_err(disk_err)?;
    sink.finish(len)
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(text: &str) -> Section {
        let owned = text.to_owned();
        let read = move |_: &Path| Ok(owned.clone());
        let env = |_: &str| None;
        config::parse(
            Path::new("t.cfg"),
            &config::Source {
                include_path: vec![],
                env: &env,
                read: &read,
            },
        )
        .unwrap()
    }

    #[test]
    fn paths_come_from_flags_then_config_then_environment_then_defaults() {
        let t = top("config { rootpath = \"/cfg-root\" outputpath = o }\n");
        let env = |k: &str| (k == "GENIMAGE_INPUTPATH").then(|| "/env-in".to_owned());
        let req = Request {
            outputpath: Some("/flag-out".into()),
            ..Request::default()
        };
        let p = resolve_paths(&req, &t, &env, "c.cfg".into()).unwrap();
        assert_eq!(p.rootpath, PathBuf::from("/cfg-root"));
        assert_eq!(p.outputpath, PathBuf::from("/flag-out"));
        assert_eq!(p.inputpath, PathBuf::from("/env-in"));
        assert_eq!(p.tmppath, PathBuf::from("tmp"));
        assert_eq!(p.loglevel, 1);
    }

    #[test]
    fn types_and_keys_are_checked_with_their_lines() {
        let err = |text: &str| {
            check_config(&top(text))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err("image a { hdimage { } vfat { } }").contains("two types"));
        assert!(err("image a {\n rauc { }\n}").starts_with("t.cfg:2: rauc:"));
        assert!(
            err("image a {\n ext4 { label = x\n  lable = y }\n}").starts_with("t.cfg:3: lable:")
        );
        assert!(err("image { hdimage {} }").contains("needs a title"));
        assert!(err("image a { size = 1M }").contains("no type section"));
        assert!(err("bogus = 1").contains("unknown top-level option"));
        assert!(err("image a { ext4 {} partition p { } }").contains("only for hdimage"));
        assert!(err("image a { hdimage {} }\nimage a { hdimage {} }").contains("defined twice"));
        assert!(
            check_config(&top(
                "image a { hdimage {} partition p { image = x offset = 1M } }"
            ))
            .is_ok()
        );
    }
}
