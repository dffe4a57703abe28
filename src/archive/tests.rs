use super::*;
use serde_json::{json, Value};
use std::io::Write;

// ---- builders ---------------------------------------------------------------------------------

/// A layer tar holding the given files.
fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Two gzip members back to back, as pigz and some registries write.
fn gzip_multi(data: &[u8]) -> Vec<u8> {
    let (a, b) = data.split_at(data.len() / 2);
    let mut out = gzip(a);
    out.extend(gzip(b));
    out
}

fn zstd_bytes(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

#[derive(Clone)]
struct Layer {
    stored: Vec<u8>,
    diff_id: Digest,
    media_type: &'static str,
}

fn layer(comp: Compression, files: &[(&str, &[u8])]) -> Layer {
    let raw = layer_tar(files);
    let diff_id = Digest::of_bytes(&raw);
    let (stored, media_type) = match comp {
        Compression::None => (raw, "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => (gzip(&raw), "application/vnd.oci.image.layer.v1.tar+gzip"),
        Compression::Zstd => (
            zstd_bytes(&raw),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    };
    Layer {
        stored,
        diff_id,
        media_type,
    }
}

/// Files of an archive, in order; written as a tar or a directory.
#[derive(Default, Clone)]
struct Files(Vec<(String, Vec<u8>)>);

impl Files {
    fn add(&mut self, name: &str, data: Vec<u8>) {
        self.0.push((name.to_owned(), data));
    }
    fn set(&mut self, name: &str, data: Vec<u8>) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = data,
            None => self.add(name, data),
        }
    }
    fn get(&self, name: &str) -> &[u8] {
        &self.0.iter().find(|(n, _)| n == name).unwrap().1
    }
    fn blob(&mut self, data: Vec<u8>) -> (Digest, u64) {
        let d = Digest::of_bytes(&data);
        let size = data.len() as u64;
        let name = blob_name(&d);
        if !self.0.iter().any(|(n, _)| *n == name) {
            self.add(&name, data);
        }
        (d, size)
    }
    fn tar_bytes(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in &self.0 {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }
    fn write_tar(&self, dir: &tempfile::TempDir) -> PathBuf {
        write_file(dir, &self.tar_bytes())
    }
    fn write_dir(&self, dir: &tempfile::TempDir) -> PathBuf {
        let root = dir.path().join("layout");
        for (name, data) in &self.0 {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        root
    }
}

fn write_file(dir: &tempfile::TempDir, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join("in.tar");
    std::fs::write(&p, bytes).unwrap();
    p
}

fn config(arch: &str, diff_ids: &[&Digest]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Entrypoint": ["/app"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "history": [{"created_by": "test"}],
    }))
    .unwrap()
}

fn desc(mt: &str, d: &Digest, size: u64) -> Value {
    json!({"mediaType": mt, "digest": d.to_string(), "size": size})
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Adds config, layers and the manifest as blobs; returns the manifest's digest and size.
fn oci_image(files: &mut Files, layers: &[Layer], arch: &str) -> (Digest, u64) {
    let ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
    let (cd, cs) = files.blob(config(arch, &ids));
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            let (d, s) = files.blob(l.stored.clone());
            desc(l.media_type, &d, s)
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &cd, cs),
        "layers": layer_descs,
    });
    files.blob(serde_json::to_vec(&manifest).unwrap())
}

fn index_json(manifests: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
        .unwrap()
}

fn named(mut d: Value, name: &str) -> Value {
    d["annotations"] = json!({ ANN_REF_NAME: name });
    d
}

/// A plain OCI layout with one image named by a bare tag, umoci style.
fn oci_layout(layers: &[Layer]) -> Files {
    let mut f = Files::default();
    f.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let (md, ms) = oci_image(&mut f, layers, "amd64");
    f.add(
        "index.json",
        index_json(vec![named(desc(OCI_MANIFEST, &md, ms), "latest")]),
    );
    f
}

/// A legacy docker save: `<id>/layer.tar`, `<hex>.json`, `manifest.json`.
fn docker_legacy(layers: &[Layer], tags: &[&str]) -> Files {
    let mut f = Files::default();
    let ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
    let cfg = config("amd64", &ids);
    let cname = format!("{}.json", Digest::of_bytes(&cfg).hex());
    f.add(&cname, cfg);
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("{:064x}/layer.tar", i + 1);
        f.add(&n, l.stored.clone());
        names.push(n);
    }
    f.add(
        "manifest.json",
        serde_json::to_vec(&json!([{"Config": cname, "RepoTags": tags, "Layers": names}])).unwrap(),
    );
    f.add("repositories", b"{}".to_vec());
    f
}

/// Docker 25+: manifest.json naming `blobs/sha256/..` plus the OCI half.
fn docker25(layers: &[Layer], index_manifests: Option<Vec<Value>>) -> Files {
    let mut f = Files::default();
    f.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let (md, ms) = oci_image(&mut f, layers, "amd64");
    let manifest: Value = serde_json::from_slice(f.get(&blob_name(&md))).unwrap();
    let cfg = format!(
        "blobs/{}",
        manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .replace(':', "/")
    );
    let lnames: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("blobs/{}", l["digest"].as_str().unwrap().replace(':', "/")))
        .collect();
    let mdesc = json!({"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": ms,
        "annotations": {ANN_CONTAINERD_NAME: "docker.io/library/app:1", ANN_REF_NAME: "1"}});
    let idx = match index_manifests {
        Some(m) => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": m}),
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [mdesc]}),
    };
    f.add("index.json", serde_json::to_vec(&idx).unwrap());
    f.add(
        "manifest.json",
        serde_json::to_vec(&json!([{"Config": cfg, "RepoTags": ["app:1"], "Layers": lnames}]))
            .unwrap(),
    );
    f
}

fn open(path: &Path) -> Result<Archive, ArchiveError> {
    Archive::open(path, &Limits::default())
}

/// Read every layer fully through a tar reader, then `finish`; return the file names seen.
fn read_all(a: &Archive, img: &Image) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let mut out = Vec::new();
    for l in &img.layers {
        let mut r = a.open_layer(l)?;
        {
            let mut t = tar::Archive::new(&mut r);
            for e in t.entries().unwrap() {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                out.push((e.path().unwrap().to_string_lossy().into_owned(), data));
            }
        }
        r.finish()?;
    }
    Ok(out)
}

fn simple_layers() -> Vec<Layer> {
    vec![
        layer(Compression::Gzip, &[("etc/hostname", b"box\n")]),
        layer(Compression::None, &[("app", b"\x7fELF fake")]),
    ]
}

// ---- formats ----------------------------------------------------------------------------------

#[test]
fn legacy_docker_save() {
    let dir = tempfile::tempdir().unwrap();
    let p = docker_legacy(&simple_layers(), &["nginx:latest"]).write_tar(&dir);
    let a = open(&p).unwrap();
    assert_eq!(a.image_names(), ["nginx:latest"]);
    let img = a.select(None, None).unwrap();
    assert_eq!(img.format, SourceFormat::DockerSave);
    assert_eq!(img.name.as_deref(), Some("docker.io/library/nginx:latest"));
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.layers[0].size, None);
    assert_eq!(img.platform.to_string(), "linux/amd64");
    assert_eq!(img.exec_spec().entrypoint, ["/app"]);
    let files = read_all(&a, &img).unwrap();
    assert_eq!(
        files,
        [
            ("etc/hostname".to_string(), b"box\n".to_vec()),
            ("app".to_string(), b"\x7fELF fake".to_vec())
        ]
    );
    // The three spellings of the same reference select it.
    for name in [
        "nginx:latest",
        "docker.io/library/nginx:latest",
        "localhost/nginx:latest",
    ] {
        assert!(a.select(Some(name), None).is_ok(), "{name}");
    }
    let e = a.select(Some("nginx:1.0"), None).unwrap_err();
    assert!(matches!(e, ArchiveError::NoImageMatch { .. }), "{e}");
    assert!(e.to_string().contains("nginx:latest"), "{e}");
}

#[test]
fn docker25_dual_layout_prefers_manifest_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = docker25(&simple_layers(), None).write_tar(&dir);
    let a = open(&p).unwrap();
    let img = a.select(None, None).unwrap();
    assert_eq!(img.format, SourceFormat::DockerSaveOci);
    assert_eq!(img.name.as_deref(), Some("docker.io/library/app:1"));
    assert!(img
        .layers
        .iter()
        .all(|l| l.location.starts_with("blobs/sha256/")));
    assert_eq!(a.warnings(), Vec::<String>::new());
    read_all(&a, &img).unwrap();
}

#[test]
fn docker25_manifests_null_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = docker25(&simple_layers(), None);
    f.set(
        "index.json",
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#
            .to_vec(),
    );
    let a = open(&f.write_tar(&dir)).unwrap();
    let img = a.select(None, None).unwrap();
    assert_eq!(img.format, SourceFormat::DockerSaveOci);
    assert_eq!(a.warnings().len(), 1, "{:?}", a.warnings());
    read_all(&a, &img).unwrap();
}

#[test]
fn docker25_wrong_oci_layer_order_only_warns() {
    let layers = simple_layers();
    let mut f = docker25(&layers, None);
    // Rewrite the OCI manifest with the layers swapped (Docker 25.0.0's bug).
    let index: Value = serde_json::from_slice(f.get("index.json")).unwrap();
    let md = Digest::parse(index["manifests"][0]["digest"].as_str().unwrap()).unwrap();
    let mut m: Value = serde_json::from_slice(f.get(&blob_name(&md))).unwrap();
    m["layers"].as_array_mut().unwrap().reverse();
    let (nd, ns) = f.blob(serde_json::to_vec(&m).unwrap());
    f.set("index.json", index_json(vec![desc(OCI_MANIFEST, &nd, ns)]));
    let dir = tempfile::tempdir().unwrap();
    let a = open(&f.write_tar(&dir)).unwrap();
    let img = a.select(None, None).unwrap();
    assert_eq!(img.layers[0].diff_id, layers[0].diff_id);
    let w = a.warnings();
    assert!(w.len() == 1 && w[0].contains("order"), "{w:?}");
    read_all(&a, &img).unwrap();
}

#[test]
fn oci_tar_and_directory() {
    let layers = vec![
        layer(Compression::Zstd, &[("bin/sh", b"sh")]),
        layer(
            Compression::Gzip,
            &[("etc/passwd", b"root:x:0:0::/:/bin/sh\n")],
        ),
    ];
    let f = oci_layout(&layers);
    for as_dir in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let p = if as_dir {
            f.write_dir(&dir)
        } else {
            f.write_tar(&dir)
        };
        let a = open(&p).unwrap();
        assert_eq!(a.image_names(), ["latest"]);
        let img = a.select(None, None).unwrap();
        assert_eq!(img.format, SourceFormat::OciLayout);
        // A bare tag is not a reference.
        assert_eq!(img.name, None);
        assert_eq!(
            img.layers[0].media_type.as_deref(),
            Some("application/vnd.oci.image.layer.v1.tar+zstd")
        );
        assert_eq!(img.layers[1].size, Some(layers[1].stored.len() as u64));
        assert_eq!(
            img.config_digest,
            Digest::of_bytes(&config("amd64", &[&layers[0].diff_id, &layers[1].diff_id]))
        );
        let files = read_all(&a, &img).unwrap();
        assert_eq!(files.len(), 2, "dir={as_dir}");
        assert!(a.select(Some("latest"), None).is_ok());
        assert!(a.select(Some("anything:latest"), None).is_ok());
        assert!(a.select(Some("x:1"), None).is_err());
    }
}

#[test]
fn oci_directory_refuses_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let f = oci_layout(&simple_layers());
    let root = f.write_dir(&dir);
    // Move blobs/ elsewhere and point a symlink at it.
    let elsewhere = dir.path().join("real-blobs");
    std::fs::rename(root.join("blobs"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("blobs")).unwrap();
    let a = open(&root).unwrap();
    let e = a.select(None, None).unwrap_err();
    assert!(matches!(e, ArchiveError::DirPath { .. }), "{e}");

    // A symlinked blob file is refused too.
    let dir2 = tempfile::tempdir().unwrap();
    let root2 = f.write_dir(&dir2);
    let idx = root2.join("index.json");
    std::fs::rename(&idx, dir2.path().join("real-index.json")).unwrap();
    std::os::unix::fs::symlink(dir2.path().join("real-index.json"), &idx).unwrap();
    let e = open(&root2).unwrap_err();
    assert!(matches!(e, ArchiveError::DirPath { .. }), "{e}");
}

#[test]
fn nested_index_selects_platform() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Files::default();
    let amd = vec![layer(Compression::Gzip, &[("arch", b"amd64")])];
    let arm = vec![layer(Compression::Gzip, &[("arch", b"arm64")])];
    let (ad, asz) = oci_image(&mut f, &amd, "amd64");
    let (rd, rsz) = oci_image(&mut f, &arm, "arm64");
    let mut a_desc = desc(OCI_MANIFEST, &ad, asz);
    a_desc["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let mut r_desc = desc(OCI_MANIFEST, &rd, rsz);
    r_desc["platform"] = json!({"os": "linux", "architecture": "arm64", "variant": "v8"});
    // An attestation manifest (buildx) is skipped.
    let mut att = desc(OCI_MANIFEST, &ad, asz);
    att["platform"] = json!({"os": "unknown", "architecture": "unknown"});
    let nested = index_json(vec![a_desc, r_desc, att]);
    let (nd, ns) = f.blob(nested);
    f.add(
        "index.json",
        index_json(vec![named(
            desc(OCI_INDEX, &nd, ns),
            "docker.io/library/multi:1",
        )]),
    );
    let a = open(&f.write_tar(&dir)).unwrap();
    let arch_of = |img: &Image| {
        let files = read_all(&a, img).unwrap();
        String::from_utf8(files[0].1.clone()).unwrap()
    };
    if cfg!(target_arch = "x86_64") {
        let img = a.select(None, None).unwrap();
        assert_eq!(arch_of(&img), "amd64");
        assert_eq!(img.platform, Platform::host());
        assert_eq!(img.name.as_deref(), Some("docker.io/library/multi:1"));
    }
    for (p, want) in [
        ("linux/amd64", "amd64"),
        ("linux/arm64", "arm64"),
        ("linux/arm64/v8", "arm64"),
    ] {
        let img = a.select(None, Some(&Platform::parse(p).unwrap())).unwrap();
        assert_eq!(arch_of(&img), want, "{p}");
    }
    // A manifest digest inside the nested index selects it, whatever the host.
    let img = a.select(Some(&rd.to_string()), None).unwrap();
    assert_eq!(arch_of(&img), "arm64");
    let e = a
        .select(Some(&Digest::of_bytes(b"x").to_string()), None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::NoImageMatch { .. }), "{e}");
    let e = a
        .select(None, Some(&Platform::parse("linux/s390x").unwrap()))
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ArchiveError::NoPlatformMatch { .. }), "{msg}");
    assert!(
        msg.contains("linux/amd64") && msg.contains("linux/arm64/v8"),
        "{msg}"
    );
    assert!(!msg.contains("unknown"), "{msg}");
}

#[test]
fn index_listing_missing_platform_blobs_picks_the_present_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Files::default();
    let (ad, asz) = oci_image(&mut f, &simple_layers(), "amd64");
    let mut a_desc = desc(OCI_MANIFEST, &ad, asz);
    a_desc["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let ghost = Digest::of_bytes(b"not saved");
    let mut g_desc = desc(OCI_MANIFEST, &ghost, 9);
    g_desc["platform"] = json!({"os": "linux", "architecture": "amd64"});
    f.add("index.json", index_json(vec![a_desc, g_desc]));
    let a = open(&f.write_tar(&dir)).unwrap();
    let img = a
        .select(None, Some(&Platform::parse("linux/amd64").unwrap()))
        .unwrap();
    assert_eq!(img.layers.len(), 2);
}

#[test]
fn broken_artifact_entry_does_not_hide_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Files::default();
    let (md, ms) = oci_image(&mut f, &simple_layers(), "amd64");
    // An artifact manifest whose config blob was not saved.
    let missing = Digest::of_bytes(b"missing config");
    let art = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.example.config", &missing, 14), "layers": []});
    let (ad, asz) = f.blob(serde_json::to_vec(&art).unwrap());
    f.add(
        "index.json",
        index_json(vec![
            desc(OCI_MANIFEST, &ad, asz),
            desc(OCI_MANIFEST, &md, ms),
        ]),
    );
    let a = open(&f.write_tar(&dir)).unwrap();
    let img = a
        .select(None, Some(&Platform::parse("linux/amd64").unwrap()))
        .unwrap();
    assert_eq!(img.layers.len(), 2);
    // Asked for by digest, the artifact's own error shows.
    let e = a.select(Some(&ad.to_string()), None).unwrap_err();
    assert!(matches!(e, ArchiveError::MissingBlob { .. }), "{e}");
}

#[test]
fn nested_index_depth_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Files::default();
    let (md, ms) = oci_image(&mut f, &simple_layers(), "amd64");
    let mut top = desc(OCI_MANIFEST, &md, ms);
    for _ in 0..6 {
        let (d, s) = f.blob(index_json(vec![top]));
        top = desc(OCI_INDEX, &d, s);
    }
    f.add("index.json", index_json(vec![top]));
    let p = f.write_tar(&dir);
    let e = open(&p).unwrap().select(None, None).unwrap_err();
    assert!(
        matches!(e, ArchiveError::IndexDepth { limit: 4, .. }),
        "{e}"
    );
    let limits = Limits {
        max_index_depth: 8,
        ..Limits::default()
    };
    let a = Archive::open(&p, &limits).unwrap();
    let img = a
        .select(None, Some(&Platform::parse("linux/amd64").unwrap()))
        .unwrap();
    assert_eq!(img.layers.len(), 2);
}

#[test]
fn several_images_need_a_selector() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Files::default();
    let (d1, s1) = oci_image(
        &mut f,
        &[layer(Compression::None, &[("one", b"1")])],
        "amd64",
    );
    let (d2, s2) = oci_image(
        &mut f,
        &[layer(Compression::None, &[("two", b"2")])],
        "amd64",
    );
    f.add(
        "index.json",
        index_json(vec![
            named(desc(OCI_MANIFEST, &d1, s1), "docker.io/library/a:1"),
            named(desc(OCI_MANIFEST, &d2, s2), "quay.io/b/c:2"),
        ]),
    );
    let a = open(&f.write_tar(&dir)).unwrap();
    let host = Platform::parse("linux/amd64").unwrap();
    let e = a.select(None, Some(&host)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ArchiveError::SeveralImages { .. }), "{msg}");
    assert!(
        msg.contains("docker.io/library/a:1") && msg.contains("quay.io/b/c:2"),
        "{msg}"
    );
    assert!(msg.contains("--image"), "{msg}");
    for (sel, file) in [
        ("a:1", "one"),
        ("localhost/a:1", "one"),
        ("quay.io/b/c:2", "two"),
    ] {
        let img = a.select(Some(sel), Some(&host)).unwrap();
        assert_eq!(read_all(&a, &img).unwrap()[0].0, file, "{sel}");
    }
    let e = a.select(Some("c:2"), Some(&host)).unwrap_err();
    assert!(matches!(e, ArchiveError::NoImageMatch { .. }), "{e}");

    // The same in a docker save with two entries.
    let l1 = vec![layer(Compression::None, &[("one", b"1")])];
    let mut f = docker_legacy(&l1, &["x:1"]);
    let mut entries: Value = serde_json::from_slice(f.get("manifest.json")).unwrap();
    let mut second = entries[0].clone();
    second["RepoTags"] = json!(["y:2"]);
    entries.as_array_mut().unwrap().push(second);
    f.set("manifest.json", serde_json::to_vec(&entries).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let a = open(&f.write_tar(&dir)).unwrap();
    assert_eq!(a.image_names(), ["x:1", "y:2"]);
    let e = a.select(None, None).unwrap_err();
    assert!(e.to_string().contains("x:1, y:2"), "{e}");
    assert_eq!(
        a.select(Some("y:2"), None).unwrap().name.as_deref(),
        Some("docker.io/library/y:2")
    );
    // By image ID (config digest): both entries share the config here, the first wins.
    let id = a.select(Some("x:1"), None).unwrap().config_digest;
    let img = a.select(Some(&id.to_string()), None).unwrap();
    assert_eq!(img.name.as_deref(), Some("docker.io/library/x:1"));
    let e = a
        .select(Some(&Digest::of_bytes(b"no").to_string()), None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::NoImageMatch { .. }), "{e}");
}

// ---- compression ------------------------------------------------------------------------------

#[test]
fn compressions_are_sniffed_and_verified() {
    let content: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let raw = layer_tar(&[("data", &content)]);
    let diff_id = Digest::of_bytes(&raw);
    for (stored, want) in [
        (raw.clone(), Compression::None),
        (gzip(&raw), Compression::Gzip),
        (gzip_multi(&raw), Compression::Gzip),
        (zstd_bytes(&raw), Compression::Zstd),
    ] {
        let l = Layer {
            stored: stored.clone(),
            diff_id: diff_id.clone(),
            // Media types are informative: a wrong one must not matter.
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip",
        };
        let dir = tempfile::tempdir().unwrap();
        let a = open(&oci_layout(&[l]).write_tar(&dir)).unwrap();
        let img = a.select(None, None).unwrap();
        let mut r = a.open_layer(&img.layers[0]).unwrap();
        assert_eq!(r.compression(), want);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, raw, "{want:?}");
        let stats = r.finish().unwrap();
        assert_eq!(
            stats,
            LayerStats {
                compressed_bytes: stored.len() as u64,
                uncompressed_bytes: raw.len() as u64,
                compression: want
            }
        );
    }
}

#[test]
fn finish_drains_after_tar_reader_stops() {
    // Layer tar followed by extra zero padding (as `tar` pads to records): the tar reader stops
    // at the end-of-archive blocks; finish reads and hashes the rest.
    let mut raw = layer_tar(&[("a", b"x")]);
    raw.extend(vec![0u8; 10240]);
    let l = Layer {
        stored: gzip(&raw),
        diff_id: Digest::of_bytes(&raw),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    };
    let dir = tempfile::tempdir().unwrap();
    let a = open(&oci_layout(&[l]).write_tar(&dir)).unwrap();
    let img = a.select(None, None).unwrap();
    let files = read_all(&a, &img).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(a.unpacked_bytes(), raw.len() as u64);
}

#[test]
fn layer_reader_is_send() {
    fn send<T: Send>() {}
    send::<LayerReader<'static>>();
    fn sync<T: Sync>() {}
    sync::<Archive>();
}

// ---- verification failures --------------------------------------------------------------------

/// OCI layout whose single layer blob is replaced (same name) by `stored`.
fn tampered_layer(stored: Vec<u8>) -> (tempfile::TempDir, PathBuf) {
    tampered_layer_of(&layer(Compression::Gzip, &[("a", b"hello")]), stored)
}

fn tampered_layer_of(l: &Layer, stored: Vec<u8>) -> (tempfile::TempDir, PathBuf) {
    let mut f = oci_layout(std::slice::from_ref(l));
    let name = blob_name(&Digest::of_bytes(&l.stored));
    f.set(&name, stored);
    let dir = tempfile::tempdir().unwrap();
    let p = f.write_tar(&dir);
    (dir, p)
}

#[test]
fn wrong_layer_digest_fails_at_eof() {
    let l = layer(Compression::Gzip, &[("a", b"hello")]);
    // Same size, same content after decompression, different stored bytes: change the gzip
    // header's OS byte.
    let mut stored = l.stored.clone();
    stored[9] ^= 1;
    let (_d, p) = tampered_layer(stored);
    let a = open(&p).unwrap();
    let img = a.select(None, None).unwrap();
    let mut r = a.open_layer(&img.layers[0]).unwrap();
    let mut out = Vec::new();
    let e = r.read_to_end(&mut out).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    let msg = e.to_string();
    assert!(
        msg.contains(&img.layers[0].digest.to_string()) && !msg.contains('\n'),
        "{msg}"
    );
    let e = r.finish().unwrap_err();
    assert!(matches!(e, ArchiveError::LayerDigestMismatch { .. }), "{e}");
}

#[test]
fn corrupt_layer_stream_is_an_error() {
    let l = layer(Compression::Gzip, &[("a", &[5u8; 5000][..])]);
    let mut stored = l.stored.clone();
    // Flip bytes inside the deflate data; keep the size.
    let mid = stored.len() / 2;
    for b in &mut stored[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let (_d, p) = tampered_layer_of(&l, stored);
    let a = open(&p).unwrap();
    let img = a.select(None, None).unwrap();
    let e = a.open_layer(&img.layers[0]).unwrap().finish().unwrap_err();
    assert!(matches!(e, ArchiveError::LayerRead { .. }), "{e}");
}

#[test]
fn wrong_layer_size_is_refused() {
    let l = layer(Compression::Gzip, &[("a", b"hello")]);
    let mut stored = l.stored.clone();
    stored.push(0);
    let (_d, p) = tampered_layer(stored);
    let a = open(&p).unwrap();
    let img = a.select(None, None).unwrap();
    let e = a.open_layer(&img.layers[0]).unwrap_err();
    assert!(matches!(e, ArchiveError::LayerSizeMismatch { .. }), "{e}");
}

#[test]
fn wrong_diff_id_fails_at_eof() {
    let l = layer(Compression::Zstd, &[("a", b"hello")]);
    let wrong = Layer {
        diff_id: Digest::of_bytes(b"something else"),
        ..l
    };
    let dir = tempfile::tempdir().unwrap();
    let a = open(&oci_layout(std::slice::from_ref(&wrong)).write_tar(&dir)).unwrap();
    let img = a.select(None, None).unwrap();
    let mut r = a.open_layer(&img.layers[0]).unwrap();
    let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("diff_id mismatch"), "{e}");
    assert!(e.to_string().contains(&wrong.diff_id.to_string()), "{e}");
    let e = r.finish().unwrap_err();
    assert!(matches!(e, ArchiveError::DiffIdMismatch { .. }), "{e}");

    // Legacy docker save: no stored digest, the diff_id check still catches it.
    let dir = tempfile::tempdir().unwrap();
    let a = open(&docker_legacy(&[wrong], &["t:1"]).write_tar(&dir)).unwrap();
    let img = a.select(None, None).unwrap();
    let e = a.open_layer(&img.layers[0]).unwrap().finish().unwrap_err();
    assert!(matches!(e, ArchiveError::DiffIdMismatch { .. }), "{e}");
}

#[test]
fn wrong_config_digest_and_size() {
    let l = layer(Compression::None, &[("a", b"hello")]);
    let mut f = oci_layout(std::slice::from_ref(&l));
    let cfg = config("amd64", &[&l.diff_id]);
    let cname = blob_name(&Digest::of_bytes(&cfg));
    let mut bad = cfg.clone();
    let i = bad.iter().position(|&b| b == b'a').unwrap();
    bad[i] = b'b';
    f.set(&cname, bad);
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir))
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::DigestMismatch { .. }), "{e}");

    let mut f = oci_layout(std::slice::from_ref(&l));
    let mut longer = cfg.clone();
    longer.push(b' ');
    f.set(&cname, longer);
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir))
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::SizeMismatch { .. }), "{e}");

    // Legacy: `<hex>.json` names the digest; it is verified.
    let mut f = docker_legacy(&[l], &["t:1"]);
    let cname = format!("{}.json", Digest::of_bytes(&cfg).hex());
    let mut bad = cfg;
    bad.push(b' ');
    f.set(&cname, bad);
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir))
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::DigestMismatch { .. }), "{e}");
}

#[test]
fn diff_id_count_must_match_layers() {
    let l = layer(Compression::None, &[("a", b"hello")]);
    let mut f = Files::default();
    let (cd, cs) = f.blob(config("amd64", &[&l.diff_id, &l.diff_id]));
    let (ld, ls) = f.blob(l.stored.clone());
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &cd, cs),
        "layers": [desc(l.media_type, &ld, ls)]});
    let (md, ms) = f.blob(serde_json::to_vec(&m).unwrap());
    f.add("index.json", index_json(vec![desc(OCI_MANIFEST, &md, ms)]));
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir))
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ArchiveError::DiffIdCount {
                diff_ids: 2,
                layers: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn json_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let p = oci_layout(&simple_layers()).write_tar(&dir);
    let limits = Limits {
        max_json_bytes: 64,
        ..Limits::default()
    };
    let e = Archive::open(&p, &limits)
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::JsonTooLarge { .. }), "{e}");
}

#[test]
fn hostile_digest_and_names() {
    // A digest string that would escape `blobs/`.
    let mut f = oci_layout(&simple_layers());
    f.set(
        "index.json",
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": "sha256:../../etc/passwd", "size": 1}]}))
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir))
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::InvalidDigest { .. }), "{e}");

    // manifest.json naming a layer outside the archive.
    let mut f = docker_legacy(&simple_layers(), &["t:1"]);
    let mut m: Value = serde_json::from_slice(f.get("manifest.json")).unwrap();
    m[0]["Layers"][0] = json!("../x");
    f.set("manifest.json", serde_json::to_vec(&m).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir))
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(matches!(e, ArchiveError::EntryName { .. }), "{e}");

    // Malformed JSON names the document.
    let mut f = oci_layout(&simple_layers());
    f.set("index.json", b"{not json".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir))
        .unwrap()
        .select(None, None)
        .unwrap_err();
    assert!(e.to_string().contains("`index.json`"), "{e}");
}

// ---- outer tar --------------------------------------------------------------------------------

#[test]
fn duplicate_entries_are_refused() {
    let mut f = oci_layout(&simple_layers());
    f.add("./index.json", b"{}".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let e = open(&f.write_tar(&dir)).unwrap_err();
    assert!(
        matches!(e, ArchiveError::DuplicateEntry { ref name } if name == "index.json"),
        "{e}"
    );
}

/// The OCI layout as a tar where the manifest blob is a link entry to `target` (written as a
/// regular entry named `copy` first, so links may point at it).
fn manifest_as_link(kind: tar::EntryType, target: &str) -> Vec<u8> {
    let f = oci_layout(&simple_layers());
    let index: Value = serde_json::from_slice(f.get("index.json")).unwrap();
    let md = Digest::parse(index["manifests"][0]["digest"].as_str().unwrap()).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(f.get(&blob_name(&md)).len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "copy", f.get(&blob_name(&md)))
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Symlink);
    b.append_link(&mut h, "link-to-copy", "copy").unwrap();
    for (name, data) in &f.0 {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        if *name == blob_name(&md) {
            h.set_size(0);
            h.set_entry_type(kind);
            b.append_link(&mut h, name, target).unwrap();
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn link_entries_resolve_inside_the_archive_only() {
    use tar::EntryType::{Link, Symlink};
    for (kind, target, ok) in [
        (Symlink, "../../copy", true),
        (Link, "copy", true),
        (Link, "./copy", true),
        // Escapes, absolute targets, missing targets and chains are refused.
        (Symlink, "../../../copy", false),
        (Symlink, "/copy", false),
        (Symlink, "../../nothing", false),
        (Symlink, "../../link-to-copy", false),
        (Link, "link-to-copy", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(&dir, &manifest_as_link(kind, target));
        let r = open(&p).unwrap().select(None, None);
        match (ok, r) {
            (true, Ok(img)) => assert_eq!(img.layers.len(), 2),
            (false, Err(e)) => assert!(
                matches!(e, ArchiveError::NotRegular { .. }),
                "{target}: {e}"
            ),
            (_, r) => panic!("{kind:?} {target}: {:?}", r.map(|i| i.config_digest)),
        }
    }
}

#[test]
fn legacy_symlinked_layer_tar() {
    // `docker save` before 25 links a layer saved twice: `<id2>/layer.tar -> ../<id1>/layer.tar`.
    let l = layer(Compression::None, &[("a", b"same")]);
    let f = docker_legacy(&[l.clone(), l], &["t:1"]);
    let m: Value = serde_json::from_slice(f.get("manifest.json")).unwrap();
    let first = m[0]["Layers"][0].as_str().unwrap().to_owned();
    let second = m[0]["Layers"][1].as_str().unwrap().to_owned();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in &f.0 {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        if *name == second {
            h.set_size(0);
            h.set_entry_type(tar::EntryType::Symlink);
            let target = format!("../{first}");
            b.append_link(&mut h, name, &target).unwrap();
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let a = open(&write_file(&dir, &b.into_inner().unwrap())).unwrap();
    let img = a.select(None, None).unwrap();
    assert_eq!(read_all(&a, &img).unwrap().len(), 2);
}

#[test]
fn truncated_outer_tar() {
    let bytes = oci_layout(&simple_layers()).tar_bytes();
    // Find where the end-of-archive marker starts: the last non-zero byte, rounded up.
    let last = bytes.iter().rposition(|&b| b != 0).unwrap();
    let end_of_entries = (last / 512 + 1) * 512;
    for cut in [
        bytes.len() / 2,
        bytes.len() / 2 + 100,
        600,
        end_of_entries,
        end_of_entries - 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(&dir, &bytes[..cut]);
        let e = open(&p).unwrap_err();
        assert!(
            matches!(e, ArchiveError::Truncated { .. }),
            "cut {cut}: {e}"
        );
    }
    // One zero block is enough to end it, and zero padding of any length is fine.
    for end in [
        end_of_entries + 512,
        end_of_entries + 1024,
        bytes.len() + 4096,
    ] {
        let mut b = bytes.clone();
        b.resize(end, 0);
        let dir = tempfile::tempdir().unwrap();
        assert!(open(&write_file(&dir, &b)).is_ok(), "end {end}");
    }
}

#[test]
fn trailing_garbage_is_refused() {
    let mut bytes = oci_layout(&simple_layers()).tar_bytes();
    bytes.extend_from_slice(b"garbage");
    let dir = tempfile::tempdir().unwrap();
    let e = open(&write_file(&dir, &bytes)).unwrap_err();
    assert!(matches!(e, ArchiveError::TrailingGarbage { .. }), "{e}");
}

#[test]
fn not_an_archive() {
    let tar = oci_layout(&simple_layers()).tar_bytes();
    let mut no_layout = Files::default();
    no_layout.add("hello.txt", b"hi".to_vec());
    for (bytes, needle) in [
        (b"hello world".repeat(100), "no valid tar header"),
        (gzip(&tar), "gzip compressed"),
        (zstd_bytes(&tar), "zstd compressed"),
        (Vec::new(), "shorter than one tar block"),
        (no_layout.tar_bytes(), "neither `manifest.json`"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let e = open(&write_file(&dir, &bytes)).unwrap_err();
        assert!(matches!(e, ArchiveError::NotAnArchive { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[test]
fn too_many_entries() {
    let dir = tempfile::tempdir().unwrap();
    let p = oci_layout(&simple_layers()).write_tar(&dir);
    let limits = Limits {
        max_archive_entries: 3,
        ..Limits::default()
    };
    let e = Archive::open(&p, &limits).unwrap_err();
    assert!(
        matches!(e, ArchiveError::TooManyEntries { limit: 3, .. }),
        "{e}"
    );
}

#[test]
fn long_names_and_pax_paths_are_indexed() {
    let f = oci_layout(&simple_layers());
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in &f.0 {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    // GNU long name (the tar crate writes an `L` entry for names over 100 bytes).
    let long = format!("extra/{}", "x".repeat(150));
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    // PAX path record.
    let pax_name = format!("pax/{}", "y".repeat(120));
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_path("placeholder").unwrap();
    h.set_cksum();
    b.append_pax_extensions([("path", pax_name.as_bytes())])
        .unwrap();
    b.append(&h, &b"ok"[..]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bytes = b.into_inner().unwrap();
    let a = open(&write_file(&dir, &bytes)).unwrap();
    assert!(a.blob_present(&long).unwrap());
    assert!(a.blob_present(&pax_name).unwrap());
    assert!(!a.blob_present("placeholder").unwrap());
    let limits = Limits {
        max_path_len: 100,
        ..Limits::default()
    };
    let e = Archive::open(&write_file(&dir, &bytes), &limits).unwrap_err();
    assert!(matches!(e, ArchiveError::EntryName { .. }), "{e}");
    let mut s = String::new();
    a.section(&pax_name)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "ok");
    a.select(None, None).unwrap();
}

// ---- budget -----------------------------------------------------------------------------------

#[test]
fn decompression_bomb_hits_the_budget() {
    // 200 MiB of zeros in a tar entry as 200 gzip members of 1 MiB each (cheap to build in a
    // debug test, ~1000:1 each); streamed, never held in memory.
    let mut h = tar::Header::new_ustar();
    h.set_path("zeros").unwrap();
    h.set_size(200 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    let mut first = h.as_bytes().to_vec();
    first.extend(vec![0u8; 1 << 20]);
    let best = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let mut stored = best(&first);
    let member = best(&vec![0u8; 1 << 20]);
    for _ in 0..199 {
        stored.extend_from_slice(&member);
    }
    assert!(stored.len() < 1 << 20, "{}", stored.len());
    let l = Layer {
        stored,
        diff_id: Digest::of_bytes(b"unknown"),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    };
    let dir = tempfile::tempdir().unwrap();
    let p = oci_layout(&[l]).write_tar(&dir);
    let limits = Limits {
        max_unpacked_bytes: 8 << 20,
        ..Limits::default()
    };
    let a = Archive::open(&p, &limits).unwrap();
    let img = a.select(None, None).unwrap();
    let e = a.open_layer(&img.layers[0]).unwrap().finish().unwrap_err();
    assert!(matches!(e, ArchiveError::UnpackedLimit { .. }), "{e}");
    assert!(a.unpacked_bytes() <= (8 << 20) + (1 << 20));
}

#[test]
fn budget_is_shared_across_layers() {
    let big = vec![7u8; 100_000];
    let layers = vec![
        layer(Compression::Gzip, &[("a", &big)]),
        layer(Compression::Gzip, &[("b", &big)]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let p = oci_layout(&layers).write_tar(&dir);
    let limits = Limits {
        max_unpacked_bytes: 150_000,
        ..Limits::default()
    };
    let a = Archive::open(&p, &limits).unwrap();
    let img = a.select(None, None).unwrap();
    a.open_layer(&img.layers[0]).unwrap().finish().unwrap();
    let e = a.open_layer(&img.layers[1]).unwrap().finish().unwrap_err();
    assert!(
        matches!(e, ArchiveError::UnpackedLimit { limit: 150_000, .. }),
        "{e}"
    );
}

/// Archives written by real tools (umoci, skopeo, docker save): every `*.tar` file and every
/// directory holding an `index.json` in `$OCI_SLIM_REAL_ARCHIVES` must open, select and stream.
#[test]
#[ignore = "needs archives made by real tools in `$OCI_SLIM_REAL_ARCHIVES`"]
fn real_archives() {
    let dir = std::env::var_os("OCI_SLIM_REAL_ARCHIVES").expect("set OCI_SLIM_REAL_ARCHIVES");
    let mut seen = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        let is_layout = p.join("index.json").is_file();
        if !is_layout && p.extension().is_none_or(|e| e != "tar") {
            continue;
        }
        seen += 1;
        let a = open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let img = a
            .select(None, Some(&Platform::parse("linux/amd64").unwrap()))
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut files = 0;
        for l in &img.layers {
            let mut r = a.open_layer(l).unwrap();
            let c = r.compression();
            {
                let mut t = tar::Archive::new(&mut r);
                for e in t.entries().unwrap() {
                    e.unwrap();
                    files += 1;
                }
            }
            let stats = r
                .finish()
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(stats.compression, c);
        }
        eprintln!(
            "{}: {:?} name={:?} names={:?} layers={} entries={files} warnings={:?}",
            p.display(),
            img.format,
            img.name,
            a.image_names(),
            img.layers.len(),
            a.warnings()
        );
    }
    assert!(seen > 0, "no archives found");
}
