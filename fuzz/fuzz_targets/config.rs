//! Config text → parser: no panic on any input. The first byte picks the
//! syntax: `k` a Buildroot `.config` (then planned, and the plan's
//! buildroot --print` prints parsed back to the same plan), anything else
//! the `--config` TOML file (then resolved into a plan).
#![no_main]

use std::path::Path;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use rootforge::buildroot::{Kconfig, plan};
use rootforge::cli::{Cli, Command, Config};
use rootforge::plan::{BuildPlan, Env, Layer};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let env = Env {
        source_date_epoch: None,
        cores: 2,
    };
    if which == b'k' {
        let k = Kconfig::parse(text);
        let Ok(t) = plan(
            &k,
            Path::new("target"),
            Path::new("out"),
            Path::new("/br"),
            env,
        ) else {
            return;
        };
        // The printed command parses back to the same plan.
        let argv = ["rootforge".to_owned(), "build".to_owned()]
            .into_iter()
            .chain(t.plan.to_args());
        let Command::Build(args) = Cli::try_parse_from(argv)
            .expect("printed command parses")
            .command
        else {
            panic!("printed command is not build");
        };
        assert_eq!(args.plan(env).expect("printed command resolves"), t.plan);
        return;
    }
    let Ok(cfg) = Config::parse(text, Path::new("/etc/images.toml")) else {
        return;
    };
    let cli = Layer {
        output: Some("out".into()),
        ..Layer::default()
    };
    let _ = BuildPlan::resolve(cli, cfg.layer(), env);
});
