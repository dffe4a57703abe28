//! Streaming layer reader: stored bytes are counted and hashed, decompressed (sniffed from the
//! magic bytes), and the decompressed bytes hashed against the config's diff_id and charged to
//! the archive-wide unpacked budget. Checks run at end of stream.

use super::compress::Compression;
use super::error::ArchiveError;
use crate::digest::Digest;
use crate::image::LayerRef;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Buffer between the file and the decompressor.
const BUF: usize = 256 * 1024;
/// Largest zstd window accepted (128 MiB), so a hostile frame cannot demand gigabytes.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// A file, borrowed from the archive (outer tar) or owned (layout directory).
#[derive(Debug)]
pub(crate) enum Handle<'a> {
    Borrowed(&'a File),
    Owned(File),
}

impl Handle<'_> {
    fn file(&self) -> &File {
        match self {
            Handle::Borrowed(f) => f,
            Handle::Owned(f) => f,
        }
    }
}

/// A byte range of a file, read with positional reads so several sections of one file can be
/// read at once. Ends early with `UnexpectedEof` if the file shrank.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    handle: Handle<'a>,
    pos: u64,
    end: u64,
}

impl<'a> Section<'a> {
    pub(crate) fn new(handle: Handle<'a>, offset: u64, size: u64) -> Self {
        Section {
            handle,
            pos: offset,
            end: offset.saturating_add(size),
        }
    }
    pub(crate) fn len(&self) -> u64 {
        self.end - self.pos
    }
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.handle.file().read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob ends early: the archive file shrank while being read",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Counts and hashes the stored bytes.
pub(crate) struct StoredHasher<'a> {
    inner: Section<'a>,
    hasher: Sha256,
    count: u64,
}

impl StoredHasher<'_> {
    /// Digest and count so far; resets the hasher.
    fn take_result(&mut self) -> (Digest, u64) {
        let h = std::mem::take(&mut self.hasher);
        (Digest::from_sha256(h.finalize().into()), self.count)
    }
}

impl Read for StoredHasher<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

type Stored<'a> = BufReader<StoredHasher<'a>>;

enum Decoder<'a> {
    None(Stored<'a>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Stored<'a>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Stored<'a>>>),
}

impl<'a> Decoder<'a> {
    fn stored_mut(&mut self) -> &mut Stored<'a> {
        match self {
            Decoder::None(r) => r,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zstd(d) => d.get_mut(),
        }
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// What a fully read layer looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LayerStats {
    /// Bytes of the stored blob.
    pub compressed_bytes: u64,
    /// Bytes after decompression (equal to `compressed_bytes` for uncompressed layers).
    pub uncompressed_bytes: u64,
    pub compression: Compression,
}

/// Reads one layer's decompressed tar stream. Mismatches surface at end of stream as an
/// `io::Error` of kind `InvalidData`; call [`LayerReader::finish`] after a tar reader stops
/// (it may stop at the end-of-archive blocks, before the end of the stream).
pub struct LayerReader<'a> {
    layer: LayerRef,
    decoder: Decoder<'a>,
    compression: Compression,
    /// Hash of decompressed bytes (unused when uncompressed: the stored hash is the same).
    diff_hasher: Sha256,
    uncompressed: u64,
    /// Stored size per the archive's index (tar entry size or file size).
    stored_size: u64,
    verify_stored_digest: bool,
    budget: &'a AtomicU64,
    limit: u64,
    verdict: Option<Result<LayerStats, ArchiveError>>,
}

impl std::fmt::Debug for LayerReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerReader")
            .field("layer", &self.layer.digest)
            .field("compression", &self.compression)
            .field("uncompressed", &self.uncompressed)
            .finish_non_exhaustive()
    }
}

fn verdict_error(e: &ArchiveError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<'a> LayerReader<'a> {
    pub(crate) fn new(
        layer: &LayerRef,
        section: Section<'a>,
        verify_stored_digest: bool,
        budget: &'a AtomicU64,
        limit: u64,
    ) -> Result<Self, ArchiveError> {
        let stored_size = section.len();
        if let Some(expected) = layer.size {
            if expected != stored_size {
                return Err(ArchiveError::LayerSizeMismatch {
                    layer: layer.digest.clone(),
                    expected,
                    found: stored_size,
                });
            }
        }
        let read_err = |e: io::Error| ArchiveError::LayerRead {
            layer: layer.digest.clone(),
            message: e.to_string(),
        };
        let hasher = StoredHasher {
            inner: section,
            hasher: Sha256::new(),
            count: 0,
        };
        let mut stored = BufReader::with_capacity(BUF, hasher);
        let compression = Compression::sniff(stored.fill_buf().map_err(read_err)?);
        let decoder = match compression {
            Compression::None => Decoder::None(stored),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(stored)))
            }
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(stored).map_err(read_err)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(read_err)?;
                Decoder::Zstd(Box::new(d))
            }
        };
        Ok(LayerReader {
            layer: layer.clone(),
            decoder,
            compression,
            diff_hasher: Sha256::new(),
            uncompressed: 0,
            stored_size,
            verify_stored_digest,
            budget,
            limit,
            verdict: None,
        })
    }

    /// Compression sniffed from the blob's first bytes.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The layer being read.
    pub fn layer(&self) -> &LayerRef {
        &self.layer
    }

    /// Read the rest of the stream, run every check, and return the stats.
    pub fn finish(mut self) -> Result<LayerStats, ArchiveError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(v) = self.verdict.take() {
                return v;
            }
            match self.read(&mut buf) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Read errors set a verdict, taken above.
                Err(e) if self.verdict.is_some() => drop(e),
                Err(e) => {
                    return Err(ArchiveError::LayerRead {
                        layer: self.layer.digest.clone(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    /// End of the decompressed stream: drain what the decoder left, then check.
    fn check(&mut self) -> Result<LayerStats, ArchiveError> {
        let layer = self.layer.digest.clone();
        let stored = self.decoder.stored_mut();
        // Bytes after the compressed stream still belong to the blob: hash them too.
        io::copy(stored, &mut io::sink()).map_err(|e| ArchiveError::LayerRead {
            layer: layer.clone(),
            message: e.to_string(),
        })?;
        let (stored_digest, stored_count) = stored.get_mut().take_result();
        if stored_count != self.stored_size {
            return Err(ArchiveError::LayerSizeMismatch {
                layer,
                expected: self.stored_size,
                found: stored_count,
            });
        }
        if self.verify_stored_digest && stored_digest != self.layer.digest {
            return Err(ArchiveError::LayerDigestMismatch {
                layer: layer.clone(),
                expected: layer,
                found: stored_digest,
            });
        }
        let content = if self.compression == Compression::None {
            stored_digest
        } else {
            Digest::from_sha256(std::mem::take(&mut self.diff_hasher).finalize().into())
        };
        if content != self.layer.diff_id {
            return Err(ArchiveError::DiffIdMismatch {
                layer,
                expected: self.layer.diff_id.clone(),
                found: content,
            });
        }
        Ok(LayerStats {
            compressed_bytes: stored_count,
            uncompressed_bytes: self.uncompressed,
            compression: self.compression,
        })
    }
}

impl Read for LayerReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(v) = &self.verdict {
            return match v {
                Ok(_) => Ok(0),
                Err(e) => Err(verdict_error(e)),
            };
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = match self.decoder.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                // Corrupt or unreadable stream: the layer is bad, whatever is read next.
                let v = ArchiveError::LayerRead {
                    layer: self.layer.digest.clone(),
                    message: e.to_string(),
                };
                let io = io::Error::new(e.kind(), v.to_string());
                self.verdict = Some(Err(v));
                return Err(io);
            }
        };
        if n == 0 {
            let v = self.check();
            let out = match &v {
                Ok(_) => Ok(0),
                Err(e) => Err(verdict_error(e)),
            };
            self.verdict = Some(v);
            return out;
        }
        let total = self.budget.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.limit {
            let e = ArchiveError::UnpackedLimit {
                layer: self.layer.digest.clone(),
                limit: self.limit,
            };
            let io = verdict_error(&e);
            self.verdict = Some(Err(e));
            return Err(io);
        }
        self.uncompressed += n as u64;
        if self.compression != Compression::None {
            self.diff_hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}
