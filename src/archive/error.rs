//! Errors of the archive module: each names the operation and the object.

use crate::digest::{Digest, InvalidDigest};
use std::path::PathBuf;

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("opening `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not an image archive: {reason}", path.display())]
    NotAnArchive { path: PathBuf, reason: String },
    #[error("`{}` is truncated: {what} at offset {offset}", path.display())]
    Truncated {
        path: PathBuf,
        what: String,
        offset: u64,
    },
    #[error("`{}` has trailing garbage after the end-of-archive marker at offset {offset}", path.display())]
    TrailingGarbage { path: PathBuf, offset: u64 },
    #[error("`{}` has a bad tar header at offset {offset}: {reason}", path.display())]
    BadHeader {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("`{}` has more than {limit} entries", path.display())]
    TooManyEntries { path: PathBuf, limit: u64 },
    #[error("refusing archive entry `{name}`: {reason}")]
    EntryName { name: String, reason: String },
    #[error("duplicate archive entry `{name}`")]
    DuplicateEntry { name: String },
    #[error("refusing `{name}` as a blob: it is a link or special file, not a regular file")]
    NotRegular { name: String },
    #[error("missing blob `{name}`")]
    MissingBlob { name: String },
    #[error("reading `{name}` from the archive: {source}")]
    ReadEntry {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid digest in `{document}`: {source}")]
    InvalidDigest {
        document: String,
        #[source]
        source: InvalidDigest,
    },
    #[error("`{name}` digest mismatch: expected {expected}, content is {found}")]
    DigestMismatch {
        name: String,
        expected: Digest,
        found: Digest,
    },
    #[error("`{name}` size mismatch: expected {expected} bytes, found {found}")]
    SizeMismatch {
        name: String,
        expected: u64,
        found: u64,
    },
    #[error("`{name}` is too large for a JSON document: {size} bytes, limit {limit}")]
    JsonTooLarge { name: String, size: u64, limit: u64 },
    #[error("malformed JSON in `{name}`: {source}")]
    MalformedJson {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported content in `{document}`: {reason}")]
    Unsupported { document: String, reason: String },
    #[error("no image matches `{wanted}`; available: {}; hint: pass one of them with `--image`", list(.available))]
    NoImageMatch {
        wanted: String,
        available: Vec<String>,
    },
    #[error("the archive holds several images: {}; hint: choose one with `--image`", list(.available))]
    SeveralImages { available: Vec<String> },
    #[error("no manifest for platform `{wanted}`; available: {}; hint: choose one with `--platform`", list(.available))]
    NoPlatformMatch {
        wanted: String,
        available: Vec<String>,
    },
    #[error("several manifests for platform `{platform}`: {}; hint: choose one with `--image <digest>`", list(.digests))]
    SeveralManifests {
        platform: String,
        digests: Vec<String>,
    },
    #[error("nested image indexes deeper than {limit} at `{digest}`")]
    IndexDepth { digest: Digest, limit: usize },
    #[error("image index cycle through `{digest}`")]
    IndexCycle { digest: Digest },
    #[error("config `{config}` lists {diff_ids} diff_ids but the manifest has {layers} layers")]
    DiffIdCount {
        config: Digest,
        diff_ids: usize,
        layers: usize,
    },
    #[error("refusing `{name}` in the layout directory: {reason}")]
    DirPath { name: String, reason: String },
    #[error("layer {layer} stored digest mismatch: manifest says {expected}, content is {found}")]
    LayerDigestMismatch {
        layer: Digest,
        expected: Digest,
        found: Digest,
    },
    #[error("layer {layer} size mismatch: manifest says {expected} bytes, blob has {found}")]
    LayerSizeMismatch {
        layer: Digest,
        expected: u64,
        found: u64,
    },
    #[error("layer {layer} diff_id mismatch: config says {expected}, content is {found}")]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        found: Digest,
    },
    #[error("decompressed layers exceed the limit of {limit} bytes (at layer {layer})")]
    UnpackedLimit { layer: Digest, limit: u64 },
    #[error("reading layer {layer}: {message}")]
    LayerRead { layer: Digest, message: String },
}
