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
        limits: Default::default(),
        owners: vec![],
        stop_signal: None,
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

/// Static root plus /bin/multi (the many-mode tracee).
fn multi_root(dir: &Path) -> PathBuf {
    let lower = static_root(dir, "batch");
    compile("multi", &lower.join("bin/multi"), true, &["-lpthread"]);
    lower
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nwww-data:x:33:\n";

/// A root with the host's dynamic loader, libc, libm, dash as /bin/sh, cat, /etc/passwd,
/// /etc/group and /etc/nsswitch.conf, plus /bin/dyn (dynamic tracee) and the static tracees.
fn dyn_root(dir: &Path) -> PathBuf {
    let lower = multi_root(dir);
    let libdir = lower.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&libdir).unwrap();
    std::fs::create_dir_all(lower.join("lib64")).unwrap();
    std::fs::create_dir_all(lower.join("etc")).unwrap();
    for lib in ["libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"] {
        std::fs::copy(
            Path::new("/lib/x86_64-linux-gnu").join(lib),
            libdir.join(lib),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        lower.join("lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    std::fs::copy("/bin/dash", lower.join("bin/sh")).unwrap();
    std::fs::copy("/bin/cat", lower.join("bin/cat")).unwrap();
    std::fs::write(lower.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(lower.join("etc/group"), GROUP).unwrap();
    std::fs::write(
        lower.join("etc/nsswitch.conf"),
        "passwd: files\ngroup: files\n",
    )
    .unwrap();
    compile("dyn", &lower.join("bin/dyn"), false, &[]);
    lower
}

#[test]
fn batch_exit_status_stdout_and_paths() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = static_root(d.path(), "batch");
    let mut s = spec(&lower, &["batch", "7"]);
    // exec commands of a batch job run after the app exited
    s.exec_cmds = vec![vec!["/bin/batch".into(), "9".into()]];
    let o = sandbox::run(&s).expect("run");
    assert_eq!(
        o.exec_results,
        vec![(vec!["/bin/batch".into(), "9".into()], 9)]
    );
    eprintln!("{:#?}", paths(&o));
    assert_eq!(o.exit, ExitInfo::Exited(7));
    // app output, then the exec command's output
    assert_eq!(String::from_utf8_lossy(&o.stdout), "abs=hello\nabs=hello\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "to-stderr\nto-stderr\n");
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

#[test]
fn exec_from_a_thread() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let o = sandbox::run(&spec(&lower, &["/bin/multi", "thread-exec"])).expect("run");
    assert_eq!(o.exit, ExitInfo::Exited(5), "{o:?}");
    let exec = o
        .observations
        .iter()
        .find(|x| x.syscall == "execve" && x.path == b"/bin/batch" && x.exe == "/bin/batch");
    assert!(exec.is_some(), "{:?}", paths(&o));
    assert!(has_path(&o, "/data/abs.txt"));
}

#[test]
fn vfork_then_exec() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let o = sandbox::run(&spec(&lower, &["multi", "vfork"])).expect("run");
    assert_eq!(o.exit, ExitInfo::Exited(15), "{o:?}");
    assert!(has_path(&o, "/data/sub/at.txt"), "{:?}", paths(&o));
    let by_batch = o
        .observations
        .iter()
        .any(|x| x.path == b"/data/rel.txt" && x.exe == "/bin/batch");
    assert!(by_batch);
}

#[test]
fn dynamic_getpwnam_and_dlopen() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = dyn_root(d.path());
    let o = sandbox::run(&spec(&lower, &["dyn", "www-data"])).expect("run");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "uid=33\ndlopen=ok\n");
    assert_eq!(o.exit, ExitInfo::Exited(0));
    for p in [
        "/bin/dyn",
        "/etc/passwd",
        "/etc/nsswitch.conf",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libm.so.6",
    ] {
        assert!(has_path(&o, p), "missing {p}: {:?}", paths(&o));
    }
}

#[test]
fn shebang_script_with_sh() {
    if !supported() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir();
    let lower = dyn_root(d.path());
    let script = lower.join("bin/script");
    std::fs::write(&script, "#!/bin/sh\ncat /data/abs.txt\nexit 4\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = sandbox::run(&spec(&lower, &["script"])).expect("run");
    assert_eq!(o.exit, ExitInfo::Exited(4));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\n");
    // the script is exec'd by name, the interpreter shows up as the new exe
    assert!(o
        .observations
        .iter()
        .any(|x| x.syscall == "execve" && x.path == b"/bin/script"));
    assert!(o.observations.iter().any(|x| x.exe == "/bin/sh"));
    assert!(o
        .observations
        .iter()
        .any(|x| x.exe == "/bin/cat" && x.path == b"/data/abs.txt"));
}

fn marker_processes(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| c.split(|&b| b == 0).any(|a| a == marker.as_bytes()))
        .count()
}

#[test]
fn daemon_double_fork_leaves_nothing() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let marker = format!("oci-slim-marker-{}", std::process::id());
    let o = sandbox::run(&spec(&lower, &["multi", "daemon", &marker])).expect("run");
    assert_eq!(o.exit, ExitInfo::Exited(0));
    assert!(o.duration < Duration::from_secs(20));
    assert!(has_path(&o, "/data/daemon-was-here"), "{:?}", paths(&o));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(marker_processes(&marker), 0, "a daemon survived");
}

#[test]
fn host_loopback_is_unreachable() {
    if !supported() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let d = tempdir();
    let lower = multi_root(d.path());
    let o = sandbox::run(&spec(&lower, &["multi", "connect", &port])).expect("run");
    assert_eq!(
        o.exit,
        ExitInfo::Exited(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the sandbox reached the host");
}

#[test]
fn writes_outside_the_root_do_not_reach_the_host() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let host_file = d.path().join("host-file");
    std::fs::write(&host_file, "original").unwrap();
    let target = host_file.to_str().unwrap();
    let o = sandbox::run(&spec(&lower, &["multi", "write", target])).expect("run");
    assert_eq!(o.exit, ExitInfo::Exited(0));
    assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "original");
    let w = o
        .observations
        .iter()
        .find(|x| x.path == target.as_bytes())
        .expect("write observed");
    assert!(w.write);
    assert!(!lower.join(target.trim_start_matches('/')).exists());
}

#[test]
fn fork_bomb_is_contained() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let mut s = spec(&lower, &["multi", "forkbomb"]);
    s.timeout = Duration::from_secs(15);
    let o = sandbox::run(&s).expect("run");
    assert_ne!(o.exit, ExitInfo::Exited(0));
    assert_eq!(marker_processes("forkbomb"), 0);
}

#[test]
fn server_probes_exec_cmds_and_stop() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let port: u16 = 18000 + (std::process::id() % 1000) as u16;
    let mut s = spec(&lower, &["multi", "server", &port.to_string()]);
    s.tcp_ports = vec![port];
    s.http_probes = vec![
        sandbox::HttpProbe {
            port,
            path: "/health".into(),
        },
        sandbox::HttpProbe {
            port,
            path: "/missing".into(),
        },
    ];
    s.probe_cmds = vec!["true".into(), "exit 3".into()];
    s.exec_cmds = vec![vec!["batch".into(), "3".into()]];
    let o = sandbox::run(&s).expect("run");
    eprintln!("{:#?}", o.probes);
    assert_eq!(o.exit, ExitInfo::StoppedByUs);
    assert_eq!(o.probes.len(), 5);
    assert!(o.probes[0].ok, "{:?}", o.probes[0]);
    assert!(o.probes[0].detail.contains("200"));
    assert!(o.probes[1].ok);
    assert!(!o.probes[2].ok);
    assert!(o.probes[2].detail.contains("404"));
    assert!(o.probes[3].ok, "{:?}", o.probes[3]);
    assert!(!o.probes[4].ok);
    assert_eq!(o.exec_results, vec![(vec!["batch".into(), "3".into()], 3)]);
    assert!(o
        .observations
        .iter()
        .any(|x| x.path == b"/data/abs.txt" && x.exe == "/bin/multi"));
    assert!(o
        .observations
        .iter()
        .any(|x| x.path == b"/data/new.txt" && x.exe == "/bin/batch"));
}

#[test]
fn a_job_that_listens_is_probed_like_a_server() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let port: u16 = 18000 + (std::process::id() % 1000) as u16 + 1;
    // No exposed ports, no probes: a batch job by configuration, a server in fact.
    let mut s = spec(&lower, &["multi", "server", &port.to_string()]);
    s.timeout = Duration::from_secs(60);
    let o = sandbox::run(&s).expect("run");
    // Stopped by us after the probe, not timed out (the timeout gives `TimedOut`).
    assert_eq!(o.exit, ExitInfo::StoppedByUs, "{:?}", o.warnings);
    assert_eq!(o.probes.len(), 1, "{:?}", o.probes);
    assert!(
        o.probes[0].ok && o.probes[0].detail.contains("200"),
        "{:?}",
        o.probes
    );
    assert!(
        o.warnings
            .iter()
            .any(|w| w.contains(&format!("listened on tcp {port}"))),
        "{:?}",
        o.warnings
    );
    // The probe made the server read its file.
    assert!(o.observations.iter().any(|x| x.path == b"/data/abs.txt"));
}

#[test]
fn servers_are_stopped_with_the_image_stop_signal() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = dyn_root(d.path());
    // Reads a file only when SIGQUIT arrives; SIGTERM (the default) just kills it.
    let script = "trap 'cat /data/rel.txt; exit 0' QUIT; while :; do :; done";
    let run = |sig: Option<i32>| {
        let mut s = spec(&lower, &["/bin/sh", "-c", script]);
        s.probe_cmds = vec!["true".into()];
        s.stop_signal = sig;
        let o = sandbox::run(&s).expect("run");
        assert_eq!(o.exit, ExitInfo::StoppedByUs);
        o.observations
            .iter()
            .any(|x| x.path == b"/data/rel.txt" && x.exe == "/bin/cat")
    };
    assert!(run(Some(libc::SIGQUIT)), "SIGQUIT was not delivered");
    assert!(!run(None), "the default stop signal should be SIGTERM");
}

#[test]
fn server_that_never_listens_times_out_readiness() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let mut s = spec(&lower, &["multi", "sleeper", "x"]);
    s.tcp_ports = vec![18999];
    s.ready_timeout = Duration::from_secs(1);
    let o = sandbox::run(&s).expect("run");
    assert_eq!(o.exit, ExitInfo::StoppedByUs);
    assert!(!o.probes[0].ok);
    assert!(
        o.probes[0].detail.contains("ECONNREFUSED"),
        "{:?}",
        o.probes
    );
}

#[test]
fn io_uring_is_blocked() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let o = sandbox::run(&spec(&lower, &["multi", "uring"])).expect("run");
    assert_eq!(
        o.exit,
        ExitInfo::Exited(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn unix_socket_connect_is_observed() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let o = sandbox::run(&spec(&lower, &["multi", "unix"])).expect("run");
    assert!(o
        .observations
        .iter()
        .any(|x| x.syscall == "connect" && x.path == b"/run/app.sock"));
}

#[test]
fn image_user_is_applied() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = dyn_root(d.path());
    let mut s = spec(&lower, &["multi", "ids"]);
    s.exec.user = "www-data".into();
    let o = sandbox::run(&s).expect("run");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("{:?} {out}", o.id_mode);
    assert!(out.contains("setuid=0"), "{out}");
    match o.id_mode {
        sandbox::IdMode::SingleIdFaked => assert!(out.starts_with("uid=0 gid=0"), "{out}"),
        _ => assert!(out.starts_with("uid=33 gid=33"), "{out}"),
    }
}

#[test]
fn image_owners_are_applied_for_the_run_and_handed_back() {
    if !supported() {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = tempdir();
    let lower = dyn_root(d.path());
    let private = lower.join("data/priv");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    let run = |owners: Vec<(Vec<u8>, u32, u32)>| {
        let mut s = spec(&lower, &["multi", "write", "/data/priv/x"]);
        s.exec.user = "www-data".into();
        s.owners = owners;
        let o = sandbox::run(&s).expect("run");
        (o.id_mode, String::from_utf8_lossy(&o.stdout).into_owned())
    };
    // Without the image's owner the directory is the invoking user's (root inside): www-data
    // cannot write there, unless there is only one id and the user switch was faked.
    let (mode, out) = run(vec![]);
    match mode {
        sandbox::IdMode::SingleIdFaked => assert!(out.starts_with("fd=3"), "{out}"),
        _ => assert!(out.starts_with("fd=-1"), "{out}"),
    }
    // With it, www-data owns its directory during the run.
    let (_, out) = run(vec![(b"data/priv".to_vec(), 33, 33)]);
    assert!(out.starts_with("fd=3"), "{mode:?}: {out}");
    // Afterwards the staging dir is the invoking user's again and was never written.
    let m = std::fs::metadata(&private).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (me, 0o700));
    assert_eq!(std::fs::read_dir(&private).unwrap().count(), 0);
}

#[test]
fn runtime_files_replace_the_image_ones_as_in_docker() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = dyn_root(d.path());
    std::fs::write(
        lower.join("etc/hosts"),
        "10.9.9.9 localhost # from the build host\n",
    )
    .unwrap();
    std::fs::write(lower.join("data/my-hostname"), "image-hostname\n").unwrap();
    std::os::unix::fs::symlink("/data/my-hostname", lower.join("etc/hostname")).unwrap();
    let o = sandbox::run(&spec(
        &lower,
        &[
            "/bin/cat",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
        ],
    ))
    .expect("run");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.exit, ExitInfo::Exited(0), "{out}");
    assert!(out.starts_with("127.0.0.1\tlocalhost\n"), "{out}");
    assert!(
        !out.contains("10.9.9.9"),
        "the image's hosts file was used: {out}"
    );
    // A symlink in the image is left alone (never followed while setting up).
    assert!(out.contains("image-hostname"), "{out}");
    assert!(out.contains("no DNS server"), "{out}");
    // The image's own files are untouched.
    assert!(std::fs::read_to_string(lower.join("etc/hosts"))
        .unwrap()
        .contains("10.9.9.9"));
    assert!(!lower.join("etc/resolv.conf").exists());
}

#[test]
fn missing_entrypoint_is_a_clear_error() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = static_root(d.path(), "batch");
    let e = sandbox::run(&spec(&lower, &["nope"])).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("`nope`") && msg.contains("ENOENT"), "{msg}");
}

#[test]
fn timeout_applies_to_batch_jobs() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let mut s = spec(&lower, &["multi", "sleeper", "x"]);
    s.timeout = Duration::from_secs(1);
    let o = sandbox::run(&s).expect("run");
    assert_eq!(o.exit, ExitInfo::TimedOut);
    assert!(o.duration < Duration::from_secs(10));
}

/// Every existing file strace sees (host run via chroot, root only) is in our observations.
#[test]
fn strace_agrees_on_files() {
    if !supported() {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: the strace comparison needs root (chroot)");
        return;
    }
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("SKIP: strace not installed");
        return;
    }
    let d = tempdir();
    let lower = dyn_root(d.path());
    let o = sandbox::run(&spec(&lower, &["/bin/dyn", "www-data"])).expect("run");
    let log = d.path().join("strace.log");
    let st = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=%file", "-o"])
        .arg(&log)
        .arg("chroot")
        .arg(&lower)
        .arg("/bin/dyn")
        .arg("www-data")
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let mut checked = 0;
    for line in text.lines() {
        // e.g. `123 openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3`
        let Some(start) = line.find('"') else {
            continue;
        };
        let rest = &line[start + 1..];
        let Some(end) = rest.find('"') else { continue };
        let p = &rest[..end];
        if !p.starts_with('/') || line.contains("chroot(") || line.contains("execve(\"/usr/") {
            continue;
        }
        if line.contains("= -1") {
            continue;
        }
        let on_disk = lower.join(p.trim_start_matches('/'));
        if std::fs::symlink_metadata(&on_disk).is_err() {
            continue;
        }
        checked += 1;
        assert!(
            has_path(&o, p),
            "strace saw {p} ({line}); we did not: {:?}",
            paths(&o)
        );
    }
    assert!(checked >= 4, "too few strace lines checked: {text}");
}

#[test]
fn signals_are_reinjected() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let o = sandbox::run(&spec(&lower, &["multi", "signals"])).expect("run");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "usr1=1 rt=1\n");
    assert_eq!(o.exit, ExitInfo::Exited(0));
}

#[test]
fn group_stop_and_continue() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = multi_root(d.path());
    let mut s = spec(&lower, &["multi", "stop"]);
    s.timeout = Duration::from_secs(10);
    let o = sandbox::run(&s).expect("run");
    assert_eq!(o.exit, ExitInfo::Exited(6));
    assert!(has_path(&o, "/data/after-stop"));
}

/// As root, run this whole test binary again as the unprivileged users `tester` (subordinate
/// ids) and `tester2` (no subordinate ids: single-id mode) when they exist.
#[test]
fn unprivileged_variants() {
    if !nix::unistd::geteuid().is_root() || std::env::var_os("OCI_SLIM_NESTED").is_some() {
        eprintln!("SKIP: not root, or already the unprivileged run");
        return;
    }
    if !supported() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut ran = 0;
    for user in ["tester", "tester2"] {
        if nix::unistd::User::from_name(user).ok().flatten().is_none() {
            eprintln!("SKIP: user `{user}` does not exist (useradd -m {user})");
            continue;
        }
        let base = |c: &mut Command| {
            c.args([
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--init-groups",
            ]);
        };
        let mut probe = Command::new("setpriv");
        base(&mut probe);
        let readable = probe
            .arg("test")
            .arg("-x")
            .arg(&exe)
            .status()
            .is_ok_and(|s| s.success());
        if !readable {
            eprintln!(
                "SKIP: `{}` is not executable by `{user}` (chmod -R o+rX target)",
                exe.display()
            );
            continue;
        }
        let mut c = Command::new("setpriv");
        base(&mut c);
        let out = c
            .arg(&exe)
            .args(["--skip", "unprivileged_variants", "--test-threads", "4"])
            .env("OCI_SLIM_NESTED", "1")
            .current_dir("/tmp")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "as {user}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("test result: ok"), "{text}");
        ran += 1;
    }
    eprintln!("unprivileged runs: {ran}");
}
