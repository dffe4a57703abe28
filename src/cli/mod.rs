//! Command line: clap arguments, validation, and the only place that prints.

mod args;
mod commands;
mod progress;

use clap::Parser;
use std::process::ExitCode;

pub use args::Cli;
pub use commands::parse_command;

/// Parse arguments, run the command, print the error chain on one line with a hint.
pub fn main() -> ExitCode {
    if let Some(code) = crate::sandbox::helper_main() {
        return code;
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        None => commands::slim_cmd(&cli.slim, &cli.global),
        Some(args::Command::Flatten(a)) => commands::flatten_cmd(a, &cli.global),
        Some(args::Command::Inspect(a)) => commands::inspect_cmd(a, &cli.global),
        Some(args::Command::Trace(a)) => commands::trace_cmd(a, &cli.global),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!(
                "error: {}",
                crate::report::sanitize(&format!("{e:#}"), 4000)
            );
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
