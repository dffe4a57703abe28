//! The flattened image: an in-memory tree of every entry with its full metadata, plus the
//! staging directory on disk that holds regular files' bytes.
//!
//! Paths in the tree are *tree paths*: normalized, relative to the image root, no leading or
//! trailing `/`, no `.` or `..` components, raw bytes (tar names need not be UTF-8). The root
//! itself is the empty path.

pub mod apply;
pub mod path;
pub mod pax;
pub mod stage;
pub mod tree;

pub use apply::{ApplyError, FlattenStats, Flattener, LayerStats};
pub use path::{normalize, normalize_with, PathError};
pub use stage::{StageError, Staging};
pub use tree::{Entry, Kind, Resolved, Tree};

use std::io;

/// Gives the bytes of regular files of a tree. The staging directory implements it; tests use
/// an in-memory map.
pub trait FileSource {
    /// Read the whole content of the regular file at `path` (a tree path).
    fn read(&self, path: &[u8]) -> io::Result<Vec<u8>>;
    /// Open the regular file at `path` for streaming.
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn io::Read + '_>>;
}

/// In-memory file source, for tests and small synthetic trees.
#[derive(Default, Debug, Clone)]
pub struct MemSource(pub std::collections::BTreeMap<Vec<u8>, Vec<u8>>);

impl FileSource for MemSource {
    fn read(&self, path: &[u8]) -> io::Result<Vec<u8>> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file in memory source"))
    }
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn io::Read + '_>> {
        let data = self.0.get(path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no such file in memory source")
        })?;
        Ok(Box::new(&data[..]))
    }
}

/// Lossy display of a tree path as an absolute path, for messages and reports.
pub fn display(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}
