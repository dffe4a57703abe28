//! Smoke tests of the test images built by `testdata/build-images.sh` and of the helpers in
//! `tests/util`: the inputs every other end-to-end test relies on must be valid and must run in
//! real clients (skopeo, docker, podman) before oci-slim touches them.

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;
use util::{Net, Transport};

fn config_of(path: &std::path::Path, t: Transport) -> serde_json::Value {
    util::skopeo_config(path, t)
}

#[test]
fn nginx_archives_inspect_in_both_formats() {
    if !util::have_skopeo() {
        return;
    }
    for (file, t) in [
        ("nginx.oci.tar", Transport::Oci),
        ("nginx.docker.tar", Transport::Docker),
        ("nginx-zstd.oci.tar", Transport::Oci),
    ] {
        let path = util::image(file);
        let inspect = util::skopeo_inspect(&path, t);
        assert_eq!(inspect["Architecture"], "amd64", "{file}");
        assert_eq!(inspect["Os"], "linux", "{file}");
        let layers = inspect["Layers"].as_array().expect("Layers");
        assert_eq!(layers.len(), 2, "{file}: rootfs layer + whiteout layer");
        let cfg = config_of(&path, t);
        assert_eq!(
            cfg["config"]["Entrypoint"],
            serde_json::json!(["/usr/sbin/nginx"]),
            "{file}"
        );
        assert_eq!(
            cfg["config"]["Cmd"],
            serde_json::json!(["-g", "daemon off;"]),
            "{file}"
        );
        assert!(
            cfg["config"]["ExposedPorts"].get("80/tcp").is_some(),
            "{file}: {cfg}"
        );
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(2));
    }
    let manifest = util::tar_member(&util::docker_image("nginx"), "manifest.json")
        .expect("docker-save manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("JSON");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["docker.io/oci-slim-test/nginx:latest"])
    );
}

#[test]
fn nginx_second_layer_has_real_whiteouts() {
    for file in ["nginx.oci.tar", "nginx.docker.tar", "nginx-zstd.oci.tar"] {
        let layers = util::image_layers(&util::image(file));
        assert_eq!(layers.len(), 2, "{file}");
        let lower: Vec<&str> = layers[0].iter().map(|e| e.path.as_str()).collect();
        assert!(
            lower.contains(&"usr/share/doc/nginx-light/copyright"),
            "{file}"
        );
        assert!(lower.contains(&"var/cache/debconf/"), "{file}");
        assert!(lower.contains(&"usr/sbin/nginx"), "{file}");
        let upper: Vec<&str> = layers[1].iter().map(|e| e.path.as_str()).collect();
        for want in [
            "usr/share/doc/nginx-light/.wh.copyright",
            "var/cache/.wh.debconf",
            "var/www/html/index.nginx-debian.html",
            "etc/oci-slim-layer2",
        ] {
            assert!(upper.contains(&want), "{file}: `{want}` not in {upper:?}");
        }
        assert!(
            !upper.contains(&"usr/sbin/nginx"),
            "{file}: layer 2 must only hold changes"
        );
    }
}

#[test]
fn nginx_zstd_layers_are_zstd() {
    let path = util::image("nginx-zstd.oci.tar");
    let idx: serde_json::Value =
        serde_json::from_slice(&util::tar_member(&path, "index.json").expect("index.json"))
            .expect("index.json JSON");
    let md = idx["manifests"][0]["digest"].as_str().expect("digest");
    let blob = |d: &str| {
        util::tar_member(&path, &format!("blobs/sha256/{}", &d["sha256:".len()..]))
            .expect("blob present")
    };
    let manifest: serde_json::Value = serde_json::from_slice(&blob(md)).expect("manifest JSON");
    for l in manifest["layers"].as_array().expect("layers") {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{l}"
        );
        let b = blob(l["digest"].as_str().expect("digest"));
        assert_eq!(&b[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    }
}

#[test]
fn every_image_has_its_entrypoint_and_ports() {
    if !util::have_skopeo() {
        return;
    }
    let table: &[(&str, &[&str], Option<&str>)] = &[
        ("python", &["python3", "/app/server.py"], Some("8000/tcp")),
        ("shell", &["/job.sh"], None),
        ("static", &["/server"], Some("8080/tcp")),
        ("tiny", &["/hello"], None),
        ("postgres", &["/usr/local/bin/entry.sh"], Some("5432/tcp")),
        ("perl", &["/usr/bin/perl"], None),
    ];
    for (name, entry, port) in table {
        for (path, t) in [
            (util::oci_image(name), Transport::Oci),
            (util::docker_image(name), Transport::Docker),
        ] {
            let cfg = config_of(&path, t);
            assert_eq!(
                cfg["config"]["Entrypoint"],
                serde_json::json!(entry),
                "{name}"
            );
            if let Some(p) = port {
                assert!(
                    cfg["config"]["ExposedPorts"].get(p).is_some(),
                    "{name}: {cfg}"
                );
            }
        }
    }
}

#[test]
fn tiny_and_static_images_hold_one_file_and_no_libc() {
    for (name, file, max) in [("tiny", "hello", 4096u64), ("static", "server", 2 << 20)] {
        let layers = util::image_layers(&util::oci_image(name));
        assert_eq!(layers.len(), 1, "{name}");
        let entries = &layers[0];
        assert_eq!(entries.len(), 1, "{name}: {entries:?}");
        assert_eq!(entries[0].path, file);
        assert_eq!(entries[0].kind, 'f');
        assert_eq!(entries[0].mode & 0o777, 0o755);
        assert!(entries[0].size < max, "{name}: {} bytes", entries[0].size);
    }
    let tiny = std::fs::metadata(util::oci_image("tiny"))
        .expect("tiny")
        .len();
    assert!(tiny <= 16 * 1024, "tiny.oci.tar is {tiny} bytes");
}

#[test]
fn rootfs_images_carry_fixed_hosts_and_no_host_resolv_conf() {
    for path in [util::oci_image("shell"), util::docker_image("shell")] {
        let layers = util::image_layers(&path);
        assert_eq!(layers.len(), 1);
        let names: Vec<&str> = layers[0].iter().map(|e| e.path.as_str()).collect();
        for want in [
            "etc/hosts",
            "etc/resolv.conf",
            "etc/hostname",
            "job.sh",
            "bin",
        ] {
            assert!(names.contains(&want), "`{want}` missing");
        }
        let debs = names
            .iter()
            .filter(|n| n.starts_with("var/cache/apt/archives/") && n.ends_with(".deb"))
            .count();
        assert_eq!(debs, 0, "downloaded packages must not stay in the image");
        let hosts = util::image_file(&path, "/etc/hosts").expect("/etc/hosts");
        assert!(String::from_utf8_lossy(&hosts).contains("127.0.0.1\tlocalhost"));
        let hostname = util::image_file(&path, "/etc/hostname").expect("/etc/hostname");
        assert_eq!(hostname, b"oci-slim-test\n");
        let resolv = util::image_file(&path, "/etc/resolv.conf").expect("/etc/resolv.conf");
        assert!(
            !String::from_utf8_lossy(&resolv).contains("nameserver"),
            "the host's resolver config leaked into the image"
        );
    }
}

#[test]
fn each_image_holds_only_its_own_packages() {
    // (image, paths that must be there, paths that belong to other images' packages)
    let table: &[(&str, &[&str], &[&str])] = &[
        (
            "shell",
            &["usr/bin/sh", "usr/bin/sed", "bin"],
            &["usr/sbin/nginx", "usr/bin/python3", "usr/lib/postgresql/"],
        ),
        (
            "perl",
            &["usr/share/perl/"],
            &["usr/sbin/nginx", "usr/bin/python3"],
        ),
        (
            "python",
            &["usr/bin/python3", "etc/ssl/certs/ca-certificates.crt"],
            &["usr/sbin/nginx", "usr/lib/postgresql/"],
        ),
        (
            "nginx",
            &["usr/sbin/nginx"],
            &["usr/bin/python3", "usr/lib/postgresql/"],
        ),
        (
            "postgres",
            &["usr/lib/postgresql/15/bin/postgres"],
            &[
                "usr/sbin/nginx",
                "usr/bin/python3",
                "var/lib/postgresql/15/main/",
            ],
        ),
    ];
    for (name, present, absent) in table {
        // the docker archive holds uncompressed layers: quick to list in debug builds
        let layers = util::image_layers(&util::docker_image(name));
        let names: std::collections::BTreeSet<&str> =
            layers[0].iter().map(|e| e.path.as_str()).collect();
        for p in *present {
            assert!(names.contains(p), "{name}: `{p}` missing");
        }
        for p in *absent {
            assert!(
                !names.contains(p),
                "{name}: `{p}` must not be in this image"
            );
        }
    }
}

#[test]
fn util_http_helpers_talk_to_a_local_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Answers every connection (a loaded machine may make the helper retry), reports requests.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            // A request may arrive in several segments: read up to the blank line that ends it.
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
            let _ = s.write_all(b"HTTP/1.0 418 I'm a teapot\r\nContent-Length: 3\r\n\r\ntea");
        }
    });
    assert_eq!(util::wait_http(port, "/probe"), Some(418));
    // Other tests in this process poll ports they got from `free_port`; the kernel may hand the
    // same number to this listener, so a bare connect (an empty request) can come first.
    let req = loop {
        let req = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the server saw a request");
        if !req.is_empty() {
            break req;
        }
    };
    assert!(req.starts_with("GET /probe HTTP/1.0\r\n"), "{req}");
    // nothing listens on a fresh free port
    let idle = util::free_port();
    assert_eq!(
        util::wait_http_for(idle, "/", Duration::from_millis(300)),
        None
    );
}

fn assert_job(name: &str, out: &std::process::Output, want: &str) {
    assert!(
        out.status.success(),
        "{name}: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{name}");
}

#[test]
fn docker_runs_the_input_images() {
    if !util::have_docker() {
        return;
    }
    // nginx listens on port 80 of the host network: one test at a time.
    {
        let image = util::docker_load(&util::docker_image("nginx"));
        let _lock = util::port_lock("80");
        let c = util::docker_start(&image, Net::Host, &[], &[]);
        let got = util::wait_http(80, "/");
        let body = util::http_get(80, "/").map(|(_, b)| b).unwrap_or_default();
        assert_eq!(got, Some(200), "nginx logs:\n{}", c.logs());
        assert!(body.contains("hello from nginx layer 2"), "{body}");
    }
    for (name, want) in [
        ("shell", "job ok 42\n"),
        ("perl", "perl ok 42 42 1970-01-01\n"),
        ("tiny", "hello from tiny\n"),
    ] {
        let image = util::docker_load(&util::docker_image(name));
        let out = util::docker_run(&image, Net::None, &[], &[]);
        assert_job(name, &out, want);
    }
    let static_image = util::docker_load(&util::docker_image("static"));
    let port = util::free_port();
    let c = util::docker_start(&static_image, Net::Host, &[], &[&port.to_string()]);
    assert_eq!(util::wait_http(port, "/"), Some(200), "{}", c.logs());
    assert_eq!(
        util::http_get(port, "/").map(|r| r.1).as_deref(),
        Some("static ok\n")
    );
    drop(c);

    let py = util::docker_load(&util::docker_image("python"));
    let port = util::free_port();
    let c = util::docker_start(&py, Net::Host, &[], &[&port.to_string()]);
    assert_eq!(util::wait_http(port, "/"), Some(200), "{}", c.logs());
    assert_eq!(
        util::http_get(port, "/").map(|r| r.1).as_deref(),
        Some("ok")
    );
}

#[test]
fn docker_runs_postgres() {
    if !util::have_docker() {
        return;
    }
    let image = util::docker_load(&util::docker_image("postgres"));
    let port = util::free_port();
    let c = util::docker_start(&image, Net::Host, &[], &["-p", &port.to_string()]);
    assert!(
        util::wait_tcp(port, Duration::from_secs(60)),
        "postgres did not listen on {port}:\n{}",
        c.logs()
    );
}

#[test]
fn podman_runs_the_input_images() {
    if !util::have_podman() {
        return;
    }
    {
        let image = util::podman_load(&util::oci_image("nginx"));
        let _lock = util::port_lock("80");
        let c = util::podman_start(&image, Net::Host, &[], &[]);
        assert_eq!(
            util::wait_http(80, "/"),
            Some(200),
            "nginx logs:\n{}",
            c.logs()
        );
    }
    let image = util::podman_load(&util::docker_image("shell"));
    let out = util::podman_run(&image, Net::None, &[], &[]);
    assert_job("shell", &out, "job ok 42\n");
    let image = util::podman_load(&util::oci_image("tiny"));
    let out = util::podman_run(&image, Net::None, &[], &[]);
    assert_job("tiny", &out, "hello from tiny\n");
}

#[test]
fn as_tester_runs_unprivileged() {
    if !nix::unistd::geteuid().is_root() {
        // already unprivileged: as_tester is the identity
        let c = util::as_tester(std::process::Command::new("id"));
        assert_eq!(c.get_program(), "id");
        return;
    }
    if !util::tester_exists() {
        util::skip("user `tester`", "no such user (created by .ci/run)");
        return;
    }
    let mut c = std::process::Command::new("id");
    c.arg("-un");
    let out = util::run(&mut util::as_tester(c));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), util::TESTER);
}

#[test]
fn share_with_tester_makes_a_private_file_readable() {
    if !nix::unistd::geteuid().is_root() || !util::tester_exists() {
        return; // nothing to share: the test user is ourselves or absent
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = util::tester_tempdir();
    let sub = dir.path().join("private");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let file = sub.join("secret");
    std::fs::write(&file, "shared\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cat = |f: &std::path::Path| {
        let mut c = std::process::Command::new("cat");
        c.arg(f);
        util::as_tester(c).output().expect("run cat")
    };
    assert!(
        !cat(&file).status.success(),
        "tester must not read a 0600 file in a 0700 dir"
    );
    util::share_with_tester(&file);
    let out = cat(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"shared\n");
}
