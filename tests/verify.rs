//! `--verify`: the slim image is run again from its own single layer, compared with the
//! original, and repaired from what the second run misses.

mod util;

use std::path::Path;
use std::process::{Output, Stdio};

fn slim(input: &Path, out: &Path, args: &[&str], rootless: bool) -> (Output, serde_json::Value) {
    let report = out.with_extension("json");
    let mut cmd = util::oci_slim();
    cmd.arg(input)
        .arg(out)
        .arg("--report")
        .arg(&report)
        .arg("--verify")
        .args(args);
    let mut cmd = if rootless {
        util::share_with_tester(input);
        util::as_tester(cmd)
    } else {
        cmd
    };
    let o = cmd.stdin(Stdio::null()).output().expect("running oci-slim");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    let rep = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, rep)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("candidate") || n.starts_with(".tmp"))
        .collect()
}

#[test]
fn nginx_and_python_verify_on_the_first_round() {
    let dir = util::tester_tempdir();
    for name in ["nginx", "python"] {
        let out = dir.path().join(format!("{name}.tar"));
        let (o, rep) = slim(&util::oci_image(name), &out, &[], false);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(rep["verify"]["verified"], true, "{name}: {}", rep["verify"]);
        let rounds = rep["verify"]["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 1, "{name}: {}", rep["verify"]);
        assert_eq!(rounds[0]["agreed"], true);
        assert!(out.exists());
    }
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// The job reads a file named by an env var that only the verify runs set: the first run never
/// touches it, the verify run misses it, the repair adds it, and the second round agrees.
fn repair_case(rootless: bool) {
    let dir = util::tester_tempdir();
    let out = dir.path().join("job.tar");
    let args = [
        "--entrypoint",
        r#"["/bin/sh","-c","cat ${F:-/etc/hostname}"]"#,
        "--verify-env",
        "F=/etc/debian_version",
    ];
    let (o, rep) = slim(&util::oci_image("shell"), &out, &args, rootless);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &rep["verify"];
    assert_eq!(v["verified"], true, "{v}");
    let rounds = v["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{v}");
    assert_eq!(rounds[0]["agreed"], false);
    assert_eq!(
        rounds[0]["added"],
        serde_json::json!(["/etc/debian_version"]),
        "{v}"
    );
    let kept = rep["kept"].as_array().unwrap();
    let dv = kept
        .iter()
        .find(|k| k["path"] == "/etc/debian_version")
        .expect("repaired file in the report");
    assert_eq!(dv["reasons"][0]["kind"], "repair", "{dv}");
    let layer = &util::image_layers(&out)[0];
    assert!(
        layer.iter().any(|e| e.path == "etc/debian_version"),
        "the repaired file is not in the image"
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn repair_adds_what_the_verify_run_misses() {
    repair_case(false);
}

#[test]
fn repair_rootless() {
    if !util::can_run_unprivileged() {
        util::skip("rootless run", "no unprivileged user to run as");
        return;
    }
    repair_case(true);
}

/// `--exclude` removes a library nginx needs for real: verification fails with a diff naming
/// the missing path; `--strict` writes nothing; without it the image is written, unverified.
#[test]
fn excluded_library_fails_verification() {
    let dir = util::tester_tempdir();
    let input = util::oci_image("nginx");
    let ex = ["--exclude", "/usr/lib/x86_64-linux-gnu/libpcre2-8.so*"];
    let out = dir.path().join("strict.tar");
    let (o, rep) = slim(
        &input,
        &out,
        &[&ex[..], &["--strict", "--verify-rounds", "2"]].concat(),
        false,
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("libpcre2-8.so.0"),
        "the diff does not name the missing library: {err}"
    );
    assert!(err.contains("probe http://127.0.0.1:80/"), "{err}");
    assert!(!out.exists(), "--strict wrote an output");
    assert_eq!(rep["verify"]["verified"], false);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );

    let out = dir.path().join("loose.tar");
    let (o, rep) = slim(&input, &out, &ex, false);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("UNVERIFIED"));
    assert!(
        out.exists(),
        "without --strict the best candidate is written"
    );
    assert!(rep["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("UNVERIFIED")));
}

#[test]
fn excluded_interpreter_is_a_disagreement_not_a_crash() {
    let dir = util::tester_tempdir();
    let input = util::oci_image("shell");
    let out = dir.path().join("noshell.tar");
    let (o, rep) = slim(&input, &out, &["--exclude", "/usr/bin/dash"], false);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("--exclude removes /usr/bin/dash, the `#!` interpreter"),
        "no warning before the run: {err}"
    );
    assert!(err.contains("cannot start its program"), "{err}");
    assert!(
        err.contains("missing in the slim image: /bin/sh"),
        "the diff does not name the interpreter: {err}"
    );
    assert!(
        out.exists(),
        "without --strict the best candidate is written"
    );
    assert_eq!(rep["verify"]["verified"], false);
    assert_eq!(rep["verify"]["rounds"][0]["agreed"], false);
}

#[test]
fn a_run_that_fails_for_the_original_is_not_verified() {
    let dir = util::tester_tempdir();
    let input = util::oci_image("nginx");
    let out = dir.path().join("broken-probe.tar");
    let (o, rep) = slim(&input, &out, &["--probe", "false", "--strict"], false);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("failed for the original image too"),
        "the reason is not given: {err}"
    );
    assert!(!out.exists(), "--strict wrote an output");
    assert_eq!(rep["verify"]["verified"], false);
}
