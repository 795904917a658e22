//! Running a [`BuildPlan`]: the input read once, the base steps (tables,
//! systemd), each image's overlay and encoder, the pipeline, then the
//! post-image commands.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rootforge_common::{Content, Edit, FileData, Inode, Meta, Overlay, Replace, Time, Tree};

use crate::format::{EncoderContext, Format};
use crate::input;
use crate::overlay;
use crate::pipeline::{self, DerivedJob, ImageJob, ProgressMode};
use crate::plan::{BuildPlan, Profile};
use crate::tables;

/// Builds every image of `plan`.
///
/// # Errors
///
/// The first error of reading the input, applying the tables, planning or
/// writing an image, or a post-image command; nothing is left in the
/// output directory when an image fails.
pub fn run(plan: &BuildPlan) -> Result<()> {
    let sde = plan.source_date_epoch;
    let buildroot = plan.profile == Some(Profile::Buildroot);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.jobs)
        .build()
        .context("starting worker threads")?;
    let mode = if plan.quiet {
        ProgressMode::Quiet
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressMode::Bars
    } else {
        ProgressMode::Lines
    };

    let source = &plan.input;
    let start = Instant::now();
    let in_opts = input::Options {
        source_date_epoch: sde,
        all_root: plan.all_root,
        ignore_zeros: plan.ignore_zeros,
    };
    let loaded = pool.install(|| input::load(source, &in_opts))?;
    for w in &loaded.warnings {
        eprintln!("warning: {source}: {w}");
    }
    if mode != ProgressMode::Quiet {
        let what = loaded.format.map_or("tarball", Format::name);
        eprintln!(
            "read {} entries from {source} ({what}) in {:.2} s",
            loaded.entries,
            start.elapsed().as_secs_f64()
        );
    }
    let implicit = in_opts.implicit_dir();
    let tweak_time = Time::from_secs(sde.unwrap_or(0));
    let base = Arc::new(apply_tables(loaded.tree, implicit, plan, tweak_time)?);
    let ctx = EncoderContext {
        source_date_epoch: sde,
        arch: plan.arch,
        created: match sde {
            Some(t) => Time::from_secs(t),
            None => base.view().inode(base.view().root()).meta.mtime,
        },
    };

    // In the initrd layout the ISO holds the boot files and this run's cpio
    // image, so it is a job derived from the cpio job. Everything it reads
    // is read now, and it is planned once with an empty initrd, so that a
    // bad path or option fails before any image is written.
    let initrd_iso = if plan.options.iso9660.initrd && plan.formats.contains(&Format::Iso9660) {
        let boot = IsoBoot::read(plan)?;
        let (tree, job) = boot.clone().job(plan, &ctx, FileData::empty())?;
        let view = job
            .overlay
            .as_ref()
            .map_or_else(|| tree.view(), Overlay::view);
        job.encoder.check(&view).context("rootfs.iso9660")?;
        Some(boot)
    } else {
        None
    };
    let mut jobs = Vec::new();
    for &format in &plan.formats {
        if format == Format::Iso9660 && initrd_iso.is_some() {
            continue;
        }
        let spec = format.spec();
        let image = plan.images.get(&format).cloned().unwrap_or_default();
        let mut ov = Overlay::new(base.clone(), implicit);
        if buildroot {
            overlay::empty_volatile_dirs(&mut ov)?;
        }
        for dir in &image.overlays {
            let extra = overlay::read_overlay_dir(dir, sde)
                .with_context(|| format!("overlay {}", dir.display()))?;
            overlay::merge_tree(&mut ov, &extra)
                .with_context(|| format!("overlay {}", dir.display()))?;
        }
        let mut uimage = None;
        if format == Format::Cpio {
            if plan.options.cpio.init {
                overlay::add_cpio_init(&mut ov, tweak_time)?;
            }
            if plan.options.cpio.uimage {
                let time = u32::try_from(sde.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
                uimage = Some((plan.arch, time));
            }
        }
        let encoder = (spec.encoder)(format, &plan.options, &ctx)?;
        jobs.push(ImageJob {
            name: format.output_name(),
            encoder,
            overlay: (!ov.is_empty()).then_some(ov),
            compression: image.compression,
            level: image.level,
            cut_anywhere: !spec.member_boundaries,
            keep_uncompressed: plan.keep_uncompressed,
            uimage,
        });
    }
    let derived: Vec<DerivedJob<'_>> = initrd_iso
        .map(|boot| DerivedJob {
            from: Format::Cpio.output_name(),
            name: Format::Iso9660.output_name(),
            make: Box::new(move |initrd| boot.job(plan, &ctx, initrd)),
        })
        .into_iter()
        .collect();

    let out_dir = &plan.output;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let built = pool.install(|| pipeline::build_with(&base, &jobs, derived, out_dir, mode))?;
    for b in &built {
        for w in &b.warnings {
            eprintln!("warning: {}: {w}", b.name);
        }
    }
    if plan.buildroot_names {
        for &f in &plan.formats {
            if matches!(f, Format::Ext3 | Format::Ext4) {
                let suffix = plan.images.get(&f).map_or("", |i| i.compression.suffix());
                rename_ext(out_dir, f, suffix)?;
            }
        }
    }
    if mode != ProgressMode::Quiet {
        print_summary(&built, start.elapsed().as_secs_f64());
    }
    for &format in &plan.formats {
        let Some(image) = built
            .iter()
            .find(|b| b.name == format.output_name())
            .and_then(|b| b.files.first())
        else {
            continue;
        };
        for cmd in plan
            .images
            .get(&format)
            .map(|i| i.post_image.as_slice())
            .unwrap_or_default()
        {
            run_post_image(cmd, &image.0, out_dir)?;
        }
    }
    Ok(())
}

/// Gives the ext image Buildroot's name: `rootfs.ext2[.gz]`, with
/// `rootfs.ext4[.gz]` a symlink to it.
fn rename_ext(output: &Path, format: Format, suffix: &str) -> Result<()> {
    let ours = output.join(format!("{}{suffix}", format.output_name()));
    let theirs = format!("rootfs.ext2{suffix}");
    std::fs::rename(&ours, output.join(&theirs))
        .with_context(|| format!("renaming {} to {theirs}", ours.display()))?;
    std::os::unix::fs::symlink(&theirs, &ours)
        .with_context(|| format!("linking {} to {theirs}", ours.display()))?;
    Ok(())
}

/// What the ISO's initrd layout holds besides the cpio image, read before
/// any image is written.
#[derive(Clone)]
struct IsoBoot {
    /// The kernel's name under boot/, and its data.
    kernel: (Vec<u8>, FileData),
    /// Menus: where, and the text with the paths put in.
    menus: Vec<(Vec<u8>, Vec<u8>)>,
    overlays: Vec<Arc<Tree>>,
}

impl IsoBoot {
    fn read(plan: &BuildPlan) -> Result<IsoBoot> {
        let o = &plan.options.iso9660;
        let path = o
            .kernel
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
        for spec in &o.boot_menu {
            let (src, dest) = spec
                .split_once(':')
                .with_context(|| format!("--iso-boot-menu {spec}: expected SRC:DEST"))?;
            let text = std::fs::read(src).with_context(|| format!("--iso-boot-menu {src}"))?;
            let text = replace(&text, b"__KERNEL_PATH__", &kernel_path);
            let text = replace(&text, b"__INITRD_PATH__", b"/boot/initrd");
            menus.push((dest.trim_start_matches('/').as_bytes().to_vec(), text));
        }
        let dirs = plan
            .images
            .get(&Format::Iso9660)
            .map(|i| i.overlays.as_slice())
            .unwrap_or_default();
        let overlays = dirs
            .iter()
            .map(|d| {
                overlay::read_overlay_dir(d, plan.source_date_epoch)
                    .map(Arc::new)
                    .with_context(|| format!("overlay {}", d.display()))
            })
            .collect::<Result<_>>()?;
        Ok(IsoBoot {
            kernel: (name, FileData::host(path, size)),
            menus,
            overlays,
        })
    }

    /// The ISO's tree and job, with `initrd` (the cpio image) as
    /// boot/initrd.
    fn job(
        self,
        plan: &BuildPlan,
        ctx: &EncoderContext,
        initrd: FileData,
    ) -> Result<(Arc<Tree>, ImageJob)> {
        let time = Time::from_secs(plan.source_date_epoch.unwrap_or(0));
        let meta = |perm| Meta::new(perm, 0, 0, time);
        let base = Arc::new(rootforge_common::TreeBuilder::new(meta(0o755)).finish());
        let mut ov = Overlay::new(base.clone(), meta(0o755));
        let file = |data| Inode::new(meta(0o644), Content::File(data));
        let (name, kernel) = self.kernel;
        ov.insert(
            &[&b"boot/"[..], &name].concat(),
            file(kernel),
            Replace::Always,
        )?;
        ov.insert(b"boot/initrd", file(initrd), Replace::Always)?;
        for extra in &self.overlays {
            overlay::merge_tree(&mut ov, extra)?;
        }
        for (dest, text) in self.menus {
            ov.insert(&dest, file(FileData::bytes(text)), Replace::Always)?;
        }
        // The volume dates are those of this tree's root.
        let ctx = EncoderContext {
            created: time,
            ..*ctx
        };
        let encoder = (Format::Iso9660.spec().encoder)(Format::Iso9660, &plan.options, &ctx)?;
        let job = ImageJob {
            name: Format::Iso9660.output_name(),
            encoder,
            overlay: Some(ov),
            compression: crate::compress::Compression::None,
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

/// Buildroot's order on the shared base: users (with their homes and
/// /etc files), then the device and permission tables, every file's lines
/// concatenated so a later line wins; then the systemd steps in the order
/// its skeleton and systemd package hooks run (the /var factory, tmpfiles,
/// preset-all).
fn apply_tables(tree: Tree, implicit: Meta, plan: &BuildPlan, mtime: Time) -> Result<Tree> {
    let steps = plan.systemd;
    if plan.users_tables.is_empty()
        && plan.device_tables.is_empty()
        && !(steps.var_factory || steps.tmpfiles || steps.preset)
    {
        return Ok(tree);
    }
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let mut b = tree.into_builder(implicit);
    let mut user_lines = Vec::new();
    for p in &plan.users_tables {
        user_lines.extend(tables::parse_users_table(&read(p)?, p)?);
    }
    let opts = tables::UsersOptions {
        source_date_epoch: plan.source_date_epoch,
        mtime,
    };
    tables::apply_users(&mut b, &user_lines, &opts)?;
    let mut device_lines = Vec::new();
    for p in &plan.device_tables {
        device_lines.extend(tables::parse_device_table(&read(p)?, p)?);
    }
    tables::apply_device_table(&mut b, &device_lines, mtime)?;
    if steps.var_factory {
        tables::var_factory(&mut b, mtime)?;
    }
    if steps.tmpfiles {
        for skipped in tables::apply_tmpfiles(&mut b, mtime)? {
            eprintln!(
                "warning: {}:{}: {}",
                skipped.origin.file, skipped.origin.line, skipped.reason
            );
        }
    }
    if steps.preset {
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
