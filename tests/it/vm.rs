//! The kernel's view of an image: Debian's kernel boots under qemu (TCG) with
//! a small busybox harness (built by tests/vm/prepare.sh, its init is
//! tests/vm/init) and lists what its own initramfs unpacker or file system
//! drivers made of the image.
//!
//! Busybox prints raw fields (`stat -c`, `sha256sum`) and NUL-terminated path
//! lists to a spare virtio disk; this module parses them into canonical
//! listing [`Line`]s, knowing each name from the NUL-terminated lists, so any
//! byte in a name (space, tab, newline, backslash, non-UTF-8) compares
//! exactly with `==` against a listing made on the host.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rootforge_common::listing::{Line, sha256_hex, to_text};
use rootforge_common::{Kind, display_path, escape_bytes};

use crate::util::{repo, require_tool};

/// A boot that has not powered off by then fails with its console log.
/// How long a guest may run; `ROOTFORGE_BOOT_TIMEOUT` (seconds) raises it
/// for big inputs such as `ROOTFORGE_TINY=minbase.tar`.
fn boot_timeout() -> Duration {
    let secs = std::env::var("ROOTFORGE_BOOT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}
/// On every kernel command line of the tests. Under TCG on a loaded host the
/// kernel's check that the 8254 timer reaches the IO-APIC can time out and
/// panic ("IO-APIC + timer doesn't work!"): the emulated timer works, only
/// too slowly for the check, so it is skipped.
pub const KERNEL_ARGS: &str = "no_timer_check";
/// Every line tests/vm/init prints on the console starts with this.
const INIT_MARK: &str = "rftest:";
/// The output disk; a sparse file, so its size costs nothing.
const OUT_DISK_BYTES: u64 = 1 << 30;
/// Each archive of the initramfs starts on this boundary (zeros between
/// archives are skipped by the kernel).
const INITRD_ALIGN: u64 = 512;

/// The kernel and the harness initramfs, prepared once per test process.
#[derive(Debug)]
pub struct Harness {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
}

pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // The script's default cache, so `.ci/run` prepares it ahead. The
        // script locks it against other test processes and names any tool
        // it lacks.
        let cache = repo().join("target/vm");
        let out = Command::new("bash")
            .arg(repo().join("tests/vm/prepare.sh"))
            .arg(&cache)
            .stdin(Stdio::null())
            .output()
            .expect("running tests/vm/prepare.sh");
        assert!(
            out.status.success(),
            "tests/vm/prepare.sh failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Harness {
            kernel: cache.join("vmlinuz"),
            initramfs: cache.join("harness.cpio"),
        }
    })
}

/// The root file system the kernel unpacks from `images`: cpio archives
/// (newc or crc, plain or compressed) handed to it in this order, after the
/// harness's own archive, as one initramfs.
///
/// Left out: the harness's `/.rftest` (images must not use that name), and
/// the entries of the kernel's built-in initramfs (`/dev`, `/dev/console`,
/// `/root`) that the images did not change: a boot of the harness alone
/// tells them, and a line identical to one of them is dropped. The root
/// entry is the rootfs root: it has the metadata of an image's `.` entry if
/// there is one, else mode 1777 and the boot time.
pub fn vm_listing_initramfs(images: &[&Path]) -> Vec<Line> {
    let kernel_own = kernel_own_entries();
    let mut lines = initramfs_boot(images);
    lines.retain(|l| !kernel_own.contains(l));
    lines
}

/// The listing of each disk image, attached read-only as a virtio disk and
/// mounted read-only by the kernel as the given file system type (`ext4`,
/// `squashfs`, `iso9660`...). The root entry is the image's root directory.
pub fn vm_listing_disks(disks: &[(&Path, &str)]) -> Vec<Vec<Line>> {
    assert!(disks.len() < 26, "at most 25 disks per boot");
    for (path, fs) in disks {
        assert!(
            !fs.is_empty() && fs.bytes().all(|b| b.is_ascii_alphanumeric()),
            "bad file system type {fs:?} for {}",
            path.display()
        );
    }
    let work = workdir();
    let what = format!("{} disk(s)", disks.len());
    let out = boot(&what, &harness().initramfs, disks, work.path());
    (0..disks.len()).map(|n| out.listing(n)).collect()
}

/// The listing of each flash image, written by the VM to simulated flash
/// and mounted read-only from there: `mtdram.KIB.jffs2` (NOR with KIB erase
/// blocks), `nandsim.raw.jffs2` (NAND of 2 KiB pages and 128 KiB erase
/// blocks) or `nandsim.ubi.FS` (that NAND, UBI attached; `ubifs` mounts
/// `ubi0:rootfs`, another FS is mounted from the ubiblock of volume 0; the
/// last image of a boot). Each image is attached as a copy padded with
/// erased flash (0xff) to a multiple of 128 KiB.
pub fn vm_listing_flash(images: &[(&Path, &str)]) -> Vec<Vec<Line>> {
    for (path, spec) in images {
        assert!(
            spec.split('.').count() == 3
                && spec.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'),
            "bad flash type {spec:?} for {}",
            path.display()
        );
    }
    let work = workdir();
    let mut copies = Vec::new();
    for (i, (path, _)) in images.iter().enumerate() {
        let mut data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        data.resize(data.len().next_multiple_of(128 << 10), 0xff);
        let copy = work.path().join(format!("flash{i}.img"));
        fs::write(&copy, data).unwrap_or_else(|e| panic!("writing {}: {e}", copy.display()));
        copies.push(copy);
    }
    let disks: Vec<(&Path, &str)> = copies
        .iter()
        .zip(images)
        .map(|(c, (_, spec))| (c.as_path(), *spec))
        .collect();
    let what = format!("{} flash image(s)", disks.len());
    let out = boot(&what, &harness().initramfs, &disks, work.path());
    // The flash drivers fall back quietly (a summary with a bad CRC means a
    // full scan, a bad node is skipped), warning only: any warning of
    // theirs fails the listing too.
    let dmesg = out.text("dmesg");
    let warnings: Vec<&str> = dmesg
        .lines()
        .filter(|l| {
            let level = l
                .strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
                .and_then(|(n, _)| n.parse::<u32>().ok());
            level.is_some_and(|n| n % 8 <= 4) && (l.contains("jffs2") || l.contains("ubi"))
        })
        .collect();
    assert!(
        warnings.is_empty(),
        "vm: {what}: flash driver warnings:\n{}",
        warnings.join("\n")
    );
    (0..disks.len()).map(|n| out.listing(n)).collect()
}

/// What the kernel's built-in initramfs leaves in the root with no image.
fn kernel_own_entries() -> &'static [Line] {
    static OWN: OnceLock<Vec<Line>> = OnceLock::new();
    OWN.get_or_init(|| {
        let mut lines = initramfs_boot(&[]);
        lines.retain(|l| l.path != "/");
        lines
    })
}

fn initramfs_boot(images: &[&Path]) -> Vec<Line> {
    let work = workdir();
    let initrd = work.path().join("initrd");
    write_initrd(&initrd, images).unwrap_or_else(|e| panic!("writing {}: {e}", initrd.display()));
    let what = format!("initramfs of {} image(s)", images.len());
    boot(&what, &initrd, &[], work.path()).listing(0)
}

fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rootforge-vm")
        .tempdir()
        .expect("creating a temporary directory")
}

/// The harness's archive, then each image, each padded to [`INITRD_ALIGN`].
fn write_initrd(path: &Path, images: &[&Path]) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    for part in std::iter::once(harness().initramfs.as_path()).chain(images.iter().copied()) {
        let len = io::copy(&mut File::open(part)?, &mut out)?;
        let pad =
            usize::try_from(len.next_multiple_of(INITRD_ALIGN) - len).map_err(io::Error::other)?;
        out.write_all(&vec![0; pad])?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// `vda`, `vdb`...: virtio disks are named in command-line order.
fn disk_name(index: usize) -> String {
    let letter = u8::try_from(index)
        .ok()
        .and_then(|i| b'a'.checked_add(i))
        .filter(u8::is_ascii_lowercase)
        .expect("disk index below 26");
    format!("vd{}", char::from(letter))
}

fn drive_arg(path: &Path, readonly: bool) -> OsString {
    // qemu's option syntax doubles a comma inside a value.
    let mut arg = b"file=".to_vec();
    for &b in path.as_os_str().as_bytes() {
        arg.push(b);
        if b == b',' {
            arg.push(b',');
        }
    }
    arg.extend_from_slice(b",if=virtio,format=raw");
    if readonly {
        arg.extend_from_slice(b",readonly=on");
    }
    OsString::from_vec(arg)
}

/// Boots the harness with `initrd` and `disks` (read-only) plus an output
/// disk, waits for it to power off, and returns what it wrote there.
fn boot(what: &str, initrd: &Path, disks: &[(&Path, &str)], work: &Path) -> VmOutput {
    let drives: Vec<&Path> = disks.iter().map(|d| d.0).collect();
    let listed: Vec<(String, String)> = disks
        .iter()
        .enumerate()
        .map(|(i, (_, fs))| (disk_name(i), (*fs).to_owned()))
        .collect();
    boot_listing(what, initrd, &drives, &listed, work)
}

/// The kernel's view of the partitions of `disk` (attached read-only as
/// `vda`): one `vdaN START SIZE` line (sectors) per partition, from
/// `/sys/block/vda/vdaN/{start,size}`; and the listing of each partition
/// `(N, fs)` in `mount`, mounted read-only as that file system type.
pub fn vm_partitions(disk: &Path, mount: &[(u32, &str)]) -> (String, Vec<Vec<Line>>) {
    let work = workdir();
    let listed: Vec<(String, String)> = mount
        .iter()
        .map(|(n, fs)| (format!("vda{n}"), (*fs).to_owned()))
        .collect();
    let what = format!("partitions of {}", disk.display());
    let out = boot_listing(&what, &harness().initramfs, &[disk], &listed, work.path());
    let listings = (0..mount.len()).map(|n| out.listing(n)).collect();
    (out.text("parts"), listings)
}

/// Boots with `drives` attached read-only, listing the devices `listed`
/// (name, file system type).
fn boot_listing(
    what: &str,
    initrd: &Path,
    drives: &[&Path],
    listed: &[(String, String)],
    work: &Path,
) -> VmOutput {
    let qemu = require_tool("qemu-system-x86_64");
    let out_disk = work.join("out.img");
    File::create(&out_disk)
        .and_then(|f| f.set_len(OUT_DISK_BYTES))
        .unwrap_or_else(|e| panic!("creating {}: {e}", out_disk.display()));

    let mut append = format!("console=ttyS0 rdinit=/.rftest/init panic=-1 quiet {KERNEL_ARGS}");
    if !listed.is_empty() {
        let list: Vec<String> = listed
            .iter()
            .map(|(dev, fs)| format!("{dev}:{fs}"))
            .collect();
        append.push_str(" rftest_disks=");
        append.push_str(&list.join(","));
    }
    append.push_str(" rftest_out=");
    append.push_str(&disk_name(drives.len()));

    let mut cmd = Command::new(qemu);
    // KVM hangs on these machines: TCG, with every CPU feature it emulates
    // (crc32c-intel, which ext4 loads, needs SSE4.2).
    cmd.args(["-machine", "accel=tcg", "-cpu", "max", "-m", "1024"])
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&harness().kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(&append);
    for path in drives {
        cmd.arg("-drive").arg(drive_arg(path, true));
    }
    cmd.arg("-drive").arg(drive_arg(&out_disk, false));

    let start = Instant::now();
    let (status, console) = run_qemu(
        &format!("vm: {what}"),
        &mut cmd,
        &work.join("console.log"),
        INIT_MARK,
    );
    eprintln!(
        "vm: {what}: booted, listed and powered off in {:.1?}",
        start.elapsed()
    );

    let out = VmOutput::read(&out_disk)
        .unwrap_or_else(|e| panic!("vm: {what}: reading the output disk: {e}"));
    let failure = match out.files.get("status").map(|s| s.trim_ascii()) {
        Some(b"0") => None,
        Some(code) => Some(format!(
            "the harness failed with status {}",
            String::from_utf8_lossy(code)
        )),
        None => Some(format!(
            "no result on the output disk (qemu {status}): {}",
            boot_failure(&console, INIT_MARK)
        )),
    };
    let errors = out.kernel_errors();
    if failure.is_none() && errors.is_empty() {
        return out;
    }
    panic!(
        "vm: {what}: {}\nkernel errors:\n{errors}log:\n{}\nconsole:\n{}",
        failure.as_deref().unwrap_or("the kernel reported errors"),
        out.text("log"),
        console
    );
}

/// The members of the tar the harness wrote to its output disk.
#[derive(Debug)]
struct VmOutput {
    files: HashMap<String, Vec<u8>>,
}

impl VmOutput {
    fn read(disk: &Path) -> io::Result<VmOutput> {
        let mut files = HashMap::new();
        // A disk the VM never wrote is all zeros: an empty archive.
        let mut archive = tar::Archive::new(File::open(disk)?);
        for entry in archive.entries()? {
            let mut entry = entry?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            files.insert(name, data);
        }
        Ok(VmOutput { files })
    }

    fn text(&self, name: &str) -> String {
        String::from_utf8_lossy(self.files.get(name).map_or(&[][..], Vec::as_slice)).into_owned()
    }

    /// The kernel's messages of level `KERN_ERR` or worse: a driver that
    /// had to complain about an image (or an initramfs it stopped
    /// unpacking) fails the run even if the listing went through.
    fn kernel_errors(&self) -> String {
        let mut errors = String::new();
        for line in self.text("dmesg").lines() {
            let level = line
                .strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
                .and_then(|(n, _)| n.parse::<u32>().ok());
            // <facility * 8 + level>
            if level.is_some_and(|n| n % 8 <= 3) {
                errors.push_str(line);
                errors.push('\n');
            }
        }
        errors
    }

    fn file(&self, name: &str) -> Result<&[u8], String> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("no {name} in the VM's output"))
    }

    /// The listing of the `n`th tree the harness listed.
    fn listing(&self, n: usize) -> Vec<Line> {
        self.parse_listing(n)
            .unwrap_or_else(|e| panic!("vm: parsing listing {n}: {e}\nlog:\n{}", self.text("log")))
    }

    fn parse_listing(&self, n: usize) -> Result<Vec<Line>, String> {
        let paths = nul_list(self.file(&format!("{n}/all"))?);
        let files = nul_list(self.file(&format!("{n}/files"))?);

        let mut sha = Cursor::new(self.file(&format!("{n}/sha"))?);
        let mut hashes = HashMap::new();
        for &f in &files {
            let hash = sha.take(64)?;
            if !hash
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            {
                return Err(format!("bad sha256 for {}", escape_bytes(f)));
            }
            sha.expect(b"  ")?;
            sha.expect(f)?;
            sha.expect(b"\n")?;
            hashes.insert(f, String::from_utf8_lossy(hash).into_owned());
        }
        sha.end()?;

        let mut stat = Cursor::new(self.file(&format!("{n}/stat"))?);
        let mut lines = Vec::with_capacity(paths.len());
        for &p in &paths {
            let mode: u32 = stat.field(16)?;
            let kind = Kind::from_mode(mode)
                .ok_or_else(|| format!("unknown file type {mode:o} of {}", escape_bytes(p)))?;
            let uid: u32 = stat.field(10)?;
            let gid: u32 = stat.field(10)?;
            let size: u64 = stat.field(10)?;
            let major: u32 = stat.field(16)?;
            let minor: u32 = stat.field(16)?;
            let mtime: i64 = stat.field(10)?;
            // %N: the name as given, and for a symlink `'name' -> 'target'`.
            let (size, detail) = match kind {
                Kind::Symlink => {
                    stat.expect(b"'")?;
                    stat.expect(p)?;
                    stat.expect(b"' -> '")?;
                    let len = usize::try_from(size).map_err(|e| e.to_string())?;
                    let target = stat.take(len)?;
                    stat.expect(b"'")?;
                    (size, escape_bytes(target))
                }
                _ => {
                    stat.expect(p)?;
                    match kind {
                        Kind::File => {
                            let hash = hashes
                                .get(p)
                                .ok_or_else(|| format!("no sha256 for {}", escape_bytes(p)))?;
                            (size, hash.clone())
                        }
                        Kind::CharDev | Kind::BlockDev => (0, format!("{major},{minor}")),
                        _ => (0, "-".to_owned()),
                    }
                }
            };
            stat.expect(b"\n")?;
            let rel = match p {
                b"." => &b""[..],
                _ => p.strip_prefix(b"./").ok_or("path without ./")?,
            };
            lines.push(Line {
                path: display_path(rel),
                kind,
                perm: u16::try_from(mode & 0o7777).map_err(|e| e.to_string())?,
                uid,
                gid,
                size,
                detail,
                mtime,
            });
        }
        stat.end()?;
        lines.sort();
        Ok(lines)
    }
}

fn nul_list(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0).filter(|p| !p.is_empty()).collect()
}

/// Reads the raw records busybox printed.
#[derive(Debug)]
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn expect(&mut self, want: &[u8]) -> Result<(), String> {
        let at = self.pos;
        if self.take(want.len())? == want {
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {at}", escape_bytes(want)))
        }
    }

    /// A space-terminated integer in `radix`, with an optional `-`.
    fn field<T: TryFrom<i128>>(&mut self, radix: u32) -> Result<T, String> {
        let at = self.pos;
        let rest = &self.data[at..];
        let len = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| format!("no field at byte {at}"))?;
        let token = String::from_utf8_lossy(&rest[..len]);
        let value = i128::from_str_radix(&token, radix)
            .ok()
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| format!("bad field {token:?} at byte {at}"))?;
        self.pos = at
            .checked_add(len)
            .and_then(|p| p.checked_add(1))
            .ok_or("offset overflow")?;
        Ok(value)
    }

    fn end(&self) -> Result<(), String> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(format!("trailing data at byte {}", self.pos))
        }
    }
}

/// Why a guest gave no result, from its serial console: the kernel's panic
/// line if it panicked, else whether init ran (printed `init_mark`), with
/// the console's last lines.
pub fn boot_failure(console: &str, init_mark: &str) -> String {
    const PANIC: &str = "Kernel panic - not syncing";
    if let Some(at) = console
        .lines()
        .find_map(|l| l.find(PANIC).map(|at| &l[at..]))
    {
        return format!("the kernel panicked: {}", at.trim_end());
    }
    let lines: Vec<&str> = console.lines().map(str::trim_end).collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    let ran = if console.contains(init_mark) {
        "init ran but did not finish"
    } else {
        "init never ran"
    };
    format!("{ran}; the last serial lines:\n{tail}")
}

/// Runs qemu with its console (stdout and stderr) in `console_path`,
/// waits for it to power off, and gives its status and console; a guest
/// still running after [`boot_timeout`] is killed and fails the test with
/// its console and what [`boot_failure`] makes of it (`init_mark` is what
/// the guest's init prints).
pub fn run_qemu(
    what: &str,
    cmd: &mut Command,
    console_path: &Path,
    init_mark: &str,
) -> (ExitStatus, String) {
    let console = File::create(console_path).expect("creating the console log");
    let console_err = console.try_clone().expect("duplicating the console log");
    let timeout = boot_timeout();
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(console_err)
        .spawn()
        .expect("starting qemu-system-x86_64");
    let console_text =
        || String::from_utf8_lossy(&fs::read(console_path).unwrap_or_default()).into_owned();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for qemu") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let console = console_text();
            panic!(
                "{what}: no power-off within {timeout:?}: {}\nconsole:\n{console}",
                boot_failure(&console, init_mark)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status, console_text())
}

/// The canonical listing of a host directory tree, as `lstat` sees it.
pub fn host_listing(root: &Path) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut stack = vec![(root.to_path_buf(), Vec::new())];
    while let Some((path, rel)) = stack.pop() {
        let fail = |e: io::Error| -> ! { panic!("reading {}: {e}", path.display()) };
        let md = fs::symlink_metadata(&path).unwrap_or_else(|e| fail(e));
        let kind = Kind::from_mode(md.mode()).expect("a known file type");
        let (size, detail) = match kind {
            Kind::File => (
                md.size(),
                sha256_hex(&fs::read(&path).unwrap_or_else(|e| fail(e))),
            ),
            Kind::Symlink => {
                let target = fs::read_link(&path).unwrap_or_else(|e| fail(e));
                let target = target.into_os_string().into_vec();
                let len = u64::try_from(target.len()).expect("a symlink length fits u64");
                (len, escape_bytes(&target))
            }
            Kind::CharDev | Kind::BlockDev => {
                let rdev = md.rdev();
                // glibc's gnu_dev_major / gnu_dev_minor.
                let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & 0xffff_f000);
                let minor = (rdev & 0xff) | ((rdev >> 12) & 0xffff_ff00);
                (0, format!("{major},{minor}"))
            }
            _ => (0, "-".to_owned()),
        };
        if kind == Kind::Dir {
            for entry in fs::read_dir(&path).unwrap_or_else(|e| fail(e)) {
                let entry = entry.unwrap_or_else(|e| fail(e));
                let mut child = rel.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(entry.file_name().as_bytes());
                stack.push((entry.path(), child));
            }
        }
        lines.push(Line {
            path: display_path(&rel),
            kind,
            perm: u16::try_from(md.mode() & 0o7777).expect("12 bits fit u16"),
            uid: md.uid(),
            gid: md.gid(),
            size,
            detail,
            mtime: md.mtime(),
        });
    }
    lines.sort();
    lines
}

/// Fails with the lines only one side has.
pub fn assert_same_listing(what: &str, got: &[Line], want: &[Line]) {
    if got == want {
        return;
    }
    let got_set: BTreeSet<&Line> = got.iter().collect();
    let want_set: BTreeSet<&Line> = want.iter().collect();
    let text = |lines: Vec<&Line>| to_text(&lines.into_iter().cloned().collect::<Vec<_>>());
    panic!(
        "{what}: listings differ\n--- only in the VM:\n{}--- only expected:\n{}",
        text(got_set.difference(&want_set).copied().collect()),
        text(want_set.difference(&got_set).copied().collect())
    );
}

/// What an entry of [`sample_tree`] is.
#[derive(Debug)]
enum Node<'a> {
    Dir,
    File(&'a [u8]),
    HardLink(&'a str),
    Symlink(&'a [u8]),
    Fifo,
    Socket,
    Char(u32, u32),
    Block(u32, u32),
}

/// One entry of [`sample_tree`]: owned by 0:0 and dated by its position
/// unless told otherwise.
#[derive(Debug)]
struct Sample<'a> {
    path: &'a [u8],
    node: Node<'a>,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Option<i64>,
}

fn sample<'a>(path: &'a [u8], node: Node<'a>, mode: u32) -> Sample<'a> {
    Sample {
        path,
        node,
        mode,
        uid: 0,
        gid: 0,
        mtime: None,
    }
}

impl Sample<'_> {
    fn owner(self, uid: u32, gid: u32) -> Self {
        Sample { uid, gid, ..self }
    }

    fn mtime(self, mtime: i64) -> Self {
        Sample {
            mtime: Some(mtime),
            ..self
        }
    }
}

/// A tree with every kind of entry the listing tells apart, and the names
/// and values that trip naive tools: 32-bit ids, set-id and sticky bits, a
/// wide minor number, spaces, tabs, a newline, a backslash, unicode and
/// non-UTF-8 names. `past_2038` adds a file dated 2100.
fn sample_tree(root: &Path, past_2038: bool) {
    let blob: Vec<u8> = (0u32..600_000)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    // Parents before children.
    let mut entries = vec![
        sample(b"", Node::Dir, 0o755).mtime(1_234_567_890),
        sample(b"bin", Node::Dir, 0o755),
        sample(b"bin/tool", Node::File(b"#!/bin/sh\necho hi\n"), 0o755)
            .owner(1234, 5678)
            .mtime(1_000_000_000),
        sample(b"bin/link-to-tool", Node::HardLink("bin/tool"), 0),
        sample(b"bin/suid", Node::File(b"setuid\n"), 0o4755),
        sample(b"bin/sh", Node::Symlink(b"tool"), 0o777),
        sample(b"dev", Node::Dir, 0o755),
        sample(b"dev/console", Node::Char(5, 1), 0o600).owner(0, 5),
        sample(b"dev/wide", Node::Char(250, 70_000), 0o640).owner(0, 6),
        sample(b"dev/vdz", Node::Block(254, 7), 0o660).owner(0, 6),
        sample(b"etc", Node::Dir, 0o755),
        sample(b"etc/hostname", Node::File(b"rootforge\n"), 0o644),
        sample(b"etc/big-ids", Node::File(b"ids\n"), 0o640).owner(4_000_000_000, 3_000_000_000),
        sample(b"etc/empty", Node::File(b""), 0o600),
        sample(b"etc/abs", Node::Symlink(b"/etc/hostname"), 0o777).owner(7, 8),
        sample(b"etc/dangling", Node::Symlink(b"no such/\ttarget\\"), 0o777),
        sample(b"run", Node::Dir, 0o755),
        sample(b"run/fifo", Node::Fifo, 0o620),
        sample(b"run/sock", Node::Socket, 0o755),
        sample(b"srv", Node::Dir, 0o2775).owner(1000, 1000),
        sample(b"srv/blob", Node::File(&blob), 0o644),
        sample(b"tmp", Node::Dir, 0o1777),
        sample(
            "h\u{e9}llo w\u{f6}rld \u{2603}.txt".as_bytes(),
            Node::File(b"unicode\n"),
            0o644,
        ),
        sample(b"tab\tname", Node::File(b"tab\n"), 0o644),
        sample(b"new\nline", Node::File(b"newline\n"), 0o644),
        sample(b"back\\slash", Node::File(b"backslash\n"), 0o644),
        sample(b"bad-\xff\xfe", Node::File(b"latin1\n"), 0o644),
        sample(b"extra", Node::Dir, 0o700),
        sample(
            b"extra/note",
            Node::File(b"from the second archive\n"),
            0o400,
        )
        .owner(9, 9),
    ];
    if past_2038 {
        entries.push(sample(b"srv/late", Node::File(b"2100\n"), 0o644).mtime(4_102_444_800));
    }

    let at = |rel: &[u8]| root.join(std::ffi::OsStr::from_bytes(rel));
    let run = |cmd: &mut Command| {
        let status = cmd.status().expect("running a tool");
        assert!(status.success(), "{cmd:?} failed: {status}");
    };
    for e in &entries {
        let path = at(e.path);
        match e.node {
            Node::Dir => fs::create_dir_all(&path).expect("mkdir"),
            Node::File(data) => fs::write(&path, data).expect("write"),
            Node::HardLink(to) => fs::hard_link(root.join(to), &path).expect("link"),
            Node::Symlink(target) => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &path)
                    .expect("symlink");
            }
            Node::Fifo => run(Command::new("mkfifo").arg(&path)),
            Node::Socket => drop(std::os::unix::net::UnixListener::bind(&path).expect("bind")),
            Node::Char(major, minor) | Node::Block(major, minor) => {
                let kind = if matches!(e.node, Node::Char(..)) {
                    "c"
                } else {
                    "b"
                };
                run(Command::new("mknod").arg(&path).args([
                    kind,
                    &major.to_string(),
                    &minor.to_string(),
                ]));
            }
        }
    }
    // Metadata last, so creating children does not move a parent's mtime.
    for (i, e) in (1_600_000_000..).zip(&entries) {
        if matches!(e.node, Node::HardLink(_)) {
            continue;
        }
        let path = at(e.path);
        std::os::unix::fs::lchown(&path, Some(e.uid), Some(e.gid)).expect("lchown");
        // chown clears set-id bits, so chmod follows it; symlinks have no mode.
        if !matches!(e.node, Node::Symlink(_)) {
            fs::set_permissions(&path, fs::Permissions::from_mode(e.mode)).expect("chmod");
        }
        let mtime = e.mtime.unwrap_or(i);
        run(Command::new("touch")
            .args(["-h", "-d", &format!("@{mtime}")])
            .arg(&path));
    }
}

/// Runs `script` with sh in `dir`, `args` as `$1`...: pipelines of the
/// real tools.
fn shell(dir: &Path, script: &str, args: &[&Path]) {
    let status = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .arg("sh")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("running sh");
    assert!(status.success(), "`{script}` failed: {status}");
}

#[test]
fn initramfs_listing_matches_the_host() {
    require_tool("cpio");
    require_tool("gzip");
    let work = workdir();
    let src = work.path().join("root");
    sample_tree(&src, true);
    let main = work.path().join("main.cpio");
    let extra = work.path().join("extra.cpio");
    // A compressed archive then a plain one, as an initramfs may come.
    shell(
        &src,
        "find . -path ./extra -prune -o -print0 | cpio -o -0 -H newc --quiet > \"$1\"
         gzip -n \"$1\"
         find extra -print0 | cpio -o -0 -H newc --quiet > \"$2\"",
        &[&main, &extra],
    );
    let main_gz = work.path().join("main.cpio.gz");
    let got = vm_listing_initramfs(&[&main_gz, &extra]);
    assert_same_listing("initramfs", &got, &host_listing(&src));
}

#[test]
fn disk_listings_match_the_host() {
    require_tool("mke2fs");
    require_tool("mksquashfs");
    let work = workdir();
    let src = work.path().join("root");
    sample_tree(&src, true);
    // mke2fs 1.47.0 -d drops the epoch bits of times past 2038 (debugfs
    // shows them missing): that tree leaves them out.
    let src_ext4 = work.path().join("root-ext4");
    sample_tree(&src_ext4, false);
    let ext4 = work.path().join("rootfs.ext4");
    let squashfs = work.path().join("rootfs.squashfs");
    shell(
        work.path(),
        "mke2fs -q -F -t ext4 -d \"$1\" \"$2\" 32M
         mksquashfs \"$3\" \"$4\" -noappend -quiet -no-progress",
        &[&src_ext4, &ext4, &src, &squashfs],
    );
    let got = vm_listing_disks(&[(&ext4, "ext4"), (&squashfs, "squashfs")]);
    let [mut got_ext4, got_squashfs] = <[Vec<Line>; 2]>::try_from(got).expect("two listings");
    assert_same_listing("squashfs", &got_squashfs, &host_listing(&src));

    // mke2fs adds /lost+found and gives the root directory its own mtime.
    let mut want_ext4 = host_listing(&src_ext4);
    let before = got_ext4.len();
    got_ext4.retain(|l| !(l.path == "/lost+found" && l.kind == Kind::Dir));
    assert_eq!(
        got_ext4.len() + 1,
        before,
        "the ext4 image has a /lost+found"
    );
    for lines in [&mut got_ext4, &mut want_ext4] {
        let root = lines
            .iter_mut()
            .find(|l| l.path == "/")
            .expect("a root entry");
        root.mtime = 0;
    }
    assert_same_listing("ext4", &got_ext4, &want_ext4);
}

#[test]
#[should_panic(expected = "the harness failed with status 1")]
fn a_disk_the_kernel_cannot_mount_fails_the_listing() {
    let work = workdir();
    let junk = work.path().join("zeros.img");
    fs::write(&junk, vec![0; 1 << 20]).expect("writing the disk");
    vm_listing_disks(&[(&junk, "squashfs")]);
}

/// A kernel that panics before init ran is reported with its panic line:
/// with no init in the initramfs (zeros are padding to the unpacker) and no
/// root device, the kernel cannot go on.
#[test]
#[should_panic(
    expected = "the kernel panicked: Kernel panic - not syncing: VFS: Unable to mount root fs"
)]
fn a_kernel_panic_before_init_is_reported() {
    let work = workdir();
    let zeros = work.path().join("zeros.cpio");
    fs::write(&zeros, [0; 512]).expect("writing the initramfs");
    boot("an initramfs without init", &zeros, &[], work.path());
}

#[test]
#[should_panic(expected = "Initramfs unpacking failed")]
fn a_truncated_initramfs_fails_the_listing() {
    require_tool("cpio");
    require_tool("gzip");
    let work = workdir();
    let src = work.path().join("root");
    sample_tree(&src, false);
    let image = work.path().join("rootfs.cpio.gz");
    shell(
        &src,
        "find . -print0 | cpio -o -0 -H newc --quiet | gzip -n > \"$1\"",
        &[&image],
    );
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .expect("opening the image");
    let len = file.metadata().expect("stat").len();
    file.set_len(len / 2).expect("truncating the image");
    vm_listing_initramfs(&[&image]);
}
