//! Output files that exist under their names only once they are complete.
//!
//! An image is written to an unnamed file (`O_TMPFILE`) in the output
//! directory and linked into place only when every image of the run has
//! succeeded, so a build that is killed (SIGKILL, a file-size limit, power
//! loss) leaves nothing behind: the kernel frees an unnamed file with its
//! last descriptor. Where the filesystem has no `O_TMPFILE` (vfat, some
//! network filesystems), a hidden `.rootforge-*.tmp` file stands in, and
//! SIGINT, SIGTERM and SIGHUP remove it before the process exits as the
//! signal would have made it exit.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, PoisonError};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use rustix::io::Errno;
use tempfile::TempPath;

/// Paths that a SIGINT, SIGTERM or SIGHUP removes: the named stand-ins of
/// this run, and images this run has put in place while it puts the rest.
static DOOMED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes [`DOOMED`] paths on SIGINT, SIGTERM and SIGHUP, then exits as
/// the signal would have. Installed once, by the first staged file.
fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            // Without the handler a signal kills the process as before; the
            // unnamed files still vanish.
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                for path in DOOMED
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .drain(..)
                {
                    remove(&path);
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
    });
}

/// Removes a doomed file, or a doomed directory and everything in it. The
/// children that got the same signal may still be writing there: a
/// directory is tried again until it is gone, a few times.
fn remove(path: &Path) {
    if !path.is_dir() {
        let _ = std::fs::remove_file(path);
        return;
    }
    for _ in 0..20 {
        if std::fs::remove_dir_all(path).is_ok() || !path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Removes the scratch directory `dir` if a SIGINT, SIGTERM or SIGHUP
/// ends the process (`compare --peers`' extracted tree), through the one
/// handler every staged file shares.
pub(crate) fn remove_on_signal(dir: &Path) {
    install_handler();
    doom(dir);
}

fn doom(path: &Path) {
    DOOMED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(path.to_path_buf());
}

fn spare(path: &Path) {
    DOOMED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|p| p != path);
}

/// Keeps images put in place by this run doomed until the run is done, so
/// a signal while the last ones are renamed takes back the first.
#[derive(Debug, Default)]
pub(crate) struct Placed(Vec<PathBuf>);

impl Placed {
    pub(crate) fn push(&mut self, path: PathBuf) {
        doom(&path);
        self.0.push(path);
    }

    /// Removes every image put in place (after a failed rename).
    pub(crate) fn take_back(self) {
        for path in &self.0 {
            spare(path);
            let _ = std::fs::remove_file(path);
        }
    }

    /// The run succeeded: its images stay.
    pub(crate) fn keep(self) {
        for path in &self.0 {
            spare(path);
        }
    }
}

/// A file being written in an output directory, under no name yet.
#[derive(Debug)]
pub(crate) struct Staged {
    file: File,
    dir: PathBuf,
    /// The stand-in's name, where the filesystem has no `O_TMPFILE`.
    named: Option<TempPath>,
}

impl Staged {
    /// A new empty file in `dir`, mode 0644 whatever the umask, as the
    /// images were before.
    pub(crate) fn new_in(dir: &Path) -> io::Result<Staged> {
        install_handler();
        let unnamed = rustix::fs::openat(
            CWD,
            dir,
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        );
        let staged = match unnamed {
            Ok(fd) => Staged {
                file: File::from(fd),
                dir: dir.to_path_buf(),
                named: None,
            },
            // The filesystem (or kernel) has no O_TMPFILE.
            Err(e) if [Errno::OPNOTSUPP, Errno::ISDIR, Errno::INVAL].contains(&e) => {
                Self::named_in(dir)?
            }
            Err(e) => return Err(e.into()),
        };
        staged
            .file
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        Ok(staged)
    }

    fn named_in(dir: &Path) -> io::Result<Staged> {
        let tmp = tempfile::Builder::new()
            .prefix(".rootforge-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        doom(tmp.path());
        let (file, path) = tmp.into_parts();
        Ok(Staged {
            file,
            dir: dir.to_path_buf(),
            named: Some(path),
        })
    }

    pub(crate) fn as_file(&self) -> &File {
        &self.file
    }

    /// Puts the file at `dest` (in the directory it was made in), replacing
    /// any file there.
    pub(crate) fn persist(self, dest: &Path) -> io::Result<()> {
        match self.named {
            Some(path) => {
                spare(&path);
                path.persist(dest).map_err(|e| e.error)
            }
            None => link_unnamed(&self.file, &self.dir, dest),
        }
    }
}

/// Links an unnamed file at `dest`: directly when nothing is there, else
/// under a temporary name that is then renamed over `dest`, since `linkat`
/// never replaces.
fn link_unnamed(file: &File, dir: &Path, dest: &Path) -> io::Result<()> {
    match link(file, dest) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        other => return other,
    }
    for attempt in 0..16u32 {
        let tmp = dir.join(format!(".rootforge-{}-{attempt}.tmp", std::process::id()));
        match link(file, &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        doom(&tmp);
        let renamed = std::fs::rename(&tmp, dest);
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        spare(&tmp);
        return renamed;
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name beside the destination",
    ))
}

/// `linkat` of an unnamed file: by its descriptor (`AT_EMPTY_PATH`, which
/// needs CAP_DAC_READ_SEARCH), else through `/proc/self/fd`.
fn link(file: &File, dest: &Path) -> io::Result<()> {
    match rustix::fs::linkat(file, "", CWD, dest, AtFlags::EMPTY_PATH) {
        Ok(()) => return Ok(()),
        Err(e) if e == Errno::NOENT || e == Errno::PERM => {}
        Err(e) => return Err(e.into()),
    }
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(CWD, proc_path.as_str(), CWD, dest, AtFlags::SYMLINK_FOLLOW)
        .map_err(io::Error::from)
}
