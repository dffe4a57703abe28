//! Command line: clap arguments, validation, and the only place that prints.

mod args;

use clap::Parser;
use std::process::ExitCode;

pub use args::Cli;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = cli;
    ExitCode::SUCCESS
}
