//! `rootforge compare --peers`: the peer tools found on PATH run on the same
//! input, each beside a `rootforge build` process making the same image with
//! the same settings, all timed the same way: a whole process under GNU time
//! (`/usr/bin/time -f %M`, for peak RSS), wall time taken around it, runs
//! interleaved job by job.
//!
//! Tools that need a tree get the input extracted once, untimed, by GNU tar
//! (as root; otherwise under fakeroot, whose state the tools then run
//! under). Tools that read a tarball get the input itself when it is a plain
//! tar, otherwise one `rootforge build -f tar` writes, untimed.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use serde::Serialize;

use super::{mib, plot, secs, spread};
use crate::format::Format;

/// GNU time, for peak RSS.
const GNU_TIME: &str = "/usr/bin/time";

/// What a peer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// An extracted tree.
    Tree,
    /// A plain tarball (file name or stdin).
    Tarball,
}

/// The `rootforge build` a peer is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ours {
    SquashfsGzip9,
    Ext4Fixed,
    Ext2Fixed,
    Iso9660,
    Cpio,
    Tar,
}

impl Ours {
    fn format(self) -> Format {
        match self {
            Ours::SquashfsGzip9 => Format::Squashfs,
            Ours::Ext4Fixed => Format::Ext4,
            Ours::Ext2Fixed => Format::Ext2,
            Ours::Iso9660 => Format::Iso9660,
            Ours::Cpio => Format::Cpio,
            Ours::Tar => Format::Tar,
        }
    }

    /// The settings both sides use, for the table.
    fn settings(self, f: &Facts) -> String {
        match self {
            Ours::SquashfsGzip9 => "gzip 9, 128K blocks".to_owned(),
            Ours::Ext4Fixed | Ours::Ext2Fixed => {
                format!("{} MiB, {}K blocks", f.ext_mib, f.ext_block / 1024)
            }
            Ours::Iso9660 => "Rock Ridge, Joliet".to_owned(),
            Ours::Cpio => "newc".to_owned(),
            Ours::Tar => "pax".to_owned(),
        }
    }

    /// `rootforge build`'s flags for the same image.
    fn flags(self, f: &Facts) -> Vec<String> {
        let ext = || {
            vec![
                "--ext-size".to_owned(),
                format!("{}M", f.ext_mib),
                "--ext-block-size".to_owned(),
                f.ext_block.to_string(),
            ]
        };
        let mut flags = vec!["-f".to_owned(), self.format().name().to_owned()];
        match self {
            Ours::SquashfsGzip9 => flags.extend(
                [
                    "--squashfs-comp",
                    "gzip",
                    "--squashfs-level",
                    "9",
                    "--squashfs-block-size",
                    "128K",
                ]
                .map(str::to_owned),
            ),
            Ours::Ext4Fixed | Ours::Ext2Fixed => flags.extend(ext()),
            Ours::Iso9660 | Ours::Cpio | Ours::Tar => {}
        }
        flags
    }
}

/// One peer tool and how it is run.
struct Def {
    /// The row's name.
    name: &'static str,
    /// The program looked up on PATH.
    tool: &'static str,
    /// The Debian package that has it, for the missing row.
    package: &'static str,
    /// What prints its version.
    version_args: &'static [&'static str],
    /// A word its version must hold (GNU tar, not another tar).
    version_must: Option<&'static str>,
    reads: Reads,
    ours: Ours,
    /// The command: the tool's path, the facts, the output file.
    argv: fn(&Path, &Facts, &Path) -> Vec<OsString>,
    /// Whether the tarball goes to stdin.
    stdin_tarball: bool,
}

fn os<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(i: I) -> Vec<OsString> {
    i.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

/// Every peer, in the order of the table.
const DEFS: &[Def] = &[
    Def {
        name: "mksquashfs",
        tool: "mksquashfs",
        package: "squashfs-tools",
        version_args: &["-version"],
        version_must: None,
        reads: Reads::Tree,
        ours: Ours::SquashfsGzip9,
        argv: |t, f, out| {
            let mut v = os([t.as_os_str(), f.tree.as_os_str(), out.as_os_str()]);
            v.extend(os([
                "-noappend",
                "-no-progress",
                "-quiet",
                "-comp",
                "gzip",
                "-Xcompression-level",
                "9",
                "-b",
                "131072",
                "-processors",
            ]));
            v.push(f.jobs.to_string().into());
            v
        },
        stdin_tarball: false,
    },
    Def {
        name: "tar2sqfs",
        tool: "tar2sqfs",
        package: "squashfs-tools-ng",
        version_args: &["--version"],
        version_must: None,
        reads: Reads::Tarball,
        ours: Ours::SquashfsGzip9,
        argv: |t, f, out| {
            let mut v = os([t.as_os_str()]);
            v.extend(os([
                "-q", "-c", "gzip", "-X", "level=9", "-b", "131072", "-j",
            ]));
            v.push(f.jobs.to_string().into());
            v.push(out.into());
            v
        },
        stdin_tarball: true,
    },
    Def {
        name: "mke2fs -d",
        tool: "mke2fs",
        package: "e2fsprogs",
        version_args: &["-V"],
        version_must: None,
        reads: Reads::Tree,
        ours: Ours::Ext4Fixed,
        argv: |t, f, out| {
            // Buildroot's options (fs/ext2).
            let mut v = os([t.as_os_str()]);
            v.extend(os([
                "-q",
                "-t",
                "ext4",
                "-N",
                "0",
                "-m",
                "5",
                "-L",
                "rootfs",
                "-I",
                "256",
                "-O",
                "^64bit",
                "-E",
                "root_owner=0:0",
                "-b",
            ]));
            v.push(f.ext_block.to_string().into());
            v.push("-d".into());
            v.push(f.tree.clone().into());
            v.push(out.into());
            v.push(format!("{}M", f.ext_mib).into());
            v
        },
        stdin_tarball: false,
    },
    Def {
        name: "genext2fs",
        tool: "genext2fs",
        package: "genext2fs",
        version_args: &["--version"],
        version_must: None,
        reads: Reads::Tarball,
        ours: Ours::Ext2Fixed,
        argv: |t, f, out| {
            let blocks = f.ext_mib * (1 << 20) / f.ext_block;
            let mut v = os([t.as_os_str()]);
            v.extend(os([
                "-B".to_owned(),
                f.ext_block.to_string(),
                "-b".to_owned(),
                blocks.to_string(),
                "-N".to_owned(),
                f.inodes.to_string(),
                "-m".to_owned(),
                "5".to_owned(),
                "-L".to_owned(),
                "rootfs".to_owned(),
                "-a".to_owned(),
            ]));
            v.push(f.tarball.clone().into());
            v.push(out.into());
            v
        },
        stdin_tarball: false,
    },
    Def {
        name: "xorriso",
        tool: "xorriso",
        package: "xorriso",
        version_args: &["-version"],
        version_must: None,
        reads: Reads::Tree,
        ours: Ours::Iso9660,
        argv: |t, f, out| {
            let mut v = os([t.as_os_str()]);
            v.extend(os(["-as", "mkisofs", "-quiet", "-R", "-J", "-o"]));
            v.push(out.into());
            v.push(f.tree.clone().into());
            v
        },
        stdin_tarball: false,
    },
    Def {
        name: "GNU cpio",
        tool: "cpio",
        package: "cpio",
        version_args: &["--version"],
        version_must: Some("GNU cpio"),
        reads: Reads::Tree,
        ours: Ours::Cpio,
        // Buildroot's fs/cpio: find | sort | cpio.
        argv: |t, f, out| {
            let mut v = os([
                "/bin/sh",
                "-c",
                "cd \"$1\" && find . | LC_ALL=C sort | \"$2\" --quiet -o -H newc >\"$3\"",
                "sh",
            ]);
            v.push(f.tree.clone().into());
            v.push(t.into());
            v.push(out.into());
            v
        },
        stdin_tarball: false,
    },
    Def {
        name: "bsdtar newc",
        tool: "bsdtar",
        package: "libarchive-tools",
        version_args: &["--version"],
        version_must: None,
        reads: Reads::Tarball,
        ours: Ours::Cpio,
        argv: |t, f, out| {
            let mut v = os([t.as_os_str()]);
            v.push("-cf".into());
            v.push(out.into());
            v.extend(os(["--format", "newc"]));
            let mut at = OsString::from("@");
            at.push(&f.tarball);
            v.push(at);
            v
        },
        stdin_tarball: false,
    },
    Def {
        name: "bsdtar pax",
        tool: "bsdtar",
        package: "libarchive-tools",
        version_args: &["--version"],
        version_must: None,
        reads: Reads::Tarball,
        ours: Ours::Tar,
        argv: |t, f, out| {
            let mut v = os([t.as_os_str()]);
            v.push("-cf".into());
            v.push(out.into());
            v.extend(os(["--format", "pax"]));
            let mut at = OsString::from("@");
            at.push(&f.tarball);
            v.push(at);
            v
        },
        stdin_tarball: false,
    },
    Def {
        name: "GNU tar",
        tool: "tar",
        package: "tar",
        version_args: &["--version"],
        version_must: Some("GNU tar"),
        reads: Reads::Tree,
        ours: Ours::Tar,
        argv: |t, f, out| {
            let mut v = os([t.as_os_str()]);
            v.push("-C".into());
            v.push(f.tree.clone().into());
            v.extend(os([
                "--format=pax",
                "--sort=name",
                "--numeric-owner",
                "-cf",
            ]));
            v.push(out.into());
            v.push(".".into());
            v
        },
        stdin_tarball: false,
    },
];

/// What the commands are made of.
#[derive(Debug, Clone)]
struct Facts {
    tree: PathBuf,
    tarball: PathBuf,
    jobs: usize,
    /// ext images: the uncompressed tar's size plus 30% (at least 16), in
    /// MiB.
    ext_mib: u64,
    /// mke2fs's block size for that size (its "small" type under 512 MiB).
    ext_block: u64,
    /// genext2fs's inode count: entries plus room.
    inodes: u64,
}

/// What [`Plan::new`] needs.
pub struct Setup<'a> {
    pub input: &'a Path,
    pub formats: &'a [Format],
    /// Bytes of the uncompressed tar image.
    pub baseline: u64,
    pub entries: u64,
    pub jobs: usize,
    pub talk: bool,
}

/// One timed process.
struct Job {
    argv: Vec<OsString>,
    stdin: Option<PathBuf>,
    times: Vec<f64>,
    rss_kib: Vec<u64>,
    size: Option<u64>,
    error: Option<String>,
}

impl Job {
    fn new(argv: Vec<OsString>, stdin: Option<PathBuf>) -> Job {
        Job {
            argv,
            stdin,
            times: Vec::new(),
            rss_kib: Vec::new(),
            size: None,
            error: None,
        }
    }

    fn command_text(&self) -> String {
        let mut s = String::new();
        for (i, a) in self.argv.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let a = a.to_string_lossy();
            if a.contains([' ', '"', '$', '|', '>']) {
                let _ = write!(s, "'{a}'");
            } else {
                s.push_str(&a);
            }
        }
        if let Some(p) = &self.stdin {
            let _ = write!(s, " < {}", p.display());
        }
        s
    }

    /// Runs once in a fresh `dir`: the output is `dir/out` for peers, the
    /// one file `build` writes into `dir` for ours.
    fn run_once(&mut self, dir: &Path, fakeroot: Option<&(PathBuf, PathBuf)>, gnu_time: bool) {
        if self.error.is_some() {
            return;
        }
        let result = self.try_run(dir, fakeroot, gnu_time);
        let _ = std::fs::remove_dir_all(dir);
        if let Err(e) = result {
            self.error = Some(format!("{e:#}"));
        }
    }

    fn try_run(
        &mut self,
        dir: &Path,
        fakeroot: Option<&(PathBuf, PathBuf)>,
        gnu_time: bool,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let rss_file = dir.with_extension("rss");
        let mut argv: Vec<OsString> = Vec::new();
        if gnu_time {
            argv.extend(os([GNU_TIME, "-f", "%M", "-o"]));
            argv.push(rss_file.clone().into());
            argv.push("--".into());
        }
        if let Some((fr, state)) = fakeroot {
            argv.push(fr.into());
            argv.push("-i".into());
            argv.push(state.into());
            argv.push("--".into());
        }
        argv.extend(self.argv.iter().cloned());
        let out_file = dir.join("out");
        let argv: Vec<OsString> = argv
            .into_iter()
            .map(|a| {
                if a == "@OUT@" {
                    out_file.clone().into()
                } else if a == "@DIR@" {
                    dir.into()
                } else {
                    a
                }
            })
            .collect();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match &self.stdin {
            Some(p) => {
                cmd.stdin(
                    std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
                );
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        let start = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("running {}", self.command_text()))?;
        let secs = start.elapsed().as_secs_f64();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("{} ({})", tail.join(" / "), out.status);
        }
        // The image: `out`, or the one file `build` wrote.
        let size = if out_file.exists() {
            std::fs::metadata(&out_file)?.len()
        } else {
            let mut sizes = Vec::new();
            for e in std::fs::read_dir(dir)? {
                let e = e?;
                if e.file_type()?.is_file() {
                    sizes.push(e.metadata()?.len());
                }
            }
            match sizes.as_slice() {
                [one] => *one,
                _ => bail!(
                    "expected one image in {}, found {}",
                    dir.display(),
                    sizes.len()
                ),
            }
        };
        if gnu_time {
            let text = std::fs::read_to_string(&rss_file).unwrap_or_default();
            let _ = std::fs::remove_file(&rss_file);
            if let Some(kib) = text.lines().last().and_then(|l| l.trim().parse().ok()) {
                self.rss_kib.push(kib);
            }
        }
        self.times.push(secs);
        self.size = Some(size);
        Ok(())
    }
}

/// How a peer's row came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Missing,
    Error,
}

/// One peer's numbers beside ours.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRow {
    pub name: &'static str,
    /// Its first version line; absent when missing.
    pub version: Option<String>,
    pub format: &'static str,
    /// The settings both sides use.
    pub settings: String,
    /// What the tool read: `tree (extracted as root)`, `tree (extracted
    /// under fakeroot)`, `input directory`, `tarball`.
    pub input: String,
    pub status: Status,
    pub command: Option<String>,
    pub size: Option<u64>,
    pub build_s: Option<f64>,
    pub build_min_s: Option<f64>,
    pub build_max_s: Option<f64>,
    pub runs: usize,
    /// The largest peak RSS over the runs (GNU time's %M).
    pub peak_rss_kib: Option<u64>,
    /// The `rootforge build` process making the same image.
    pub ours_command: String,
    pub ours_size: Option<u64>,
    pub ours_build_s: Option<f64>,
    pub ours_build_min_s: Option<f64>,
    pub ours_build_max_s: Option<f64>,
    pub ours_peak_rss_kib: Option<u64>,
    /// The peer's over ours: above 1 is slower, larger, hungrier.
    pub time_x: Option<f64>,
    pub size_x: Option<f64>,
    pub rss_x: Option<f64>,
    pub error: Option<String>,
}

impl PeerRow {
    /// The fields of [`super::CSV_HEADER`].
    pub fn csv_fields(&self) -> Vec<String> {
        use super::opt;
        let status = match self.status {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Error => "error",
        };
        vec![
            "peer".to_owned(),
            self.name.to_owned(),
            self.version.clone().unwrap_or_default(),
            self.format.to_owned(),
            self.settings.clone(),
            String::new(),
            String::new(),
            self.input.clone(),
            opt(self.size),
            String::new(),
            opt(self.build_s),
            opt(self.build_min_s),
            opt(self.build_max_s),
            self.runs.to_string(),
            String::new(),
            String::new(),
            opt(self.peak_rss_kib),
            opt(self.ours_build_s),
            opt(self.ours_size),
            opt(self.ours_peak_rss_kib),
            opt(self.time_x),
            opt(self.size_x),
            opt(self.rss_x),
            status.to_owned(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// A peer found or not.
struct Peer {
    def: &'static Def,
    version: Option<String>,
    /// Why it does not run (missing, or its input could not be made).
    missing: Option<String>,
    error: Option<String>,
    /// Index into `Plan::jobs`: the peer's, then ours.
    job: Option<usize>,
    ours: usize,
}

/// The peers to run, their jobs and their scratch space.
pub struct Plan {
    peers: Vec<Peer>,
    jobs: Vec<Job>,
    /// Which jobs run under fakeroot: (fakeroot, its state file).
    fakeroot: Vec<Option<(PathBuf, PathBuf)>>,
    /// `Ours` of each of ours jobs, by job index.
    ours_of: Vec<Option<Ours>>,
    facts: Facts,
    tree_input: String,
    tarball_input: String,
    gnu_time: bool,
    work: tempfile::TempDir,
}

/// `program` on PATH.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
}

/// The first line `tool args` prints, stdout first.
fn version_of(tool: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let first = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    };
    // bsdtar's line goes on to list every library: its own part is enough.
    first(&out.stdout)
        .or_else(|| first(&out.stderr))
        .map(|v| v.split(" - ").next().unwrap_or(&v).to_owned())
}

/// Whether `path` starts like a plain tar archive.
fn is_plain_tar(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 263];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[257..262] == b"ustar"
}

fn is_root() -> bool {
    // The owner of a file this process just made is its effective uid.
    use std::os::unix::fs::MetadataExt;
    tempfile::tempfile()
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.uid() == 0)
}

impl Plan {
    /// Finds the peers of `setup.formats`, prints their versions, and
    /// makes the tree and tarball they read (untimed).
    pub fn new(setup: &Setup<'_>) -> Result<Plan> {
        let work = tempfile::Builder::new()
            .prefix("rootforge-compare-")
            .tempdir()
            .context("making a scratch directory for --peers")?;
        crate::staged::remove_on_signal(work.path());
        // The tarball's size plus 30%, as benches/peers.sh; at least 16 MiB,
        // room for mke2fs's journal on a tiny tree.
        let ext_mib = (setup.baseline * 13 / 10 / (1 << 20) + 1).max(16);
        let input = std::fs::canonicalize(setup.input)
            .with_context(|| format!("{}", setup.input.display()))?;
        let is_dir = input.is_dir();
        let mut facts = Facts {
            tree: input.clone(),
            tarball: input.clone(),
            jobs: setup.jobs,
            ext_mib,
            ext_block: if ext_mib < 512 { 1024 } else { 4096 },
            inodes: setup.entries + 400,
        };
        let me = std::env::current_exe().context("finding rootforge's own executable")?;
        let gnu_time = Path::new(GNU_TIME).exists();
        if !gnu_time && setup.talk {
            eprintln!("warning: {GNU_TIME} (Debian package time) is missing: no peak RSS");
        }

        let mut peers = Vec::new();
        for def in DEFS
            .iter()
            .filter(|d| setup.formats.contains(&d.ours.format()))
        {
            let found = which(def.tool);
            let version = found
                .as_deref()
                .and_then(|t| version_of(t, def.version_args));
            let missing = match (&found, &version, def.version_must) {
                (None, _, _) => Some(format!(
                    "{} not found on PATH (Debian package {})",
                    def.tool, def.package
                )),
                (Some(t), v, Some(word)) if !v.as_deref().unwrap_or("").contains(word) => {
                    Some(format!(
                        "{} is not {word} ({})",
                        t.display(),
                        v.as_deref().unwrap_or("?")
                    ))
                }
                _ => None,
            };
            if setup.talk {
                match &missing {
                    Some(m) => eprintln!("peer {}: missing: {m}", def.name),
                    None => eprintln!(
                        "peer {}: {} ({})",
                        def.name,
                        version.as_deref().unwrap_or("version unknown"),
                        found
                            .as_deref()
                            .map(Path::display)
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                    ),
                }
            }
            peers.push((def, found, version, missing));
        }

        // The inputs, untimed.
        let needs = |r: Reads| peers.iter().any(|(d, _, _, m)| d.reads == r && m.is_none());
        let mut tree_error = None;
        let mut fakeroot_state = None;
        let tree_input;
        if is_dir {
            tree_input = "input directory".to_owned();
        } else {
            facts.tree = work.path().join("tree");
            if is_root() {
                tree_input = "tree (extracted as root)".to_owned();
            } else {
                tree_input = "tree (extracted under fakeroot)".to_owned();
            }
            if needs(Reads::Tree) {
                if setup.talk {
                    eprintln!(
                        "extracting {} for the peers that read a tree (untimed)",
                        input.display()
                    );
                }
                match extract(&input, &facts.tree, work.path()) {
                    Ok(state) => fakeroot_state = state,
                    Err(e) => tree_error = Some(format!("{e:#}")),
                }
            }
        }
        let mut tarball_error = None;
        let tarball_input = if !is_dir && is_plain_tar(&input) {
            "tarball".to_owned()
        } else {
            let dir = work.path().join("tarball");
            facts.tarball = dir.join("rootfs.tar");
            if needs(Reads::Tarball) {
                let out = Command::new(&me)
                    .args(["build", "-q", "-f", "tar", "-o"])
                    .arg(&dir)
                    .arg(&input)
                    .stdin(Stdio::null())
                    .output();
                match out {
                    Ok(o) if o.status.success() => {}
                    Ok(o) => {
                        tarball_error = Some(format!(
                            "making a tarball: {}",
                            String::from_utf8_lossy(&o.stderr).trim()
                        ));
                    }
                    Err(e) => tarball_error = Some(format!("making a tarball: {e}")),
                }
            }
            "tarball (written by rootforge, untimed)".to_owned()
        };

        let mut plan = Plan {
            peers: Vec::new(),
            jobs: Vec::new(),
            fakeroot: Vec::new(),
            ours_of: Vec::new(),
            facts,
            tree_input,
            tarball_input,
            gnu_time,
            work,
        };
        for (def, found, version, missing) in peers {
            let ours = plan.ours_job(def.ours, &me, &input);
            let error = match def.reads {
                Reads::Tree => tree_error.clone(),
                Reads::Tarball => tarball_error.clone(),
            };
            let job = match (&found, &missing, &error) {
                (Some(tool), None, None) => {
                    let out = PathBuf::from("@OUT@");
                    let argv = (def.argv)(tool, &plan.facts, &out);
                    let stdin = def.stdin_tarball.then(|| plan.facts.tarball.clone());
                    plan.jobs.push(Job::new(argv, stdin));
                    plan.ours_of.push(None);
                    plan.fakeroot.push(match def.reads {
                        Reads::Tree => fakeroot_state.clone(),
                        Reads::Tarball => None,
                    });
                    Some(plan.jobs.len() - 1)
                }
                _ => None,
            };
            plan.peers.push(Peer {
                def,
                version,
                missing,
                error,
                job,
                ours,
            });
        }
        Ok(plan)
    }

    /// The job of ours for `o`, made once.
    fn ours_job(&mut self, o: Ours, me: &Path, input: &Path) -> usize {
        if let Some(i) = self.ours_of.iter().position(|x| *x == Some(o)) {
            return i;
        }
        let mut argv = os([me.as_os_str()]);
        argv.extend(os(["build", "-q", "-j"]));
        argv.push(self.facts.jobs.to_string().into());
        argv.extend(os(o.flags(&self.facts)));
        argv.push("-o".into());
        argv.push("@DIR@".into());
        argv.push(input.into());
        self.jobs.push(Job::new(argv, None));
        self.ours_of.push(Some(o));
        self.fakeroot.push(None);
        self.jobs.len() - 1
    }

    /// Timed processes per run.
    pub fn steps(&self, runs: usize) -> usize {
        self.jobs.len() * runs
    }

    /// Runs every job once, in order.
    pub fn run_once(&mut self, run: usize, bar: &ProgressBar, lines: bool) {
        for (i, job) in self.jobs.iter_mut().enumerate() {
            let name = match self.ours_of[i] {
                Some(o) => format!("rootforge build {}", o.format()),
                None => self
                    .peers
                    .iter()
                    .find(|p| p.job == Some(i))
                    .map_or_else(String::new, |p| p.def.name.to_owned()),
            };
            bar.set_message(format!("{name} (run {})", run + 1));
            let dir = self.work.path().join(format!("run-{i}"));
            job.run_once(&dir, self.fakeroot[i].as_ref(), self.gnu_time);
            bar.inc(1);
            if lines {
                let what = match (&job.error, job.times.last(), job.size) {
                    (Some(e), _, _) => format!("error: {e}"),
                    (None, Some(t), Some(s)) => format!("{s} bytes in {t:.3} s"),
                    _ => String::new(),
                };
                eprintln!("{name} (run {}): {what}", run + 1);
            }
        }
    }

    /// The rows, the scratch space removed.
    pub fn finish(self) -> Vec<PeerRow> {
        let facts = &self.facts;
        let mut rows = Vec::new();
        for p in &self.peers {
            let ours = &self.jobs[p.ours];
            let ours_t = spread(&ours.times);
            let ours_rss = ours.rss_kib.iter().copied().max();
            let mine = p.job.map(|j| &self.jobs[j]);
            let t = mine.and_then(|j| spread(&j.times));
            let rss = mine.and_then(|j| j.rss_kib.iter().copied().max());
            let size = mine.and_then(|j| j.size).filter(|_| t.is_some());
            let error = p
                .error
                .clone()
                .or_else(|| mine.and_then(|j| j.error.clone()))
                .or_else(|| ours.error.clone().map(|e| format!("rootforge build: {e}")));
            let status = if p.missing.is_some() {
                Status::Missing
            } else if error.is_some() {
                Status::Error
            } else {
                Status::Ok
            };
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            let size_f = |s: Option<u64>| s.map(|s| s as f64);
            rows.push(PeerRow {
                name: p.def.name,
                version: p.version.clone(),
                format: p.def.ours.format().name(),
                settings: p.def.ours.settings(facts),
                input: match p.def.reads {
                    Reads::Tree => self.tree_input.clone(),
                    Reads::Tarball => self.tarball_input.clone(),
                },
                status,
                command: mine.map(Job::command_text),
                size,
                build_s: t.map(|t| t.0),
                build_min_s: t.map(|t| t.1),
                build_max_s: t.map(|t| t.2),
                runs: mine.map_or(0, |j| j.times.len()),
                peak_rss_kib: rss,
                ours_command: ours.command_text(),
                ours_size: ours.size.filter(|_| ours_t.is_some()),
                ours_build_s: ours_t.map(|t| t.0),
                ours_build_min_s: ours_t.map(|t| t.1),
                ours_build_max_s: ours_t.map(|t| t.2),
                ours_peak_rss_kib: ours_rss,
                time_x: ratio(t.map(|t| t.0), ours_t.map(|t| t.0)),
                size_x: ratio(size_f(size), size_f(ours.size)),
                rss_x: ratio(size_f(rss), size_f(ours_rss)),
                error: p.missing.clone().or(error),
            });
        }
        rows
    }
}

/// Extracts `tarball` into `tree` with GNU tar: as root, or under fakeroot
/// (whose state file is returned).
fn extract(tarball: &Path, tree: &Path, work: &Path) -> Result<Option<(PathBuf, PathBuf)>> {
    std::fs::create_dir_all(tree)?;
    let tar = which("tar").context("GNU tar is needed to extract the tree")?;
    let mut cmd;
    let mut state = None;
    if is_root() {
        cmd = Command::new(&tar);
    } else {
        let fr = which("fakeroot").context(
            "fakeroot (Debian package fakeroot) is needed to extract the tree when not root",
        )?;
        let st = work.join("faked.state");
        cmd = Command::new(&fr);
        cmd.arg("-s").arg(&st).arg("--").arg(&tar);
        state = Some((fr, st));
    }
    cmd.args(["-x", "-p", "--numeric-owner", "--same-owner", "-f"])
        .arg(tarball)
        .arg("-C")
        .arg(tree)
        .stdin(Stdio::null());
    let out = cmd.output().context("running tar")?;
    if !out.status.success() {
        bail!(
            "extracting {}: {}",
            tarball.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(state)
}

/// rootforge's and each found peer's version, for the JSON and the caption.
pub fn versions(rows: &[PeerRow]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in rows {
        if let Some(v) = &r.version
            && !out.iter().any(|(_, x)| x == v)
        {
            out.push((r.name.to_owned(), v.clone()));
        }
    }
    out
}

/// The peers, and the `rootforge build` processes beside them, as points.
pub fn points(rows: &[PeerRow]) -> Vec<plot::Point> {
    let mut out = Vec::new();
    let mut ours_done: Vec<String> = Vec::new();
    for r in rows {
        if let (Some(s), Some(t)) = (r.size, r.build_s) {
            out.push(plot::Point {
                label: r.name.to_owned(),
                group: r.format.to_owned(),
                x: t,
                y: mib(s),
                peer: true,
            });
        }
        if let (Some(s), Some(t)) = (r.ours_size, r.ours_build_s)
            && !ours_done.contains(&r.ours_command)
        {
            ours_done.push(r.ours_command.clone());
            out.push(plot::Point {
                label: format!("rootforge build {}", r.format),
                group: r.format.to_owned(),
                x: t,
                y: mib(s),
                peer: false,
            });
        }
    }
    out
}

fn ratio_text(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x"))
}

fn rss_text(k: Option<u64>) -> String {
    k.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// The peers' table, under the matrix's.
pub fn write_table(out: &mut impl Write, rows: &[PeerRow], runs: usize) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "peers: whole processes (median of {runs}), each against `rootforge build` with the same settings (x = peer / ours)"
    )?;
    writeln!(
        out,
        "{:<12} {:<8} {:<20} {:>8} {:>8} {:>8} {:>12} {:>8} | {:>8} {:>12} {:>8} | {:>7} {:>7} {:>7}",
        "peer",
        "format",
        "settings",
        "s",
        "min s",
        "max s",
        "size",
        "RSS MiB",
        "ours s",
        "ours size",
        "RSS MiB",
        "x time",
        "x size",
        "x RSS"
    )?;
    for r in rows {
        write!(out, "{:<12} {:<8} {:<20}", r.name, r.format, r.settings)?;
        match r.status {
            Status::Missing => {
                writeln!(out, " missing: {}", r.error.as_deref().unwrap_or(""))?;
                continue;
            }
            Status::Error if r.build_s.is_none() => {
                writeln!(out, " error: {}", r.error.as_deref().unwrap_or(""))?;
                continue;
            }
            _ => {}
        }
        writeln!(
            out,
            " {:>8} {:>8} {:>8} {:>12} {:>8} | {:>8} {:>12} {:>8} | {:>7} {:>7} {:>7}",
            secs(r.build_s),
            secs(r.build_min_s),
            secs(r.build_max_s),
            r.size.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            rss_text(r.peak_rss_kib),
            secs(r.ours_build_s),
            r.ours_size
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            rss_text(r.ours_peak_rss_kib),
            ratio_text(r.time_x),
            ratio_text(r.size_x),
            ratio_text(r.rss_x),
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "{:<12} error: {e}", "")?;
        }
    }
    writeln!(out, "peer versions and inputs:")?;
    for r in rows {
        writeln!(
            out,
            "  {:<12} {:<45} reads {}",
            r.name,
            r.version.as_deref().unwrap_or("(missing)"),
            r.input
        )?;
    }
    Ok(())
}
