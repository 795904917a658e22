//! cpio's option group and registry functions.

use clap::Args;
use rootforge_common::Encoder;
use serde::Deserialize;

use super::{EncoderContext, Format, FormatOptions, merge_fields, push_flag, push_opt};

/// cpio header formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CpioFormatArg {
    /// `070701`, what the kernel build writes.
    Newc,
    /// `070702`, with a checksum per file.
    Crc,
}

/// `--cpio-*` and `[images.cpio]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// cpio header format [default: newc].
    #[arg(
        id = "cpio-format",
        long = "cpio-format",
        value_enum,
        value_name = "FMT",
        help_heading = "cpio"
    )]
    pub format: Option<CpioFormatArg>,
    /// Add Buildroot's /init and /dev/console to the cpio image only.
    #[arg(id = "cpio-init", long = "cpio-init", help_heading = "cpio")]
    #[serde(default)]
    pub init: bool,
    /// Also write rootfs.cpio.uboot, the U-Boot legacy ramdisk image.
    #[arg(id = "cpio-uimage", long = "cpio-uimage", help_heading = "cpio")]
    #[serde(default)]
    pub uimage: bool,
}

merge_fields!(Options { format } flags { init, uimage } lists {});

impl Options {
    pub(super) fn to_args(&self, out: &mut Vec<String>) {
        push_opt(
            out,
            "--cpio-format",
            self.format
                .map(|f| match f {
                    CpioFormatArg::Newc => "newc",
                    CpioFormatArg::Crc => "crc",
                })
                .as_ref(),
        );
        push_flag(out, "--cpio-init", self.init);
        push_flag(out, "--cpio-uimage", self.uimage);
    }
}

pub(super) fn encoder(
    _: Format,
    opts: &FormatOptions,
    _: &EncoderContext,
) -> anyhow::Result<Box<dyn Encoder>> {
    Ok(Box::new(rootforge_cpio::CpioEncoder {
        format: match opts.cpio.format {
            Some(CpioFormatArg::Crc) => rootforge_cpio::CpioFormat::Crc,
            Some(CpioFormatArg::Newc) | None => rootforge_cpio::CpioFormat::Newc,
        },
    }))
}
