//! The output image: one deterministic layer from the tree metadata and the original bytes,
//! the patched config, an OCI manifest, and an archive that is at once an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/..`) and a docker-save archive (`manifest.json`),
//! written to a temp file beside the target and renamed over it at the end.
//!
//! Layer pipeline, one pass: tar → hash (diff_id) → compressor → hash (blob digest) → temp
//! file. The staged blob is then copied into the outer tar (whose header needs its size).

mod layer;
mod reference;

pub use reference::normalize_reference;

use crate::archive::compress::Compression;
use crate::digest::{Digest, HashingWriter};
use crate::image::Image;
use crate::rootfs::{display, FileSource, Tree};
use layer::{Body, LayerTar};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use tar::EntryType;

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Reference used when neither the options nor the input name the image.
pub const DEFAULT_REFERENCE: &str = "oci-slim:latest";

/// Gzip level of the layer blob.
const GZIP_LEVEL: u32 = 6;
/// Zstd level of the layer blob (single-threaded, so the output is reproducible).
const ZSTD_LEVEL: i32 = 3;
const TEMP_PREFIX: &str = ".oci-slim-";
const TEMP_SUFFIX: &str = ".tmp";
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("invalid image reference `{reference}`: {reason}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    #[error("the input config is not a JSON object")]
    ConfigNotObject,
    #[error("kept path `{path}` is not in the image tree")]
    MissingEntry { path: String },
    #[error("parent `{path}` of a kept path is not a directory in the image tree")]
    ParentNotDir { path: String },
    #[error("cannot write the tar entry for `{path}`: {reason}")]
    EntryHeader { path: String, reason: &'static str },
    #[error("opening `{path}` in the image failed")]
    OpenFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("reading `{path}` in the image failed")]
    ReadFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("`{path}` in the image has {found} bytes, the tree says {expected}")]
    FileTruncated {
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("`{path}` in the image has more than the {expected} bytes the tree says")]
    FileGrew { path: String, expected: u64 },
    #[error("creating a temporary file in `{dir}` failed")]
    CreateTemp {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the layer blob `{path}` failed")]
    WriteLayer {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the output archive `{path}` failed")]
    WriteArchive {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the staged layer blob changed size: wrote {expected} bytes, read back {found}")]
    LayerBlobChanged { expected: u64, found: u64 },
    #[error("renaming the finished archive to `{path}` failed")]
    Persist {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("serializing the {what} failed")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// How to write the output image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Reference to name the image; `None` → the input's name, else `oci-slim:latest`.
    pub tag: Option<String>,
    /// Comment of the single history entry, e.g. `oci-slim: kept 812 of 4518 paths`.
    pub history_comment: String,
    /// `created_by` of the single history entry.
    pub created_by: String,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layer_digest: Digest,
    pub diff_id: Digest,
    /// Size of the layer blob as stored (compressed).
    pub layer_size: u64,
    pub layer_uncompressed_size: u64,
    /// Size of the whole output archive.
    pub archive_size: u64,
    /// Entries in the layer tar (directories, files, links, ...).
    pub entries: usize,
    /// Bytes of regular file content in the layer (hardlinks counted once).
    pub file_bytes: u64,
    /// Full reference the image is named by, e.g. `docker.io/library/nginx:slim`.
    pub name: String,
}

/// OCI media type of a layer blob with this compression.
pub fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// `keep` plus every parent directory of a kept path, the root excluded, in tree order.
/// Every path must exist in the tree and every parent must be a directory.
pub fn close_parents(
    tree: &Tree,
    keep: &BTreeSet<Vec<u8>>,
) -> Result<BTreeSet<Vec<u8>>, OutputError> {
    let parents = missing_parents(tree, keep)?;
    Ok(merged(keep, &parents).cloned().collect())
}

/// The parent directories of kept paths that `keep` lacks (the root excluded), with the same
/// checks as [`close_parents`]. `keep` ∪ this = `close_parents(keep)`, without copying `keep`
/// (a flatten keeps every path: a copy would double the memory for paths).
fn missing_parents(
    tree: &Tree,
    keep: &BTreeSet<Vec<u8>>,
) -> Result<BTreeSet<Vec<u8>>, OutputError> {
    let mut out = BTreeSet::new();
    for p in keep {
        if p.is_empty() {
            continue;
        }
        if !tree.contains(p) {
            return Err(OutputError::MissingEntry { path: display(p) });
        }
        let mut cur = &p[..];
        while let Some(i) = cur.iter().rposition(|&b| b == b'/') {
            cur = &cur[..i];
            match tree.get(cur) {
                Some(e) if e.is_dir() => {}
                Some(_) => return Err(OutputError::ParentNotDir { path: display(cur) }),
                None => return Err(OutputError::MissingEntry { path: display(cur) }),
            }
            if keep.contains(cur) {
                // Checked (or to be checked) as a kept path of its own, with its parents.
                break;
            }
            if !out.insert(cur.to_vec()) {
                break;
            }
        }
    }
    Ok(out)
}

/// The union of two sorted sets, in order, the empty path left out.
fn merged<'a>(
    a: &'a BTreeSet<Vec<u8>>,
    b: &'a BTreeSet<Vec<u8>>,
) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
    let mut a = a.iter().peekable();
    let mut b = b.iter().peekable();
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => a.next(),
            std::cmp::Ordering::Greater => b.next(),
            std::cmp::Ordering::Equal => {
                b.next();
                a.next()
            }
        },
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
    .filter(|p| !p.is_empty())
}

/// The layer compressor.
enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(c: Compression, w: W) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::None(w),
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(w, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(w, ZSTD_LEVEL)?),
        })
    }
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// The staged layer blob and its digests.
struct StagedLayer {
    file: tempfile::NamedTempFile,
    digest: Digest,
    size: u64,
    diff_id: Digest,
    uncompressed_size: u64,
    entries: usize,
    file_bytes: u64,
}

fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile, OutputError> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        // Removed on SIGINT/SIGTERM; a no-op once renamed into place or dropped.
        .inspect(|f| crate::sys::cleanup::register(f.path()))
        .map_err(|e| OutputError::CreateTemp {
            dir: dir.to_path_buf(),
            source: e,
        })
}

/// Bytes per chunk handed from the tar writer to the compressor thread.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight to the compressor thread (bounded memory: about 2 MiB).
const IN_FLIGHT: usize = 8;

/// The tar side of the pipeline: collects bytes into chunks and sends them to the compressor
/// thread. A send fails only when that thread stopped (on a write error it reports at join).
struct ChunkSender {
    tx: mpsc::SyncSender<Vec<u8>>,
    spare: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.clear();
        next.reserve(CHUNK);
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the layer compressor stopped"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_layer<'a>(
    tree: &Tree,
    src: &dyn FileSource,
    paths: impl Iterator<Item = &'a Vec<u8>>,
    compression: Compression,
    dir: &Path,
) -> Result<StagedLayer, OutputError> {
    let mut file = temp_in(dir)?;
    let tmp_path = file.path().to_path_buf();
    let io_err = |e: io::Error| OutputError::WriteLayer {
        path: tmp_path.clone(),
        source: e,
    };
    // Two stages on two threads, joined by a bounded channel of chunks: this thread reads the
    // files, writes the tar and hashes it (diff_id); the compressor thread compresses, hashes
    // the blob and writes it. The byte stream is the same as with one thread.
    let blob = HashingWriter::new(BufWriter::new(file.as_file_mut()));
    let mut enc = Encoder::new(compression, blob).map_err(io_err)?;
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(2);
    let (tar_result, blob_result) = std::thread::scope(|scope| {
        let compressor = scope.spawn(move || -> io::Result<_> {
            for chunk in rx {
                enc.write_all(&chunk)?;
                let _ = spare_tx.try_send(chunk);
            }
            let (digest, size, mut buf) = enc.finish()?.finish();
            buf.flush()?;
            Ok((digest, size))
        });
        let sender = ChunkSender {
            tx,
            spare: spare_rx,
            buf: Vec::with_capacity(CHUNK),
        };
        let tar_result = (|| {
            let mut tar = LayerTar::new(HashingWriter::new(sender));
            // First kept path of each inode: later paths sharing it become hardlinks to it.
            let mut first_of_inode: HashMap<u64, &[u8]> = HashMap::new();
            for p in paths {
                let Some(entry) = tree.get(p) else {
                    return Err(OutputError::MissingEntry { path: display(p) });
                };
                let body = if entry.is_dir() {
                    Body::Entry(entry)
                } else {
                    match first_of_inode.get(&entry.inode) {
                        Some(target) => Body::HardLink { entry, target },
                        None => {
                            first_of_inode.insert(entry.inode, p);
                            Body::Entry(entry)
                        }
                    }
                };
                tar.append(p, body, src, &io_err)?;
            }
            let (entries, file_bytes) = (tar.entries, tar.file_bytes);
            let diff = tar.finish().map_err(io_err)?;
            let (diff_id, uncompressed_size, mut sender) = diff.finish();
            sender.send().map_err(io_err)?;
            // Dropping the sender ends the compressor's loop.
            drop(sender);
            Ok((entries, file_bytes, diff_id, uncompressed_size))
        })();
        // On an error above the sender is already dropped, so the compressor ends too.
        let blob_result = compressor
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the layer compressor thread panicked")));
        (tar_result, blob_result)
    });
    // A compressor failure explains a tar-side `BrokenPipe`: report it first.
    let (digest, size) = blob_result.map_err(io_err)?;
    let (entries, file_bytes, diff_id, uncompressed_size) = tar_result?;
    Ok(StagedLayer {
        file,
        digest,
        size,
        diff_id,
        uncompressed_size,
        entries,
        file_bytes,
    })
}

/// The input config with `rootfs` and `history` replaced for the single new layer.
fn patch_config(
    image: &Image,
    diff_id: &Digest,
    opts: &WriteOptions,
) -> Result<Value, OutputError> {
    let mut config = image.config.clone();
    let obj = config.as_object_mut().ok_or(OutputError::ConfigNotObject)?;
    let mut history = serde_json::Map::new();
    if let Some(created) = image.config.get("created") {
        history.insert("created".into(), created.clone());
    }
    history.insert("created_by".into(), Value::String(opts.created_by.clone()));
    history.insert(
        "comment".into(),
        Value::String(opts.history_comment.clone()),
    );
    obj.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": [diff_id.to_string()]}),
    );
    obj.insert("history".into(), Value::Array(vec![Value::Object(history)]));
    Ok(config)
}

fn to_json(what: &'static str, v: &impl serde::Serialize) -> Result<Vec<u8>, OutputError> {
    serde_json::to_vec(v).map_err(|e| OutputError::Json { what, source: e })
}

/// The name to give the output image, fully qualified.
fn image_reference(
    image: &Image,
    opts: &WriteOptions,
) -> Result<reference::Reference, OutputError> {
    if let Some(tag) = &opts.tag {
        return reference::parse(tag);
    }
    if let Some(name) = &image.name {
        if let Ok(r) = reference::parse(name) {
            return Ok(r);
        }
    }
    reference::parse(DEFAULT_REFERENCE)
}

#[derive(serde::Serialize)]
struct DockerManifest<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: [&'a str; 1],
    #[serde(rename = "Layers")]
    layers: [String; 1],
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The JSON documents of the output image, serialized.
struct Documents {
    config: Vec<u8>,
    config_digest: Digest,
    manifest: Vec<u8>,
    manifest_digest: Digest,
    index: Vec<u8>,
    docker_manifest: Vec<u8>,
}

fn documents(
    image: &Image,
    opts: &WriteOptions,
    reference: &reference::Reference,
    layer: &StagedLayer,
) -> Result<Documents, OutputError> {
    let name = reference.full();
    let config = to_json("image config", &patch_config(image, &layer.diff_id, opts)?)?;
    let config_digest = Digest::of_bytes(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_CONFIG,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": layer_media_type(opts.compression),
            "digest": layer.digest.to_string(),
            "size": layer.size,
        }],
    });
    let manifest = to_json("image manifest", &manifest)?;
    let manifest_digest = Digest::of_bytes(&manifest);
    let mut descriptor = json!({
        "mediaType": MEDIA_TYPE_MANIFEST,
        "digest": manifest_digest.to_string(),
        "size": manifest.len(),
        "annotations": {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": reference.tag,
        },
    });
    let platform = &image.platform;
    if !platform.os.is_empty() && !platform.architecture.is_empty() {
        descriptor["platform"] = serde_json::to_value(platform).map_err(|e| OutputError::Json {
            what: "platform",
            source: e,
        })?;
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [descriptor],
    });
    let index = to_json("index.json", &index)?;
    let docker_manifest = [DockerManifest {
        config: blob_name(&config_digest),
        repo_tags: [&name],
        layers: [blob_name(&layer.digest)],
    }];
    let docker_manifest = to_json("manifest.json", &docker_manifest)?;
    Ok(Documents {
        config,
        config_digest,
        manifest,
        manifest_digest,
        index,
        docker_manifest,
    })
}

/// Write the outer archive (OCI layout + docker-save) to `file`, in a fixed sorted order:
/// `blobs/`, `blobs/sha256/`, the blobs by digest, `index.json`, `manifest.json`,
/// `oci-layout`. Returns its size.
fn write_archive(
    file: &mut File,
    file_path: &Path,
    layer: &mut StagedLayer,
    docs: &Documents,
) -> Result<u64, OutputError> {
    let werr = |e: io::Error| OutputError::WriteArchive {
        path: file_path.to_path_buf(),
        source: e,
    };
    let hdr = |name: &[u8], ty: EntryType, mode: u32, size: u64| {
        layer::plain_header(name, ty, mode, size).map_err(|reason| OutputError::EntryHeader {
            path: String::from_utf8_lossy(name).into_owned(),
            reason,
        })
    };
    let mut small: BTreeMap<String, &[u8]> = BTreeMap::new();
    small.insert(blob_name(&docs.config_digest), &docs.config);
    small.insert(blob_name(&docs.manifest_digest), &docs.manifest);
    let layer_name = blob_name(&layer.digest);

    let mut ar = tar::Builder::new(HashingWriter::new(BufWriter::new(file)));
    for d in ["blobs/", "blobs/sha256/"] {
        let h = hdr(d.as_bytes(), EntryType::Directory, 0o755, 0)?;
        ar.append(&h, io::empty()).map_err(werr)?;
    }
    let mut blob_names: BTreeSet<&str> = small.keys().map(String::as_str).collect();
    blob_names.insert(&layer_name);
    for b in blob_names {
        if b == layer_name {
            let h = hdr(b.as_bytes(), EntryType::Regular, 0o644, layer.size)?;
            let f = layer.file.as_file_mut();
            f.rewind().map_err(werr)?;
            let mut r = CountingReader {
                inner: Read::take(&mut *f, layer.size),
                count: 0,
            };
            ar.append(&h, &mut r).map_err(werr)?;
            if r.count != layer.size {
                return Err(OutputError::LayerBlobChanged {
                    expected: layer.size,
                    found: r.count,
                });
            }
        } else if let Some(data) = small.get(b) {
            let h = hdr(b.as_bytes(), EntryType::Regular, 0o644, data.len() as u64)?;
            ar.append(&h, *data).map_err(werr)?;
        }
    }
    for (n, data) in [
        ("index.json", &docs.index[..]),
        ("manifest.json", &docs.docker_manifest[..]),
        ("oci-layout", OCI_LAYOUT),
    ] {
        let h = hdr(n.as_bytes(), EntryType::Regular, 0o644, data.len() as u64)?;
        ar.append(&h, data).map_err(werr)?;
    }
    let (_, size, mut buf) = ar.into_inner().map_err(werr)?.finish();
    buf.flush().map_err(werr)?;
    Ok(size)
}

/// Write the image made of the kept paths of `tree` to `out`, atomically.
///
/// `keep` holds tree paths; their parent directories are added. File bytes come from `src`
/// and must match the sizes in the tree. On error `out` is untouched and no temp file remains.
pub fn write_image(
    tree: &Tree,
    src: &dyn FileSource,
    keep: &BTreeSet<Vec<u8>>,
    image: &Image,
    opts: &WriteOptions,
    out: &Path,
) -> Result<Written, OutputError> {
    let reference = image_reference(image, opts)?;
    let parents = missing_parents(tree, keep)?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut layer = write_layer(tree, src, merged(keep, &parents), opts.compression, &dir)?;
    let docs = documents(image, opts, &reference, &layer)?;

    let mut out_tmp = temp_in(&dir)?;
    let out_tmp_path = out_tmp.path().to_path_buf();
    let archive_size = write_archive(out_tmp.as_file_mut(), &out_tmp_path, &mut layer, &docs)?;
    out_tmp
        .as_file()
        .sync_all()
        .map_err(|e| OutputError::WriteArchive {
            path: out_tmp_path,
            source: e,
        })?;
    drop(layer.file);
    out_tmp.persist(out).map_err(|e| OutputError::Persist {
        path: out.to_path_buf(),
        source: e.error,
    })?;
    // Make the rename durable; a failure here does not undo a complete, renamed file.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(Written {
        manifest_digest: docs.manifest_digest,
        config_digest: docs.config_digest,
        layer_digest: layer.digest,
        diff_id: layer.diff_id,
        layer_size: layer.size,
        layer_uncompressed_size: layer.uncompressed_size,
        archive_size,
        entries: layer.entries,
        file_bytes: layer.file_bytes,
        name: reference.full(),
    })
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
