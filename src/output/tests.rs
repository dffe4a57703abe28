use super::*;
use crate::image::{Platform, SourceFormat};
use crate::rootfs::{Entry, Kind, MemSource};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;

fn entry(tree: &mut Tree, kind: Kind, mode: u32) -> Entry {
    Entry {
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        xattrs: BTreeMap::new(),
        inode: tree.new_inode(),
        layer: 0,
    }
}

const CAP: &[u8] = &[
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn long_dir() -> Vec<u8> {
    format!("usr/share/{}", "d".repeat(70)).into_bytes()
}
fn long_file() -> Vec<u8> {
    let mut p = long_dir();
    p.extend_from_slice(format!("/{}", "f".repeat(60)).as_bytes());
    p
}
fn long_target() -> Vec<u8> {
    format!("../../{}/target", "t".repeat(120)).into_bytes()
}
const NON_UTF8: &[u8] = b"etc/caf\xe9";
fn long_non_utf8() -> Vec<u8> {
    let mut p = b"etc/".to_vec();
    p.extend(std::iter::repeat_n(0xffu8, 120));
    p
}

/// A tree with every kind of entry, its file source, and the kept set (which lacks some
/// parents on purpose).
fn fixture() -> (Tree, MemSource, BTreeSet<Vec<u8>>) {
    let mut t = Tree::new();
    let mut src = MemSource::default();
    let add = |t: &mut Tree, p: &[u8], kind: Kind, mode: u32| {
        let e = entry(t, kind, mode);
        t.insert(p.to_vec(), e);
    };
    for d in [
        "bin",
        "etc",
        "tmp",
        "usr",
        "usr/bin",
        "usr/share",
        "dev",
        "run",
        "unkept",
    ] {
        add(&mut t, d.as_bytes(), Kind::Dir, 0o755);
    }
    add(&mut t, &long_dir(), Kind::Dir, 0o750);
    t.get_mut(b"tmp").unwrap().mode = 0o1777;
    t.get_mut(b"usr/bin").unwrap().mtime = 42;

    let ping = b"\x7fELF ping".to_vec();
    add(
        &mut t,
        b"bin/ping",
        Kind::File {
            size: ping.len() as u64,
        },
        0o4755,
    );
    let e = t.get_mut(b"bin/ping").unwrap();
    e.xattrs.insert("security.capability".into(), CAP.to_vec());
    e.uid = 3_000_000;
    e.gid = 7;
    src.0.insert(b"bin/ping".to_vec(), ping);

    add(
        &mut t,
        b"bin/sh",
        Kind::Symlink {
            target: b"./busybox//sh".to_vec(),
        },
        0o777,
    );
    add(
        &mut t,
        b"bin/long",
        Kind::Symlink {
            target: long_target(),
        },
        0o777,
    );

    let body = b"shared content".to_vec();
    add(
        &mut t,
        b"usr/bin/a",
        Kind::File {
            size: body.len() as u64,
        },
        0o2755,
    );
    let inode = t.get(b"usr/bin/a").unwrap().inode;
    let mut b = t.get(b"usr/bin/a").unwrap().clone();
    b.inode = inode;
    t.insert(b"usr/bin/b".to_vec(), b.clone());
    t.insert(b"usr/bin/c".to_vec(), b);
    src.0.insert(b"usr/bin/a".to_vec(), body.clone());
    src.0.insert(b"usr/bin/b".to_vec(), body.clone());
    src.0.insert(b"usr/bin/c".to_vec(), body);

    add(
        &mut t,
        b"dev/null",
        Kind::CharDev { major: 1, minor: 3 },
        0o666,
    );
    add(
        &mut t,
        b"dev/sda",
        Kind::BlockDev { major: 8, minor: 0 },
        0o660,
    );
    add(&mut t, b"run/fifo", Kind::Fifo, 0o600);

    let lf = vec![7u8; 3000];
    add(
        &mut t,
        &long_file(),
        Kind::File {
            size: lf.len() as u64,
        },
        0o644,
    );
    src.0.insert(long_file(), lf);
    add(&mut t, NON_UTF8, Kind::File { size: 0 }, 0o640);
    src.0.insert(NON_UTF8.to_vec(), Vec::new());
    add(&mut t, &long_non_utf8(), Kind::File { size: 2 }, 0o600);
    src.0.insert(long_non_utf8(), b"hi".to_vec());
    add(&mut t, b"unkept/file", Kind::File { size: 1 }, 0o644);
    src.0.insert(b"unkept/file".to_vec(), b"x".to_vec());

    let keep: BTreeSet<Vec<u8>> = [
        &b"bin/ping"[..],
        b"bin/sh",
        b"bin/long",
        b"tmp",
        b"usr/bin/b",
        b"usr/bin/a",
        b"dev/null",
        b"dev/sda",
        b"run/fifo",
        NON_UTF8,
        b"",
    ]
    .iter()
    .map(|p| p.to_vec())
    .chain([long_file(), long_non_utf8()])
    .collect();
    (t, src, keep)
}

/// Every path the layer must hold, in order.
fn expected_paths() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"bin"[..],
        b"bin/long",
        b"bin/ping",
        b"bin/sh",
        b"dev",
        b"dev/null",
        b"dev/sda",
        b"etc",
        NON_UTF8,
        &long_non_utf8(),
        b"run",
        b"run/fifo",
        b"tmp",
        b"usr",
        b"usr/bin",
        b"usr/bin/a",
        b"usr/bin/b",
        b"usr/share",
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    v.push(long_dir());
    v.push(long_file());
    v
}

fn image() -> Image {
    Image {
        format: SourceFormat::DockerSave,
        name: Some("nginx:1.25".into()),
        config: json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-02T03:04:05Z",
            "config": {
                "Entrypoint": ["/bin/ping"],
                "Healthcheck": {"Test": ["CMD", "true"]},
                "OnBuild": ["RUN x"],
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:00", "sha256:11"]},
            "history": [{"created_by": "a"}, {"created_by": "b"}],
        }),
        config_digest: Digest::of_bytes(b"cfg"),
        layers: vec![],
        platform: Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        },
    }
}

fn opts(compression: Compression) -> WriteOptions {
    WriteOptions {
        compression,
        tag: None,
        history_comment: "oci-slim: kept 19 of 26 paths".into(),
        created_by: "oci-slim test".into(),
    }
}

fn read_outer(path: &Path) -> Vec<(String, EntryType, u32, Vec<u8>)> {
    let mut ar = tar::Archive::new(File::open(path).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 0, "{name}");
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{name}");
            let (ty, mode) = (h.entry_type(), h.mode().unwrap());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, ty, mode, data)
        })
        .collect()
}

#[derive(Debug)]
struct LayerEntry {
    path: Vec<u8>,
    ty: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<Vec<u8>>,
    dev: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
    data: Vec<u8>,
}

fn read_layer(blob: &[u8], c: Compression) -> (Vec<LayerEntry>, Vec<u8>) {
    let mut raw = Vec::new();
    match c {
        Compression::None => raw.extend_from_slice(blob),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(blob)
                .read_to_end(&mut raw)
                .unwrap();
        }
        Compression::Zstd => {
            zstd::Decoder::new(blob)
                .unwrap()
                .read_to_end(&mut raw)
                .unwrap();
        }
    }
    let mut ar = tar::Archive::new(&raw[..]);
    let entries = ar
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut xattrs = BTreeMap::new();
            if let Some(pax) = e.pax_extensions().unwrap() {
                for x in pax {
                    let x = x.unwrap();
                    if let Some(k) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        xattrs.insert(k.to_owned(), x.value_bytes().to_vec());
                    }
                }
            }
            let path = e.path_bytes().into_owned();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            LayerEntry {
                path,
                ty: h.entry_type(),
                mode: h.mode().unwrap(),
                uid: e.header().uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                link,
                dev: (
                    h.device_major().unwrap().unwrap_or(0),
                    h.device_minor().unwrap().unwrap_or(0),
                ),
                xattrs,
                data,
            }
        })
        .collect();
    (entries, raw)
}

fn blob<'a>(outer: &'a [(String, EntryType, u32, Vec<u8>)], name: &str) -> &'a [u8] {
    &outer
        .iter()
        .find(|(n, ..)| n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .3
}

fn digest_of(v: &Value) -> Digest {
    Digest::parse(v.as_str().unwrap()).unwrap()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

#[test]
fn roundtrip_every_compression() {
    let (tree, src, keep) = fixture();
    for c in ALL {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.tar");
        let w = write_image(&tree, &src, &keep, &image(), &opts(c), &out).unwrap();
        assert_eq!(
            dir_listing(dir.path()),
            ["out.tar"],
            "{c:?}: temp files left"
        );
        assert_eq!(w.archive_size, fs::metadata(&out).unwrap().len());
        assert_eq!(w.name, "docker.io/library/nginx:1.25");

        let outer = read_outer(&out);
        let names: Vec<&str> = outer.iter().map(|(n, ..)| n.as_str()).collect();
        let mut blobs = [
            blob_name(&w.layer_digest),
            blob_name(&w.config_digest),
            blob_name(&w.manifest_digest),
        ];
        blobs.sort();
        let mut want = vec!["blobs/", "blobs/sha256/"];
        want.extend(blobs.iter().map(String::as_str));
        want.extend(["index.json", "manifest.json", "oci-layout"]);
        assert_eq!(names, want);
        for (n, ty, mode, data) in &outer {
            if n.ends_with('/') {
                assert_eq!((*ty, *mode), (EntryType::Directory, 0o755));
            } else {
                assert_eq!((*ty, *mode), (EntryType::Regular, 0o644));
                if let Some(hex) = n.strip_prefix("blobs/sha256/") {
                    assert_eq!(Digest::of_bytes(data).hex(), hex, "blob {n}");
                }
            }
        }
        assert_eq!(
            blob(&outer, "oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#
        );

        // index.json → manifest → config and layer.
        let index: Value = serde_json::from_slice(blob(&outer, "index.json")).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        let descs = index["manifests"].as_array().unwrap();
        assert_eq!(descs.len(), 1);
        let d = &descs[0];
        assert_eq!(d["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(digest_of(&d["digest"]), w.manifest_digest);
        assert_eq!(
            d["annotations"]["io.containerd.image.name"],
            "docker.io/library/nginx:1.25"
        );
        assert_eq!(
            d["annotations"]["org.opencontainers.image.ref.name"],
            "1.25"
        );
        assert_eq!(
            d["platform"],
            json!({"os": "linux", "architecture": "amd64"})
        );
        let manifest_bytes = blob(&outer, &blob_name(&w.manifest_digest));
        assert_eq!(d["size"], manifest_bytes.len());
        let m: Value = serde_json::from_slice(manifest_bytes).unwrap();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(m["config"]["mediaType"], MEDIA_TYPE_CONFIG);
        assert_eq!(digest_of(&m["config"]["digest"]), w.config_digest);
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], layer_media_type(c));
        assert_eq!(digest_of(&layers[0]["digest"]), w.layer_digest);
        let layer_blob = blob(&outer, &blob_name(&w.layer_digest));
        assert_eq!(layers[0]["size"], layer_blob.len());
        assert_eq!(w.layer_size, layer_blob.len() as u64);
        assert_eq!(Compression::sniff(layer_blob), c);

        // manifest.json (docker-save).
        let dm: Value = serde_json::from_slice(blob(&outer, "manifest.json")).unwrap();
        assert_eq!(
            dm,
            json!([{
                "Config": blob_name(&w.config_digest),
                "RepoTags": ["docker.io/library/nginx:1.25"],
                "Layers": [blob_name(&w.layer_digest)],
            }])
        );

        // Config: diff_ids, one history entry, unknown fields kept.
        let config_bytes = blob(&outer, &blob_name(&w.config_digest));
        assert_eq!(m["config"]["size"], config_bytes.len());
        let cfg: Value = serde_json::from_slice(config_bytes).unwrap();
        let (entries, raw) = read_layer(layer_blob, c);
        assert_eq!(Digest::of_bytes(&raw), w.diff_id);
        assert_eq!(raw.len() as u64, w.layer_uncompressed_size);
        assert_eq!(
            cfg["rootfs"],
            json!({"type": "layers", "diff_ids": [w.diff_id.to_string()]})
        );
        assert_eq!(
            cfg["history"],
            json!([{
                "created": "2024-01-02T03:04:05Z",
                "created_by": "oci-slim test",
                "comment": "oci-slim: kept 19 of 26 paths",
            }])
        );
        assert_eq!(cfg["config"], image().config["config"]);
        assert_eq!(cfg["architecture"], "amd64");

        check_layer(&tree, &src, &entries);
        assert_eq!(w.entries, entries.len());
        assert_eq!(w.file_bytes, 9 + 14 + 3000 + 2);
    }
}

fn check_layer(tree: &Tree, src: &MemSource, entries: &[LayerEntry]) {
    let want = expected_paths();
    let got: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| {
            let mut p = e.path.clone();
            if p.ends_with(b"/") {
                p.pop();
            }
            p
        })
        .collect();
    assert_eq!(
        got.iter().map(|p| display(p)).collect::<Vec<_>>(),
        want.iter().map(|p| display(p)).collect::<Vec<_>>()
    );
    for le in entries {
        let is_dir_name = le.path.ends_with(b"/");
        let path = le.path.strip_suffix(b"/").unwrap_or(&le.path);
        let te = tree.get(path).unwrap();
        let what = display(path);
        assert_eq!(le.mode, te.mode, "{what}");
        assert_eq!(
            (le.uid, le.gid, le.mtime),
            (te.uid, te.gid, te.mtime),
            "{what}"
        );
        assert_eq!(is_dir_name, te.is_dir(), "{what}");
        if path == b"usr/bin/b" {
            assert_eq!(le.ty, EntryType::Link, "{what}");
            assert_eq!(le.link.as_deref(), Some(&b"usr/bin/a"[..]));
            assert!(le.data.is_empty());
            continue;
        }
        assert_eq!(le.xattrs, te.xattrs, "{what}");
        match &te.kind {
            Kind::File { size } => {
                assert_eq!(le.ty, EntryType::Regular, "{what}");
                assert_eq!(le.data.len() as u64, *size);
                assert_eq!(le.data, src.0[path], "{what}");
            }
            Kind::Dir => assert_eq!(le.ty, EntryType::Directory, "{what}"),
            Kind::Symlink { target } => {
                assert_eq!(le.ty, EntryType::Symlink, "{what}");
                assert_eq!(le.link.as_ref(), Some(target), "{what}");
            }
            Kind::CharDev { major, minor } => {
                assert_eq!(le.ty, EntryType::Char, "{what}");
                assert_eq!(le.dev, (*major, *minor));
            }
            Kind::BlockDev { major, minor } => {
                assert_eq!(le.ty, EntryType::Block, "{what}");
                assert_eq!(le.dev, (*major, *minor));
            }
            Kind::Fifo => assert_eq!(le.ty, EntryType::Fifo, "{what}"),
        }
    }
    let ping = entries.iter().find(|e| e.path == b"bin/ping").unwrap();
    assert_eq!(
        ping.xattrs.get("security.capability").map(Vec::as_slice),
        Some(CAP)
    );
    assert_eq!(ping.mode, 0o4755);
    assert_eq!(ping.uid, 3_000_000);
}

#[test]
fn writing_twice_is_byte_identical() {
    let (tree, src, keep) = fixture();
    for c in ALL {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tar");
        let b = dir.path().join("b.tar");
        let wa = write_image(&tree, &src, &keep, &image(), &opts(c), &a).unwrap();
        let wb = write_image(&tree, &src, &keep, &image(), &opts(c), &b).unwrap();
        assert_eq!(wa, wb);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "{c:?}");
    }
}

#[test]
fn gzip_header_has_no_mtime_or_name() {
    let (tree, src, keep) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.tar");
    let w = write_image(&tree, &src, &keep, &image(), &opts(Compression::Gzip), &out).unwrap();
    let outer = read_outer(&out);
    let layer = blob(&outer, &blob_name(&w.layer_digest));
    assert_eq!(&layer[..4], &[0x1f, 0x8b, 8, 0], "flags: no FNAME");
    assert_eq!(&layer[4..8], &[0, 0, 0, 0], "mtime");
}

#[test]
fn errors_leave_nothing_behind() {
    let (tree, src, keep) = fixture();
    let mut missing = src.clone();
    missing.0.remove(&long_file());
    let mut short = src.clone();
    short.0.insert(b"bin/ping".to_vec(), b"\x7fELF".to_vec());
    let mut long = src.clone();
    long.0
        .insert(b"bin/ping".to_vec(), b"\x7fELF ping and more".to_vec());
    let mut not_in_tree = keep.clone();
    not_in_tree.insert(b"nope/x".to_vec());
    let mut bad_tag = opts(Compression::Gzip);
    bad_tag.tag = Some("Bad:Tag:".into());
    let cases: Vec<(&str, &MemSource, &BTreeSet<Vec<u8>>, WriteOptions)> = vec![
        ("missing", &missing, &keep, opts(Compression::Gzip)),
        ("short", &short, &keep, opts(Compression::None)),
        ("long", &long, &keep, opts(Compression::Zstd)),
        ("not in tree", &src, &not_in_tree, opts(Compression::Gzip)),
        ("bad tag", &src, &keep, bad_tag),
    ];
    for (what, s, k, o) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.tar");
        let err = write_image(&tree, s, k, &image(), &o, &out).unwrap_err();
        let ok = match what {
            "missing" => {
                matches!(&err, OutputError::OpenFile { path, .. } if path == &display(&long_file()))
            }
            "short" => matches!(
                &err,
                OutputError::FileTruncated {
                    expected: 9,
                    found: 4,
                    ..
                }
            ),
            "long" => matches!(&err, OutputError::FileGrew { expected: 9, .. }),
            "not in tree" => {
                matches!(&err, OutputError::MissingEntry { path } if path == "/nope/x")
            }
            _ => matches!(&err, OutputError::InvalidReference { .. }),
        };
        assert!(ok, "{what}: unexpected error {err:?}");
        assert!(
            dir_listing(dir.path()).is_empty(),
            "{what}: left {:?}",
            dir_listing(dir.path())
        );
    }
}

#[test]
fn existing_out_is_kept_on_error_and_replaced_on_success() {
    let (tree, src, keep) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tar");
    fs::write(&out, b"old").unwrap();
    let empty = MemSource::default();
    assert!(write_image(
        &tree,
        &empty,
        &keep,
        &image(),
        &opts(Compression::None),
        &out
    )
    .is_err());
    assert_eq!(fs::read(&out).unwrap(), b"old");
    write_image(&tree, &src, &keep, &image(), &opts(Compression::None), &out).unwrap();
    assert_ne!(fs::read(&out).unwrap(), b"old");
    assert_eq!(dir_listing(dir.path()), ["out.tar"]);
}

#[test]
fn close_parents_adds_missing_directories() {
    let (tree, _, keep) = fixture();
    let got: Vec<Vec<u8>> = close_parents(&tree, &keep).unwrap().into_iter().collect();
    assert_eq!(got, expected_paths());
    // A parent that is not a directory.
    let mut t = tree.clone();
    let e = t.get(b"bin/ping").unwrap().clone();
    t.insert(b"bin/ping/x".to_vec(), e);
    let k: BTreeSet<Vec<u8>> = [b"bin/ping/x".to_vec()].into();
    assert!(matches!(
        close_parents(&t, &k),
        Err(OutputError::ParentNotDir { path }) if path == "/bin/ping"
    ));
}

/// `keep` merged with its missing parents is exactly every kept path plus all its ancestors
/// (computed here the plain way), for kept sets with and without their parents.
#[test]
fn missing_parents_merged_equals_all_ancestors() {
    let (tree, _, keep) = fixture();
    let all: BTreeSet<Vec<u8>> = tree.iter().map(|(p, _)| p.clone()).collect();
    let one: BTreeSet<Vec<u8>> = keep.iter().take(1).cloned().collect();
    let with_root: BTreeSet<Vec<u8>> = keep.iter().cloned().chain([Vec::new()]).collect();
    for k in [keep.clone(), all, one, with_root, BTreeSet::new()] {
        let mut want: BTreeSet<Vec<u8>> = BTreeSet::new();
        for p in k.iter().filter(|p| !p.is_empty()) {
            let comps: Vec<&[u8]> = p.split(|&b| b == b'/').collect();
            for n in 1..=comps.len() {
                want.insert(comps[..n].join(&b'/'));
            }
        }
        let want: Vec<Vec<u8>> = want.into_iter().collect();
        assert_eq!(
            close_parents(&tree, &k)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            want
        );
        let parents = missing_parents(&tree, &k).unwrap();
        let got: Vec<Vec<u8>> = merged(&k, &parents).cloned().collect();
        assert_eq!(got, want);
    }
    let mut t = tree.clone();
    let e = t.get(b"bin/ping").unwrap().clone();
    t.insert(b"bin/ping/x".to_vec(), e);
    let k: BTreeSet<Vec<u8>> = [b"bin/ping/x".to_vec()].into();
    assert!(matches!(
        missing_parents(&t, &k),
        Err(OutputError::ParentNotDir { path }) if path == "/bin/ping"
    ));
}

#[test]
fn hardlink_target_is_first_kept_path() {
    // Only `b` and `c` kept: `b` carries the content, `c` links to it.
    let (tree, src, _) = fixture();
    let keep: BTreeSet<Vec<u8>> = [b"usr/bin/c".to_vec(), b"usr/bin/b".to_vec()].into();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.tar");
    let w = write_image(&tree, &src, &keep, &image(), &opts(Compression::None), &out).unwrap();
    let outer = read_outer(&out);
    let (entries, _) = read_layer(blob(&outer, &blob_name(&w.layer_digest)), Compression::None);
    let got: Vec<(Vec<u8>, EntryType, Option<Vec<u8>>)> = entries
        .into_iter()
        .map(|e| (e.path, e.ty, e.link))
        .collect();
    assert_eq!(
        got,
        vec![
            (b"usr/".to_vec(), EntryType::Directory, None),
            (b"usr/bin/".to_vec(), EntryType::Directory, None),
            (b"usr/bin/b".to_vec(), EntryType::Regular, None),
            (
                b"usr/bin/c".to_vec(),
                EntryType::Link,
                Some(b"usr/bin/b".to_vec())
            ),
        ]
    );
    assert_eq!(w.file_bytes, 14);
}

#[test]
fn image_name_choice() {
    let (tree, src, _) = fixture();
    let keep: BTreeSet<Vec<u8>> = [b"tmp".to_vec()].into();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.tar");
    let mut img = image();
    let mut o = opts(Compression::None);
    for (tag, input, want) in [
        (
            Some("slim"),
            Some("nginx:1"),
            "docker.io/library/slim:latest",
        ),
        (
            Some("nginx:slim"),
            Some("x"),
            "docker.io/library/nginx:slim",
        ),
        (None, Some("localhost/app:2"), "localhost/app:2"),
        (None, None, "docker.io/library/oci-slim:latest"),
        (
            None,
            Some("not a name"),
            "docker.io/library/oci-slim:latest",
        ),
    ] {
        o.tag = tag.map(str::to_owned);
        img.name = input.map(str::to_owned);
        let w = write_image(&tree, &src, &keep, &img, &o, &out).unwrap();
        assert_eq!(w.name, want);
        let outer = read_outer(&out);
        let dm: Value = serde_json::from_slice(blob(&outer, "manifest.json")).unwrap();
        assert_eq!(dm[0]["RepoTags"][0], want);
    }
}

#[test]
fn config_must_be_an_object() {
    let (tree, src, keep) = fixture();
    let mut img = image();
    img.config = json!([1]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.tar");
    let err = write_image(&tree, &src, &keep, &img, &opts(Compression::None), &out).unwrap_err();
    assert!(matches!(err, OutputError::ConfigNotObject));
    assert!(dir_listing(dir.path()).is_empty());
}

#[test]
fn config_without_created_has_history_without_created() {
    let mut img = image();
    img.config.as_object_mut().unwrap().remove("created");
    let d = Digest::of_bytes(b"x");
    let c = patch_config(&img, &d, &opts(Compression::None)).unwrap();
    assert_eq!(
        c["history"],
        json!([{"created_by": "oci-slim test", "comment": "oci-slim: kept 19 of 26 paths"}])
    );
}

#[test]
fn skopeo_reads_both_halves() {
    let Ok(path) = which("skopeo") else {
        eprintln!("skipping: `skopeo` not installed");
        return;
    };
    let (tree, src, keep) = fixture();
    for c in [Compression::None, Compression::Gzip] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.tar");
        let w = write_image(&tree, &src, &keep, &image(), &opts(c), &out).unwrap();
        for transport in ["oci-archive", "docker-archive"] {
            let o = std::process::Command::new(&path)
                .arg("inspect")
                .arg(format!("{transport}:{}", out.display()))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "skopeo inspect {transport} ({c:?}) failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            let layers = v["Layers"].as_array().unwrap();
            assert_eq!(layers.len(), 1, "{transport}");
            assert_eq!(v["Architecture"], "amd64");
            if transport == "oci-archive" {
                assert_eq!(v["Digest"], w.manifest_digest.to_string());
                assert_eq!(layers[0], w.layer_digest.to_string());
            }
            // A copy reads and verifies every blob.
            let dest = dir.path().join(format!("copy-{transport}"));
            let o = std::process::Command::new(&path)
                .arg("copy")
                .arg(format!("{transport}:{}", out.display()))
                .arg(format!("dir:{}", dest.display()))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "skopeo copy {transport} ({c:?}) failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn umoci_unpacks_the_layer() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(umoci) = which("umoci") else {
        eprintln!("skipping: `umoci` not installed");
        return;
    };
    let (tree, src, keep) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tar");
    write_image(&tree, &src, &keep, &image(), &opts(Compression::Gzip), &out).unwrap();
    // Our own outer archive holds only plain files and directories.
    let layout = dir.path().join("layout");
    tar::Archive::new(File::open(&out).unwrap())
        .unpack(&layout)
        .unwrap();
    let bundle = dir.path().join("bundle");
    let o = std::process::Command::new(umoci)
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:1.25", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "umoci unpack failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let root = bundle.join("rootfs");
    let ping = fs::metadata(root.join("bin/ping")).unwrap();
    assert_eq!(ping.permissions().mode() & 0o7777, 0o4755);
    let a = fs::metadata(root.join("usr/bin/a")).unwrap();
    let b = fs::metadata(root.join("usr/bin/b")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hardlink kept");
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("./busybox//sh")
    );
    let lf = root.join(std::ffi::OsStr::from_bytes(&long_file()));
    assert_eq!(fs::read(lf).unwrap().len(), 3000);
    let nu = root.join(std::ffi::OsStr::from_bytes(&long_non_utf8()));
    assert_eq!(fs::read(nu).unwrap(), b"hi");
}

#[test]
fn empty_keep_set_gives_an_empty_layer() {
    let (tree, src, _) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.tar");
    let keep = BTreeSet::new();
    let w = write_image(&tree, &src, &keep, &image(), &opts(Compression::None), &out).unwrap();
    assert_eq!((w.entries, w.file_bytes), (0, 0));
    let outer = read_outer(&out);
    let (entries, raw) = read_layer(blob(&outer, &blob_name(&w.layer_digest)), Compression::None);
    assert!(entries.is_empty());
    assert_eq!(Digest::of_bytes(&raw), w.diff_id);
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
