//! `rootforge buildroot`: a Buildroot `.config` turned into a typed build
//! plan, then built.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::buildroot::{Kconfig, Translated, plan};
use crate::plan::Env;

/// `rootforge buildroot`'s flags.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads BR2_TARGET_ROOTFS_{CPIO,TAR,SQUASHFS,EXT2,ISO9660}* (compression, sizes,\nlabels, block sizes), the device, permission and users tables, the systemd\nsteps and BR2_ARCH, and runs the equivalent `rootforge build` (--print shows it)."
)]
pub struct BuildrootArgs {
    /// Buildroot's .config, or any file in its syntax.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The target directory (output/target), owned by the build user.
    #[arg(long, value_name = "DIR")]
    pub target_dir: PathBuf,
    /// Where the images go (Buildroot's output/images).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Buildroot's top directory, which table paths are relative to.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub topdir: PathBuf,
    /// Worker threads [default: number of cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print the equivalent `rootforge build` command and exit.
    #[arg(long)]
    pub print: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

impl BuildrootArgs {
    /// The plan the configuration asks for.
    ///
    /// # Errors
    ///
    /// An unreadable configuration, or one rootforge cannot build.
    pub fn translate(&self, env: Env) -> Result<Translated> {
        let text = std::fs::read_to_string(&self.config)
            .with_context(|| format!("reading {}", self.config.display()))?;
        let mut t = plan(
            &Kconfig::parse(&text),
            &self.target_dir,
            &self.output,
            &self.topdir,
            env,
        )
        .with_context(|| self.config.display().to_string())?;
        if let Some(j) = self.jobs {
            anyhow::ensure!(j > 0, "--jobs must be at least 1");
            t.plan.jobs = j;
        }
        t.plan.quiet = self.quiet;
        Ok(t)
    }
}

/// Runs `rootforge buildroot`.
///
/// # Errors
///
/// What [`BuildrootArgs::translate`] or the build fails with.
pub fn run(args: &BuildrootArgs) -> Result<()> {
    let t = args.translate(Env::current()?)?;
    if args.print {
        let words: Vec<String> = ["rootforge".to_owned(), "build".to_owned()]
            .into_iter()
            .chain(t.plan.to_args())
            .map(|w| shell_quote(&w))
            .collect();
        println!("{}", words.join(" "));
        return Ok(());
    }
    for what in &t.ignored {
        eprintln!("warning: {}: ignored {what}", args.config.display());
    }
    crate::build::run(&t.plan)
}

/// A word as a POSIX shell reads it back.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,^+@".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    /// `--print`'s command parses back to the same plan.
    #[test]
    fn printed_command_gives_the_same_plan() {
        let env = Env {
            source_date_epoch: Some(1_700_000_000),
            cores: 2,
        };
        let configs = [
            "BR2_TARGET_ROOTFS_CPIO=y\nBR2_TARGET_ROOTFS_CPIO_GZIP=y\nBR2_TARGET_ROOTFS_CPIO_UIMAGE=y\nBR2_ARCH=\"aarch64\"\n",
            "BR2_TARGET_ROOTFS_EXT2=y\nBR2_TARGET_ROOTFS_EXT2_4=y\nBR2_TARGET_ROOTFS_EXT2_SIZE=\"128M\"\nBR2_TARGET_ROOTFS_EXT2_LABEL=\"my root\"\nBR2_TARGET_ROOTFS_EXT2_INODES=\"9000\"\nBR2_TARGET_ROOTFS_EXT2_RESBLKS=\"3\"\nBR2_TARGET_ROOTFS_EXT2_XZ=y\n",
            "BR2_TARGET_ROOTFS_SQUASHFS=y\nBR2_TARGET_ROOTFS_SQUASHFS4_XZ=y\nBR2_TARGET_ROOTFS_SQUASHFS_BS_64K=y\nBR2_TARGET_ROOTFS_SQUASHFS_EXTREME_COMP=y\nBR2_TARGET_ROOTFS_TAR=y\nBR2_TARGET_ROOTFS_TAR_ZSTD=y\nBR2_TARGET_ROOTFS_ISO9660=y\nBR2_TARGET_ROOTFS_ISO9660_TRANSPARENT_COMPRESSION=y\nBR2_INIT_SYSTEMD=y\nBR2_INIT_SYSTEMD_VAR_FACTORY=y\nBR2_INIT_SYSTEMD_POPULATE_TMPFILES=y\nBR2_ROOTFS_DEVICE_TABLE=\"system/device_table.txt\"\nBR2_ROOTFS_USERS_TABLES=\"a b\"\n",
        ];
        for text in configs {
            let t = plan(
                &Kconfig::parse(text),
                "/t arget".as_ref(),
                "out".as_ref(),
                "/top".as_ref(),
                env,
            )
            .unwrap();
            let argv = ["rootforge".to_owned(), "build".to_owned()]
                .into_iter()
                .chain(t.plan.to_args());
            let Command::Build(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not build");
            };
            assert_eq!(args.plan(env).unwrap(), t.plan, "{text}");
        }
    }
}
