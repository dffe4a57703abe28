//! Input formats: docker-save (legacy and Docker 25+), OCI image layout (tar or directory).
//!
//! [`Archive::open`] indexes the input once (a tar's entries with their data offsets, or a
//! layout directory), [`Archive::select`] picks one image (by reference and platform) and
//! verifies every JSON document on the way, and [`Archive::open_layer`] streams a layer's
//! decompressed tar, verifying stored size and digest, diff_id and the unpacked budget.
//!
//! Rules worth knowing:
//! * Outer tar: names are normalized (`./` stripped) and refused when absolute, with `..`, NUL,
//!   non-UTF-8 or longer than `limits.max_path_len`; duplicates are refused; truncation and
//!   anything but zero blocks after the end-of-archive marker are errors.
//! * Link entries in the outer tar (older `docker save` writes `<id>/layer.tar` symlinks) are
//!   resolved one hop inside the archive's own index to a regular entry, never on the host.
//!   A layout directory is opened with `O_NOFOLLOW` on every component: symlinks are refused.
//! * docker-save: `manifest.json` wins over `index.json` when both exist; the OCI half is only
//!   cross-checked into [`Archive::warnings`]. Config names `blobs/sha256/<hex>` / `<hex>.json`
//!   and layer names `blobs/sha256/<hex>` / `<hex>.tar` carry a digest that is verified; legacy
//!   `<id>/layer.tar` carries none, so its [`LayerRef::digest`] is the diff_id and only the
//!   decompressed content is checked.
//! * OCI: nested indexes are followed up to `limits.max_index_depth`; manifests whose blobs are
//!   absent and attestation entries are skipped; the default platform is [`Platform::host`].
//!   `--image` accepts a reference (docker-normalized: `nginx`, `docker.io/library/nginx:latest`
//!   and `localhost/nginx:latest` are equal), a bare OCI tag, or a manifest digest.

pub mod compress;
mod error;
mod layer;
mod name;
mod tarindex;

pub use compress::Compression;
pub use error::ArchiveError;
pub use layer::{LayerReader, LayerStats};
pub use name::{normalize_reference, same_reference};

use crate::digest::Digest;
use crate::image::{Image, LayerRef, Platform, SourceFormat};
use crate::limits::Limits;
use layer::{Handle, Section};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use tarindex::{EntryKind, TarEntry};

const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";

enum Source {
    Tar {
        file: File,
        entries: HashMap<String, TarEntry>,
    },
    Dir {
        root: OwnedFd,
    },
}

/// An opened input archive (tar file or OCI layout directory).
pub struct Archive {
    path: PathBuf,
    source: Source,
    limits: Limits,
    has_manifest_json: bool,
    has_index_json: bool,
    /// Decompressed bytes read from all layers so far.
    unpacked: AtomicU64,
    warnings: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("path", &self.path)
            .field("has_manifest_json", &self.has_manifest_json)
            .field("has_index_json", &self.has_index_json)
            .finish_non_exhaustive()
    }
}

// ---- documents ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
struct DescPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    platform: Option<DescPlatform>,
}

impl Descriptor {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// An index or a manifest: which one is decided by the fields present.
#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

fn is_index_type(mt: &str) -> bool {
    matches!(
        mt,
        "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

fn is_manifest_type(mt: &str) -> bool {
    matches!(
        mt,
        "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json"
    )
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The digest a docker-save file name carries: `blobs/sha256/<hex>`, `<hex>.json`, `<hex>.tar`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json"))
        .or_else(|| name.strip_suffix(".tar"))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn parse_digest(s: &str, document: &str) -> Result<Digest, ArchiveError> {
    Digest::parse(s).map_err(|source| ArchiveError::InvalidDigest {
        document: document.to_owned(),
        source,
    })
}

fn platform_matches(have: &Platform, want: &Platform) -> bool {
    have.os == want.os
        && have.architecture == want.architecture
        && (want.variant.is_none() || have.variant == want.variant)
}

fn platform_of_config(config: &serde_json::Value) -> Platform {
    let s = |k: &str| config.get(k).and_then(serde_json::Value::as_str);
    Platform {
        os: s("os").unwrap_or("").to_owned(),
        architecture: s("architecture").unwrap_or("").to_owned(),
        variant: s("variant").map(str::to_owned),
    }
}

/// A manifest that could be the selected image.
#[derive(Debug, Clone)]
struct Candidate {
    desc: Descriptor,
    digest: Digest,
    name: Option<String>,
    platform: Option<Platform>,
}

/// Name of a top-level index entry: the full containerd name, else the OCI ref name.
fn oci_name(d: &Descriptor) -> Option<String> {
    d.annotation(ANN_CONTAINERD_NAME)
        .or_else(|| d.annotation(ANN_REF_NAME))
        .map(str::to_owned)
}

/// Whether an index entry's name matches the `--image` selector. A bare OCI ref name such as
/// `latest` (a tag only) matches a selector with that tag, at lower priority.
fn name_match(name: &str, wanted: &str) -> u8 {
    if name.is_empty() {
        0
    } else if name == wanted || same_reference(name, wanted) {
        2
    } else if !name.contains([':', '/', '@'])
        && (wanted == name || wanted.rsplit_once(':').is_some_and(|(_, t)| t == name))
    {
        1
    } else {
        0
    }
}

/// The reference to record for the image: a full reference, never a bare tag.
fn display_name(name: &str) -> Option<String> {
    if name.contains([':', '/', '@']) {
        normalize_reference(name).or_else(|| Some(name.to_owned()))
    } else {
        None
    }
}

impl Archive {
    /// Open a tar file or an OCI layout directory and index it.
    pub fn open(path: &Path, limits: &Limits) -> Result<Archive, ArchiveError> {
        let open_err = |source| ArchiveError::Open {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(open_err)?;
        let source = if meta.is_dir() {
            let root = nix::fcntl::open(
                path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| open_err(e.into()))?;
            Source::Dir { root }
        } else {
            let file = File::open(path).map_err(open_err)?;
            let len = file
                .metadata()
                .map_err(|source| ArchiveError::Read {
                    path: path.to_path_buf(),
                    source,
                })?
                .len();
            let mut head = [0u8; 512];
            let n = std::os::unix::fs::FileExt::read_at(&file, &mut head, 0).map_err(|source| {
                ArchiveError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            let not = |reason: &str| ArchiveError::NotAnArchive {
                path: path.to_path_buf(),
                reason: reason.to_owned(),
            };
            match Compression::sniff(&head[..n]) {
                Compression::None => {}
                Compression::Gzip => {
                    return Err(not("it is gzip compressed; hint: decompress it first"))
                }
                Compression::Zstd => {
                    return Err(not("it is zstd compressed; hint: decompress it first"))
                }
            }
            if n < 512 {
                return Err(not("shorter than one tar block"));
            }
            let entries = match tarindex::index(
                &file,
                path,
                len,
                limits.max_archive_entries,
                limits.max_path_len,
            ) {
                Err(ArchiveError::BadHeader { offset: 0, .. }) => {
                    return Err(not("no valid tar header at the start"))
                }
                r => r?,
            };
            Source::Tar { file, entries }
        };
        let mut archive = Archive {
            path: path.to_path_buf(),
            source,
            limits: limits.clone(),
            has_manifest_json: false,
            has_index_json: false,
            unpacked: AtomicU64::new(0),
            warnings: Mutex::new(Vec::new()),
        };
        archive.has_manifest_json = archive.blob_present("manifest.json")?;
        archive.has_index_json = archive.blob_present("index.json")?;
        if !archive.has_manifest_json && !archive.has_index_json {
            return Err(ArchiveError::NotAnArchive {
                path: path.to_path_buf(),
                reason: "neither `manifest.json` (docker save) nor `index.json` (OCI layout) found"
                    .into(),
            });
        }
        Ok(archive)
    }

    /// Non-fatal oddities noticed so far (such as an unreadable OCI half of a docker save).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn warn(&self, msg: String) {
        if let Ok(mut w) = self.warnings.lock() {
            if !w.contains(&msg) {
                w.push(msg);
            }
        }
    }

    /// Decompressed bytes read from all layers so far.
    pub fn unpacked_bytes(&self) -> u64 {
        self.unpacked.load(std::sync::atomic::Ordering::Relaxed)
    }

    // ---- raw access ------------------------------------------------------------------------

    /// Whether blob `name` exists; refusals (symlinks, special files) are errors.
    fn blob_present(&self, name: &str) -> Result<bool, ArchiveError> {
        match self.section(name) {
            Ok(_) => Ok(true),
            Err(ArchiveError::MissingBlob { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Open `name` (normalized) under the layout directory without following any symlink.
    fn open_in_dir(&self, name: &str) -> Result<File, ArchiveError> {
        let Source::Dir { root } = &self.source else {
            return Err(ArchiveError::MissingBlob {
                name: name.to_owned(),
            });
        };
        let refuse = |reason: String| ArchiveError::DirPath {
            name: name.to_owned(),
            reason,
        };
        let parts: Vec<&str> = name.split('/').collect();
        if name.is_empty()
            || parts
                .iter()
                .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(refuse("not a normalized relative path".into()));
        }
        let errno_to = |e: nix::errno::Errno| match e {
            nix::errno::Errno::ENOENT => ArchiveError::MissingBlob {
                name: name.to_owned(),
            },
            nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => {
                refuse("a path component is a symlink or not a directory".into())
            }
            e => refuse(format!("open failed: {e}")),
        };
        let mut dir: Option<OwnedFd> = None;
        let (last, dirs) = parts.split_last().ok_or_else(|| refuse("empty".into()))?;
        for p in dirs {
            let fd = match &dir {
                None => nix::fcntl::openat(
                    root,
                    *p,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ),
                Some(d) => nix::fcntl::openat(
                    d,
                    *p,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ),
            }
            .map_err(errno_to)?;
            dir = Some(fd);
        }
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match &dir {
            None => nix::fcntl::openat(root, *last, flags, Mode::empty()),
            Some(d) => nix::fcntl::openat(d, *last, flags, Mode::empty()),
        }
        .map_err(errno_to)?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(|e| refuse(e.to_string()))?;
        if !meta.is_file() {
            return Err(ArchiveError::NotRegular {
                name: name.to_owned(),
            });
        }
        Ok(file)
    }

    /// The bytes of entry `name` as a section of a file.
    fn section(&self, name: &str) -> Result<Section<'_>, ArchiveError> {
        match &self.source {
            Source::Tar { file, entries } => {
                let mut e = entries.get(name).ok_or_else(|| ArchiveError::MissingBlob {
                    name: name.to_owned(),
                })?;
                // Older `docker save` writes `<id>/layer.tar -> ../<id2>/layer.tar` for layers
                // saved twice: follow one hop inside the archive's own index, never on disk.
                if e.kind == EntryKind::Link {
                    if let Some(t) = e.target.as_deref().and_then(|t| entries.get(t)) {
                        e = t;
                    }
                }
                if e.kind != EntryKind::File {
                    return Err(ArchiveError::NotRegular {
                        name: name.to_owned(),
                    });
                }
                Ok(Section::new(Handle::Borrowed(file), e.offset, e.size))
            }
            Source::Dir { .. } => {
                let f = self.open_in_dir(name)?;
                let len = f
                    .metadata()
                    .map_err(|source| ArchiveError::ReadEntry {
                        name: name.to_owned(),
                        source,
                    })?
                    .len();
                Ok(Section::new(Handle::Owned(f), 0, len))
            }
        }
    }

    /// Read a JSON document, size-limited, checking its size and digest when known.
    fn read_doc(
        &self,
        name: &str,
        digest: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Vec<u8>, ArchiveError> {
        let mut sec = self.section(name)?;
        let len = sec.len();
        if let Some(expected) = size {
            if expected != len {
                return Err(ArchiveError::SizeMismatch {
                    name: name.to_owned(),
                    expected,
                    found: len,
                });
            }
        }
        let limit = self.limits.max_json_bytes;
        if len > limit {
            return Err(ArchiveError::JsonTooLarge {
                name: name.to_owned(),
                size: len,
                limit,
            });
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        (&mut sec)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|source| ArchiveError::ReadEntry {
                name: name.to_owned(),
                source,
            })?;
        if buf.len() as u64 > limit {
            return Err(ArchiveError::JsonTooLarge {
                name: name.to_owned(),
                size: buf.len() as u64,
                limit,
            });
        }
        if let Some(expected) = digest {
            let found = Digest::of_bytes(&buf);
            if &found != expected {
                return Err(ArchiveError::DigestMismatch {
                    name: name.to_owned(),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        Ok(buf)
    }

    fn parse<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, ArchiveError> {
        serde_json::from_slice(bytes).map_err(|source| ArchiveError::MalformedJson {
            name: name.to_owned(),
            source,
        })
    }

    fn docker_entries(&self) -> Result<Vec<DockerEntry>, ArchiveError> {
        let bytes = self.read_doc("manifest.json", None, None)?;
        Self::parse("manifest.json", &bytes)
    }

    fn index_doc(&self) -> Result<Document, ArchiveError> {
        let bytes = self.read_doc("index.json", None, None)?;
        Self::parse("index.json", &bytes)
    }

    // ---- selection -------------------------------------------------------------------------

    /// References of the images in the archive (may be empty for unnamed images).
    pub fn image_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.has_manifest_json {
            if let Ok(entries) = self.docker_entries() {
                for e in entries {
                    out.extend(e.repo_tags.unwrap_or_default());
                }
            }
        } else if let Ok(index) = self.index_doc() {
            for d in index.manifests.unwrap_or_default() {
                if let Some(n) = oci_name(&d) {
                    out.push(n);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|n| seen.insert(n.clone()));
        out
    }

    /// Select one image by reference (`--image`) and platform (`--platform`; for multi-platform
    /// OCI indexes the host's by default), verifying manifest and config digests.
    pub fn select(
        &self,
        image: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<Image, ArchiveError> {
        if self.has_manifest_json {
            self.select_docker(image, platform)
        } else {
            self.select_oci(image, platform)
        }
    }

    fn select_docker(
        &self,
        image: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<Image, ArchiveError> {
        let entries = self.docker_entries()?;
        if entries.is_empty() {
            return Err(ArchiveError::Unsupported {
                document: "manifest.json".into(),
                reason: "it lists no image".into(),
            });
        }
        let label = |e: &DockerEntry| -> String {
            match e.repo_tags.as_deref() {
                Some([first, ..]) => first.clone(),
                _ => format!("<untagged config {}>", e.config),
            }
        };
        let all_names: Vec<String> = entries
            .iter()
            .flat_map(|e| match e.repo_tags.as_deref() {
                Some(tags) if !tags.is_empty() => tags.to_vec(),
                _ => vec![label(e)],
            })
            .collect();
        let (entry, name) = match image {
            Some(wanted) => {
                let mut hit = None;
                // The image ID (config digest) selects too, as with `docker save <id>`.
                if let Ok(id) = Digest::parse(wanted) {
                    hit = entries
                        .iter()
                        .find(|e| {
                            name::normalize_entry_name(e.config.as_bytes())
                                .ok()
                                .and_then(|n| digest_in_name(&n))
                                .is_some_and(|d| d == id)
                        })
                        .map(|e| (e, e.repo_tags.iter().flatten().next().cloned()));
                }
                'outer: for e in entries.iter().filter(|_| hit.is_none()) {
                    for t in e.repo_tags.iter().flatten() {
                        if same_reference(t, wanted) || t == wanted {
                            hit = Some((e, Some(t.clone())));
                            break 'outer;
                        }
                    }
                }
                hit.ok_or_else(|| ArchiveError::NoImageMatch {
                    wanted: wanted.to_owned(),
                    available: all_names.clone(),
                })?
            }
            None => {
                if entries.len() > 1 {
                    return Err(ArchiveError::SeveralImages {
                        available: entries.iter().map(label).collect(),
                    });
                }
                let e = &entries[0];
                (e, e.repo_tags.iter().flatten().next().cloned())
            }
        };

        let config_name = name::normalize_entry_name(entry.config.as_bytes())?;
        let config_bytes =
            self.read_doc(&config_name, digest_in_name(&config_name).as_ref(), None)?;
        let config_digest = Digest::of_bytes(&config_bytes);
        let config: serde_json::Value = Self::parse(&config_name, &config_bytes)?;
        let diff_ids = self.diff_ids(&config, &config_name)?;
        let layer_names = entry.layers.as_deref().unwrap_or_default();
        if diff_ids.len() != layer_names.len() {
            return Err(ArchiveError::DiffIdCount {
                config: config_digest,
                diff_ids: diff_ids.len(),
                layers: layer_names.len(),
            });
        }
        let mut layers = Vec::with_capacity(layer_names.len());
        for (raw, diff_id) in layer_names.iter().zip(diff_ids) {
            let location = name::normalize_entry_name(raw.as_bytes())?;
            // Fail early on missing or non-regular blobs.
            self.section(&location)?;
            let digest = digest_in_name(&location).unwrap_or_else(|| diff_id.clone());
            layers.push(LayerRef {
                digest,
                size: None,
                media_type: None,
                diff_id,
                location,
            });
        }
        let found = platform_of_config(&config);
        if let Some(want) = platform {
            if !platform_matches(&found, want) {
                return Err(ArchiveError::NoPlatformMatch {
                    wanted: want.to_string(),
                    available: vec![found.to_string()],
                });
            }
        }
        let format = if self.has_index_json {
            self.cross_check_index(&config_digest, &layers);
            SourceFormat::DockerSaveOci
        } else {
            SourceFormat::DockerSave
        };
        Ok(Image {
            format,
            name: name.as_deref().and_then(normalize_reference),
            config,
            config_digest,
            layers,
            platform: found,
        })
    }

    /// Docker 25+ archives carry an OCI half too. Docker 25.0.0 wrote it broken (`manifests:
    /// null`, wrong layer order), so `manifest.json` wins; disagreements only become warnings.
    fn cross_check_index(&self, config_digest: &Digest, layers: &[LayerRef]) {
        let index = match self.index_doc() {
            Ok(i) => i,
            Err(e) => {
                self.warn(format!("ignoring the OCI half of the docker save: {e}"));
                return;
            }
        };
        let Some(manifests) = index.manifests.filter(|m| !m.is_empty()) else {
            self.warn("`index.json` lists no manifests; using `manifest.json`".into());
            return;
        };
        let mut candidates = Vec::new();
        for d in &manifests {
            // Errors in the OCI half are not fatal here: `manifest.json` is authoritative.
            let _ = self.expand(d, None, 0, &mut Vec::new(), &mut candidates);
        }
        let mut same_config = None;
        for c in &candidates {
            if !matches!(self.blob_present(&blob_name(&c.digest)), Ok(true)) {
                continue;
            }
            if let Ok((doc, _, digest, _)) = self.load_manifest(c) {
                if &digest == config_digest {
                    same_config = Some(doc);
                    break;
                }
            }
        }
        let Some(doc) = same_config else {
            self.warn(format!(
                "`index.json` names no manifest with config {config_digest}; using `manifest.json`"
            ));
            return;
        };
        // Docker 25.0.0 wrote the OCI layers in the wrong order: compare when both sides name
        // blobs by digest.
        let oci: Vec<Option<Digest>> = doc
            .layers
            .unwrap_or_default()
            .iter()
            .map(|l| Digest::parse(&l.digest).ok())
            .collect();
        let docker: Vec<Option<Digest>> =
            layers.iter().map(|l| digest_in_name(&l.location)).collect();
        if docker.iter().all(Option::is_some) && oci != docker {
            self.warn(
                "the OCI manifest lists other layers (or another order) than `manifest.json`; \
                 using `manifest.json`"
                    .into(),
            );
        }
    }

    fn diff_ids(
        &self,
        config: &serde_json::Value,
        config_name: &str,
    ) -> Result<Vec<Digest>, ArchiveError> {
        let unsupported = |reason: &str| ArchiveError::Unsupported {
            document: config_name.to_owned(),
            reason: reason.to_owned(),
        };
        if !config.is_object() {
            return Err(unsupported("the config is not a JSON object"));
        }
        let ids = config
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| unsupported("no `rootfs.diff_ids` array"))?;
        ids.iter()
            .map(|v| {
                let s = v
                    .as_str()
                    .ok_or_else(|| unsupported("a `rootfs.diff_ids` item is not a string"))?;
                parse_digest(s, config_name)
            })
            .collect()
    }

    fn select_oci(
        &self,
        image: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<Image, ArchiveError> {
        let index = self.index_doc()?;
        let tops = index.manifests.unwrap_or_default();
        if tops.is_empty() {
            return Err(ArchiveError::Unsupported {
                document: "index.json".into(),
                reason: "it lists no manifest".into(),
            });
        }
        let available: Vec<String> = {
            let mut v: Vec<String> = tops.iter().filter_map(oci_name).collect();
            v.dedup();
            v
        };
        let tops: Vec<Descriptor> = match image {
            Some(wanted) => {
                // `--image sha256:<hex>` names a manifest or index by digest.
                let score = |d: &Descriptor| {
                    if d.digest == wanted {
                        3
                    } else {
                        oci_name(d).map_or(0, |n| name_match(&n, wanted))
                    }
                };
                let best = tops.iter().map(score).max().unwrap_or(0);
                if best == 0 && Digest::parse(wanted).is_ok() {
                    // Maybe a manifest inside a nested index: filtered below.
                    tops
                } else if best == 0 {
                    return Err(ArchiveError::NoImageMatch {
                        wanted: wanted.to_owned(),
                        available,
                    });
                } else {
                    tops.into_iter().filter(|d| score(d) == best).collect()
                }
            }
            None => tops,
        };
        let mut candidates = Vec::new();
        for d in &tops {
            let name = oci_name(d);
            self.expand(d, name, 0, &mut Vec::new(), &mut candidates)?;
        }
        if let Some(wanted) = image.filter(|w| Digest::parse(w).is_ok()) {
            // A manifest digest inside a nested index is a valid selector too.
            if candidates.iter().any(|c| c.digest.to_string() == wanted) {
                candidates.retain(|c| c.digest.to_string() == wanted);
            } else if !tops.iter().any(|d| d.digest == wanted) {
                return Err(ArchiveError::NoImageMatch {
                    wanted: wanted.to_owned(),
                    available,
                });
            }
        }
        // Multi-platform indexes often list manifests whose blobs were not saved.
        let mut present = Vec::new();
        for c in &candidates {
            if self.blob_present(&blob_name(&c.digest))? {
                present.push(c.clone());
            }
        }
        if present.is_empty() {
            return Err(match candidates.first() {
                Some(c) => ArchiveError::MissingBlob {
                    name: blob_name(&c.digest),
                },
                None => ArchiveError::Unsupported {
                    document: "index.json".into(),
                    reason: "no image manifest found".into(),
                },
            });
        }
        let mut candidates = present;
        candidates.sort_by(|a, b| a.digest.cmp(&b.digest));
        candidates.dedup_by(|a, b| a.digest == b.digest);
        // Entries without a platform: read it from the config. A broken or non-image entry
        // (an artifact) drops out here; its error is reported only if nothing else matches.
        let mut unreadable = None;
        for c in &mut candidates {
            if c.platform.is_none() {
                match self.load_manifest(c) {
                    Ok((_, config, _, _)) => c.platform = Some(platform_of_config(&config)),
                    Err(e) => {
                        unreadable.get_or_insert(e);
                    }
                }
            }
        }
        let want = platform.cloned().unwrap_or_else(Platform::host);
        let by_digest = image.is_some_and(|w| candidates.iter().all(|c| c.digest.to_string() == w));
        let all_platforms: Vec<String> = candidates
            .iter()
            .filter_map(|c| c.platform.as_ref().map(ToString::to_string))
            .collect();
        let matching: Vec<Candidate> = candidates
            .into_iter()
            .filter(|c| {
                // A manifest chosen by digest needs no platform unless one was asked for.
                (by_digest && platform.is_none())
                    || c.platform
                        .as_ref()
                        .is_some_and(|p| platform_matches(p, &want))
            })
            .collect();
        let chosen = match matching.as_slice() {
            [] => {
                if let Some(e) = unreadable {
                    return Err(e);
                }
                return Err(ArchiveError::NoPlatformMatch {
                    wanted: want.to_string(),
                    available: all_platforms,
                });
            }
            [one] => one.clone(),
            several => {
                let mut names: Vec<String> =
                    several.iter().filter_map(|c| c.name.clone()).collect();
                names.sort();
                names.dedup();
                if names.len() > 1 {
                    return Err(ArchiveError::SeveralImages { available: names });
                }
                return Err(ArchiveError::SeveralManifests {
                    platform: want.to_string(),
                    digests: several.iter().map(|c| c.digest.to_string()).collect(),
                });
            }
        };
        let (manifest, config, config_digest, config_name) = self.load_manifest(&chosen)?;
        let layer_descs = manifest.layers.unwrap_or_default();
        let diff_ids = self.diff_ids(&config, &config_name)?;
        if diff_ids.len() != layer_descs.len() {
            return Err(ArchiveError::DiffIdCount {
                config: config_digest,
                diff_ids: diff_ids.len(),
                layers: layer_descs.len(),
            });
        }
        let manifest_name = blob_name(&chosen.digest);
        let mut layers = Vec::with_capacity(layer_descs.len());
        for (d, diff_id) in layer_descs.iter().zip(diff_ids) {
            let digest = parse_digest(&d.digest, &manifest_name)?;
            let location = blob_name(&digest);
            self.section(&location)?;
            layers.push(LayerRef {
                digest,
                size: d.size,
                media_type: d.media_type.clone(),
                diff_id,
                location,
            });
        }
        let mut found = platform_of_config(&config);
        if found.os.is_empty() && found.architecture.is_empty() {
            if let Some(p) = &chosen.platform {
                found = p.clone();
            }
        }
        Ok(Image {
            format: SourceFormat::OciLayout,
            name: chosen.name.as_deref().and_then(display_name),
            config,
            config_digest,
            layers,
            platform: found,
        })
    }

    /// Collect the image manifests reachable from `d`, following nested indexes.
    fn expand(
        &self,
        d: &Descriptor,
        name: Option<String>,
        depth: usize,
        stack: &mut Vec<Digest>,
        out: &mut Vec<Candidate>,
    ) -> Result<(), ArchiveError> {
        let digest = parse_digest(
            &d.digest,
            stack.last().map_or("index.json".into(), blob_name).as_str(),
        )?;
        // Attestations and other non-image entries carry an `unknown` platform.
        if d.platform.as_ref().is_some_and(|p| p.os == "unknown")
            || d.annotation("vnd.docker.reference.type").is_some()
        {
            return Ok(());
        }
        let mt = d.media_type.as_deref().unwrap_or("");
        if is_manifest_type(mt) {
            out.push(Candidate {
                desc: d.clone(),
                digest,
                name,
                platform: d.platform.as_ref().map(|p| Platform {
                    os: p.os.clone(),
                    architecture: p.architecture.clone(),
                    variant: p.variant.clone(),
                }),
            });
            return Ok(());
        }
        if !is_index_type(mt) && !mt.is_empty() {
            // Some other artifact: not an image.
            return Ok(());
        }
        if stack.contains(&digest) {
            return Err(ArchiveError::IndexCycle { digest });
        }
        let blob = blob_name(&digest);
        let bytes = self.read_doc(&blob, Some(&digest), d.size)?;
        let doc: Document = Self::parse(&blob, &bytes)?;
        if doc.manifests.is_none() && doc.config.is_some() {
            // Untyped descriptor pointing at a manifest.
            out.push(Candidate {
                desc: d.clone(),
                digest,
                name,
                platform: None,
            });
            return Ok(());
        }
        if depth >= self.limits.max_index_depth {
            return Err(ArchiveError::IndexDepth {
                digest,
                limit: self.limits.max_index_depth,
            });
        }
        stack.push(digest);
        for child in doc.manifests.iter().flatten() {
            // A child's own name annotation is more precise than the parent's.
            let child_name = oci_name(child)
                .filter(|n| n.contains([':', '/']))
                .or(name.clone());
            self.expand(child, child_name, depth + 1, stack, out)?;
        }
        stack.pop();
        Ok(())
    }

    /// Read a manifest and its config, both verified.
    fn load_manifest(
        &self,
        c: &Candidate,
    ) -> Result<(Document, serde_json::Value, Digest, String), ArchiveError> {
        let name = blob_name(&c.digest);
        let bytes = self.read_doc(&name, Some(&c.digest), c.desc.size)?;
        let doc: Document = Self::parse(&name, &bytes)?;
        if doc.schema_version == Some(1) {
            return Err(ArchiveError::Unsupported {
                document: name,
                reason: "docker image manifest schema 1".into(),
            });
        }
        if doc.media_type.as_deref().is_some_and(is_index_type) || doc.manifests.is_some() {
            return Err(ArchiveError::Unsupported {
                document: name,
                reason: "expected an image manifest, found an index".into(),
            });
        }
        let config_desc = doc
            .config
            .clone()
            .ok_or_else(|| ArchiveError::Unsupported {
                document: name.clone(),
                reason: "no `config` descriptor".into(),
            })?;
        let config_digest = parse_digest(&config_desc.digest, &name)?;
        let config_name = blob_name(&config_digest);
        let config_bytes = self.read_doc(&config_name, Some(&config_digest), config_desc.size)?;
        let config: serde_json::Value = Self::parse(&config_name, &config_bytes)?;
        Ok((doc, config, config_digest, config_name))
    }

    // ---- layers ----------------------------------------------------------------------------

    /// Stream a layer's decompressed tar, verifying stored size/digest and diff_id at the end
    /// and charging the decompressed bytes to `limits.max_unpacked_bytes` (shared by all layers).
    pub fn open_layer(&self, layer: &LayerRef) -> Result<LayerReader<'_>, ArchiveError> {
        let location = name::normalize_entry_name(layer.location.as_bytes())?;
        let section = self.section(&location)?;
        // docker-save legacy `<id>/layer.tar` names carry no content digest: the diff_id check
        // still covers the content.
        let verify_stored = layer.media_type.is_some() || digest_in_name(&location).is_some();
        LayerReader::new(
            layer,
            section,
            verify_stored,
            &self.unpacked,
            self.limits.max_unpacked_bytes,
        )
    }
}

#[cfg(test)]
mod tests;
