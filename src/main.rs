use std::process::ExitCode;

use clap::Parser;
use rootforge::cli::{self, Cli};

fn main() -> ExitCode {
    // Installed (or linked) as `genimage`, rootforge is genimage.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let as_genimage = std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == "genimage");
    let result = if as_genimage {
        cli::genimage::run(&cli::GenimageCli::parse().args)
    } else {
        cli::run(Cli::parse())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
