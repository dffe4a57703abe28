//! The subcommands on real images: `trace`, `inspect`, `--help`, and the error path.

mod util;

use std::process::Stdio;

fn trace_nginx(rootless: bool) {
    let input = util::oci_image("nginx");
    let mut cmd = util::oci_slim();
    cmd.arg("trace").arg(&input).arg("--json").arg("-q");
    let mut cmd = if rootless {
        util::share_with_tester(&input);
        util::as_tester(cmd)
    } else {
        cmd
    };
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("trace --json prints JSON");
    let nginx = v["executables"]["/usr/sbin/nginx"]
        .as_array()
        .expect("nginx's own accesses");
    let paths: Vec<&str> = nginx.iter().filter_map(|e| e["path"].as_str()).collect();
    for want in [
        "/etc/nginx/nginx.conf",
        "/etc/passwd",
        "/etc/nsswitch.conf",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ] {
        assert!(paths.contains(&want), "{want} not traced: {paths:?}");
    }
    let interp = nginx
        .iter()
        .find(|e| e["path"] == "/lib64/ld-linux-x86-64.so.2")
        .unwrap();
    assert_eq!(interp["syscalls"], serde_json::json!(["kernel:pt_interp"]));
    assert_eq!(v["probes"][0]["ok"], true, "{}", v["probes"]);
    assert_eq!(v["exit"], "stopped by oci-slim after the probes");
    // With a subordinate range (tester) or as root, the workers' switch to www-data is real.
    let mode = v["id_mode"].as_str().unwrap();
    let want = if rootless && util::tester_exists() {
        "subordinate id range"
    } else {
        "private id range"
    };
    assert!(mode.contains(want), "{mode}");
}

#[test]
fn trace_nginx_as_root() {
    trace_nginx(false);
}

#[test]
fn trace_nginx_rootless() {
    if !util::can_run_unprivileged() {
        util::skip("rootless run", "no unprivileged user to run as");
        return;
    }
    trace_nginx(true);
}

#[test]
fn inspect_json_and_text() {
    let input = util::docker_image("nginx");
    let o = util::oci_slim()
        .arg("inspect")
        .arg(&input)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["platform"], "linux/amd64");
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["config"]["entrypoint"],
        serde_json::json!(["/usr/sbin/nginx"])
    );
    assert_eq!(v["exposed_ports"], serde_json::json!(["80/tcp"]));
    assert!(
        v["hidden_bytes"].as_u64().unwrap() > 0,
        "layer 2 deletes files: {v}"
    );
    assert!(v["files"].as_u64().unwrap() > 1000);
    let largest = v["largest"].as_array().unwrap();
    assert_eq!(largest.len(), 10);
    assert!(largest[0][1].as_u64() >= largest[9][1].as_u64());
    let o = util::oci_slim()
        .arg("inspect")
        .arg(&input)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("entrypoint: [\"/usr/sbin/nginx\"]"), "{text}");
    assert!(text.contains("hidden by later layers"), "{text}");
}

#[test]
fn help_teaches() {
    let o = util::oci_slim().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for want in [
        "oci-slim [OPTIONS] <IN> <OUT>",
        "--http-probe",
        "--probe",
        "--exec",
        "--verify",
        "--include-pkg",
        "--no-run",
        "/etc/subuid",
        "Examples:",
    ] {
        assert!(help.contains(want), "--help lacks {want}");
    }
}

#[test]
fn errors_are_one_line_with_no_output() {
    let dir = util::tester_tempdir();
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all, just text\n").unwrap();
    let out = dir.path().join("out.tar");
    let o = util::oci_slim().arg(&junk).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("hint:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(!out.exists());
    let o = util::oci_slim()
        .arg(dir.path().join("missing.tar"))
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.tar"));
    let o = util::oci_slim()
        .args(["--http-probe", "x"])
        .arg(&junk)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--http-probe x"));
}

/// `flatten` works rootless and keeps what an unprivileged user cannot create on disk:
/// root ownership and setuid bits come from the tree, not from the staging directory.
#[test]
fn flatten_rootless_keeps_owners_and_setuid() {
    if !util::can_run_unprivileged() {
        util::skip("rootless run", "no unprivileged user to run as");
        return;
    }
    let input = util::oci_image("nginx");
    util::share_with_tester(&input);
    let dir = util::tester_tempdir();
    let out = dir.path().join("flat.tar");
    let mut cmd = util::oci_slim();
    cmd.arg("flatten")
        .arg(&input)
        .arg(&out)
        .arg("-q")
        .env("TMPDIR", dir.path());
    let o = util::as_tester(cmd).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let layer = &util::image_layers(&out)[0];
    let su = layer
        .iter()
        .find(|e| e.path == "usr/bin/su")
        .expect("su in the flattened image");
    assert_eq!((su.mode & 0o7777, su.uid, su.gid), (0o4755, 0, 0), "{su:?}");
    let shadow = layer
        .iter()
        .find(|e| e.path == "etc/shadow")
        .expect("shadow");
    assert_eq!(shadow.mode & 0o7777, 0o640);
    assert_eq!(shadow.gid, 42, "shadow group");
    // Nothing left behind in TMPDIR but the output.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("flat.tar")]);
}
