//! Real-image check, run only when `OCI_SLIM_NGINX_ROOT` names an unpacked Debian root with
//! nginx-light, e.g. made with
//! `mmdebstrap --variant=minbase --include=nginx-light bookworm root.tar && tar -C root -xf root.tar`
//! (unpack it as the user running the test: the staged root of a real run belongs to that user).

use std::path::PathBuf;
use std::time::Duration;

use oci_slim::image::ExecSpec;
use oci_slim::sandbox::{self, ExitInfo, RunSpec};

#[test]
fn nginx_serves_and_switches_to_www_data() {
    let Some(root) = std::env::var_os("OCI_SLIM_NGINX_ROOT").map(PathBuf::from) else {
        eprintln!("SKIP: set OCI_SLIM_NGINX_ROOT to an unpacked root with nginx-light");
        return;
    };
    if let Err(e) = sandbox::check_support() {
        eprintln!("SKIP: user namespaces unavailable: {e}");
        return;
    }
    let scratch = tempfile::Builder::new()
        .prefix("oci-slim-ngx-")
        .tempdir_in(root.parent().unwrap())
        .unwrap();
    let spec = RunSpec {
        lower: root.clone(),
        exec: ExecSpec {
            entrypoint: vec!["/usr/sbin/nginx".into()],
            cmd: vec!["-g".into(), "daemon off;".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            workdir: String::new(),
            user: String::new(),
        },
        exec_cmds: vec![vec!["cat".into(), "/etc/os-release".into()]],
        http_probes: vec![],
        tcp_ports: vec![80],
        probe_cmds: vec![],
        wait: Duration::from_millis(300),
        ready_timeout: Duration::from_secs(20),
        timeout: Duration::from_secs(60),
        scratch_parent: scratch.path().to_path_buf(),
    };
    let o = sandbox::run(&spec).expect("run");
    eprintln!("{:?} {:?} {:?}", o.id_mode, o.exit, o.probes);
    eprintln!("stderr: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.exit, ExitInfo::StoppedByUs);
    assert!(o.probes[0].ok, "{:?}", o.probes);
    assert_eq!(o.exec_results[0].1, 0);
    let has = |p: &str| o.observations.iter().any(|x| x.path == p.as_bytes());
    for p in [
        "/usr/sbin/nginx",
        "/etc/nginx/nginx.conf",
        "/etc/passwd",
        "/etc/os-release",
    ] {
        assert!(has(p), "missing {p}");
    }
    // workers run as www-data (uid 33) unless only one id could be mapped
    let exes: std::collections::BTreeSet<_> =
        o.observations.iter().map(|x| x.exe.clone()).collect();
    eprintln!("exes: {exes:?}; {} observations", o.observations.len());
    assert!(
        std::fs::read_dir(scratch.path()).unwrap().next().is_none(),
        "scratch left"
    );
}
