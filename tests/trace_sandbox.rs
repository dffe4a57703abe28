//! Integration tests of `oci_slim::sandbox::run` with hand-made image roots.
//!
//! Each test builds a lower dir in a 0755 temp dir under /tmp with tiny C tracees compiled by `cc`
//! (static unless a test needs the dynamic loader). Tests that need user namespaces or ptrace
//! print why they skip when the kernel forbids them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oci_slim::image::ExecSpec;
use oci_slim::sandbox::{self, ExitInfo, RunOutcome, RunSpec};

fn tracee_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tracees")
        .join(format!("{name}.c"))
}

/// A temp dir readable by other users (tests may run as `tester`).
fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix("oci-slim-test-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn compile(name: &str, out: &Path, static_: bool, extra: &[&str]) {
    let mut c = Command::new("cc");
    if static_ {
        c.arg("-static");
    }
    let st = c
        .arg("-O1")
        .arg("-o")
        .arg(out)
        .arg(tracee_src(name))
        .args(extra)
        .status()
        .expect("cc runs");
    assert!(st.success(), "compiling {name}");
}

fn supported() -> bool {
    match sandbox::check_support() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIP: user namespaces unavailable: {e}");
            false
        }
    }
}

fn spec(lower: &Path, argv: &[&str]) -> RunSpec {
    RunSpec {
        lower: lower.to_path_buf(),
        exec: ExecSpec {
            entrypoint: argv.iter().map(|s| s.to_string()).collect(),
            cmd: vec![],
            env: vec!["PATH=/bin:/usr/bin".into()],
            workdir: String::new(),
            user: String::new(),
        },
        exec_cmds: vec![],
        http_probes: vec![],
        tcp_ports: vec![],
        probe_cmds: vec![],
        wait: Duration::from_millis(200),
        ready_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        scratch_parent: lower.parent().unwrap().to_path_buf(),
    }
}

fn paths(o: &RunOutcome) -> Vec<String> {
    o.observations
        .iter()
        .map(|x| String::from_utf8_lossy(&x.path).into_owned())
        .collect()
}

fn has_path(o: &RunOutcome, p: &str) -> bool {
    paths(o).iter().any(|x| x == p)
}

/// lower dir under `dir` with /bin/<name> compiled statically and a /data tree.
fn static_root(dir: &Path, name: &str) -> PathBuf {
    let lower = dir.join("lower");
    std::fs::create_dir_all(lower.join("bin")).unwrap();
    std::fs::create_dir_all(lower.join("data/sub")).unwrap();
    std::fs::write(lower.join("data/abs.txt"), "hello\n").unwrap();
    std::fs::write(lower.join("data/rel.txt"), "r").unwrap();
    std::fs::write(lower.join("data/sub/at.txt"), "a").unwrap();
    std::fs::write(lower.join("data/sub/fchdir.txt"), "f").unwrap();
    compile(name, &lower.join("bin").join(name), true, &[]);
    lower
}

#[test]
fn batch_exit_status_stdout_and_paths() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = static_root(d.path(), "batch");
    let o = sandbox::run(&spec(&lower, &["batch", "7"])).expect("run");
    eprintln!("{:#?}", paths(&o));
    assert_eq!(o.exit, ExitInfo::Exited(7));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "abs=hello\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "to-stderr\n");
    for p in [
        "/bin/batch",
        "/data/abs.txt",
        "/data/rel.txt",
        "/data/sub/at.txt",
        "/data/sub/fchdir.txt",
        "/data/new.txt",
    ] {
        assert!(has_path(&o, p), "missing {p}");
    }
    let new = o
        .observations
        .iter()
        .find(|x| x.path == b"/data/new.txt")
        .unwrap();
    assert!(new.write);
    let abs = o
        .observations
        .iter()
        .find(|x| x.path == b"/data/abs.txt")
        .unwrap();
    assert!(!abs.write);
    assert_eq!(abs.exe, "/bin/batch");
    // the lower dir is never modified, the scratch dir is gone
    assert!(!lower.join("data/new.txt").exists());
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("lower")]);
}
