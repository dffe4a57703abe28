//! The JSON report and the human summary. Names from images are untrusted: everything shown on
//! a terminal goes through [`sanitize`].

mod summary;

pub use summary::{human_bytes, summary};

use crate::select::Reason;
use serde::Serialize;
use std::time::{Duration, Instant};

/// One side (input or output) of a slimming run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageSide {
    pub path: String,
    pub name: Option<String>,
    pub format: Option<String>,
    /// Digest of the image config (the image ID docker shows).
    pub config_digest: Option<String>,
    /// Digest of the image manifest, when known.
    pub manifest_digest: Option<String>,
    /// Size of the archive file on disk.
    pub archive_bytes: u64,
    /// Number of entries (files, dirs, links, ...) in the flattened tree.
    pub entries: usize,
    /// Number of regular files.
    pub files: usize,
    /// Bytes of regular files (uncompressed).
    pub file_bytes: u64,
}

/// A kept path and why.
#[derive(Debug, Clone, Serialize)]
pub struct KeptPath {
    pub path: String,
    /// `file`, `dir`, `symlink`, `char`, `block`, `fifo`.
    pub kind: &'static str,
    pub size: u64,
    pub reasons: Vec<Reason>,
}

/// Wall time, CPU time and peak RSS of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTiming {
    pub phase: String,
    pub wall_ms: u64,
    pub cpu_ms: u64,
    /// Peak RSS of the process at the end of the phase, in KiB (monotonic over the run).
    pub peak_rss_kib: u64,
}

/// Records phases as they end.
#[derive(Debug)]
pub struct Phases {
    started: Instant,
    current: Option<(String, Instant, Duration)>,
    pub done: Vec<PhaseTiming>,
}

impl Default for Phases {
    fn default() -> Self {
        Self::new()
    }
}

impl Phases {
    pub fn new() -> Self {
        Phases {
            started: Instant::now(),
            current: None,
            done: Vec::new(),
        }
    }

    /// End the current phase (if any) and start `name`.
    pub fn start(&mut self, name: &str) {
        self.end();
        self.current = Some((name.to_owned(), Instant::now(), cpu_time()));
    }

    /// End the current phase.
    pub fn end(&mut self) {
        if let Some((name, t0, cpu0)) = self.current.take() {
            self.done.push(PhaseTiming {
                phase: name,
                wall_ms: t0.elapsed().as_millis() as u64,
                cpu_ms: cpu_time().saturating_sub(cpu0).as_millis() as u64,
                peak_rss_kib: peak_rss_kib(),
            });
        }
    }

    pub fn total(&self) -> Duration {
        self.started.elapsed()
    }
}

/// User + system CPU time of this process and its waited-for children.
fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let mut total = Duration::ZERO;
    for who in [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN] {
        if let Ok(u) = getrusage(who) {
            for tv in [u.user_time(), u.system_time()] {
                total +=
                    Duration::from_micros(tv.tv_sec() as u64 * 1_000_000 + tv.tv_usec() as u64);
            }
        }
    }
    total
}

/// Peak resident set size of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss() as u64)
        .unwrap_or(0)
}

/// Result of one probe, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// What the traced run did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    pub traced: bool,
    /// `exited 0`, `signaled 15`, `stopped by oci-slim`, `timed out`.
    pub exit: Option<String>,
    pub id_mode: Option<String>,
    pub probes: Vec<ProbeReport>,
    pub exec_results: Vec<(Vec<String>, i32)>,
    pub observations: usize,
    pub duration_ms: u64,
    /// Last lines of the app's stderr, for diagnosis.
    pub stderr_tail: String,
}

/// One verify round.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyRound {
    pub round: usize,
    pub agreed: bool,
    pub differences: Vec<String>,
    pub added: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub verified: bool,
    pub rounds: Vec<VerifyRound>,
}

/// The JSON report of a slimming run (`--report FILE`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub input: ImageSide,
    pub output: ImageSide,
    pub run: RunReport,
    pub verify: Option<VerifyReport>,
    pub warnings: Vec<String>,
    pub timings: Vec<PhaseTiming>,
    pub total_ms: u64,
    pub kept: Vec<KeptPath>,
}

impl Report {
    pub fn new(input: ImageSide) -> Self {
        Report {
            tool: "oci-slim",
            version: env!("CARGO_PKG_VERSION"),
            input,
            output: ImageSide::default(),
            run: RunReport::default(),
            verify: None,
            warnings: Vec::new(),
            timings: Vec::new(),
            total_ms: 0,
            kept: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

/// Make an untrusted string safe to print on a terminal: control characters (escape
/// sequences included) become `\xNN` or `\u{NN}` escapes, and it is cut at `max` chars.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_terminal_controls() {
        assert_eq!(sanitize("a\x1b[2Jb", 100), "a\\u{1b}[2Jb");
        assert_eq!(sanitize("line\nnext", 100), "line\\nnext");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize("/usr/lib/libc.so.6", 100), "/usr/lib/libc.so.6");
    }

    #[test]
    fn phases_record_in_order() {
        let mut p = Phases::new();
        p.start("read");
        p.start("write");
        p.end();
        p.end();
        let names: Vec<_> = p.done.iter().map(|t| t.phase.as_str()).collect();
        assert_eq!(names, ["read", "write"]);
        assert!(p.done[1].peak_rss_kib > 0);
    }
}
