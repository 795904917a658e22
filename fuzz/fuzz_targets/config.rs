//! Config text → parser: no panic on any input. The first byte picks the
//! syntax: `k` a Buildroot `.config` (then planned, and the plan's
//! arguments parsed as the `rootforge build` command line `rootforge
//! buildroot` runs), anything else the `--config` TOML file (then its
//! format, arch and compression names checked as `build` does).
#![no_main]

use std::path::Path;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use rootforge::buildroot::{Kconfig, plan};
use rootforge::cli::{Cli, Config};
use rootforge::compress::Compression;
use rootforge::image::Format;
use rootforge::uimage::UimageArch;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if which == b'k' {
        let k = Kconfig::parse(text);
        let Ok(plan) = plan(&k, Path::new("target"), Path::new("out"), Path::new("/br")) else {
            return;
        };
        let argv = ["rootforge".into(), "build".into()]
            .into_iter()
            .chain(plan.args);
        let _ = Cli::try_parse_from(argv);
        return;
    }
    let Ok(cfg) = Config::parse(text, Path::new("/etc/images.toml")) else {
        return;
    };
    for name in cfg.formats.iter().flatten().chain(cfg.images.keys()) {
        let _ = name.parse::<Format>();
    }
    let _ = cfg.arch.as_deref().map(str::parse::<UimageArch>);
    let _ = cfg.compress.as_deref().map(str::parse::<Compression>);
});
