//! `rootforge genimage` (and rootforge run as `genimage`): genimage's
//! command line, turned into a [`crate::genimage::Request`].

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::genimage::{Request, run as run_request};

/// genimage's options, spelled as genimage spells them.
#[derive(Debug, Clone, Default, Args)]
#[command(
    after_help = "Builds hdimage disks (MBR, GPT, hybrid) from input files and the configuration's\nother images, and ext2/3/4, squashfs, cpio, tar and iso images from the root path.\nUnset paths come from the config { } section, then GENIMAGE_<OPTION>, then\ngenimage's defaults. Run as `genimage`, rootforge takes these options directly."
)]
pub struct GenimageArgs {
    /// The configuration file [default: genimage.cfg].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The root filesystem tree images are built from [default: root].
    #[arg(long, value_name = "DIR")]
    pub rootpath: Option<PathBuf>,
    /// Temporary files (rootforge needs none) [default: tmp].
    #[arg(long, value_name = "DIR")]
    pub tmppath: Option<PathBuf>,
    /// Where partition images not defined in the configuration are found
    /// [default: input].
    #[arg(long, value_name = "DIR")]
    pub inputpath: Option<PathBuf>,
    /// Where the images are written [default: images].
    #[arg(long, value_name = "DIR")]
    pub outputpath: Option<PathBuf>,
    /// Colon-separated directories searched by include() before the
    /// current one.
    #[arg(long, value_name = "DIRS")]
    pub includepath: Option<String>,
    /// 0: errors only, 1: one line per image [default: 1].
    #[arg(long, value_name = "N")]
    pub loglevel: Option<u32>,
}

impl GenimageArgs {
    /// The request these flags make.
    #[must_use]
    pub fn request(&self) -> Request {
        Request {
            config: self.config.clone(),
            rootpath: self.rootpath.clone(),
            tmppath: self.tmppath.clone(),
            inputpath: self.inputpath.clone(),
            outputpath: self.outputpath.clone(),
            includepath: self.includepath.clone(),
            loglevel: self.loglevel,
        }
    }
}

/// genimage's command line when rootforge runs under the name `genimage`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "genimage",
    version,
    about = "genimage, as rootforge builds its images: natively, with no external tools",
    max_term_width = 100
)]
pub struct GenimageCli {
    #[command(flatten)]
    pub args: GenimageArgs,
}

/// Runs `rootforge genimage`.
///
/// # Errors
///
/// What the configuration or the build fails with.
pub fn run(args: &GenimageArgs) -> Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let sde = crate::plan::Env::current()?.source_date_epoch;
    run_request(&args.request(), &env, sde)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn genimage_command_line_is_consistent_and_takes_genimage_spellings() {
        GenimageCli::command().debug_assert();
        let cli = GenimageCli::try_parse_from([
            "genimage",
            "--rootpath",
            "/t",
            "--tmppath=/tmp/g",
            "--inputpath",
            "in",
            "--outputpath",
            "out",
            "--config",
            "b.cfg",
            "--includepath",
            "a:b",
            "--loglevel",
            "2",
        ])
        .unwrap();
        let r = cli.args.request();
        assert_eq!(r.rootpath.as_deref(), Some("/t".as_ref()));
        assert_eq!(r.tmppath.as_deref(), Some("/tmp/g".as_ref()));
        assert_eq!(r.config.as_deref(), Some("b.cfg".as_ref()));
        assert_eq!(r.includepath.as_deref(), Some("a:b"));
        assert_eq!(r.loglevel, Some(2));
    }
}
