//! Command line: clap arguments, validation, and the only place that prints.
use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
