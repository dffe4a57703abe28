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
            while crate::sys::cleanup::interrupted() {
                // The cleanup thread removes temporary files and exits with 128 + signal;
                // this error is only a consequence of that removal.
                std::thread::park();
            }
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprint!("{}", error_text(&e));
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

/// `error: outer: inner: root cause` on one line, then each `hint:` line. Messages that repeat
/// their source's text are not repeated; untrusted text is sanitized.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        let mut head = String::new();
        for line in msg.lines() {
            let line = line.trim();
            if line.starts_with("hint:") {
                if !hints.iter().any(|h| h == line) {
                    hints.push(line.to_owned());
                }
            } else if !line.is_empty() {
                if !head.is_empty() {
                    head.push(' ');
                }
                head.push_str(line);
            }
        }
        if !head.is_empty() && !parts.iter().any(|p| p.contains(&head)) {
            parts.push(head);
        }
    }
    let mut out = format!(
        "error: {}\n",
        crate::report::sanitize(&parts.join(": "), 4000)
    );
    for h in hints {
        out.push_str(&crate::report::sanitize(&h, 1000));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_one_line_then_hints() {
        let inner = anyhow::anyhow!("EPERM: not permitted");
        let e = inner
            .context("attaching failed: EPERM: not permitted\nhint: check ptrace_scope")
            .context("running the image");
        assert_eq!(
            error_text(&e),
            "error: running the image: attaching failed: EPERM: not permitted\nhint: check ptrace_scope\n"
        );
        let e = anyhow::anyhow!("bad \x1b[31m name");
        assert_eq!(error_text(&e), "error: bad \\u{1b}[31m name\n");
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        use super::args::parse_size;
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("64KB"), Ok(64 << 10));
        for bad in ["", "G", "-1G", "0", "lots", "1X", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_split_like_a_shell() {
        let w = |s: &str| parse_command(s).expect(s);
        assert_eq!(
            w("redis-cli -p 6379 ping"),
            ["redis-cli", "-p", "6379", "ping"]
        );
        assert_eq!(
            w("sh -c 'echo hi; exit 3'"),
            ["sh", "-c", "echo hi; exit 3"]
        );
        assert_eq!(
            w(r#"psql -c "select 'a b'" -t"#),
            ["psql", "-c", "select 'a b'", "-t"]
        );
        assert_eq!(w(r#"a\ b "x\"y" 'it''s' """#), ["a b", "x\"y", "its", ""]);
        assert_eq!(w(r#"["/bin/sh", "-c", "a b"]"#), ["/bin/sh", "-c", "a b"]);
        assert!(w("   ").is_empty());
        for bad in ["echo 'open", "echo \"open", "trailing\\"] {
            assert!(parse_command(bad).is_err(), "{bad}");
        }
    }
}
