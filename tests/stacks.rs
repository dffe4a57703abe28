//! End to end on more real stacks: redis, node, java (OpenJDK 17) and a static Go server, all
//! built by `testdata/build-images.sh`. Each output is checked for fidelity against its input
//! (umoci as the independent oracle), loaded into docker and podman, run with `--network host`
//! and asked as a client would (redis-cli, HTTP). Sizes are printed as `SIZES` lines (run with
//! `--nocapture` to see them).

mod util;

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use util::{Net, Transport};

/// Run `oci-slim IN OUT --report R ARGS`; the output path, the process output and the report.
fn slim(
    input: &Path,
    dir: &Path,
    name: &str,
    args: &[&str],
) -> (PathBuf, Output, serde_json::Value) {
    let out = dir.join(format!("{name}.tar"));
    let report = dir.join(format!("{name}.json"));
    let output = util::oci_slim()
        .arg(input)
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running oci-slim");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "oci-slim panicked: {stderr}");
    assert!(
        output.status.success(),
        "oci-slim failed on {name} ({}):\n{stderr}",
        output.status
    );
    let rep: serde_json::Value = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("no readable report `{}`", report.display()));
    (out, output, rep)
}

fn tag(name: &str) -> String {
    format!("oci-slim-stacks/{name}:{}", std::process::id())
}

fn kept(rep: &serde_json::Value) -> BTreeSet<String> {
    rep["kept"]
        .as_array()
        .expect("report without `kept`")
        .iter()
        .filter_map(|k| k["path"].as_str().map(str::to_string))
        .collect()
}

/// Print and return `(input archive bytes, input file bytes, kept file bytes)` of a report.
fn sizes(name: &str, rep: &serde_json::Value) -> (u64, u64, u64) {
    let num = |v: &serde_json::Value, what: &str| {
        v.as_u64()
            .unwrap_or_else(|| panic!("report field `{what}` missing: {v}"))
    };
    let s = (
        num(&rep["input"]["archive_bytes"], "input.archive_bytes"),
        num(&rep["input"]["file_bytes"], "input.file_bytes"),
        num(&rep["output"]["file_bytes"], "output.file_bytes"),
    );
    eprintln!(
        "SIZES {name}: input archive {} B, input files {} B ({:.1} MB), kept files {} B ({:.1} MB), output archive {} B",
        s.0,
        s.1,
        s.1 as f64 / 1e6,
        s.2,
        s.2 as f64 / 1e6,
        rep["output"]["archive_bytes"]
    );
    assert!(
        s.2 > 0 && s.2 <= s.1,
        "{name}: kept {} of {} bytes",
        s.2,
        s.1
    );
    s
}

/// The probe named `name` in the report passed.
fn probe_ok(rep: &serde_json::Value, name: &str) {
    let probes = rep["run"]["probes"]
        .as_array()
        .expect("no probes in report");
    let p = probes
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("probe `{name}` not in report: {}", rep["run"]));
    assert_eq!(p["ok"], true, "probe `{name}` failed: {p}");
}

/// Names of the entries of the output's single layer.
fn layer_names(out: &Path) -> Vec<String> {
    let layers = util::image_layers(out);
    assert_eq!(layers.len(), 1, "output has {} layers", layers.len());
    layers[0].iter().map(|e| e.path.clone()).collect()
}

/// Both halves readable by skopeo with the input's config, one layer, and every entry equal to
/// the same path of the input as unpacked by umoci.
fn check_output(input: &Path, out: &Path) {
    if !util::have_skopeo() {
        return;
    }
    let a = util::skopeo_config(input, Transport::Oci);
    for t in [Transport::Oci, Transport::Docker] {
        let b = util::skopeo_config(out, t);
        for key in ["config", "architecture", "os"] {
            assert_eq!(a[key], b[key], "config field `{key}` changed");
        }
        assert_eq!(b["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["history"].as_array().map(Vec::len), Some(1));
    }
    fidelity(input, out);
}

fn fidelity(input: &Path, out: &Path) {
    if !nix::unistd::geteuid().is_root() || Command::new("umoci").arg("--version").output().is_err()
    {
        util::skip("umoci", "fidelity check needs root and umoci");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let layout = dir.path().join("L");
    std::fs::create_dir(&layout).expect("mkdir");
    util::run(
        Command::new("tar")
            .arg("-xf")
            .arg(input)
            .arg("-C")
            .arg(&layout),
    );
    util::run(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest", layout.display()))
            .arg(dir.path().join("bundle")),
    );
    let rootfs = dir.path().join("bundle/rootfs");
    let layer = util::image_layer_blobs(out).remove(0);
    let reader: Box<dyn Read> = if layer.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
            layer,
        )))
    } else {
        Box::new(std::io::Cursor::new(layer))
    };
    let mut ar = tar::Archive::new(reader);
    let mut seen = BTreeSet::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = String::from_utf8_lossy(&e.path_bytes())
            .trim_end_matches('/')
            .to_string();
        assert!(seen.insert(path.clone()), "duplicate entry `{path}`");
        let h = e.header().clone();
        let host = rootfs.join(&path);
        let md = std::fs::symlink_metadata(&host)
            .unwrap_or_else(|_| panic!("`{path}` is in the output but not in the input"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            h.mode().unwrap_or(0) & 0o7777,
            md.mode() & 0o7777,
            "mode of `{path}`"
        );
        assert_eq!(
            h.uid().unwrap_or(u64::MAX),
            u64::from(md.uid()),
            "uid of `{path}`"
        );
        assert_eq!(
            h.gid().unwrap_or(u64::MAX),
            u64::from(md.gid()),
            "gid of `{path}`"
        );
        match h.entry_type() {
            tar::EntryType::Regular => {
                assert!(md.is_file(), "`{path}` type");
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read entry");
                let want = std::fs::read(&host).expect("read input file");
                assert!(
                    Sha256::digest(&data) == Sha256::digest(&want),
                    "bytes of `{path}` differ from the input"
                );
            }
            tar::EntryType::Directory => assert!(md.is_dir(), "`{path}` type"),
            tar::EntryType::Symlink => {
                let t = std::fs::read_link(&host).expect("readlink");
                assert_eq!(
                    e.link_name_bytes().map(|l| l.to_vec()),
                    Some(t.as_os_str().as_encoded_bytes().to_vec()),
                    "target of `{path}`"
                );
            }
            tar::EntryType::Link => assert!(md.is_file(), "`{path}` type"),
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {}
            other => panic!("unexpected entry type {other:?} for `{path}`"),
        }
    }
    assert!(!seen.is_empty(), "the output layer is empty");
}

/// Load into docker and podman in turn and call `check` with the engine and image name.
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

fn start(engine: &str, image: &str) -> util::Container {
    if engine == "docker" {
        util::docker_start(image, Net::Host, &[], &[])
    } else {
        util::podman_start(image, Net::Host, &[], &[])
    }
}

/// An HTTP server image: the slim image serves 200 with `body` on `port` in both clients.
/// The output and the report stay in `dir`.
fn http_case(
    dir: &Path,
    name: &str,
    port: u16,
    body: &str,
    args: &[&str],
) -> (PathBuf, serde_json::Value) {
    let input = util::oci_image(name);
    let t = tag(name);
    let mut all = vec!["-t", t.as_str()];
    all.extend_from_slice(args);
    let (out, _, rep) = slim(&input, dir, name, &all);
    // the default probe: GET / on the exposed port, inside the sandbox
    probe_ok(&rep, &format!("http://127.0.0.1:{port}/"));
    check_output(&input, &out);
    let _lock = util::port_lock(&port.to_string());
    in_clients(&out, |engine, image| {
        let c = start(engine, image);
        assert_eq!(
            util::wait_http_for(port, "/", Duration::from_secs(60)),
            Some(200),
            "{engine}: slim {name} does not serve 200: {}",
            c.logs()
        );
        let (code, got) = util::http_get(port, "/").expect("second request");
        assert_eq!(code, 200, "{engine}: {got}");
        assert_eq!(got.trim(), body, "{engine}: body");
    });
    (out, rep)
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = util::run(
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn have_redis_cli() -> bool {
    Command::new("redis-cli").arg("--version").output().is_ok()
        || util::skip("redis-cli", "no `redis-cli` (apt-get install redis-tools)")
}

#[test]
fn redis_server() {
    if !have_redis_cli() {
        return;
    }
    let input = util::oci_image("redis");
    let dir = tempfile::tempdir().expect("temp dir");
    let probe = "redis-cli -p 6379 ping";
    let (out, _, rep) = slim(
        &input,
        dir.path(),
        "redis",
        &["-t", &tag("redis"), "--probe", probe],
    );
    probe_ok(&rep, &format!("command: {probe}"));
    sizes("redis", &rep);
    let k = kept(&rep);
    assert!(k.contains("/usr/bin/redis-server"), "redis-server not kept");
    assert!(
        !layer_names(&out).iter().any(|p| p.ends_with(".rdb")),
        "a dump file the run wrote leaked"
    );
    check_output(&input, &out);
    let _lock = util::port_lock("6379");
    in_clients(&out, |engine, image| {
        let c = start(engine, image);
        assert!(
            util::wait_tcp(6379, Duration::from_secs(30)),
            "{engine}: redis does not listen: {}",
            c.logs()
        );
        assert_eq!(redis_cli(6379, &["ping"]), "PONG", "{engine}: {}", c.logs());
        let key = format!("oci-slim-{engine}");
        assert_eq!(redis_cli(6379, &["set", &key, "hello"]), "OK");
        assert_eq!(redis_cli(6379, &["get", &key]), "hello");
    });
}

#[test]
fn node_app() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, rep) = http_case(dir.path(), "node", 3000, "ok", &[]);
    sizes("node", &rep);
    let k = kept(&rep);
    assert!(
        k.iter().any(|p| p.contains("libnss_files")),
        "libnss_files not kept"
    );
    assert!(k.contains("/app/server.js"), "the app is not kept");
}

#[test]
fn java_app() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, rep) = http_case(dir.path(), "java", 8080, "ok", &["--wait", "2"]);
    let (_, _, kept_bytes) = sizes("java", &rep);
    let names = layer_names(&out);
    assert!(
        !names.iter().any(|p| p.contains("hsperfdata")),
        "JVM perf data of the run leaked: {:?}",
        names
            .iter()
            .filter(|p| p.contains("hsperfdata"))
            .collect::<Vec<_>>()
    );
    assert!(
        kept(&rep).contains("/app/Server.class"),
        "the app class is not kept"
    );
    // a peer tool keeps 174.8 MB of files for a JRE 17 server: we must not keep more
    assert!(
        kept_bytes <= 174_800_000,
        "java kept {kept_bytes} bytes of files (goal: at most 174.8 MB)"
    );
}

#[test]
fn go_static_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, rep) = http_case(dir.path(), "go", 8080, "go ok", &[]);
    let (_, in_bytes, kept_bytes) = sizes("go", &rep);
    assert_eq!(kept_bytes, in_bytes, "the single binary must be kept whole");
    // a peer tool keeps 5.1 MB for a Go server
    assert!(
        kept_bytes <= 5_100_000,
        "go kept {kept_bytes} bytes (goal: at most 5.1 MB)"
    );
    let input = util::oci_image("go");
    assert!(
        std::fs::metadata(&out).expect("output").len()
            <= std::fs::metadata(&input).expect("input").len() + 4096,
        "the slim go image is larger than its input"
    );
}

/// The same redis image slimmed by the unprivileged user `tester`: the probe passes and the
/// output holds the input's own bytes.
#[test]
fn redis_rootless() {
    if !have_redis_cli() {
        return;
    }
    if !util::can_run_unprivileged() {
        util::skip("rootless run", "no unprivileged user to run as");
        return;
    }
    let input = util::oci_image("redis");
    util::share_with_tester(&input);
    let dir = util::tester_tempdir();
    let out = dir.path().join("redis.tar");
    let report = dir.path().join("redis.json");
    let probe = "redis-cli -p 6379 ping";
    let mut cmd = util::oci_slim();
    cmd.arg(&input)
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args(["-t", &tag("redis-rootless"), "--probe", probe])
        // As Debian's redis user, whose WorkingDir /var/lib/redis is `redis:redis 0750` in
        // the image: the run works only if the staged files carry the image's owners.
        .args(["--user", "redis"]);
    let o = util::as_tester(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("running oci-slim");
    assert!(
        o.status.success(),
        "rootless oci-slim failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("report JSON");
    probe_ok(&rep, &format!("command: {probe}"));
    sizes("redis-rootless", &rep);
    check_output(&input, &out);
}

/// `--verify`: every stack's slim image, run again from its single layer with the same probes,
/// agrees with the original on the first round.
#[test]
fn stacks_verify_on_the_first_round() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis_probe = ["--probe", "redis-cli -p 6379 ping"];
    let cases: [(&str, &[&str]); 4] = [
        ("go", &[]),
        ("redis", &redis_probe),
        ("node", &[]),
        ("java", &["--wait", "2"]),
    ];
    for (name, extra) in cases {
        if name == "redis" && !have_redis_cli() {
            continue;
        }
        let mut args = vec!["--verify"];
        args.extend_from_slice(extra);
        let (out, _, rep) = slim(&util::oci_image(name), dir.path(), name, &args);
        let v = &rep["verify"];
        assert_eq!(v["verified"], true, "{name}: {v}");
        let rounds = v["rounds"].as_array().expect("verify rounds");
        assert_eq!(rounds.len(), 1, "{name}: {v}");
        assert_eq!(rounds[0]["agreed"], true, "{name}: {v}");
        assert!(out.is_file(), "{name}: no output");
        eprintln!(
            "VERIFY {name}: ok, kept files {} B",
            rep["output"]["file_bytes"]
        );
    }
}
