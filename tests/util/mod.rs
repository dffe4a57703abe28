//! Helpers shared by the integration tests (`mod util;`).
//!
//! * Test images: [`image`] returns a built image from the cache, building it with
//!   `testdata/build-images.sh` when missing.
//! * The binary under test: [`oci_slim`], optionally run as the unprivileged user `tester` with
//!   [`as_tester`].
//! * Real clients: docker ([`docker_load`], [`docker_run`], [`docker_start`]), podman
//!   ([`podman_load`], [`podman_run`], [`podman_start`]), skopeo ([`skopeo_inspect`]).
//! * Network: [`free_port`], [`wait_http`], [`http_get`], [`port_lock`] for fixed ports.
//! * Archives: [`tar_entries`], [`tar_member`].
//!
//! Skipping: a helper that needs an external tool returns `false` from its `have_*` check and
//! prints `SKIP ...: reason` when the tool is missing, unless `OCI_SLIM_E2E` is set (as in
//! `.ci/run`): then a missing tool fails the test.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when end-to-end mode is on (`OCI_SLIM_E2E` set and not `0`): missing tools fail.
pub fn e2e() -> bool {
    std::env::var_os("OCI_SLIM_E2E").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Report a missing prerequisite: panics in e2e mode, otherwise prints a skip line and returns
/// `false` so the test can `return`.
pub fn skip(what: &str, reason: &str) -> bool {
    if e2e() {
        panic!("{what} is required with OCI_SLIM_E2E set: {reason}");
    }
    eprintln!("SKIP {what}: {reason} (set OCI_SLIM_E2E=1 to make this a failure)");
    false
}

fn run_ok(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {cmd:?} failed: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?} failed with {}:\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Run a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    run_ok(cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn find_tool(candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() {
            if p.is_file() {
                return Some(p.to_path_buf());
            }
            continue;
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&path) {
            let full = dir.join(c);
            if full.is_file() {
                return Some(full);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Test images

/// Cache directory of the built test images (`OCI_SLIM_IMAGE_CACHE` or `testdata/cache`).
pub fn image_cache() -> PathBuf {
    match std::env::var_os("OCI_SLIM_IMAGE_CACHE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join("testdata/cache"),
    }
}

/// Path of a built test image file such as `nginx.oci.tar`, `nginx.docker.tar`,
/// `nginx-zstd.oci.tar` or `tiny.docker.tar`. The first call per image in a test process runs
/// `testdata/build-images.sh NAME`, which returns at once when the cached image matches the
/// recipe and (re)builds it otherwise; panics when that fails.
pub fn image(file: &str) -> PathBuf {
    static CHECKED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let path = image_cache().join(file);
    let base = file
        .strip_suffix(".oci.tar")
        .or_else(|| file.strip_suffix(".docker.tar"))
        .unwrap_or_else(|| {
            panic!("test image name `{file}` must end in `.oci.tar` or `.docker.tar`")
        });
    let name = base.strip_suffix("-zstd").unwrap_or(base);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if !checked.contains(name) {
        build_image(name);
        checked.insert(name.to_string());
    }
    assert!(
        path.is_file(),
        "`testdata/build-images.sh {name}` succeeded but `{}` is missing",
        path.display()
    );
    path
}

fn build_image(name: &str) {
    let script = repo_root().join("testdata/build-images.sh");
    let out = Command::new(&script)
        .arg(name)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", script.display()));
    if !out.status.success() {
        panic!(
            "building test image `{name}` failed ({}); run `testdata/build-images.sh {name}` by hand \
             (needs mmdebstrap, umoci, skopeo, gcc, best as root)\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `NAME.oci.tar` from the cache (built if missing).
pub fn oci_image(name: &str) -> PathBuf {
    image(&format!("{name}.oci.tar"))
}

/// `NAME.docker.tar` from the cache (built if missing).
pub fn docker_image(name: &str) -> PathBuf {
    image(&format!("{name}.docker.tar"))
}

// ---------------------------------------------------------------------------------------------
// The binary under test and the unprivileged user

/// A command for the built `oci-slim` binary.
pub fn oci_slim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oci-slim"))
}

/// Name of the unprivileged test user created by `.ci/run`.
pub const TESTER: &str = "tester";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True when we are root and the user `tester` exists, i.e. [`as_tester`] switches users.
pub fn tester_exists() -> bool {
    static EXISTS: OnceLock<bool> = OnceLock::new();
    *EXISTS.get_or_init(|| {
        Command::new("id")
            .args(["-u", TESTER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// True when commands wrapped by [`as_tester`] will run unprivileged: either we are not root,
/// or we are root and can switch to `tester`.
pub fn can_run_unprivileged() -> bool {
    !is_root() || tester_exists()
}

/// Wrap `cmd` to run as `tester` (`setpriv --reuid=tester --regid=tester --init-groups --`) when
/// we are root and `tester` exists; otherwise return it unchanged (already unprivileged, or no
/// such user). Program, arguments, environment changes and working directory are carried over.
/// Make sure the files it needs are readable: see [`share_with_tester`] and [`tester_tempdir`].
pub fn as_tester(cmd: Command) -> Command {
    if !is_root() || !tester_exists() {
        return cmd;
    }
    let mut wrapped = Command::new("setpriv");
    wrapped.args([
        format!("--reuid={TESTER}"),
        format!("--regid={TESTER}"),
        "--init-groups".to_string(),
        "--".to_string(),
    ]);
    wrapped.arg(cmd.get_program());
    wrapped.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    // HOME of the target user, so tools do not write into root's home.
    wrapped.env("HOME", format!("/home/{TESTER}"));
    wrapped.env("USER", TESTER);
    if let Some(d) = cmd.get_current_dir() {
        wrapped.current_dir(d);
    }
    wrapped
}

/// Make `path` readable by `tester`: adds `o+r` (files) / `o+rx` (dirs) to it and `o+x` to every
/// ancestor directory. Only acts when we are root.
pub fn share_with_tester(path: &Path) {
    if !is_root() {
        return;
    }
    let path = std::fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("cannot resolve `{}`: {e}", path.display()));
    let add = |p: &Path, bits: u32| {
        if let Ok(md) = std::fs::metadata(p) {
            let mode = md.permissions().mode();
            if mode & bits != bits {
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | bits));
            }
        }
    };
    let bits = if path.is_dir() { 0o005 } else { 0o004 };
    add(&path, bits);
    for anc in path.ancestors().skip(1) {
        add(anc, 0o001);
    }
}

/// A temporary directory under /tmp that `tester` can write to (mode 0777 when root).
pub fn tester_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("oci-slim-test-")
        .tempdir_in("/tmp")
        .expect("cannot create a temp dir in /tmp");
    if is_root() {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("cannot chmod temp dir");
    }
    dir
}

// ---------------------------------------------------------------------------------------------
// Network

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .expect("cannot bind a loopback port");
    l.local_addr().expect("no local address").port()
}

/// One HTTP/1.0 GET on 127.0.0.1:`port`: `(status, body)` or `None` if no valid response.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    // One write: `write!` would send each formatted piece as its own segment.
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.take(1 << 20).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let status_line = text.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Poll `GET path` on 127.0.0.1:`port` until a response arrives or 30 s pass; its status code.
pub fn wait_http(port: u16, path: &str) -> Option<u16> {
    wait_http_for(port, path, Duration::from_secs(30))
}

/// [`wait_http`] with a custom timeout.
pub fn wait_http_for(port: u16, path: &str, timeout: Duration) -> Option<u16> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((status, _)) = http_get(port, path) {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Poll until a TCP connect to 127.0.0.1:`port` succeeds (true) or `timeout` passes (false).
pub fn wait_tcp(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    loop {
        if TcpStream::connect_timeout(&addr.into(), Duration::from_millis(500)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An exclusive lock for a fixed port (e.g. nginx's 80 with `--network host`), held until drop.
/// Tests in one or several processes that use the same port take turns.
pub struct PortLock {
    _lock: nix::fcntl::Flock<File>,
}

/// Take the lock `/tmp/oci-slim-port-PORT.lock` (blocks until free).
pub fn port_lock(port: &str) -> PortLock {
    let path = format!("/tmp/oci-slim-port-{port}.lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open lock `{path}`: {e}"));
    // Other users (tester) may share the lock file.
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
    let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock `{path}`: {e}"));
    PortLock { _lock: lock }
}

// ---------------------------------------------------------------------------------------------
// Containers: docker and podman

/// Network mode of a container: the host's (loopback reachable) or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    Host,
    None,
}

impl Net {
    fn flag(self) -> &'static str {
        match self {
            Net::Host => "--network=host",
            Net::None => "--network=none",
        }
    }
}

fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The docker client: `/usr/bin/docker` (Debian's, matching the 20.10 daemon) if present.
pub fn docker_bin() -> Option<PathBuf> {
    find_tool(&["/usr/bin/docker", "docker"])
}

/// Run `BIN ARGS... info --format FORMAT`; `Err(failure: stderr)` unless it succeeds.
fn engine_info(bin: &Path, args: &[&str], format: &str, failure: &str) -> Result<(), String> {
    let out = Command::new(bin)
        .args(args)
        .args(["info", "--format", format])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{failure}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn docker_check() -> Result<(), String> {
    let bin = docker_bin().ok_or("no `docker` client installed")?;
    engine_info(
        &bin,
        &[],
        "{{.ServerVersion}}",
        "docker daemon not reachable (start it as .ci/run does)",
    )
}

/// Docker client and daemon usable? Prints a skip reason (or panics under `OCI_SLIM_E2E`).
pub fn have_docker() -> bool {
    static R: OnceLock<Result<(), String>> = OnceLock::new();
    match R.get_or_init(docker_check) {
        Ok(()) => true,
        Err(e) => skip("docker", e),
    }
}

/// A docker command (`/usr/bin/docker` preferred).
pub fn docker() -> Command {
    Command::new(docker_bin().unwrap_or_else(|| PathBuf::from("docker")))
}

fn loaded_name(stdout: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stdout);
    let mut found = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("Loaded image: ") {
            found = Some(n.trim().to_string());
        } else if let Some(n) = line.strip_prefix("Loaded image(s): ") {
            found = n.split(',').next().map(|s| s.trim().to_string());
        } else if let Some(n) = line.strip_prefix("Loaded image ID: ") {
            if found.is_none() {
                found = Some(n.trim().to_string());
            }
        }
    }
    found
}

/// `docker load -i PATH`; the loaded image's name (or ID when it has no name).
pub fn docker_load(path: &Path) -> String {
    let out = run(docker().arg("load").arg("-i").arg(path));
    loaded_name(&out.stdout).unwrap_or_else(|| {
        panic!(
            "cannot find the image name in `docker load` output: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `docker run --rm NET [extra...] IMAGE [args...]` to completion (batch jobs); its output.
pub fn docker_run(image: &str, net: Net, extra: &[&str], args: &[&str]) -> Output {
    docker()
        .args(["run", "--rm", net.flag()])
        .args(extra)
        .arg(image)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run docker")
}

/// A running container, removed (`rm -f`) on drop.
pub struct Container {
    pub name: String,
    engine: Engine,
}

#[derive(Clone, Copy, Debug)]
enum Engine {
    Docker,
    Podman,
}

impl Container {
    fn cmd(&self) -> Command {
        match self.engine {
            Engine::Docker => docker(),
            Engine::Podman => podman(),
        }
    }

    /// The container's stdout and stderr so far.
    pub fn logs(&self) -> String {
        match self.cmd().args(["logs", &self.name]).output() {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("(cannot get logs: {e})"),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker run -d NET [extra...] IMAGE [args...]`: a server container, removed on drop.
pub fn docker_start(image: &str, net: Net, extra: &[&str], args: &[&str]) -> Container {
    let name = unique_name("oci-slim-test");
    run(docker()
        .args(["run", "-d", "--name", &name, net.flag()])
        .args(extra)
        .arg(image)
        .args(args));
    Container {
        name,
        engine: Engine::Docker,
    }
}

/// Remove an image from docker (ignores errors).
pub fn docker_rmi(image: &str) {
    let _ = docker()
        .args(["rmi", "-f", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Global podman flags that work on these machines (hybrid cgroups: runc + cgroupfs).
pub const PODMAN_FLAGS: &[&str] = &["--runtime", "runc", "--cgroup-manager", "cgroupfs"];
/// `podman run` flags that keep ulimits under the hard limits.
pub const PODMAN_RUN_FLAGS: &[&str] = &[
    "--ulimit",
    "nproc=4096:4096",
    "--ulimit",
    "nofile=1024:1024",
];

fn podman_check() -> Result<(), String> {
    let bin = find_tool(&["podman"]).ok_or("no `podman` installed")?;
    find_tool(&["runc"]).ok_or("no `runc` installed (podman needs it here)")?;
    engine_info(
        &bin,
        PODMAN_FLAGS,
        "{{.Host.OCIRuntime.Name}}",
        "`podman info` failed",
    )
}

/// Podman usable? Prints a skip reason (or panics under `OCI_SLIM_E2E`).
pub fn have_podman() -> bool {
    static R: OnceLock<Result<(), String>> = OnceLock::new();
    match R.get_or_init(podman_check) {
        Ok(()) => true,
        Err(e) => skip("podman", e),
    }
}

/// A podman command with [`PODMAN_FLAGS`].
pub fn podman() -> Command {
    let mut c = Command::new("podman");
    c.args(PODMAN_FLAGS);
    c
}

/// `podman load -i PATH`; the loaded image's name.
pub fn podman_load(path: &Path) -> String {
    let out = run(podman().arg("load").arg("-i").arg(path));
    loaded_name(&out.stdout).unwrap_or_else(|| {
        panic!(
            "cannot find the image name in `podman load` output: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `podman run --rm NET ulimits [extra...] IMAGE [args...]` to completion; its output.
pub fn podman_run(image: &str, net: Net, extra: &[&str], args: &[&str]) -> Output {
    podman()
        .args(["run", "--rm", net.flag()])
        .args(PODMAN_RUN_FLAGS)
        .args(extra)
        .arg(image)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run podman")
}

/// `podman run -d ...`: a server container, removed on drop.
pub fn podman_start(image: &str, net: Net, extra: &[&str], args: &[&str]) -> Container {
    let name = unique_name("oci-slim-test");
    run(podman()
        .args(["run", "-d", "--name", &name, net.flag()])
        .args(PODMAN_RUN_FLAGS)
        .args(extra)
        .arg(image)
        .args(args));
    Container {
        name,
        engine: Engine::Podman,
    }
}

/// Remove an image from podman (ignores errors).
pub fn podman_rmi(image: &str) {
    let _ = podman()
        .args(["rmi", "-f", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// skopeo

/// How skopeo should read an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `oci-archive:PATH`
    Oci,
    /// `docker-archive:PATH`
    Docker,
}

/// skopeo installed? Prints a skip reason (or panics under `OCI_SLIM_E2E`).
pub fn have_skopeo() -> bool {
    match find_tool(&["skopeo"]) {
        Some(_) => true,
        None => skip("skopeo", "no `skopeo` installed"),
    }
}

/// `skopeo inspect [--config] TRANSPORT:PATH` parsed as JSON, or the error text.
pub fn skopeo_inspect_raw(
    path: &Path,
    transport: Transport,
    config: bool,
) -> Result<serde_json::Value, String> {
    let prefix = match transport {
        Transport::Oci => "oci-archive:",
        Transport::Docker => "docker-archive:",
    };
    let mut arg = OsString::from(prefix);
    arg.push(path.as_os_str());
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect");
    if config {
        cmd.arg("--config");
    }
    cmd.arg(arg);
    let out = run_ok(&mut cmd)?;
    serde_json::from_slice(&out.stdout).map_err(|e| format!("skopeo output is not JSON: {e}"))
}

/// `skopeo inspect TRANSPORT:PATH` (panics on failure).
pub fn skopeo_inspect(path: &Path, transport: Transport) -> serde_json::Value {
    skopeo_inspect_raw(path, transport, false).unwrap_or_else(|e| panic!("{e}"))
}

/// `skopeo inspect --config TRANSPORT:PATH`: the image config (panics on failure).
pub fn skopeo_config(path: &Path, transport: Transport) -> serde_json::Value {
    skopeo_inspect_raw(path, transport, true).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------------
// Tar archives

/// One tar entry as the test sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarEntry {
    /// Name as stored (without a leading `./`).
    pub path: String,
    /// `f` file, `d` dir, `l` symlink, `h` hardlink, `c`/`b` devices, `p` fifo, `?` other.
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Symlink or hardlink target.
    pub link: Option<String>,
}

fn decompressing_reader(mut r: impl Read + 'static) -> Box<dyn Read> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match r.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("cannot read archive: {e}"),
        }
    }
    let head = std::io::Cursor::new(magic[..n].to_vec()).chain(r);
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(head))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(head).expect("cannot start zstd decoder"))
    } else {
        Box::new(head)
    }
}

/// Entries of a tar read from `r` (plain, gzip or zstd, sniffed).
pub fn tar_entries_from(r: impl Read + 'static) -> Vec<TarEntry> {
    let mut ar = tar::Archive::new(decompressing_reader(r));
    let mut out = Vec::new();
    for e in ar.entries().expect("cannot read tar entries") {
        let e = e.expect("bad tar entry");
        let h = e.header();
        let et = h.entry_type();
        let kind = match et {
            tar::EntryType::Regular | tar::EntryType::Continuous => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            _ => '?',
        };
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let path = raw.strip_prefix("./").unwrap_or(&raw).to_string();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        out.push(TarEntry {
            path,
            kind,
            mode: h.mode().unwrap_or(0),
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            size: e.size(),
            link,
        });
    }
    out
}

/// Entries of the tar file at `path` (plain, gzip or zstd).
pub fn tar_entries(path: &Path) -> Vec<TarEntry> {
    let f = File::open(path).unwrap_or_else(|e| panic!("cannot open `{}`: {e}", path.display()));
    tar_entries_from(BufReader::new(f))
}

/// Entries keyed by path (later duplicates win, as when a layer is applied).
pub fn tar_entry_map(path: &Path) -> BTreeMap<String, TarEntry> {
    tar_entries(path)
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect()
}

/// The bytes of member `name` (with or without `./`) of the tar file at `path`, if present.
pub fn tar_member(path: &Path, name: &str) -> Option<Vec<u8>> {
    let f = File::open(path).unwrap_or_else(|e| panic!("cannot open `{}`: {e}", path.display()));
    tar_member_from(BufReader::new(f), name)
}

/// The bytes of member `name` of a tar read from `r` (plain, gzip or zstd).
pub fn tar_member_from(r: impl Read + 'static, name: &str) -> Option<Vec<u8>> {
    let want = name.strip_prefix("./").unwrap_or(name);
    let mut ar = tar::Archive::new(decompressing_reader(r));
    for e in ar.entries().expect("cannot read tar entries") {
        let mut e = e.expect("bad tar entry");
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if raw.strip_prefix("./").unwrap_or(&raw) == want {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).expect("cannot read tar member");
            return Some(buf);
        }
    }
    None
}

/// The raw layer blobs of an image archive in order (OCI layout or docker-save): the single
/// image named by `manifest.json` (preferred) or the first manifest of `index.json`.
pub fn image_layer_blobs(path: &Path) -> Vec<Vec<u8>> {
    let mut layers = Vec::new();
    if let Some(m) = tar_member(path, "manifest.json") {
        let v: serde_json::Value = serde_json::from_slice(&m).expect("manifest.json is not JSON");
        for n in v[0]["Layers"].as_array().cloned().unwrap_or_default() {
            let n = n.as_str().expect("layer name is not a string");
            layers.push(
                tar_member(path, n)
                    .unwrap_or_else(|| panic!("layer `{n}` not found as a regular member")),
            );
        }
        return layers;
    }
    let idx = tar_member(path, "index.json").expect("neither manifest.json nor index.json");
    let idx: serde_json::Value = serde_json::from_slice(&idx).expect("index.json is not JSON");
    let blob = |d: &str| -> Vec<u8> {
        let hex = d.strip_prefix("sha256:").expect("digest without sha256:");
        tar_member(path, &format!("blobs/sha256/{hex}")).expect("blob missing")
    };
    let md = idx["manifests"][0]["digest"]
        .as_str()
        .expect("no manifest in index.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(md)).expect("manifest is not JSON");
    for l in manifest["layers"].as_array().cloned().unwrap_or_default() {
        layers.push(blob(l["digest"].as_str().expect("layer without digest")));
    }
    layers
}

/// Entries of every layer of an image archive, in order.
pub fn image_layers(path: &Path) -> Vec<Vec<TarEntry>> {
    image_layer_blobs(path)
        .into_iter()
        .map(|b| tar_entries_from(std::io::Cursor::new(b)))
        .collect()
}

/// Contents of `name` in the topmost layer of the image that has it (whiteouts not applied).
pub fn image_file(path: &Path, name: &str) -> Option<Vec<u8>> {
    let want = name.trim_start_matches('/');
    image_layer_blobs(path)
        .into_iter()
        .rev()
        .find_map(|b| tar_member_from(std::io::Cursor::new(b), want))
}
