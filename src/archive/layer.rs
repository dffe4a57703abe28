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
use std::sync::mpsc;

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

    /// The same range over a file handle of its own (a duplicated descriptor), so it can move
    /// to another thread. Positional reads make the shared file offset irrelevant.
    pub(crate) fn into_owned(self) -> io::Result<Section<'static>> {
        let file = match self.handle {
            Handle::Borrowed(f) => f.try_clone()?,
            Handle::Owned(f) => f,
        };
        Ok(Section {
            handle: Handle::Owned(file),
            pos: self.pos,
            end: self.end,
        })
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

/// Bytes per message from the decoder thread to the reader.
const CHUNK: usize = 256 * 1024;
/// Messages in flight between the decoder thread and the reader: with the buffers being
/// filled and consumed, at most `IN_FLIGHT + 2` chunks (2.5 MiB) exist per layer.
const IN_FLIGHT: usize = 8;

/// From the decoder thread: a chunk of decompressed bytes, or the end of the stream with the
/// verdict of every check.
enum Msg {
    /// A buffer of `CHUNK` bytes, the first `len` of them filled.
    Data(Vec<u8>, usize),
    End(Result<LayerStats, ArchiveError>),
    /// The stored bytes could not be read or decompressed (with the error's kind).
    Broken(io::ErrorKind, ArchiveError),
}

/// The decoder thread's side: reads the stored bytes, hashes them, decompresses, hashes the
/// result, and sends it in chunks; at the end of the stream runs the checks.
struct Pump {
    layer: Digest,
    diff_id: Digest,
    decoder: Decoder<'static>,
    compression: Compression,
    diff_hasher: Sha256,
    uncompressed: u64,
    stored_size: u64,
    verify_stored_digest: bool,
}

impl Pump {
    fn run(mut self, tx: mpsc::SyncSender<Msg>, spare: mpsc::Receiver<Vec<u8>>) {
        loop {
            // A recycled buffer is already `CHUNK` long: no zeroing per chunk.
            let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
            let mut n = 0;
            let mut end = false;
            while n < CHUNK {
                match self.decoder.read(&mut buf[n..]) {
                    Ok(0) => {
                        end = true;
                        break;
                    }
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // Corrupt or unreadable stream: the layer is bad, whatever comes next.
                        let v = ArchiveError::LayerRead {
                            layer: self.layer.clone(),
                            message: e.to_string(),
                        };
                        if n > 0 {
                            self.hash(&buf[..n]);
                            if tx.send(Msg::Data(buf, n)).is_err() {
                                return;
                            }
                        }
                        let _ = tx.send(Msg::Broken(e.kind(), v));
                        return;
                    }
                }
            }
            if n > 0 {
                self.hash(&buf[..n]);
                // The reader is gone (dropped early): stop.
                if tx.send(Msg::Data(buf, n)).is_err() {
                    return;
                }
            }
            if end {
                let v = self.check();
                let _ = tx.send(Msg::End(v));
                return;
            }
        }
    }

    fn hash(&mut self, data: &[u8]) {
        self.uncompressed += data.len() as u64;
        if self.compression != Compression::None {
            self.diff_hasher.update(data);
        }
    }

    /// End of the decompressed stream: drain what the decoder left, then check.
    fn check(&mut self) -> Result<LayerStats, ArchiveError> {
        let layer = self.layer.clone();
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
        if self.verify_stored_digest && stored_digest != self.layer {
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
        if content != self.diff_id {
            return Err(ArchiveError::DiffIdMismatch {
                layer,
                expected: self.diff_id.clone(),
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

/// Reads one layer's decompressed tar stream. Mismatches surface at end of stream as an
/// `io::Error` of kind `InvalidData`; call [`LayerReader::finish`] after a tar reader stops
/// (it may stop at the end-of-archive blocks, before the end of the stream).
///
/// Reading, hashing and decompressing run on a thread of their own, a few chunks ahead of the
/// consumer (bounded), so decompression overlaps with whatever the consumer does with the
/// bytes (parsing the tar, writing files). The thread is joined when the reader is dropped.
pub struct LayerReader<'a> {
    layer: LayerRef,
    compression: Compression,
    rx: Option<mpsc::Receiver<Msg>>,
    spare: mpsc::SyncSender<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The chunk being consumed, its filled length and the position in it.
    cur: Vec<u8>,
    len: usize,
    pos: usize,
    uncompressed: u64,
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
        let section = section.into_owned().map_err(read_err)?;
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
        let pump = Pump {
            layer: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
            decoder,
            compression,
            diff_hasher: Sha256::new(),
            uncompressed: 0,
            stored_size,
            verify_stored_digest,
        };
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
        let (spare_tx, spare_rx) = mpsc::sync_channel(2);
        let thread = std::thread::Builder::new()
            .name("layer-decoder".into())
            .spawn(move || pump.run(tx, spare_rx))
            .map_err(read_err)?;
        Ok(LayerReader {
            layer: layer.clone(),
            compression,
            rx: Some(rx),
            spare: spare_tx,
            thread: Some(thread),
            cur: Vec::new(),
            len: 0,
            pos: 0,
            uncompressed: 0,
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
        loop {
            if let Some(v) = self.verdict.take() {
                return v;
            }
            // Skip the rest of the current chunk; the next one is fetched (and charged).
            self.pos = self.len;
            match self.fill() {
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

    /// Make the current chunk non-empty, or set the verdict at the end of the stream.
    /// Returns the bytes available (0 at the end).
    fn fill(&mut self) -> io::Result<usize> {
        if let Some(v) = &self.verdict {
            return match v {
                Ok(_) => Ok(0),
                Err(e) => Err(verdict_error(e)),
            };
        }
        if self.pos < self.len {
            return Ok(self.len - self.pos);
        }
        let msg = match self.rx.as_ref().map(|rx| rx.recv()) {
            Some(Ok(m)) => m,
            // The thread ended without a verdict: it panicked.
            _ => Msg::End(Err(ArchiveError::LayerRead {
                layer: self.layer.digest.clone(),
                message: "the decoder thread stopped unexpectedly".into(),
            })),
        };
        match msg {
            Msg::Data(chunk, len) => {
                let n = len as u64;
                let total = self.budget.fetch_add(n, Ordering::Relaxed) + n;
                if total > self.limit {
                    let e = ArchiveError::UnpackedLimit {
                        layer: self.layer.digest.clone(),
                        limit: self.limit,
                    };
                    let io = verdict_error(&e);
                    self.verdict = Some(Err(e));
                    return Err(io);
                }
                self.uncompressed += n;
                let old = std::mem::replace(&mut self.cur, chunk);
                self.len = len;
                self.pos = 0;
                // Hand the used buffer back for reuse (dropped when the thread has enough).
                if old.len() == CHUNK {
                    let _ = self.spare.try_send(old);
                }
                Ok(len)
            }
            Msg::Broken(kind, v) => {
                let io = io::Error::new(kind, v.to_string());
                self.verdict = Some(Err(v));
                Err(io)
            }
            Msg::End(v) => {
                let out = match &v {
                    Ok(_) => Ok(0),
                    Err(e) => Err(verdict_error(e)),
                };
                self.verdict = Some(v);
                out
            }
        }
    }
}

impl Drop for LayerReader<'_> {
    fn drop(&mut self) {
        // Closing the channel makes a thread blocked on `send` stop; then wait for it, so no
        // decoder thread outlives the reader (the sandbox later forks this process).
        drop(self.rx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Read for LayerReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let avail = self.fill()?;
        if avail == 0 {
            return Ok(0);
        }
        let n = avail.min(buf.len());
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Deterministic bytes that compress somewhat (xorshift with a small alphabet).
    fn data(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefgh\n"[(x % 9) as usize]
            })
            .collect()
    }

    fn gzip(raw: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(raw).unwrap();
        e.finish().unwrap()
    }

    fn layer_file(stored: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(stored).unwrap();
        let file = f.reopen().unwrap();
        (f, file)
    }

    fn layer_ref(stored: &[u8], raw: &[u8]) -> LayerRef {
        LayerRef {
            digest: Digest::of_bytes(stored),
            size: Some(stored.len() as u64),
            media_type: None,
            diff_id: Digest::of_bytes(raw),
            location: "blob".into(),
        }
    }

    /// Read in odd-sized pieces (as a tar reader does) across many chunks, for each compression
    /// and for sizes around the chunk size; every byte must come through, and the checks pass.
    #[test]
    fn streams_across_chunks() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 12345] {
            let raw = data(len);
            for stored in [
                raw.clone(),
                gzip(&raw),
                zstd::encode_all(&raw[..], 1).unwrap(),
            ] {
                let (_keep, file) = layer_file(&stored);
                let l = layer_ref(&stored, &raw);
                let budget = AtomicU64::new(0);
                let section = Section::new(Handle::Borrowed(&file), 0, stored.len() as u64);
                let mut r = LayerReader::new(&l, section, true, &budget, u64::MAX).unwrap();
                let mut got = Vec::new();
                let mut piece = vec![0u8; 511];
                loop {
                    let n = r.read(&mut piece).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&piece[..n]);
                }
                assert_eq!(got.len(), raw.len(), "len {len}");
                assert!(got == raw, "len {len}: bytes differ");
                let stats = r.finish().unwrap();
                assert_eq!(stats.uncompressed_bytes, len as u64);
                assert_eq!(budget.load(Ordering::Relaxed), len as u64);
            }
        }
    }

    /// Dropping a reader early (the consumer failed) stops and joins its thread; a corrupt
    /// diff_id still surfaces through `finish`.
    #[test]
    fn early_drop_and_bad_diff_id() {
        let raw = data(20 * CHUNK);
        let stored = gzip(&raw);
        let (_keep, file) = layer_file(&stored);
        let l = layer_ref(&stored, &raw);
        let budget = AtomicU64::new(0);
        let section = Section::new(Handle::Borrowed(&file), 0, stored.len() as u64);
        let mut r = LayerReader::new(&l, section, true, &budget, u64::MAX).unwrap();
        let mut piece = vec![0u8; 1000];
        assert_eq!(r.read(&mut piece).unwrap(), 1000);
        drop(r);
        // The thread did not run away with the budget: only delivered chunks are charged.
        assert!(budget.load(Ordering::Relaxed) <= CHUNK as u64);

        let mut bad = l.clone();
        bad.diff_id = Digest::of_bytes(b"something else");
        let section = Section::new(Handle::Borrowed(&file), 0, stored.len() as u64);
        let r = LayerReader::new(&bad, section, true, &budget, u64::MAX).unwrap();
        assert!(matches!(
            r.finish(),
            Err(ArchiveError::DiffIdMismatch { .. })
        ));
    }

    /// A corrupt compressed stream is an error of the read, then of `finish`.
    #[test]
    fn corrupt_stream_is_an_error() {
        let raw = data(3 * CHUNK);
        let mut stored = gzip(&raw);
        let mid = stored.len() / 2;
        for b in &mut stored[mid..mid + 64] {
            *b ^= 0x55;
        }
        let (_keep, file) = layer_file(&stored);
        let l = layer_ref(&stored, &raw);
        let budget = AtomicU64::new(0);
        let section = Section::new(Handle::Borrowed(&file), 0, stored.len() as u64);
        let mut r = LayerReader::new(&l, section, true, &budget, u64::MAX).unwrap();
        let mut sink = Vec::new();
        assert!(io::copy(&mut r, &mut sink).is_err());
        assert!(r.finish().is_err());
    }
}
