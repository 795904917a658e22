use std::process::ExitCode;

use clap::Parser;
use rootforge::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => cli::build(*args),
        Command::Inspect { image } => cli::inspect(&image),
        Command::Buildroot(args) => cli::buildroot(&args),
        Command::Compare(args) => cli::compare(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
