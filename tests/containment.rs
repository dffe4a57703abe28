//! Containment of a hostile entrypoint, beyond what tests/trace_sandbox.rs covers (loopback,
//! writes outside the root, double-forked daemons, fork bomb, SIGINT): the entrypoint here cannot
//! ptrace anything, cannot see or signal host processes, cannot chmod or write host files through
//! /proc, fills only its size-limited tmpfs (`/dev/shm`, and the root's writable layer with
//! `--limit-disk`), and cannot allocate beyond `--limit-memory`. The hostile program is a small static C file
//! compiled by `cc` at test time. Run as root and as an unprivileged user (`su tester -c
//! 'cargo test --test containment'`); skipped where user namespaces are unavailable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oci_slim::image::ExecSpec;
use oci_slim::sandbox::{self, ExitInfo, RunOutcome, RunSpec};

const HOSTILE_C: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each mode prints what it tried and exits with the number of attempts that worked. */
int main(int argc, char **argv) {
    int won = 0;
    if (argc < 2) return 100;
    if (!strcmp(argv[1], "ptrace")) {
        pid_t host = argc > 2 ? atoi(argv[2]) : 0;
        pid_t c = fork();
        if (c == 0) { pause(); _exit(0); }
        pid_t targets[] = {1, getppid(), c, host};
        for (unsigned i = 0; i < sizeof targets / sizeof *targets; i++) {
            if (targets[i] <= 0) continue;
            long r = ptrace(PTRACE_ATTACH, targets[i], 0, 0);
            printf("attach %d: %ld errno %d\n", targets[i], r, r ? errno : 0);
            if (r == 0) won++;
            r = ptrace(PTRACE_SEIZE, targets[i], 0, 0);
            printf("seize %d: %ld errno %d\n", targets[i], r, r ? errno : 0);
            if (r == 0) won++;
        }
        pid_t t = fork();
        if (t == 0) {
            /* Already traced by oci-slim: TRACEME must fail. */
            _exit(ptrace(PTRACE_TRACEME, 0, 0, 0) == 0 ? 1 : 0);
        }
        int st = 0;
        waitpid(t, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 1) won++;
        kill(c, SIGKILL);
        waitpid(c, 0, 0);
        return won;
    }
    if (!strcmp(argv[1], "procs")) {
        pid_t host = atoi(argv[2]);
        int n = 0;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] >= '0' && e->d_name[0] <= '9') n++;
        }
        printf("visible %d\n", n);
        if (n > 20) won++;
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/cmdline", host);
        if (access(p, F_OK) == 0) { printf("sees host pid\n"); won++; }
        if (kill(host, 0) == 0 || errno != ESRCH) { printf("kill 0: %d\n", errno); won++; }
        if (kill(host, SIGKILL) == 0) { printf("killed host pid\n"); won++; }
        if (kill(-1, SIGKILL) == 0) printf("kill -1 ok (own namespace only)\n");
        return won;
    }
    if (!strcmp(argv[1], "chmod")) {
        const char *host = argv[2];
        const char *prefixes[] = {"", "/proc/self/root", "/proc/1/root", "/proc/self/cwd/../../../..",
                                  "/proc/self/root/../../..", "/proc/1/cwd/../../../.."};
        for (unsigned i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s%s", prefixes[i], host);
            if (chmod(p, 0777) == 0) { printf("chmod %s ok\n", p); }
            int fd = open(p, O_WRONLY | O_TRUNC);
            if (fd >= 0) { write(fd, "pwned", 5); close(fd); printf("write %s ok\n", p); }
            if (truncate(p, 0) == 0) printf("truncate %s ok\n", p);
            if (unlink(p) == 0) printf("unlink %s ok\n", p);
        }
        /* The sandbox's own view of those files is its business; the test checks the host. */
        return 0;
    }
    if (!strcmp(argv[1], "memhog")) {
        /* Touch 1 MiB blocks until malloc fails or 4 GiB are held. */
        long mib = 0;
        for (; mib < 4096; mib++) {
            char *p = malloc(1 << 20);
            if (!p) break;
            memset(p, 'x', 1 << 20);
        }
        printf("held %ld MiB\n", mib);
        return mib < 4096 ? 0 : 1;
    }
    if (!strcmp(argv[1], "shmfill") || !strcmp(argv[1], "diskfill")) {
        static char buf[1 << 20];
        memset(buf, 'x', sizeof buf);
        const char *path = argv[1][0] == 's' ? "/dev/shm/fill" : "/data/fill";
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) return 100;
        long mib = 0;
        for (;;) {
            ssize_t w = write(fd, buf, sizeof buf);
            /* A short write fills the device without an error: the next one reports it. */
            if (w >= 0 && w < (ssize_t)sizeof buf) w = write(fd, buf, sizeof buf);
            if (w < (ssize_t)sizeof buf) break;
            if (++mib > 4096) break;
        }
        printf("wrote %ld MiB, errno %d\n", mib, errno);
        return errno == ENOSPC ? 0 : 1;
    }
    return 100;
}
"#;

fn supported() -> bool {
    match sandbox::check_support() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIP: user namespaces unavailable: {e}");
            false
        }
    }
}

/// A temp dir readable by other users (tests may run as `tester`).
fn tempdir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("oci-slim-contain-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// A lower dir holding only `/bin/hostile` (static) and an empty `/data`.
fn hostile_root(dir: &Path) -> PathBuf {
    let lower = dir.join("lower");
    std::fs::create_dir_all(lower.join("bin")).expect("mkdir");
    std::fs::create_dir_all(lower.join("data")).expect("mkdir");
    let src = dir.join("hostile.c");
    std::fs::write(&src, HOSTILE_C).expect("write source");
    let st = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(lower.join("bin/hostile"))
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(st.success(), "compiling the hostile program");
    lower
}

fn spec(lower: &Path, argv: &[&str]) -> RunSpec {
    RunSpec {
        lower: lower.to_path_buf(),
        exec: ExecSpec {
            entrypoint: argv.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        },
        exec_cmds: vec![],
        http_probes: vec![],
        tcp_ports: vec![],
        probe_cmds: vec![],
        wait: Duration::from_millis(100),
        ready_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        scratch_parent: lower.parent().expect("parent").to_path_buf(),
        limits: Default::default(),
        owners: vec![],
        stop_signal: None,
    }
}

/// A host process to aim at, spawned from another thread: the tracer loop reaps any child of
/// the thread that calls `sandbox::run` (`waitpid(-1, __WNOTHREAD)`), so a child of the test
/// thread itself would be reaped behind `Child`'s back.
fn host_sleeper() -> std::process::Child {
    std::thread::spawn(|| Command::new("sleep").arg("30").spawn().expect("sleep"))
        .join()
        .expect("spawn thread")
}

fn stdout(o: &RunOutcome) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Only `lower` and `hostile.c` may remain in the test dir: the scratch dir is gone.
fn assert_scratch_removed(dir: &Path) {
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["hostile.c", "lower"], "scratch dir left behind");
}

/// The number after the first word of the hostile program's report (`wrote N MiB`, `held N
/// MiB`), or `u64::MAX` when there is none.
fn reported_mib(out: &str) -> u64 {
    out.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn cannot_ptrace_anything() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = hostile_root(d.path());
    let mut host = host_sleeper();
    let host_pid = host.id().to_string();
    let o = sandbox::run(&spec(&lower, &["/bin/hostile", "ptrace", &host_pid])).expect("run");
    let _ = host.kill();
    let _ = host.wait();
    assert_eq!(o.exit, ExitInfo::Exited(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("attach 1:"), "{}", stdout(&o));
    assert_scratch_removed(d.path());
}

#[test]
fn cannot_see_or_signal_host_processes() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = hostile_root(d.path());
    let mut host = host_sleeper();
    let host_pid = host.id().to_string();
    let o = sandbox::run(&spec(&lower, &["/bin/hostile", "procs", &host_pid])).expect("run");
    let alive = host.try_wait().expect("try_wait").is_none();
    let _ = host.kill();
    let _ = host.wait();
    assert!(alive, "the sandbox killed a host process");
    assert_eq!(o.exit, ExitInfo::Exited(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("visible "), "{}", stdout(&o));
}

#[test]
fn cannot_chmod_or_write_host_files_through_proc() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = hostile_root(d.path());
    let host_file = d.path().join("host-secret");
    std::fs::write(&host_file, "original").expect("write");
    std::fs::set_permissions(&host_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let target = host_file.to_str().expect("utf-8 path");
    let o = sandbox::run(&spec(&lower, &["/bin/hostile", "chmod", target])).expect("run");
    assert_eq!(o.exit, ExitInfo::Exited(0), "{}", stdout(&o));
    let m = std::fs::metadata(&host_file).expect("host file still exists");
    assert_eq!(m.permissions().mode() & 0o7777, 0o600, "{}", stdout(&o));
    assert_eq!(
        std::fs::read_to_string(&host_file).expect("read"),
        "original"
    );
    // The image root (overlay lower) is unchanged too.
    let mut names: Vec<_> = std::fs::read_dir(&lower)
        .expect("read lower")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["bin", "data"]);
    std::fs::remove_file(&host_file).expect("cleanup");
    assert_scratch_removed(d.path());
}

#[test]
fn shm_filler_hits_the_tmpfs_limit() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = hostile_root(d.path());
    let o = sandbox::run(&spec(&lower, &["/bin/hostile", "shmfill"])).expect("run");
    let out = stdout(&o);
    assert_eq!(o.exit, ExitInfo::Exited(0), "{out}");
    let mib = reported_mib(&out);
    // /dev/shm is a tmpfs of 64 MiB (src/sandbox/mod.rs).
    assert!(mib <= 64, "{out}");
    assert_scratch_removed(d.path());
}

#[test]
fn root_filler_hits_the_disk_limit_not_the_host() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = hostile_root(d.path());
    let mut s = spec(&lower, &["/bin/hostile", "diskfill"]);
    s.limits.disk_bytes = 48 << 20;
    let o = sandbox::run(&s).expect("run");
    let out = stdout(&o);
    assert_eq!(o.exit, ExitInfo::Exited(0), "ENOSPC expected: {out}");
    let mib = reported_mib(&out);
    assert!(mib <= 48, "{out}");
    // The image's own /data was never written.
    assert_eq!(
        std::fs::read_dir(lower.join("data")).expect("ls").count(),
        0
    );
    assert_scratch_removed(d.path());
}

#[test]
fn memory_hog_hits_the_data_limit() {
    if !supported() {
        return;
    }
    let d = tempdir();
    let lower = hostile_root(d.path());
    let mut s = spec(&lower, &["/bin/hostile", "memhog"]);
    s.limits.memory_bytes = 256 << 20;
    let o = sandbox::run(&s).expect("run");
    let out = stdout(&o);
    assert_eq!(o.exit, ExitInfo::Exited(0), "malloc should fail: {out}");
    let mib = reported_mib(&out);
    assert!((1..=256).contains(&mib), "{out}");
    assert_scratch_removed(d.path());
}

/// A docker-save archive with one uncompressed layer of `files` files of 32 KiB (slow enough to
/// interrupt); the diff_id is wrong, which only matters at the end of the layer.
fn big_archive(path: &Path, files: usize) {
    let mut layer = tar::Builder::new(Vec::new());
    let data: Vec<u8> = (0..32 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        layer
            .append_data(&mut h, format!("d{}/f{i}", i % 50), &data[..])
            .expect("append");
    }
    let layer = layer.into_inner().expect("layer");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Entrypoint":["/d0/f0"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        "0".repeat(64)
    );
    let layer_name = format!("{}/layer.tar", "1".repeat(64));
    let manifest = format!(
        r#"[{{"Config":"config.json","RepoTags":["big:latest"],"Layers":["{layer_name}"]}}]"#
    );
    let mut outer = tar::Builder::new(std::fs::File::create(path).expect("create"));
    for (name, bytes) in [
        ("config.json", config.as_bytes()),
        (layer_name.as_str(), &layer[..]),
        ("manifest.json", manifest.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        outer.append_data(&mut h, name, bytes).expect("append");
    }
    outer.finish().expect("finish");
}

#[test]
fn sigterm_and_sigint_remove_temp_dirs() {
    let d = tempdir();
    let input = d.path().join("big.tar");
    big_archive(&input, 4000);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let tmp = d.path().join(format!("tmp-{sig}"));
        let outdir = d.path().join(format!("out-{sig}"));
        std::fs::create_dir_all(&tmp).expect("mkdir");
        std::fs::create_dir_all(&outdir).expect("mkdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_oci-slim"))
            .arg("flatten")
            .arg(&input)
            .arg(outdir.join("out.tar"))
            .arg("--quiet")
            .env("TMPDIR", &tmp)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn oci-slim");
        // Wait until the staging dir exists, then interrupt.
        let start = std::time::Instant::now();
        while std::fs::read_dir(&tmp).expect("read tmp").next().is_none() {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).ok();
                panic!("oci-slim ended ({status}) before its staging dir was seen: {err}");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no staging dir");
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let signal = nix::sys::signal::Signal::try_from(sig).expect("signal");
        nix::sys::signal::kill(pid, signal).expect("kill");
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(128 + sig), "{stderr}");
        assert!(stderr.starts_with("error: interrupted"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .expect("read tmp")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
        let beside: Vec<_> = std::fs::read_dir(&outdir)
            .expect("read out dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(beside.is_empty(), "left beside the output: {beside:?}");
    }
}
