//! End to end: `oci-slim IN OUT` on real Debian images built by `testdata/build-images.sh`;
//! every output is checked for fidelity against the input, loaded into real clients (docker,
//! podman, skopeo), run, and probed as a user would.

mod util;

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use util::{Net, Transport};

/// Run `oci-slim IN OUT --report R ARGS` (as `tester` when `rootless`); returns the output
/// path, the process output and the parsed report.
fn slim(
    input: &Path,
    dir: &Path,
    name: &str,
    args: &[&str],
    rootless: bool,
) -> (PathBuf, Output, serde_json::Value) {
    let out = dir.join(format!("{name}.tar"));
    let report = dir.join(format!("{name}.json"));
    let mut cmd = util::oci_slim();
    cmd.arg(input)
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args(args);
    let cmd = if rootless {
        util::share_with_tester(input);
        util::as_tester(cmd)
    } else {
        cmd
    };
    let mut cmd = cmd;
    let output = cmd.stdin(Stdio::null()).output().expect("running oci-slim");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "oci-slim panicked: {stderr}");
    let rep = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, output, rep)
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "oci-slim failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Sum of kept regular file bytes, from the output's own layer.
fn file_bytes(out: &Path) -> u64 {
    util::image_layers(out)[0]
        .iter()
        .filter(|e| e.kind == 'f')
        .map(|e| e.size)
        .sum()
}

/// The image config of an archive (via skopeo: an independent reader).
fn config(path: &Path, t: Transport) -> serde_json::Value {
    util::skopeo_config(path, t)
}

/// Checks every client-independent property of an output: both halves readable by skopeo,
/// config equal to the input's but for rootfs/history, one layer, one history entry, and every
/// entry of the layer carries the input's own type, mode, owner, link target and bytes.
fn check_output(input: &Path, input_t: Transport, out: &Path) {
    if !util::have_skopeo() {
        return;
    }
    let a = config(input, input_t);
    for t in [Transport::Oci, Transport::Docker] {
        let b = config(out, t);
        for key in ["config", "architecture", "os"] {
            assert_eq!(a[key], b[key], "config field `{key}` changed");
        }
        assert_eq!(b["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["history"].as_array().map(Vec::len), Some(1));
        let inspect = util::skopeo_inspect(out, t);
        assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
    }
    fidelity(input, out);
}

/// Every entry of the output layer equals the same path in the flattened input: the input is
/// unpacked by umoci (an independent implementation of the layer semantics) when available.
fn fidelity(input: &Path, out: &Path) {
    let Some(root) = umoci_unpack(input) else {
        return;
    };
    let rootfs = root.path().join("bundle/rootfs");
    let layer = util::image_layer_blobs(out).remove(0);
    let mut ar = tar::Archive::new(flate_or_plain(layer));
    let mut seen = BTreeMap::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = String::from_utf8_lossy(&e.path_bytes())
            .trim_end_matches('/')
            .to_string();
        assert!(
            !path.starts_with('/') && !path.contains(".wh."),
            "bad output name `{path}`"
        );
        assert!(
            seen.insert(path.clone(), ()).is_none(),
            "duplicate entry `{path}`"
        );
        let h = e.header().clone();
        let host = rootfs.join(&path);
        let md = std::fs::symlink_metadata(&host)
            .unwrap_or_else(|_| panic!("`{path}` is in the output but not in the input"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            h.mode().unwrap() & 0o7777,
            md.mode() & 0o7777,
            "mode of `{path}`"
        );
        assert_eq!(h.uid().unwrap(), md.uid() as u64, "uid of `{path}`");
        assert_eq!(h.gid().unwrap(), md.gid() as u64, "gid of `{path}`");
        match h.entry_type() {
            tar::EntryType::Regular => {
                assert!(md.is_file(), "`{path}` type");
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let want = std::fs::read(&host).unwrap();
                assert!(
                    Sha256::digest(&data) == Sha256::digest(&want),
                    "bytes of `{path}` differ from the input"
                );
            }
            tar::EntryType::Directory => assert!(md.is_dir(), "`{path}` type"),
            tar::EntryType::Symlink => {
                let t = std::fs::read_link(&host).unwrap();
                assert_eq!(
                    e.link_name_bytes().map(|l| l.to_vec()),
                    Some(t.as_os_str().as_encoded_bytes().to_vec()),
                    "target of `{path}`"
                );
            }
            tar::EntryType::Link => assert!(md.is_file(), "`{path}` type"),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                use std::os::unix::fs::FileTypeExt;
                let ft = md.file_type();
                assert!(
                    ft.is_char_device() || ft.is_block_device() || ft.is_fifo(),
                    "`{path}` type"
                );
            }
            other => panic!("unexpected entry type {other:?} for `{path}`"),
        }
    }
    assert!(!seen.is_empty(), "the output layer is empty");
}

fn flate_or_plain(b: Vec<u8>) -> Box<dyn Read> {
    if b.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(b)))
    } else {
        Box::new(std::io::Cursor::new(b))
    }
}

/// `umoci unpack` of an OCI archive (as root, so owners are kept); `None` when not root or
/// umoci is missing (skipped with a reason).
fn umoci_unpack(input: &Path) -> Option<tempfile::TempDir> {
    if !nix::unistd::geteuid().is_root() || Command::new("umoci").arg("--version").output().is_err()
    {
        util::skip("umoci", "fidelity check needs root and umoci");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("L");
    std::fs::create_dir(&layout).unwrap();
    let oci = if input.to_string_lossy().ends_with(".docker.tar") {
        let t = dir.path().join("in.oci.tar");
        util::run(
            Command::new("skopeo")
                .args(["copy", "--quiet"])
                .arg(format!("docker-archive:{}", input.display()))
                .arg(format!("oci-archive:{}:latest", t.display())),
        );
        t
    } else {
        input.to_path_buf()
    };
    util::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&oci)
            .arg("-C")
            .arg(&layout),
    );
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tag = idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or("latest")
        .to_string();
    util::run(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(dir.path().join("bundle")),
    );
    Some(dir)
}

fn tag(name: &str) -> String {
    format!("oci-slim-e2e/{name}:{}", std::process::id())
}

/// Load into docker and podman in turn and call `check` with a runner for each.
fn in_clients(out: &Path, check: impl Fn(&str, &str)) {
    if util::have_docker() {
        let image = util::docker_load(out);
        check("docker", &image);
        util::docker_rmi(&image);
    }
    if util::have_podman() {
        let image = util::podman_load(out);
        check("podman", &image);
        util::podman_rmi(&image);
    }
}

/// Loaded into docker and podman, the image answers `GET /` on loopback `port` with 200
/// (`--network host`; the port is locked against other tests).
fn serves_http(out: &Path, port: u16) {
    let _lock = util::port_lock(&port.to_string());
    in_clients(out, |engine, image| {
        let c = start(engine, image, Net::Host, &[]);
        let code = util::wait_http_for(port, "/", Duration::from_secs(20));
        assert_eq!(
            code,
            Some(200),
            "{engine}: the image does not serve: {}",
            c.logs()
        );
    });
}

fn start(engine: &str, image: &str, net: Net, args: &[&str]) -> util::Container {
    if engine == "docker" {
        util::docker_start(image, net, &[], args)
    } else {
        util::podman_start(image, net, &[], args)
    }
}

fn run_batch(engine: &str, image: &str) -> Output {
    if engine == "docker" {
        util::docker_run(image, Net::None, &[], &[])
    } else {
        util::podman_run(image, Net::None, &[], &[])
    }
}

fn nginx_case(input: &Path, input_t: Transport, rootless: bool) {
    let dir = util::tester_tempdir();
    let t = tag(if rootless { "nginx-rootless" } else { "nginx" });
    let (out, o, rep) = slim(input, dir.path(), "nginx", &["-t", &t], rootless);
    ok(&o);
    let bytes = file_bytes(&out);
    assert!(
        bytes <= 11_000_000,
        "nginx kept {bytes} bytes of files (goal: at most 11 MB)"
    );
    let kept: Vec<&str> = rep["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["path"].as_str())
        .collect();
    for p in [
        "/usr/sbin/nginx",
        "/etc/nginx/nginx.conf",
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
    ] {
        assert!(kept.contains(&p), "{p} not kept: {kept:?}");
    }
    assert!(
        kept.iter().any(|p| p.contains("libnss_files")),
        "libnss_files not kept"
    );
    assert!(
        kept.iter().any(|p| p.ends_with("/libc.so.6")),
        "libc not kept"
    );
    assert!(
        !kept.iter().any(|p| p.ends_with(".pid")),
        "a file the run created leaked: {kept:?}"
    );
    assert_eq!(rep["run"]["probes"][0]["ok"], true, "{}", rep["run"]);
    check_output(input, input_t, &out);
    serves_http(&out, 80);
}

#[test]
fn nginx_docker_save_input() {
    nginx_case(&util::docker_image("nginx"), Transport::Docker, false);
}

#[test]
fn nginx_rootless() {
    if !util::can_run_unprivileged() {
        util::skip("rootless run", "no unprivileged user to run as");
        return;
    }
    nginx_case(&util::oci_image("nginx"), Transport::Oci, true);
}

#[test]
fn nginx_zstd_input() {
    let input = util::image("nginx-zstd.oci.tar");
    let dir = util::tester_tempdir();
    let (out, o, _) = slim(
        &input,
        dir.path(),
        "nginx-zstd",
        &["-t", &tag("nginx-zstd"), "--compression", "gzip"],
        false,
    );
    ok(&o);
    // umoci cannot read zstd layers: the gzip image with the same layers is the oracle.
    check_output(&util::oci_image("nginx"), Transport::Oci, &out);
    serves_http(&out, 80);
}

#[test]
fn python_app() {
    let input = util::oci_image("python");
    let dir = util::tester_tempdir();
    let (out, o, rep) = slim(&input, dir.path(), "python", &["-t", &tag("python")], false);
    ok(&o);
    let kept: Vec<&str> = rep["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["path"].as_str())
        .collect();
    assert!(
        kept.iter().any(|p| p.contains("libnss_dns")),
        "libnss_dns not kept"
    );
    assert!(
        kept.contains(&"/etc/ssl/certs/ca-certificates.crt"),
        "CA bundle not kept"
    );
    assert!(
        !kept
            .iter()
            .any(|p| p.ends_with(".pyc") && p.contains("/app/")),
        "bytecode written by the run leaked"
    );
    check_output(&input, Transport::Oci, &out);
    let _lock = util::port_lock("8000");
    in_clients(&out, |engine, image| {
        let c = start(engine, image, Net::Host, &[]);
        assert_eq!(
            util::wait_http_for(8000, "/", Duration::from_secs(20)),
            Some(200),
            "{engine}: {}",
            c.logs()
        );
        let (code, body) = util::http_get(8000, "/").expect("second request");
        assert_eq!(code, 200);
        assert!(body.contains("ok"), "{engine}: body {body:?}");
    });
}

/// A batch job: the slim image prints the same and exits the same as the original.
fn batch_case(name: &str) {
    let input = util::oci_image(name);
    let dir = util::tester_tempdir();
    let (out, o, rep) = slim(&input, dir.path(), name, &["-t", &tag(name)], false);
    ok(&o);
    assert_eq!(rep["run"]["exit"], "exited 0", "{}", rep["run"]);
    check_output(&input, Transport::Oci, &out);
    if !util::have_docker() {
        return;
    }
    let orig = util::docker_load(&util::docker_image(name));
    let want = util::docker_run(&orig, Net::None, &[], &[]);
    assert!(
        want.status.success(),
        "the original {name} job fails: {want:?}"
    );
    in_clients(&out, |engine, image| {
        let got = run_batch(engine, image);
        assert_eq!(
            got.status.code(),
            want.status.code(),
            "{engine}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&want.stdout),
            "{engine}"
        );
    });
}

#[test]
fn shell_job() {
    batch_case("shell");
}

#[test]
fn perl_job() {
    batch_case("perl");
}

#[test]
fn static_server_and_tiny() {
    let dir = util::tester_tempdir();
    let input = util::oci_image("static");
    let (out, o, _) = slim(&input, dir.path(), "static", &["-t", &tag("static")], false);
    ok(&o);
    assert!(
        std::fs::metadata(&out).unwrap().len() <= std::fs::metadata(&input).unwrap().len() + 4096
    );
    check_output(&input, Transport::Oci, &out);
    serves_http(&out, 8080);
    let input = util::oci_image("tiny");
    let (out, o, _) = slim(&input, dir.path(), "tiny", &["-t", &tag("tiny")], false);
    ok(&o);
    in_clients(&out, |engine, image| {
        let got = run_batch(engine, image);
        assert!(got.status.success(), "{engine}: {got:?}");
        assert_eq!(
            String::from_utf8_lossy(&got.stdout).trim(),
            "hello from tiny"
        );
    });
}

/// postgres started by a shell-script entrypoint: the slim image initializes its own database
/// at start; nothing of the probe run's database is baked in; no world-writable dirs appear.
#[test]
fn postgres_rootless() {
    if !util::can_run_unprivileged() {
        util::skip("rootless run", "no unprivileged user to run as");
        return;
    }
    let input = util::oci_image("postgres");
    let dir = util::tester_tempdir();
    let (out, o, rep) = slim(
        &input,
        dir.path(),
        "postgres",
        &["-t", &tag("postgres")],
        true,
    );
    ok(&o);
    assert!(
        rep["run"]["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ok"] == true),
        "{}",
        rep["run"]
    );
    let entries = &util::image_layers(&out)[0];
    for e in entries {
        assert!(
            !e.path.contains("PG_VERSION") && !e.path.contains("postmaster.pid"),
            "the probe run's database leaked: {}",
            e.path
        );
        if e.kind == 'd' {
            assert!(
                e.mode & 0o002 == 0 || e.mode & 0o1000 != 0,
                "world-writable dir without sticky bit: {} {:o}",
                e.path,
                e.mode
            );
        }
    }
    check_output(&input, Transport::Oci, &out);
    let _lock = util::port_lock("5432");
    in_clients(&out, |engine, image| {
        let c = start(engine, image, Net::Host, &[]);
        let up = util::wait_tcp(5432, Duration::from_secs(60));
        assert!(up, "{engine}: slim postgres does not listen: {}", c.logs());
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            c.logs().contains("ready to accept connections"),
            "{engine}: {}",
            c.logs()
        );
    });
}

/// A multi-layer image with whiteouts: files deleted by the upper layer never come back.
#[test]
fn whiteouts_are_honoured() {
    let input = util::oci_image("nginx");
    let dir = util::tester_tempdir();
    let out = dir.path().join("flat.tar");
    let o = util::oci_slim()
        .arg("flatten")
        .arg(&input)
        .arg(&out)
        .output()
        .unwrap();
    ok(&o);
    let upper = util::image_layers(&input).pop().unwrap();
    let removed: Vec<String> = upper
        .iter()
        .filter_map(|e| {
            let (dir, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
            let n = name.strip_prefix(".wh.")?;
            (n != ".wh..opq").then(|| {
                if dir.is_empty() {
                    n.to_string()
                } else {
                    format!("{dir}/{n}")
                }
            })
        })
        .collect();
    assert!(!removed.is_empty(), "the test image has no whiteouts");
    let flat = util::image_layers(&out).remove(0);
    for r in &removed {
        assert!(
            !flat
                .iter()
                .any(|e| e.path.trim_end_matches('/') == r || e.path.starts_with(&format!("{r}/"))),
            "`{r}` came back"
        );
    }
    assert!(!flat.iter().any(|e| e.path.contains(".wh.")));
    check_output(&input, Transport::Oci, &out);
    // The flattened image runs exactly as the input.
    serves_http(&out, 80);
}

/// The same input and options give a byte-identical output.
#[test]
fn deterministic_output() {
    let input = util::oci_image("shell");
    let dir = util::tester_tempdir();
    let (a, o1, _) = slim(&input, dir.path(), "a", &[], false);
    let (b, o2, _) = slim(&input, dir.path(), "b", &[], false);
    ok(&o1);
    ok(&o2);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "two runs gave different bytes"
    );
    let (c, o3, _) = slim(
        &util::oci_image("nginx"),
        dir.path(),
        "c",
        &["--no-run"],
        false,
    );
    let (d, o4, rep) = slim(
        &util::oci_image("nginx"),
        dir.path(),
        "d",
        &["--no-run"],
        false,
    );
    ok(&o3);
    ok(&o4);
    assert!(
        std::fs::read(&c).unwrap() == std::fs::read(&d).unwrap(),
        "two --no-run runs gave different bytes"
    );
    assert!(rep["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap_or("").contains("--no-run")));
}

/// Policy options on a real image: packages, executables, the shell, includes and excludes.
#[test]
fn policy_options() {
    let input = util::oci_image("shell");
    let dir = util::tester_tempdir();
    let rules = dir.path().join("rules.txt");
    std::fs::write(&rules, "# docs we want\n/usr/share/doc/sed\n").unwrap();
    let (out, o, rep) = slim(
        &input,
        dir.path(),
        "policy",
        &[
            "--no-run",
            "--include-pkg",
            "grep",
            "--include-exe",
            "env",
            "--keep-shell",
            "--include",
            "/etc/debian_version",
            "--include-from",
            rules.to_str().unwrap(),
            "--exclude",
            "/usr/share/man/**",
        ],
        false,
    );
    ok(&o);
    let layer = &util::image_layers(&out)[0];
    let has = |p: &str| layer.iter().any(|e| e.path.trim_end_matches('/') == p);
    for p in [
        "usr/bin/grep",
        "usr/bin/env",
        "usr/bin/dash",
        "bin",
        "etc/debian_version",
        "usr/share/doc/sed/copyright",
        "usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
    ] {
        assert!(has(p), "`{p}` missing");
    }
    assert!(
        !layer
            .iter()
            .any(|e| e.path.starts_with("usr/share/man/") && e.kind != 'd'),
        "excluded man pages kept"
    );
    let kept = rep["kept"].as_array().unwrap();
    let reason = |p: &str| {
        kept.iter()
            .find(|k| k["path"] == p)
            .map(|k| k["reasons"][0]["kind"].clone())
    };
    assert_eq!(reason("/usr/bin/grep"), Some(serde_json::json!("package")));
    assert_eq!(
        reason("/etc/debian_version"),
        Some(serde_json::json!("include"))
    );
    assert_eq!(rep["run"]["traced"], false);
    // Unknown package: a clear error, no output.
    let (out2, o, _) = slim(
        &input,
        dir.path(),
        "bad",
        &["--no-run", "--include-pkg", "no-such-pkg"],
        false,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-pkg"));
    assert!(!out2.exists());
}

/// An image made by `docker build` (legacy builder) and written by `docker save` itself: real
/// docker-made layers with whiteouts, in docker's own archive layout (`repositories`,
/// `<id>/json`, `<id>/layer.tar`). The slim image verifies, runs the same in docker and podman,
/// and holds nothing the later layers deleted.
#[test]
fn docker_built_and_saved_image() {
    if !util::have_docker() {
        return;
    }
    let dir = util::tester_tempdir();
    let base = util::docker_load(&util::docker_image("shell"));
    let built = tag("docker-built");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {base}\n\
             RUN rm -rf /usr/share/doc /etc/debian_version && mkdir /app && \
             printf 'echo built-by-docker\\ncat /app/data.txt\\n[ -e /etc/debian_version ] || echo whiteout-ok\\n' > /app/run.sh\n\
             RUN echo data-from-layer-3 > /app/data.txt\n\
             ENTRYPOINT [\"/bin/sh\", \"/app/run.sh\"]\n"
        ),
    )
    .expect("Dockerfile");
    util::run(
        util::docker()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--network", "none", "-q", "-t", &built])
            .arg(dir.path()),
    );
    let saved = dir.path().join("saved.tar");
    util::run(util::docker().args(["save", "-o"]).arg(&saved).arg(&built));
    let want = util::docker_run(&built, Net::None, &[], &[]);
    util::docker_rmi(&built);
    assert!(want.status.success(), "{want:?}");
    assert_eq!(
        String::from_utf8_lossy(&want.stdout),
        "built-by-docker\ndata-from-layer-3\nwhiteout-ok\n"
    );
    assert!(
        util::tar_member(&saved, "repositories").is_some(),
        "not docker's own layout"
    );
    let whiteouts: usize = util::image_layers(&saved)
        .iter()
        .flatten()
        .filter(|e| e.path.contains(".wh."))
        .count();
    assert!(whiteouts >= 2, "docker wrote {whiteouts} whiteouts");

    let (out, o, rep) = slim(
        &saved,
        dir.path(),
        "docker-built",
        &["-t", &tag("docker-built-slim"), "--verify"],
        false,
    );
    ok(&o);
    assert_eq!(rep["verify"]["verified"], true);
    let names: Vec<String> = util::image_layers(&out)
        .into_iter()
        .flatten()
        .map(|e| e.path)
        .collect();
    for gone in ["etc/debian_version", "usr/share/doc"] {
        assert!(
            !names
                .iter()
                .any(|n| n.trim_end_matches('/') == gone || n.contains(".wh.")),
            "{gone} or a whiteout is in the output"
        );
    }
    in_clients(&out, |engine, image| {
        let got = run_batch(engine, image);
        assert_eq!(got.stdout, want.stdout, "{engine}: {got:?}");
    });
}
