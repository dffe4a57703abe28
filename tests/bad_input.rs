//! The bad-input corpus: `testdata/bad/make-corpus.py` writes hostile and broken archives and
//! their expectations (`cases.json`); every case runs the built binary and must end with its
//! expected outcome:
//!
//! * `error`: exit code 1 (no panic), stderr is one `error:` line plus optional `hint:` lines,
//!   no output file;
//! * `ok`: exit 0 and an output file (the documented safe handling);
//!
//! and, for both: a victim directory beside the output (and at the fixed path the hostile layers
//! aim at) unchanged, TMPDIR empty afterwards, peak RSS under 200 MB (`/usr/bin/time`).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_oci-slim");
/// The fixed host path hostile layers and configs aim at (see make-corpus.py).
const VICTIM: &str = "/tmp/oci-slim-victim";
const MAX_RSS_KB: u64 = 200 * 1024;

#[derive(Debug)]
struct Case {
    name: String,
    file: String,
    cmd: String,
    args: Vec<String>,
    expect: String,
    note: String,
}

fn generate(out: &Path) -> Vec<Case> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bad/make-corpus.py");
    let st = Command::new("python3")
        .arg(&script)
        .arg(out)
        .status()
        .expect("python3 runs");
    assert!(st.success(), "make-corpus.py failed");
    let text = std::fs::read_to_string(out.join("cases.json")).expect("cases.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("cases.json is JSON");
    let s = |c: &serde_json::Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    v.as_array()
        .expect("a list of cases")
        .iter()
        .map(|c| Case {
            name: s(c, "name"),
            file: s(c, "file"),
            cmd: s(c, "cmd"),
            args: c["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            expect: s(c, "expect"),
            note: s(c, "note"),
        })
        .collect()
}

/// Path → (mode, size, mtime, content) of every file under `dir`, symlinks not followed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).expect("stat");
        let content = if m.is_file() {
            std::fs::read(&d).expect("read")
        } else {
            Vec::new()
        };
        out.insert(d.clone(), (m.mode(), m.len(), m.mtime(), content));
        if m.is_dir() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                stack.push(e.expect("dir entry").path());
            }
        }
    }
    out
}

fn make_victim(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("victim dir");
    std::fs::write(dir.join("keep"), b"precious\n").expect("victim file");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    max_rss_kb: Option<u64>,
}

fn run_case(corpus: &Path, case: &Case, work: &Path, tmpdir: &Path) -> Outcome {
    let input = corpus.join(&case.file);
    let out = work.join("out.tar");
    let rss_file = work.join("rss");
    let mut c = Command::new("/usr/bin/time");
    c.arg("-q")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(BIN);
    if case.cmd == "flatten" {
        c.arg("flatten").arg(&input).arg(&out);
    } else {
        c.arg(&input).arg(&out).args(&case.args);
    }
    c.arg("--quiet");
    c.env("TMPDIR", tmpdir);
    let o = c.output().expect("run oci-slim under /usr/bin/time");
    let max_rss_kb = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    Outcome {
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        max_rss_kb,
    }
}

/// Problems with one case's outcome, empty when it behaved.
fn check(case: &Case, o: &Outcome, out_exists: bool, tmp_left: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    if o.stderr.contains("panicked") || o.stderr.contains("RUST_BACKTRACE") {
        bad.push(format!("panicked: {}", o.stderr.trim()));
    }
    match case.expect.as_str() {
        "error" => {
            if o.code != Some(1) {
                bad.push(format!("expected exit 1, got {:?}", o.code));
            }
            let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.is_empty()).collect();
            let first_ok = lines.first().is_some_and(|l| l.starts_with("error: "));
            let rest_ok = lines.iter().skip(1).all(|l| l.starts_with("hint:"));
            if !first_ok || !rest_ok {
                bad.push(format!(
                    "stderr is not one `error:` line plus `hint:` lines: {:?}",
                    o.stderr
                ));
            }
            if out_exists {
                bad.push("an output file was written on error".into());
            }
        }
        "ok" => {
            if o.code != Some(0) {
                bad.push(format!("expected exit 0, got {:?}: {}", o.code, o.stderr));
            }
            if !out_exists {
                bad.push("no output file".into());
            }
        }
        other => bad.push(format!("unknown expectation `{other}`")),
    }
    if !tmp_left.is_empty() {
        bad.push(format!("TMPDIR not empty afterwards: {tmp_left:?}"));
    }
    match o.max_rss_kb {
        Some(kb) if kb < MAX_RSS_KB => {}
        Some(kb) => bad.push(format!("peak RSS {kb} kB over {MAX_RSS_KB} kB")),
        None => bad.push("no RSS measurement".into()),
    }
    bad
}

#[test]
fn bad_input_corpus() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("SKIP: /usr/bin/time is not installed (apt-get install time)");
        return;
    }
    let root = tempfile::Builder::new()
        .prefix("oci-slim-bad-")
        .tempdir()
        .expect("temp dir");
    let corpus = root.path().join("corpus");
    let cases = generate(&corpus);
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    assert!(
        cases.iter().any(|c| c.expect == "error") && cases.iter().any(|c| c.expect == "ok"),
        "both expectations occur"
    );

    // The fixed victim path is shared by parallel test binaries at most by this one test.
    let fixed_victim = Path::new(VICTIM);
    make_victim(fixed_victim);
    let fixed_before = snapshot(fixed_victim);

    let mut failures = Vec::new();
    for case in &cases {
        let work = root.path().join("work").join(&case.name);
        let victim = work.join("victim");
        let tmpdir = root.path().join("tmp").join(&case.name);
        make_victim(&victim);
        std::fs::create_dir_all(&tmpdir).expect("tmpdir");
        let before = snapshot(&victim);

        let o = run_case(&corpus, case, &work, &tmpdir);

        let out_exists = work.join("out.tar").exists();
        let tmp_left: Vec<String> = std::fs::read_dir(&tmpdir)
            .expect("read tmpdir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        let mut bad = check(case, &o, out_exists, &tmp_left);
        if snapshot(&victim) != before {
            bad.push("the victim directory beside the output changed".into());
        }
        if snapshot(fixed_victim) != fixed_before {
            bad.push(format!("{VICTIM} changed"));
        }
        // Nothing but the output (and the victim) may appear beside the output.
        for e in std::fs::read_dir(&work).expect("read work dir").flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if !["out.tar", "victim", "rss"].contains(&n.as_str()) {
                bad.push(format!("stray file `{n}` beside the output"));
            }
        }
        eprintln!(
            "{:<40} {:<5} exit {:?} rss {:?} kB: {}",
            case.name,
            case.expect,
            o.code,
            o.max_rss_kb,
            o.stderr.lines().next().unwrap_or("")
        );
        if !bad.is_empty() {
            failures.push(format!("{} ({}): {}", case.name, case.note, bad.join("; ")));
        }
    }
    let _ = std::fs::remove_dir_all(fixed_victim);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn checks_can_fail() {
    // The checker itself must reject a panic, a multi-line error, a written output and leftovers.
    let case = Case {
        name: "x".into(),
        file: "x.tar".into(),
        cmd: "flatten".into(),
        args: vec![],
        expect: "error".into(),
        note: String::new(),
    };
    let panic = Outcome {
        code: Some(101),
        stderr: "thread 'main' panicked at src/x.rs:1:1\n".into(),
        max_rss_kb: Some(1000),
    };
    assert!(check(&case, &panic, false, &[]).len() >= 2);
    let two_lines = Outcome {
        code: Some(1),
        stderr: "error: a\nmore text\n".into(),
        max_rss_kb: Some(1000),
    };
    assert_eq!(check(&case, &two_lines, false, &[]).len(), 1);
    let good = Outcome {
        code: Some(1),
        stderr: "error: a\nhint: b\n".into(),
        max_rss_kb: Some(1000),
    };
    assert!(check(&case, &good, false, &[]).is_empty());
    assert_eq!(check(&case, &good, true, &[]).len(), 1);
    assert_eq!(check(&case, &good, false, &["x".into()]).len(), 1);
    let fat = Outcome {
        max_rss_kb: Some(MAX_RSS_KB + 1),
        ..good
    };
    assert_eq!(check(&case, &fat, false, &[]).len(), 1);
}
