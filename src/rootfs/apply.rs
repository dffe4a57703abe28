//! Applying layer tar streams to the tree (whiteouts, opaque dirs, hardlinks) and staging.
//!
//! Entries are read one by one with `tar::Archive::entries()` in raw mode (extended headers
//! are interpreted by [`super::pax`], which reads binary PAX values whole); `Archive::unpack` is
//! never used (it turns devices and fifos into files, writes whiteouts as files and resolves names
//! against the host). Semantics follow the OCI image-spec `layer.md`:
//!
//! * `.wh.NAME` removes `NAME` and its subtree from *lower* layers; `.wh..wh..opq` hides every
//!   lower-layer child of its directory. Entries of the layer being applied are never hidden by
//!   that layer's whiteouts, whatever their order in the tar: every path the layer writes (and
//!   every ancestor of such a path) is remembered and skipped by whiteouts. Whiteout files never
//!   appear in the tree. aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`, ...) is skipped, as
//!   docker does.
//! * A later entry replaces an earlier one of any type; a directory over a directory only
//!   updates the metadata and keeps the children. Implicit parents get defaults (dir 0755
//!   root:root, mtime 0).
//! * An entry below a symlinked parent lands where the link leads, as containerd and docker
//!   apply layers; links are followed in the in-memory tree only, `..` stops at the image root,
//!   and the rewritten path's ancestors are real directories, so the staging dir never has a
//!   link as a parent and nothing on disk is resolved. An entry below a non-directory is
//!   refused.
//! * Within one layer a path may appear twice only as a directory both times (real tools emit
//!   that); any other duplicate is an error.
//! * Sparse files (GNU type `S`, PAX `GNU.sparse.*`, `GNUSparseFile.` names) are refused: the
//!   bytes would be wrong.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};

use super::path::{is_within, join, normalize_with, split_last, PathError};
use super::pax::{Extensions, MAX_EXTENSION_BYTES};
use super::stage::{StageError, Staging};
use super::{display, Entry, Kind, Tree};
use crate::limits::Limits;

/// Errors while applying a layer. `layer` is the index given to [`Flattener::apply_layer`].
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("reading layer {} failed", .layer + 1)]
    Read {
        layer: usize,
        #[source]
        source: io::Error,
    },
    #[error("layer {} has a bad entry name", .layer + 1)]
    Name {
        layer: usize,
        #[source]
        source: PathError,
    },
    #[error("layer {}: reading the header of `{path}` failed", .layer + 1)]
    Header {
        layer: usize,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {}: entry `{path}` goes through too many symlinks from `{parent}` (a loop?)", .layer + 1)]
    ParentSymlink {
        layer: usize,
        path: String,
        parent: String,
    },
    #[error("layer {}: entry `{path}` has a parent that is not a directory (`{parent}`)", .layer + 1)]
    ParentNotDir {
        layer: usize,
        path: String,
        parent: String,
    },
    #[error("layer {}: duplicate entry `{path}`", .layer + 1)]
    DuplicateEntry { layer: usize, path: String },
    #[error("layer {}: bad whiteout `{path}`", .layer + 1)]
    BadWhiteout { layer: usize, path: String },
    #[error("layer {}: hardlink `{path}` points to `{target}`, which does not exist", .layer + 1)]
    HardlinkMissing {
        layer: usize,
        path: String,
        target: String,
    },
    #[error("layer {}: hardlink `{path}` points to directory `{target}`", .layer + 1)]
    HardlinkToDir {
        layer: usize,
        path: String,
        target: String,
    },
    #[error("layer {}: hardlink `{path}` points to itself or below itself (`{target}`)", .layer + 1)]
    HardlinkToSelf {
        layer: usize,
        path: String,
        target: String,
    },
    #[error("layer {}: bad hardlink target of `{path}`", .layer + 1)]
    HardlinkTarget {
        layer: usize,
        path: String,
        #[source]
        source: PathError,
    },
    #[error("layer {}: link `{path}` has no target", .layer + 1)]
    MissingLinkTarget { layer: usize, path: String },
    #[error("layer {}: symlink `{path}` has a target with a NUL byte", .layer + 1)]
    NulLinkTarget { layer: usize, path: String },
    #[error("layer {}: `{path}` is a sparse file, which is not supported", .layer + 1)]
    Sparse { layer: usize, path: String },
    #[error("layer {}: entry `{path}` has unsupported type `{kind}`", .layer + 1)]
    UnsupportedType {
        layer: usize,
        path: String,
        kind: char,
    },
    #[error("layer {}: the root `/` can only be a directory", .layer + 1)]
    RootNotDir { layer: usize },
    #[error("layer {} applied after layer {previous}: layers must be applied bottom-up", .layer + 1)]
    LayerOrder { layer: usize, previous: usize },
    #[error("too many tar entries in the layers (limit {limit})")]
    TooManyEntries { limit: u64 },
    #[error("interrupted")]
    Interrupted,
    #[error("too many bytes of regular files in the layers (limit {limit})")]
    TooManyBytes { limit: u64 },
    #[error("layer {}: staging failed", .layer + 1)]
    Stage {
        layer: usize,
        #[source]
        source: StageError,
    },
}

/// Counts for one applied layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Tar entries read (whiteouts, skipped and extension-only entries included).
    pub entries: u64,
    /// Whiteout entries (`.wh.NAME` and opaque markers).
    pub whiteouts: u64,
    /// Regular file entries (hardlinks excluded).
    pub files: u64,
    /// Bytes of regular files in this layer.
    pub bytes: u64,
    /// Bytes of lower-layer regular files removed or replaced by this layer (counted per path:
    /// a hardlinked file removed under two names counts twice).
    pub hidden_bytes: u64,
    /// Directory entries repeated within this layer (allowed).
    pub duplicate_dirs: u64,
    /// Entries ignored: PAX global headers, aufs metadata.
    pub skipped: u64,
}

/// Counts for the whole flattened image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlattenStats {
    pub layers: usize,
    /// Tar entries read in all layers.
    pub entries: u64,
    /// Regular files in the final tree (each path counted).
    pub files: u64,
    /// Bytes of regular files in the final tree, each inode counted once.
    pub bytes: u64,
    /// Bytes hidden by upper layers, all layers together.
    pub hidden_bytes: u64,
}

/// Applies layers bottom-up to a [`Tree`] and, optionally, to a [`Staging`] directory.
/// After an error the state is unspecified: drop the flattener.
#[derive(Debug)]
pub struct Flattener {
    tree: Tree,
    staging: Option<Staging>,
    limits: Limits,
    layers: usize,
    previous: Option<usize>,
    entries: u64,
    bytes: u64,
    hidden_bytes: u64,
    /// Paths written by the current layer and all their ancestors: whiteouts skip them. The
    /// value is true for paths written explicitly (duplicate detection). One map, not two
    /// sets: it holds every path of the layer, the largest memory use of flattening.
    touched: HashMap<Box<[u8]>, bool>,
}

/// Metadata read from one tar entry.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: BTreeMap<String, Vec<u8>>,
}

const OPAQUE: &[u8] = b".wh..wh..opq";
const WH_PREFIX: &[u8] = b".wh.";
const WH_META_PREFIX: &[u8] = b".wh..wh.";

impl Flattener {
    pub fn new(staging: Option<Staging>, limits: &Limits) -> Flattener {
        Flattener {
            tree: Tree::new(),
            staging,
            limits: limits.clone(),
            layers: 0,
            previous: None,
            entries: 0,
            bytes: 0,
            hidden_bytes: 0,
            touched: HashMap::new(),
        }
    }

    /// The tree as flattened so far.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Apply one uncompressed layer tar stream. `layer_index` must grow from call to call
    /// (0 = bottom layer).
    pub fn apply_layer<R: Read>(
        &mut self,
        layer_index: usize,
        reader: R,
    ) -> Result<LayerStats, ApplyError> {
        let layer = layer_index;
        if let Some(previous) = self.previous {
            if layer <= previous {
                return Err(ApplyError::LayerOrder { layer, previous });
            }
        }
        self.previous = Some(layer);
        self.layers += 1;
        self.touched.clear();
        let mut stats = LayerStats::default();
        let mut archive = tar::Archive::new(reader);
        let read_err = |source| ApplyError::Read { layer, source };
        // Extended headers seen since the last real entry; they describe the next one.
        let mut ext = Extensions::default();
        let mut pending = false;
        for entry in archive.entries().map_err(read_err)?.raw(true) {
            let mut entry = entry.map_err(read_err)?;
            if crate::sys::cleanup::interrupted() {
                // The cleanup thread is removing the staging dir: stop writing into it.
                return Err(ApplyError::Interrupted);
            }
            self.entries += 1;
            stats.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(ApplyError::TooManyEntries {
                    limit: self.limits.max_entries,
                });
            }
            use tar::EntryType as T;
            match entry.header().entry_type() {
                t @ (T::XHeader | T::GNULongName | T::GNULongLink) => {
                    let data = read_extension(layer, &mut entry)?;
                    if t == T::XHeader {
                        ext.add_pax(&data).map_err(|e| ApplyError::Header {
                            layer,
                            path: display(ext.path_or(&entry.path_bytes())),
                            source: io::Error::new(io::ErrorKind::InvalidData, e),
                        })?;
                    } else {
                        ext.set_long_name(t == T::GNULongLink, &data);
                    }
                    pending = true;
                }
                _ => {
                    let ext = std::mem::take(&mut ext);
                    pending = false;
                    self.apply_entry(layer, &mut entry, ext, &mut stats)?;
                }
            }
        }
        if pending {
            return Err(ApplyError::Read {
                layer,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the layer ends with an extended header and no entry after it",
                ),
            });
        }
        self.hidden_bytes += stats.hidden_bytes;
        self.touched.clear();
        self.touched.shrink_to_fit();
        Ok(stats)
    }

    /// Set the final disk modes and return the tree, the staging dir and the counts.
    pub fn finish(mut self) -> Result<(Tree, Option<Staging>, FlattenStats), ApplyError> {
        if let Some(st) = self.staging.as_mut() {
            st.apply_dir_modes(&self.tree)
                .map_err(|source| ApplyError::Stage {
                    layer: self.previous.unwrap_or(0),
                    source,
                })?;
        }
        let mut inodes = HashSet::new();
        let mut stats = FlattenStats {
            layers: self.layers,
            entries: self.entries,
            hidden_bytes: self.hidden_bytes,
            ..FlattenStats::default()
        };
        for (_, e) in self.tree.iter() {
            if let Kind::File { size } = e.kind {
                stats.files += 1;
                if inodes.insert(e.inode) {
                    stats.bytes += size;
                }
            }
        }
        Ok((self.tree, self.staging, stats))
    }

    fn stage_err(layer: usize) -> impl Fn(StageError) -> ApplyError {
        move |source| ApplyError::Stage { layer, source }
    }

    fn apply_entry<R: Read>(
        &mut self,
        layer: usize,
        entry: &mut tar::Entry<'_, R>,
        ext: Extensions,
        stats: &mut LayerStats,
    ) -> Result<(), ApplyError> {
        let etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() {
            stats.skipped += 1;
            return Ok(());
        }
        let raw = ext.path_or(&entry.header().path_bytes()).to_vec();
        let shown = || String::from_utf8_lossy(&raw).into_owned();
        if etype.is_gnu_sparse() {
            return Err(ApplyError::Sparse {
                layer,
                path: shown(),
            });
        }
        if raw
            .split(|&b| b == b'/')
            .any(|c| c.starts_with(b"GNUSparseFile."))
        {
            return Err(ApplyError::Sparse {
                layer,
                path: shown(),
            });
        }
        if ext.sparse {
            return Err(ApplyError::Sparse {
                layer,
                path: shown(),
            });
        }
        if let Some(size) = ext.size.filter(|&n| n != entry.size()) {
            // The tar reader moves on by the header's size; a different PAX size (files over
            // 8 GiB) would desynchronize the stream.
            return Err(ApplyError::Header {
                layer,
                path: shown(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "PAX size {size} differs from the header's {} (files over 8 GiB are not supported)",
                        entry.size()
                    ),
                ),
            });
        }
        let link = ext
            .link_or(entry.header().link_name_bytes().as_deref())
            .map(|t| t.to_vec());
        let path = normalize_with(&raw, self.limits.max_path_len, self.limits.max_depth)
            .map_err(|source| ApplyError::Name { layer, source })?;
        let path = self.through_parent_links(layer, path)?;

        // Whiteouts and aufs metadata.
        let (parent, name) = split_last(&path);
        let mut comps = path.split(|&b| b == b'/').peekable();
        while let Some(c) = comps.next() {
            let last = comps.peek().is_none();
            if !c.starts_with(WH_PREFIX) {
                continue;
            }
            if c == OPAQUE && last {
                break;
            }
            if c.starts_with(WH_META_PREFIX) {
                stats.skipped += 1;
                return Ok(());
            }
            if !last {
                return Err(ApplyError::BadWhiteout {
                    layer,
                    path: display(&path),
                });
            }
        }
        if name == OPAQUE {
            stats.whiteouts += 1;
            self.ensure_parents(layer, &path)?;
            self.hide(layer, parent, false, stats)?;
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WH_PREFIX) {
            stats.whiteouts += 1;
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(ApplyError::BadWhiteout {
                    layer,
                    path: display(&path),
                });
            }
            self.check_existing_parent(layer, &path)?;
            let target = join(parent, hidden);
            self.hide(layer, &target, true, stats)?;
            return Ok(());
        }

        let hdr_err = |source| ApplyError::Header {
            layer,
            path: display(&path),
            source,
        };
        let hdr = entry.header();
        let meta = Meta {
            mode: hdr.mode().map_err(hdr_err)? & 0o7777,
            uid: match ext.uid {
                Some(u) => u,
                None => hdr.uid().map_err(hdr_err)?,
            },
            gid: match ext.gid {
                Some(g) => g,
                None => hdr.gid().map_err(hdr_err)?,
            },
            mtime: match ext.mtime {
                Some(t) => t,
                None => hdr.mtime().map_err(hdr_err)?,
            },
            xattrs: ext.xattrs,
        };
        use tar::EntryType as T;
        let kind = match etype {
            T::Regular | T::Continuous => Kind::File { size: entry.size() },
            T::Directory => Kind::Dir,
            T::Symlink => {
                let target = link.filter(|t| !t.is_empty()).ok_or_else(|| {
                    ApplyError::MissingLinkTarget {
                        layer,
                        path: display(&path),
                    }
                })?;
                if target.contains(&0) {
                    return Err(ApplyError::NulLinkTarget {
                        layer,
                        path: display(&path),
                    });
                }
                Kind::Symlink { target }
            }
            T::Char | T::Block => {
                let major = hdr.device_major().map_err(hdr_err)?.unwrap_or(0);
                let minor = hdr.device_minor().map_err(hdr_err)?.unwrap_or(0);
                if etype == T::Char {
                    Kind::CharDev { major, minor }
                } else {
                    Kind::BlockDev { major, minor }
                }
            }
            T::Fifo => Kind::Fifo,
            T::Link => return self.apply_hardlink(layer, path, link, stats),
            other => {
                return Err(ApplyError::UnsupportedType {
                    layer,
                    path: display(&path),
                    kind: other.as_byte() as char,
                })
            }
        };

        if path.is_empty() {
            return self.apply_root(layer, kind, meta);
        }
        if let Kind::File { size } = kind {
            stats.files += 1;
            stats.bytes += size;
            self.bytes += size;
            if self.bytes > self.limits.max_unpacked_bytes {
                return Err(ApplyError::TooManyBytes {
                    limit: self.limits.max_unpacked_bytes,
                });
            }
        }
        self.ensure_parents(layer, &path)?;
        let new = Entry {
            kind,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            xattrs: meta.xattrs,
            inode: 0,
            layer,
        };
        let created = self.place(layer, &path, new, stats)?;
        let Some(st) = self.staging.as_mut() else {
            return Ok(());
        };
        let serr = Self::stage_err(layer);
        let Some(e) = self.tree.get(&path) else {
            return Ok(());
        };
        match &e.kind {
            Kind::File { size } => st.write_file(&path, entry, *size, e.mode).map_err(serr)?,
            Kind::Dir if created => st.mkdir(&path, e.mode).map_err(serr)?,
            Kind::Dir => {}
            Kind::Symlink { target } => st.symlink(&path, target).map_err(serr)?,
            Kind::Fifo => {
                st.fifo(&path, e.mode).map_err(serr)?;
            }
            Kind::CharDev { .. } | Kind::BlockDev { .. } => {}
        }
        Ok(())
    }

    fn apply_hardlink(
        &mut self,
        layer: usize,
        path: Vec<u8>,
        link: Option<Vec<u8>>,
        stats: &mut LayerStats,
    ) -> Result<(), ApplyError> {
        let raw = link
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApplyError::MissingLinkTarget {
                layer,
                path: display(&path),
            })?;
        let target = normalize_with(&raw, self.limits.max_path_len, self.limits.max_depth)
            .map_err(|source| ApplyError::HardlinkTarget {
                layer,
                path: display(&path),
                source,
            })?;
        let target = self.through_parent_links(layer, target)?;
        if path.is_empty() {
            return Err(ApplyError::RootNotDir { layer });
        }
        if is_within(&target, &path) {
            return Err(ApplyError::HardlinkToSelf {
                layer,
                path: display(&path),
                target: display(&target),
            });
        }
        let Some(t) = self.tree.get(&target) else {
            return Err(ApplyError::HardlinkMissing {
                layer,
                path: display(&path),
                target: display(&target),
            });
        };
        if t.is_dir() {
            return Err(ApplyError::HardlinkToDir {
                layer,
                path: display(&path),
                target: display(&target),
            });
        }
        let new = Entry { layer, ..t.clone() };
        self.ensure_parents(layer, &path)?;
        let kind = new.kind.clone();
        self.place(layer, &path, new, stats)?;
        if let Some(st) = self.staging.as_mut() {
            let serr = Self::stage_err(layer);
            match kind {
                Kind::CharDev { .. } | Kind::BlockDev { .. } => {}
                Kind::Fifo => st.hardlink(&path, &target, true).map_err(serr)?,
                _ => st.hardlink(&path, &target, false).map_err(serr)?,
            }
        }
        Ok(())
    }

    /// A tar entry naming the root (`./`): only a directory, which updates the root's metadata.
    fn apply_root(&mut self, layer: usize, kind: Kind, meta: Meta) -> Result<(), ApplyError> {
        if kind != Kind::Dir {
            return Err(ApplyError::RootNotDir { layer });
        }
        if let Some(root) = self.tree.get_mut(b"") {
            root.mode = meta.mode;
            root.uid = meta.uid;
            root.gid = meta.gid;
            root.mtime = meta.mtime;
            root.xattrs = meta.xattrs;
            root.layer = layer;
        }
        Ok(())
    }

    /// Refuse a non-directory parent of `path` that exists in the tree (whiteouts: a missing
    /// parent just means there is nothing to hide).
    fn check_existing_parent(&self, layer: usize, path: &[u8]) -> Result<(), ApplyError> {
        let mut prefix_end = 0;
        let (parent, _) = split_last(path);
        while prefix_end < parent.len() {
            let next = parent[prefix_end..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(parent.len(), |i| prefix_end + i);
            let prefix = &parent[..next];
            match self.tree.get(prefix) {
                None => return Ok(()),
                Some(e) => self.parent_ok(layer, path, prefix, e)?,
            }
            prefix_end = next + 1;
        }
        Ok(())
    }

    /// `path` with its parent resolved inside the tree when an ancestor is a symlink, as
    /// containerd and docker apply layers (`lib/x` lands in `usr/lib/x` when `lib -> usr/lib`).
    /// Links are followed only through the in-memory tree, `..` stops at the image root and
    /// components that do not exist yet are taken literally, so the result is always a path
    /// inside the image whose existing ancestors are real directories; nothing on disk is ever
    /// resolved. Unchanged when the parent is a directory (the common case, one lookup).
    fn through_parent_links(&self, layer: usize, path: Vec<u8>) -> Result<Vec<u8>, ApplyError> {
        let (parent, name) = split_last(&path);
        if parent.is_empty() || self.tree.get(parent).is_some_and(Entry::is_dir) {
            return Ok(path);
        }
        let mut pending: Vec<Vec<u8>> = parent
            .split(|&b| b == b'/')
            .rev()
            .map(<[u8]>::to_vec)
            .collect();
        let mut cur: Vec<u8> = Vec::new();
        let mut hops = 0;
        let mut linked = false;
        while let Some(comp) = pending.pop() {
            match &comp[..] {
                b"" | b"." => continue,
                b".." => {
                    let end = cur.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    cur.truncate(end);
                    continue;
                }
                _ => {}
            }
            let next = join(&cur, &comp);
            match self.tree.get(&next).map(|e| &e.kind) {
                Some(Kind::Symlink { target }) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(ApplyError::ParentSymlink {
                            layer,
                            path: display(&path),
                            parent: display(&next),
                        });
                    }
                    linked = true;
                    if target.starts_with(b"/") {
                        cur.clear();
                    }
                    pending.extend(target.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
                }
                Some(Kind::Dir) | None => cur = next,
                Some(_) => {
                    return Err(ApplyError::ParentNotDir {
                        layer,
                        path: display(&path),
                        parent: display(&next),
                    })
                }
            }
        }
        if !linked {
            return Ok(path);
        }
        let real = join(&cur, name);
        // Checked like any entry name: the result must stay within the limits.
        normalize_with(&real, self.limits.max_path_len, self.limits.max_depth)
            .map_err(|source| ApplyError::Name { layer, source })
    }

    fn parent_ok(
        &self,
        layer: usize,
        path: &[u8],
        prefix: &[u8],
        e: &Entry,
    ) -> Result<(), ApplyError> {
        match e.kind {
            Kind::Dir => Ok(()),
            Kind::Symlink { .. } => Err(ApplyError::ParentSymlink {
                layer,
                path: display(path),
                parent: display(prefix),
            }),
            _ => Err(ApplyError::ParentNotDir {
                layer,
                path: display(path),
                parent: display(prefix),
            }),
        }
    }

    /// Make sure every ancestor of `path` is a directory, creating missing ones with defaults
    /// (tree and disk), and mark them as touched by this layer.
    fn ensure_parents(&mut self, layer: usize, path: &[u8]) -> Result<(), ApplyError> {
        let (parent, _) = split_last(path);
        if parent.is_empty() {
            return Ok(());
        }
        // Tree invariant: every entry's ancestors are directories. So an existing directory
        // parent settles it.
        let parent_is_dir = self.tree.get(parent).is_some_and(Entry::is_dir);
        if !parent_is_dir {
            let mut prefix_end = 0;
            while prefix_end < parent.len() {
                let next = parent[prefix_end..]
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(parent.len(), |i| prefix_end + i);
                let prefix = &parent[..next];
                match self.tree.get(prefix) {
                    Some(e) => self.parent_ok(layer, path, prefix, e)?,
                    None => {
                        let inode = self.tree.new_inode();
                        self.tree
                            .insert(prefix.to_vec(), Entry::implicit_dir(inode, layer));
                        if let Some(st) = self.staging.as_mut() {
                            st.mkdir(prefix, 0o755).map_err(Self::stage_err(layer))?;
                        }
                    }
                }
                prefix_end = next + 1;
            }
        }
        self.touch_chain(parent);
        Ok(())
    }

    /// Mark `path` and all its ancestors as touched by the current layer.
    fn touch_chain(&mut self, path: &[u8]) {
        let mut p = path;
        while !p.is_empty() {
            if self.touched.contains_key(p) {
                // Its ancestors were marked with it.
                return;
            }
            self.touched.insert(p.into(), false);
            p = split_last(p).0;
        }
    }

    /// Put `new` at `path` (parents exist): a directory over a directory updates metadata;
    /// anything else replaces the old subtree. Returns whether a new object was created.
    fn place(
        &mut self,
        layer: usize,
        path: &[u8],
        mut new: Entry,
        stats: &mut LayerStats,
    ) -> Result<bool, ApplyError> {
        let dup = self.touched.get(path).copied().unwrap_or(false);
        let created = match self.tree.get_mut(path) {
            Some(old) if old.is_dir() && new.is_dir() => {
                if dup {
                    stats.duplicate_dirs += 1;
                }
                old.mode = new.mode;
                old.uid = new.uid;
                old.gid = new.gid;
                old.mtime = new.mtime;
                old.xattrs = std::mem::take(&mut new.xattrs);
                old.layer = layer;
                false
            }
            Some(_) if dup => {
                return Err(ApplyError::DuplicateEntry {
                    layer,
                    path: display(path),
                })
            }
            Some(_) => {
                self.remove_subtree(layer, path, None, true, stats)?;
                true
            }
            None => true,
        };
        if created {
            // Hardlinks come with their target's inode; everything else gets a fresh one.
            if new.inode == 0 {
                new.inode = self.tree.new_inode();
            }
            self.tree.insert(path.to_vec(), new);
        }
        match self.touched.get_mut(path) {
            Some(written) => *written = true,
            None => {
                self.touched.insert(path.into(), true);
                self.touch_chain(split_last(path).0);
            }
        }
        Ok(created)
    }

    /// Whiteout: remove `target` (when `include_self`) and its descendants, except what this
    /// layer wrote (and the ancestors of what it wrote).
    fn hide(
        &mut self,
        layer: usize,
        target: &[u8],
        include_self: bool,
        stats: &mut LayerStats,
    ) -> Result<(), ApplyError> {
        let touched = std::mem::take(&mut self.touched);
        let r = self.remove_subtree(layer, target, Some(&touched), include_self, stats);
        self.touched = touched;
        r
    }

    /// Remove `path` (when `include_self`) and everything below it from the tree and the disk,
    /// sparing `keep`. Lower-layer regular files removed count as hidden bytes.
    fn remove_subtree(
        &mut self,
        layer: usize,
        path: &[u8],
        keep: Option<&HashMap<Box<[u8]>, bool>>,
        include_self: bool,
        stats: &mut LayerStats,
    ) -> Result<(), ApplyError> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        if include_self && !path.is_empty() && self.tree.contains(path) {
            keys.push(path.to_vec());
        }
        keys.extend(self.tree.descendants(path).map(|(k, _)| k.clone()));
        if let Some(keep) = keep {
            keys.retain(|k| !keep.contains_key(k.as_slice()));
        }
        let mut removed = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(e) = self.tree.entries.remove(&k) {
                if let Kind::File { size } = e.kind {
                    if e.layer < layer {
                        stats.hidden_bytes += size;
                    }
                }
                removed.push((k, e.is_dir()));
            }
        }
        if let Some(st) = self.staging.as_mut() {
            // Descendants sort after their ancestors: reversed, children go first.
            for (k, is_dir) in removed.iter().rev() {
                st.remove(k, *is_dir).map_err(Self::stage_err(layer))?;
            }
        }
        Ok(())
    }
}

/// The data of an extended header entry, bounded by [`MAX_EXTENSION_BYTES`].
fn read_extension<R: Read>(
    layer: usize,
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<u8>, ApplyError> {
    if entry.size() > MAX_EXTENSION_BYTES {
        return Err(ApplyError::Header {
            layer,
            path: display(&entry.header().path_bytes()),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "extended header of {} bytes (limit {MAX_EXTENSION_BYTES})",
                    entry.size()
                ),
            ),
        });
    }
    let mut data = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut data)
        .map_err(|source| ApplyError::Read { layer, source })?;
    Ok(data)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tar::{EntryType, Header};

    /// Builds one layer tar in memory. Names are written raw into the header, so hostile names
    /// (`../x`, `/abs`) can be made.
    pub(crate) struct Layer {
        b: tar::Builder<Vec<u8>>,
    }

    fn header(name: &[u8], t: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(t);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        if let Some(g) = h.as_gnu_mut() {
            g.name = [0; 100];
            g.name[..name.len()].copy_from_slice(name);
        }
        h
    }

    fn set_link(h: &mut Header, target: &[u8]) {
        if let Some(g) = h.as_gnu_mut() {
            g.linkname = [0; 100];
            g.linkname[..target.len()].copy_from_slice(target);
        }
    }

    impl Layer {
        pub(crate) fn new() -> Self {
            Layer {
                b: tar::Builder::new(Vec::new()),
            }
        }
        fn push(mut self, mut h: Header, data: &[u8]) -> Self {
            h.set_cksum();
            self.b.append(&h, data).expect("append to memory tar");
            self
        }
        pub(crate) fn file(self, name: &str, data: &[u8]) -> Self {
            self.file_mode(name, data, 0o644)
        }
        pub(crate) fn file_mode(self, name: &str, data: &[u8], mode: u32) -> Self {
            let h = header(name.as_bytes(), EntryType::Regular, mode, data.len() as u64);
            self.push(h, data)
        }
        pub(crate) fn dir(self, name: &str) -> Self {
            self.dir_mode(name, 0o755)
        }
        pub(crate) fn dir_mode(self, name: &str, mode: u32) -> Self {
            let h = header(name.as_bytes(), EntryType::Directory, mode, 0);
            self.push(h, b"")
        }
        pub(crate) fn symlink(self, name: &str, target: &str) -> Self {
            let mut h = header(name.as_bytes(), EntryType::Symlink, 0o777, 0);
            set_link(&mut h, target.as_bytes());
            self.push(h, b"")
        }
        pub(crate) fn hardlink(self, name: &str, target: &str) -> Self {
            let mut h = header(name.as_bytes(), EntryType::Link, 0o644, 0);
            set_link(&mut h, target.as_bytes());
            self.push(h, b"")
        }
        fn dev(self, name: &str, t: EntryType, major: u32, minor: u32) -> Self {
            let mut h = header(name.as_bytes(), t, 0o666, 0);
            h.set_device_major(major).expect("major");
            h.set_device_minor(minor).expect("minor");
            self.push(h, b"")
        }
        fn pax(mut self, kvs: &[(&str, &[u8])]) -> Self {
            self.b
                .append_pax_extensions(kvs.iter().copied())
                .expect("pax header");
            self
        }
        fn raw(self, h: Header, data: &[u8]) -> Self {
            self.push(h, data)
        }
        pub(crate) fn bytes(self) -> Vec<u8> {
            self.b.into_inner().expect("finish memory tar")
        }
    }

    fn flatten(layers: Vec<Layer>) -> Result<(Tree, FlattenStats, Vec<LayerStats>), ApplyError> {
        flatten_with(layers, &Limits::default())
    }

    fn flatten_with(
        layers: Vec<Layer>,
        limits: &Limits,
    ) -> Result<(Tree, FlattenStats, Vec<LayerStats>), ApplyError> {
        let mut f = Flattener::new(None, limits);
        let mut all = Vec::new();
        for (i, l) in layers.into_iter().enumerate() {
            all.push(f.apply_layer(i, &l.bytes()[..])?);
        }
        let (t, _, s) = f.finish()?;
        Ok((t, s, all))
    }

    fn paths(t: &Tree) -> Vec<String> {
        t.iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .filter(|k| !k.is_empty())
            .collect()
    }

    #[test]
    fn whiteout_file_and_dir_subtree() {
        let l0 = Layer::new()
            .dir("etc/")
            .file("etc/a", b"aaaa")
            .file("etc/b", b"b")
            .dir("usr/")
            .dir("usr/lib/")
            .file("usr/lib/x", b"xx")
            .file("usr/lib/sub/y", b"yyy");
        let l1 = Layer::new()
            .file("etc/.wh.a", b"")
            .file("usr/.wh.lib", b"")
            .file(".wh.nonexistent", b"")
            .file("nodir/.wh.nothing", b"");
        let (t, s, ls) = flatten(vec![l0, l1]).expect("flatten");
        assert_eq!(paths(&t), vec!["etc", "etc/b", "usr"]);
        assert_eq!(ls[1].whiteouts, 4);
        assert_eq!(ls[1].hidden_bytes, 4 + 2 + 3);
        assert_eq!(s.hidden_bytes, 9);
        assert_eq!(s.files, 1);
        assert_eq!(s.bytes, 1);
        // A whiteout of a missing parent creates nothing.
        assert!(!t.contains(b"nodir"));
    }

    #[test]
    fn whiteouts_spare_same_layer_entries() {
        // `.wh.f` and `f` in the same layer: the whiteout only hides lower content.
        let l0 = Layer::new().file("f", b"old").file("g/old", b"o");
        let l1 = Layer::new()
            .file("f", b"new")
            .file(".wh.f", b"")
            .file("g/new", b"n")
            .file(".wh.g", b"");
        let (t, _, ls) = flatten(vec![l0, l1]).expect("flatten");
        assert_eq!(paths(&t), vec!["f", "g", "g/new"]);
        assert_eq!(t.get(b"f").map(Entry::size), Some(3));
        assert_eq!(t.get(b"f").map(|e| e.layer), Some(1));
        assert_eq!(ls[1].hidden_bytes, 3 + 1);
    }

    #[test]
    fn opaque_dir_before_and_after_children() {
        for opq_first in [true, false] {
            let l0 = Layer::new()
                .dir("d/")
                .file("d/old1", b"1")
                .file("d/sub/old2", b"22")
                .file("d/sub2/old3", b"333")
                .file("other", b"o");
            let mut l1 = Layer::new();
            if opq_first {
                l1 = l1.file("d/.wh..wh..opq", b"");
            }
            l1 = l1.file("d/new", b"n").file("d/sub/new2", b"n2");
            if !opq_first {
                l1 = l1.file("d/.wh..wh..opq", b"");
            }
            let (t, _, ls) = flatten(vec![l0, l1]).expect("flatten");
            assert_eq!(
                paths(&t),
                vec!["d", "d/new", "d/sub", "d/sub/new2", "other"],
                "opaque first: {opq_first}"
            );
            assert_eq!(ls[1].hidden_bytes, 1 + 2 + 3, "opaque first: {opq_first}");
        }
    }

    #[test]
    fn opaque_creates_its_dir_and_hides_only_lower() {
        let l0 = Layer::new().file("a/x", b"x");
        let l1 = Layer::new()
            .file("b/.wh..wh..opq", b"")
            .file("a/.wh..wh..opq", b"");
        let (t, _, _) = flatten(vec![l0, l1]).expect("flatten");
        assert_eq!(paths(&t), vec!["a", "b"]);
        assert!(t.get(b"b").is_some_and(Entry::is_dir));
    }

    #[test]
    fn bad_whiteouts_refused() {
        for name in [
            ".wh.",
            "a/.wh.",
            ".wh..",
            "a/.wh..",
            ".wh...",
            "x/.wh...",
            ".wh.x/y",
            "a/.wh.b/c",
        ] {
            let r = flatten(vec![Layer::new().dir("a/").file(name, b"")]);
            assert!(
                matches!(r, Err(ApplyError::BadWhiteout { .. })),
                "{name}: {r:?}"
            );
        }
    }

    #[test]
    fn aufs_metadata_skipped() {
        let l0 = Layer::new()
            .dir(".wh..wh.plnk/")
            .file(".wh..wh.plnk/123.456", b"x")
            .file(".wh..wh.aufs", b"")
            .file("keep", b"k");
        let (t, _, ls) = flatten(vec![l0]).expect("flatten");
        assert_eq!(paths(&t), vec!["keep"]);
        assert_eq!(ls[0].skipped, 3);
    }

    #[test]
    fn escaping_names_refused() {
        for name in ["../x", "a/../../x", "./..", "/../etc/passwd"] {
            let r = flatten(vec![Layer::new().file(name, b"evil")]);
            assert!(
                matches!(
                    r,
                    Err(ApplyError::Name {
                        source: PathError::Escapes(_),
                        ..
                    })
                ),
                "{name}: {r:?}"
            );
        }
        let r = flatten(vec![Layer::new().file("ok", b"").hardlink("l", "../ok")]);
        assert!(matches!(r, Err(ApplyError::HardlinkTarget { .. })), "{r:?}");
    }

    #[test]
    fn replacement_across_types() {
        let l0 = Layer::new()
            .file("d/sub/f", b"12345")
            .file("f", b"abc")
            .symlink("s", "target");
        let l1 = Layer::new()
            .file("d", b"now a file")
            .dir("f/")
            .file("f/child", b"c")
            .dir_mode("s/", 0o700);
        let (t, _, ls) = flatten(vec![l0, l1]).expect("flatten");
        assert_eq!(paths(&t), vec!["d", "f", "f/child", "s"]);
        assert_eq!(
            t.get(b"d").map(|e| e.kind.clone()),
            Some(Kind::File { size: 10 })
        );
        assert!(t.get(b"f").is_some_and(Entry::is_dir));
        assert!(t.get(b"s").is_some_and(|e| e.is_dir() && e.mode == 0o700));
        assert_eq!(ls[1].hidden_bytes, 5 + 3);
    }

    #[test]
    fn dir_metadata_update_keeps_children() {
        let l0 = Layer::new().dir_mode("d/", 0o755).file("d/a", b"a");
        let mut h = header(b"d/", EntryType::Directory, 0o1777, 0);
        h.set_uid(33);
        h.set_gid(44);
        h.set_mtime(5);
        let l1 = Layer::new().raw(h, b"");
        let (t, _, _) = flatten(vec![l0, l1]).expect("flatten");
        let d = t.get(b"d").expect("d");
        assert_eq!(
            (d.mode, d.uid, d.gid, d.mtime, d.layer),
            (0o1777, 33, 44, 5, 1)
        );
        assert!(t.contains(b"d/a"));
    }

    #[test]
    fn implicit_parents_get_defaults() {
        let (t, _, _) = flatten(vec![Layer::new().file_mode("a/b/c", b"c", 0o600)]).expect("ok");
        for p in [&b"a"[..], b"a/b"] {
            let e = t.get(p).expect("implicit parent");
            assert_eq!(
                (e.is_dir(), e.mode, e.uid, e.gid, e.mtime),
                (true, 0o755, 0, 0, 0)
            );
        }
        assert_eq!(t.get(b"a/b/c").map(|e| e.mode), Some(0o600));
    }

    #[test]
    fn root_entry_updates_root() {
        let (t, _, _) =
            flatten(vec![Layer::new().dir_mode("./", 0o700).file("./x", b"")]).expect("flatten");
        assert_eq!(t.get(b"").map(|e| e.mode), Some(0o700));
        let r = flatten(vec![Layer::new().file("./", b"")]);
        assert!(matches!(r, Err(ApplyError::RootNotDir { .. })), "{r:?}");
    }

    #[test]
    fn hardlinks() {
        let l0 = Layer::new().file_mode("bin/a", b"data", 0o4755);
        let l1 = Layer::new()
            .hardlink("bin/b", "bin/a")
            .file("usr/c", b"cc")
            .hardlink("usr/d", "/usr/c");
        let (t, s, _) = flatten(vec![l0, l1]).expect("flatten");
        let a = t.get(b"bin/a").expect("a");
        let b = t.get(b"bin/b").expect("b");
        assert_eq!(a.inode, b.inode);
        assert_eq!(
            (b.mode, b.kind.clone(), b.layer),
            (0o4755, Kind::File { size: 4 }, 1)
        );
        assert_eq!(
            t.get(b"usr/c").map(|e| e.inode),
            t.get(b"usr/d").map(|e| e.inode)
        );
        assert_ne!(a.inode, t.get(b"usr/c").map_or(0, |e| e.inode));
        // Three paths, two inodes.
        assert_eq!((s.files, s.bytes), (4, 6));

        let r = flatten(vec![Layer::new().hardlink("x", "missing")]);
        assert!(
            matches!(r, Err(ApplyError::HardlinkMissing { .. })),
            "{r:?}"
        );
        let r = flatten(vec![Layer::new().dir("d/").hardlink("x", "d")]);
        assert!(matches!(r, Err(ApplyError::HardlinkToDir { .. })), "{r:?}");
        let r = flatten(vec![Layer::new().file("d/f", b"").hardlink("d", "d/f")]);
        assert!(matches!(r, Err(ApplyError::HardlinkToSelf { .. })), "{r:?}");
    }

    #[test]
    fn metadata_xattrs_devices_links() {
        let mut h = header(b"usr/bin/ping", EntryType::Regular, 0o4755, 2);
        h.set_uid(1000);
        h.set_gid(1001);
        let l0 = Layer::new()
            .pax(&[
                (
                    "SCHILY.xattr.security.capability",
                    &b"\x01\x00\x00\x02cap"[..],
                ),
                ("mtime", b"1234.5678"),
            ])
            .raw(h, b"pp")
            .dev("dev/null", EntryType::Char, 1, 3)
            .dev("dev/sda", EntryType::Block, 8, 0)
            .raw(header(b"run/fifo", EntryType::Fifo, 0o600, 0), b"")
            .symlink("usr/bin/x", "/bin/y");
        let (t, _, _) = flatten(vec![l0]).expect("flatten");
        let p = t.get(b"usr/bin/ping").expect("ping");
        assert_eq!((p.mode, p.uid, p.gid, p.mtime), (0o4755, 1000, 1001, 1234));
        assert_eq!(
            p.xattrs.get("security.capability").map(Vec::as_slice),
            Some(&b"\x01\x00\x00\x02cap"[..])
        );
        assert_eq!(
            t.get(b"dev/null").map(|e| e.kind.clone()),
            Some(Kind::CharDev { major: 1, minor: 3 })
        );
        assert_eq!(
            t.get(b"dev/sda").map(|e| e.kind.clone()),
            Some(Kind::BlockDev { major: 8, minor: 0 })
        );
        assert_eq!(t.get(b"run/fifo").map(|e| e.kind.clone()), Some(Kind::Fifo));
        assert_eq!(
            t.get(b"usr/bin/x").map(|e| e.kind.clone()),
            Some(Kind::Symlink {
                target: b"/bin/y".to_vec()
            })
        );
        // The xattr belongs to its entry only.
        assert!(t.get(b"dev/null").is_some_and(|e| e.xattrs.is_empty()));
    }

    #[test]
    fn pax_values_are_read_by_length_not_by_line() {
        // cap_dac_override + cap_fowner (+ep): bytes 0x0a appear in the value, as umoci writes it
        let cap =
            b"\x01\x00\x00\x02\x0a\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        let long = format!("usr/lib/{}/tool", "d".repeat(120));
        let mut h = header(b"placeholder", EntryType::Regular, 0o755, 2);
        h.set_uid(7);
        let l0 = Layer::new()
            .pax(&[
                ("SCHILY.xattr.security.capability", &cap[..]),
                ("gid", b"4000000"),
                ("path", long.as_bytes()),
                ("uid", b"3000000"),
            ])
            .raw(h, b"ok")
            .pax(&[("linkpath", b"/usr/bin/with\nnewline")])
            .raw(header(b"usr/bin/l", EntryType::Symlink, 0o777, 0), b"");
        let (t, _, _) = flatten(vec![l0]).expect("flatten");
        let e = t
            .get(long.as_bytes())
            .expect("the PAX path names the entry");
        assert_eq!(e.xattrs["security.capability"], cap);
        assert_eq!((e.uid, e.gid), (3_000_000, 4_000_000));
        assert!(t.get(b"placeholder").is_none());
        assert_eq!(
            t.get(b"usr/bin/l").map(|e| e.kind.clone()),
            Some(Kind::Symlink {
                target: b"/usr/bin/with\nnewline".to_vec()
            })
        );
        // Extensions apply to the next entry only.
        assert!(t
            .get(b"usr/bin/l")
            .is_some_and(|e| e.xattrs.is_empty() && e.uid == 0));

        // A PAX size that differs from the header (the >8 GiB case) is refused, not misread.
        let r = flatten(vec![Layer::new()
            .pax(&[("size", b"9000000000")])
            .raw(header(b"big", EntryType::Regular, 0o644, 2), b"xx")]);
        assert!(matches!(r, Err(ApplyError::Header { .. })), "{r:?}");
        // Sparse files announced by PAX are refused.
        let r = flatten(vec![Layer::new()
            .pax(&[("GNU.sparse.major", b"1")])
            .raw(header(b"s", EntryType::Regular, 0o644, 2), b"xx")]);
        assert!(matches!(r, Err(ApplyError::Sparse { .. })), "{r:?}");
    }

    #[test]
    fn bad_symlink_targets() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("linkpath", &b"/bin/\0sh"[..])])
            .expect("pax");
        let mut h = header(b"l", EntryType::Symlink, 0o777, 0);
        h.set_cksum();
        b.append(&h, &b""[..]).expect("append");
        let bytes = b.into_inner().expect("tar");
        let r = Flattener::new(None, &Limits::default()).apply_layer(0, &bytes[..]);
        assert!(matches!(r, Err(ApplyError::NulLinkTarget { .. })), "{r:?}");
        let r = flatten(vec![Layer::new().symlink("l", "")]);
        assert!(
            matches!(r, Err(ApplyError::MissingLinkTarget { .. })),
            "{r:?}"
        );
    }

    #[test]
    fn symlinked_parents_are_followed_inside_the_tree() {
        // merged-/usr: `lib -> usr/lib`; a later layer writes through the link
        let (t, _, _) = flatten(vec![
            Layer::new()
                .dir("usr/lib/")
                .symlink("lib", "usr/lib")
                .symlink("var/run", "/run")
                .file("usr/lib/old", b"o"),
            Layer::new()
                .file("lib/libc.so", b"c")
                .file("var/run/app/pid", b"1")
                .hardlink("lib/libc2.so", "lib/libc.so")
                .file("lib/.wh.old", b""),
        ])
        .expect("flatten");
        assert_eq!(
            t.get(b"usr/lib/libc.so").map(|e| e.kind.clone()),
            Some(Kind::File { size: 1 })
        );
        assert!(t.get(b"lib/libc.so").is_none());
        assert!(matches!(
            t.get(b"lib").map(|e| &e.kind),
            Some(Kind::Symlink { .. })
        ));
        // a dangling link's target is created inside the image, as docker does
        assert!(t.get(b"run/app/pid").is_some() && t.get(b"run").is_some_and(Entry::is_dir));
        assert_eq!(
            t.get(b"usr/lib/libc2.so").map(|e| e.inode),
            t.get(b"usr/lib/libc.so").map(|e| e.inode)
        );
        assert!(
            t.get(b"usr/lib/old").is_none(),
            "the whiteout went through the link"
        );

        // `..` and absolute targets stay inside the image root
        let (t, _, _) = flatten(vec![Layer::new()
            .symlink("up", "../../../../..")
            .symlink("abs", "/etc")
            .file("up/escaped", b"x")
            .file("abs/hostname", b"h")])
        .expect("flatten");
        assert!(t.get(b"escaped").is_some() && t.get(b"etc/hostname").is_some());

        let r = flatten(vec![Layer::new().file("f", b"").file("f/g", b"")]);
        assert!(matches!(r, Err(ApplyError::ParentNotDir { .. })), "{r:?}");
        let r = flatten(vec![Layer::new()
            .file("f", b"")
            .symlink("l", "f")
            .file("l/g", b"")]);
        assert!(matches!(r, Err(ApplyError::ParentNotDir { .. })), "{r:?}");
        let r = flatten(vec![Layer::new()
            .symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", b"")]);
        assert!(matches!(r, Err(ApplyError::ParentSymlink { .. })), "{r:?}");
    }

    #[test]
    fn sparse_refused() {
        let mut h = header(b"sparse", EntryType::GNUSparse, 0o644, 0);
        if let Some(g) = h.as_gnu_mut() {
            g.realsize = *b"00000000000\0";
        }
        let cases = vec![
            Layer::new().raw(h, b""),
            Layer::new()
                .pax(&[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")])
                .file("big", b""),
            Layer::new().file("./GNUSparseFile.1234/big", b""),
        ];
        for (i, l) in cases.into_iter().enumerate() {
            let r = flatten(vec![l]);
            assert!(
                matches!(r, Err(ApplyError::Sparse { .. })),
                "case {i}: {r:?}"
            );
        }
    }

    #[test]
    fn duplicates() {
        let r = flatten(vec![Layer::new().file("f", b"1").file("f", b"2")]);
        assert!(matches!(r, Err(ApplyError::DuplicateEntry { .. })), "{r:?}");
        let r = flatten(vec![Layer::new().file("f", b"1").symlink("f", "x")]);
        assert!(matches!(r, Err(ApplyError::DuplicateEntry { .. })), "{r:?}");
        let (t, _, ls) = flatten(vec![Layer::new()
            .dir("d/")
            .file("d/x", b"")
            .dir_mode("d", 0o700)])
        .expect("repeated dir is fine");
        assert_eq!(ls[0].duplicate_dirs, 1);
        assert_eq!(t.get(b"d").map(|e| e.mode), Some(0o700));
        assert!(t.contains(b"d/x"));
        // The same file in two layers is a replacement, not a duplicate.
        let (t, _, _) = flatten(vec![
            Layer::new().file("f", b"1"),
            Layer::new().file("f", b"22"),
        ])
        .expect("replacement");
        assert_eq!(t.get(b"f").map(Entry::size), Some(2));
    }

    #[test]
    fn limits_enforced() {
        let limits = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        let mk = || {
            vec![
                Layer::new().file("a", b"").file("b", b""),
                Layer::new().file("c", b""),
            ]
        };
        assert!(flatten_with(mk(), &limits).is_ok());
        let mut l = mk();
        l.push(Layer::new().file("d", b""));
        let r = flatten_with(l, &limits);
        assert!(
            matches!(r, Err(ApplyError::TooManyEntries { limit: 3 })),
            "{r:?}"
        );

        let limits = Limits {
            max_unpacked_bytes: 10,
            ..Limits::default()
        };
        let ok = vec![
            Layer::new().file("a", b"12345"),
            Layer::new().file("b", b"12345"),
        ];
        assert!(flatten_with(ok, &limits).is_ok());
        let bad = vec![
            Layer::new().file("a", b"123456"),
            Layer::new().file("b", b"12345"),
        ];
        let r = flatten_with(bad, &limits);
        assert!(
            matches!(r, Err(ApplyError::TooManyBytes { limit: 10 })),
            "{r:?}"
        );

        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let r = flatten_with(vec![Layer::new().file("a/b/c", b"")], &limits);
        assert!(
            matches!(
                r,
                Err(ApplyError::Name {
                    source: PathError::TooDeep { .. },
                    ..
                })
            ),
            "{r:?}"
        );
    }

    #[test]
    fn long_names_gnu_and_pax() {
        let long_dir = "d".repeat(120);
        let long_file = format!("{long_dir}/{}", "f".repeat(130));
        let long_target = format!("/{}", "t".repeat(200));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(b"", EntryType::Regular, 0o644, 3);
        b.append_data(&mut h, &long_file, &b"abc"[..])
            .expect("gnu long name");
        let mut h = header(b"", EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, "short-link", &long_target)
            .expect("gnu long link");
        let pax_name = format!("p/{}", "x".repeat(150));
        b.append_pax_extensions([("path", pax_name.as_bytes())])
            .expect("pax path");
        let mut h = header(b"truncated-name", EntryType::Regular, 0o600, 1);
        h.set_cksum();
        b.append(&h, &b"z"[..]).expect("pax entry");
        let bytes = b.into_inner().expect("tar");
        let mut f = Flattener::new(None, &Limits::default());
        f.apply_layer(0, &bytes[..]).expect("apply");
        let (t, _, _) = f.finish().expect("finish");
        assert_eq!(t.get(long_file.as_bytes()).map(Entry::size), Some(3));
        assert_eq!(
            t.get(b"short-link").map(|e| e.kind.clone()),
            Some(Kind::Symlink {
                target: long_target.into_bytes()
            })
        );
        assert_eq!(t.get(pax_name.as_bytes()).map(|e| e.mode), Some(0o600));
        assert!(!t.contains(b"truncated-name"));
    }

    #[test]
    fn layer_order_and_garbage() {
        let mut f = Flattener::new(None, &Limits::default());
        f.apply_layer(1, &Layer::new().file("a", b"").bytes()[..])
            .expect("layer 1");
        let r = f.apply_layer(1, &Layer::new().bytes()[..]);
        assert!(matches!(r, Err(ApplyError::LayerOrder { .. })), "{r:?}");
        let mut f = Flattener::new(None, &Limits::default());
        let r = f.apply_layer(0, &[7u8; 1024][..]);
        assert!(matches!(r, Err(ApplyError::Read { .. })), "{r:?}");
        // Truncated file data.
        let bytes = Layer::new().file("a", &[1u8; 4000]).bytes();
        let mut f = Flattener::new(None, &Limits::default());
        let r = f.apply_layer(0, &bytes[..1500]);
        assert!(r.is_err(), "{r:?}");
    }
}
