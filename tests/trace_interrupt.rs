//! SIGINT to oci-slim during a run stops the sandbox, removes the scratch dir and reports
//! `Interrupted`. A separate test binary: the signal goes to the whole process.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use oci_slim::image::ExecSpec;
use oci_slim::sandbox::{self, RunSpec, SandboxError};

#[test]
fn sigint_stops_the_sandbox() {
    if let Err(e) = sandbox::check_support() {
        eprintln!("SKIP: user namespaces unavailable: {e}");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix("oci-slim-test-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let lower = d.path().join("lower");
    std::fs::create_dir_all(lower.join("bin")).unwrap();
    std::fs::create_dir_all(lower.join("data")).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tracees/multi.c");
    let st = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(lower.join("bin/multi"))
        .arg(&src)
        .arg("-lpthread")
        .status()
        .unwrap();
    assert!(st.success());
    let marker = format!("oci-slim-int-{}", std::process::id());
    let spec = RunSpec {
        lower: lower.clone(),
        exec: ExecSpec {
            entrypoint: vec!["/bin/multi".into(), "sleeper".into(), marker.clone()],
            ..Default::default()
        },
        exec_cmds: vec![],
        http_probes: vec![],
        tcp_ports: vec![],
        probe_cmds: vec![],
        wait: Duration::ZERO,
        ready_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(30),
        scratch_parent: d.path().to_path_buf(),
        limits: Default::default(),
        owners: vec![],
        stop_signal: None,
    };
    let killer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(1500));
        nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGINT).unwrap();
    });
    let r = sandbox::run(&spec);
    killer.join().unwrap();
    // Interrupted, not run to its 30 s timeout.
    assert!(matches!(r, Err(SandboxError::Interrupted)), "{r:?}");
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("lower")]);
    let alive = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| c.split(|&b| b == 0).any(|a| a == marker.as_bytes()))
        .count();
    assert_eq!(alive, 0);
}
