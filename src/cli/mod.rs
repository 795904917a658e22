//! The command line: clap's schema for each subcommand (the low-level
//! arguments), turned into typed plans ([`crate::plan::BuildPlan`]) that the
//! library runs.

pub mod build;
pub mod buildroot;
pub mod compare;
pub mod config;
pub mod genimage;
pub mod inspect;

use clap::{Parser, Subcommand};

pub use build::BuildArgs;
pub use buildroot::BuildrootArgs;
pub use compare::CompareArgs;
pub use config::Config;
pub use genimage::{GenimageArgs, GenimageCli};

/// rootforge turns one root filesystem into every image a build needs, natively
/// and in parallel, with no external tools.
#[derive(Debug, Parser)]
#[command(
    name = "rootforge",
    version,
    about = "Build root filesystem images (cpio, tar, squashfs, ext2/3/4, iso9660) from one read of a rootfs, natively and in parallel",
    long_about = None,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build images from a rootfs tarball, an image, a directory or stdin.
    Build(Box<BuildArgs>),
    /// Print one line per entry of an image: type, mode, uid, gid, size,
    /// sha256 / link target / device numbers, mtime and path.
    Inspect {
        /// An image rootforge can read back (cpio, tar, squashfs, ext2/3/4
        /// or iso9660; cpio, tar and ext optionally compressed or U-Boot
        /// wrapped), or a partitioned disk (its MBR or GPT table).
        image: std::path::PathBuf,
    },
    /// Build the images a Buildroot configuration enables, from its target
    /// directory, as Buildroot names them (no fakeroot, no host tools).
    Buildroot(BuildrootArgs),
    /// Build every format × compressor × block size from one read of a
    /// rootfs and print sizes, build times and read-back times.
    Compare(CompareArgs),
    /// Build the images of a genimage configuration (hdimage disks and
    /// filesystem images) with genimage's options, natively.
    Genimage(GenimageArgs),
}

/// Runs a parsed command line.
///
/// # Errors
///
/// Whatever the subcommand fails with.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => build::run(*args),
        Command::Inspect { image } => inspect::run(&image),
        Command::Buildroot(args) => buildroot::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Genimage(args) => genimage::run(&args),
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (unique argument ids across the
    /// flattened option groups, valid conflicts), which release builds skip.
    #[test]
    fn the_command_line_schema_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
