//! Limits on untrusted input. Defaults are generous for real images and stop bombs early.

/// Bounds applied while reading archives and applying layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest JSON document (manifest, index, config) read, in bytes.
    pub max_json_bytes: u64,
    /// Most decompressed bytes read from all layers together.
    pub max_unpacked_bytes: u64,
    /// Most tar entries in all layers together.
    pub max_entries: u64,
    /// Longest tree path, in bytes.
    pub max_path_len: usize,
    /// Most components in a tree path.
    pub max_depth: usize,
    /// Most entries in the outer archive.
    pub max_archive_entries: u64,
    /// Deepest chain of nested indexes followed.
    pub max_index_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_bytes: 8 << 20,
            max_unpacked_bytes: 64 << 30,
            max_entries: 4_000_000,
            max_path_len: 4096,
            max_depth: 256,
            max_archive_entries: 100_000,
            max_index_depth: 4,
        }
    }
}
