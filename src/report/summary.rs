//! The human summary printed on stderr after a run.

use super::{sanitize, Report};
use std::fmt::Write;

/// `1.5 MB`-style sizes (decimal units, as image tools show them).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The multi-line summary printed on stderr: before → after, ratio, the largest kept files,
/// warnings, and hints for the options not used (`report_written`: `--report` was given).
pub fn summary(r: &Report, top: usize, report_written: bool) -> String {
    let mut s = String::new();
    let (i, o) = (&r.input, &r.output);
    let ratio = if o.file_bytes > 0 {
        i.file_bytes as f64 / o.file_bytes as f64
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "oci-slim: {} → {} of files ({:.1}x smaller), {} → {} files",
        human_bytes(i.file_bytes),
        human_bytes(o.file_bytes),
        ratio,
        i.files,
        o.files
    );
    let _ = writeln!(
        s,
        "  archive: {} → {} ({})",
        human_bytes(i.archive_bytes),
        human_bytes(o.archive_bytes),
        sanitize(&o.path, 200)
    );
    if r.run.traced {
        let probes: Vec<String> = r
            .run
            .probes
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    sanitize(&p.name, 80),
                    if p.ok { "ok" } else { "FAILED" }
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  run: {}, {} file accesses traced{}{}",
            r.run.exit.as_deref().unwrap_or("?"),
            r.run.observations,
            if probes.is_empty() {
                String::new()
            } else {
                format!(", probes: {}", probes.join(", "))
            },
            r.run
                .id_mode
                .as_deref()
                .map(|m| format!(", users: {m}"))
                .unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            s,
            "  run: not traced (--no-run): kept the static closure only"
        );
    }
    if let Some(v) = &r.verify {
        let _ = writeln!(
            s,
            "  verify: {} after {} round(s)",
            if v.verified {
                "the slim image behaves like the original"
            } else {
                "UNVERIFIED"
            },
            v.rounds.len()
        );
    }
    let mut largest: Vec<_> = r.kept.iter().filter(|k| k.kind == "file").collect();
    largest.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    if !largest.is_empty() {
        let _ = writeln!(s, "  largest kept files:");
        for k in largest.iter().take(top) {
            let why = k.reasons.first().map(reason_word).unwrap_or("");
            let _ = writeln!(
                s,
                "    {:>9}  {}  ({why})",
                human_bytes(k.size),
                sanitize(&k.path, 160)
            );
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {}", sanitize(w, 400));
    }
    let mut hints = Vec::new();
    if !report_written && (!r.warnings.is_empty() || r.verify.is_none()) {
        hints.push("`--report FILE` says why each file was kept");
    }
    if r.verify.is_none() {
        hints.push("`--verify` re-runs the slim image to check it");
    }
    if !hints.is_empty() {
        let _ = writeln!(s, "hint: {}", hints.join("; "));
    }
    s
}

fn reason_word(r: &crate::select::Reason) -> &'static str {
    use crate::select::Reason::*;
    match r {
        Traced { .. } => "traced",
        Entrypoint => "entrypoint",
        ElfNeeded { .. } => "library",
        ElfInterp { .. } => "ELF interpreter",
        Shebang { .. } => "script interpreter",
        Nss { .. } => "NSS",
        Data { .. } => "data",
        Include { .. } => "include",
        Package { .. } => "package",
        Exe { .. } => "exe",
        SymlinkHop { .. } => "symlink",
        WrittenDir => "written dir",
        Parent => "parent",
        Repair { .. } => "repair",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_table() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(9_900_000), "9.9 MB");
        assert_eq!(human_bytes(186_000_000_000), "186.0 GB");
    }

    #[test]
    fn hints_name_only_options_not_used() {
        let mut r = Report::new(Default::default());
        let hint = |r: &Report, written| {
            summary(r, 10, written)
                .lines()
                .find(|l| l.starts_with("hint:"))
                .map(str::to_owned)
        };
        let h = hint(&r, false).expect("a hint");
        assert!(h.contains("--report") && h.contains("--verify"), "{h}");
        let h = hint(&r, true).expect("a hint");
        assert!(!h.contains("--report") && h.contains("--verify"), "{h}");
        r.verify = Some(Default::default());
        assert_eq!(hint(&r, true), None);
        assert_eq!(hint(&r, false), None, "no warnings: nothing to explain");
        r.warnings.push("probe failed".into());
        assert!(hint(&r, false).is_some_and(|h| h.contains("--report") && !h.contains("--verify")));
    }
}
