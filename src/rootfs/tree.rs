//! The in-memory tree of a flattened image.

use std::collections::BTreeMap;

/// Type of an entry, with the data that belongs to the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File { size: u64 },
    Dir,
    Symlink { target: Vec<u8> },
    CharDev { major: u32, minor: u32 },
    BlockDev { major: u32, minor: u32 },
    Fifo,
}

/// One entry with the metadata of its tar header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Extended attributes from PAX `SCHILY.xattr.*` records (e.g. `security.capability`).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Identity of the file's inode: entries that are hardlinks of each other share it.
    /// Unique per entry otherwise.
    pub inode: u64,
    /// Index of the layer that last wrote this entry (0 = bottom).
    pub layer: usize,
}

impl Entry {
    /// A directory no layer described (the root, an implicit parent): 0755 root:root, mtime 0.
    pub fn implicit_dir(inode: u64, layer: usize) -> Entry {
        Entry {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
            inode,
            layer,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
    pub fn size(&self) -> u64 {
        match self.kind {
            Kind::File { size } => size,
            _ => 0,
        }
    }
}

/// Result of resolving a path inside the tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// The tree path reached (the final target), if it exists.
    pub path: Option<Vec<u8>>,
    /// Every symlink traversed on the way, in order (tree paths of the links themselves).
    pub hops: Vec<Vec<u8>>,
}

/// The flattened tree: tree path → entry, sorted so that parents come before children.
/// The root (empty path) is always present as a directory.
#[derive(Debug, Clone)]
pub struct Tree {
    pub(crate) entries: BTreeMap<Vec<u8>, Entry>,
    pub(crate) next_inode: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

/// Most symlinks followed in one resolution, as the kernel's limit (ELOOP beyond).
pub const MAX_SYMLINK_HOPS: usize = 40;

impl Tree {
    /// A tree holding only the root directory (mode 0755, root-owned).
    pub fn new() -> Self {
        let mut entries = BTreeMap::new();
        entries.insert(Vec::new(), Entry::implicit_dir(0, 0));
        Tree {
            entries,
            next_inode: 1,
        }
    }

    /// A fresh inode number for a new (non-hardlinked) entry.
    pub fn new_inode(&mut self) -> u64 {
        let i = self.next_inode;
        self.next_inode += 1;
        i
    }

    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn get_mut(&mut self, path: &[u8]) -> Option<&mut Entry> {
        self.entries.get_mut(path)
    }

    pub fn contains(&self, path: &[u8]) -> bool {
        self.entries.contains_key(path)
    }

    /// Number of entries, the root included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.len() <= 1
    }

    /// All entries in order: parents before children.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Entry)> {
        self.entries.iter()
    }

    /// Insert or replace one entry. The caller guarantees the parent exists as a directory
    /// (see `rootfs::apply`, which creates implicit parents and removes replaced subtrees).
    pub fn insert(&mut self, path: Vec<u8>, entry: Entry) -> Option<Entry> {
        self.entries.insert(path, entry)
    }

    /// Children (direct and indirect) of `dir`, in order, `dir` itself excluded.
    pub fn descendants<'a>(
        &'a self,
        dir: &'a [u8],
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Entry)> + 'a {
        let mut prefix = dir.to_vec();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(move |(k, _)| !k.is_empty())
    }

    /// Remove `path` and everything below it. Returns the removed entries.
    pub fn remove_tree(&mut self, path: &[u8]) -> Vec<(Vec<u8>, Entry)> {
        let mut keys: Vec<Vec<u8>> = self.descendants(path).map(|(k, _)| k.clone()).collect();
        if !path.is_empty() && self.entries.contains_key(path) {
            keys.push(path.to_vec());
        }
        keys.into_iter()
            .filter_map(|k| self.entries.remove(&k).map(|e| (k, e)))
            .collect()
    }

    /// Resolve an absolute or root-relative path inside the tree, following symlinks as the
    /// kernel would with this tree as `/` (absolute link targets restart at the tree root,
    /// `..` never leaves it). `follow_last` follows a symlink in the last component (stat vs
    /// lstat). Every link traversed is recorded in `hops`; `path` is `None` when the target
    /// does not exist, a component is not a directory, or there are too many links.
    pub fn resolve(&self, path: &[u8], follow_last: bool) -> Resolved {
        let mut hops = Vec::new();
        let mut pending: Vec<Vec<u8>> = components_rev(path);
        let mut cur: Vec<u8> = Vec::new();
        while let Some(comp) = pending.pop() {
            match &comp[..] {
                b"" | b"." => continue,
                b".." => {
                    match cur.iter().rposition(|&b| b == b'/') {
                        Some(i) => cur.truncate(i),
                        None => cur.clear(),
                    }
                    continue;
                }
                _ => {}
            }
            let mut next = cur.clone();
            if !next.is_empty() {
                next.push(b'/');
            }
            next.extend_from_slice(&comp);
            let Some(entry) = self.entries.get(&next) else {
                return Resolved { path: None, hops };
            };
            match &entry.kind {
                Kind::Symlink { target } if follow_last || !pending.is_empty() => {
                    if hops.len() >= MAX_SYMLINK_HOPS {
                        return Resolved { path: None, hops };
                    }
                    hops.push(next);
                    if target.starts_with(b"/") {
                        cur.clear();
                    }
                    pending.extend(components_rev(target));
                }
                Kind::Dir => cur = next,
                _ if pending.iter().all(|c| c.is_empty() || c == b".") => cur = next,
                _ => return Resolved { path: None, hops },
            }
        }
        Resolved {
            path: Some(cur),
            hops,
        }
    }
}

/// Components of `path`, last first (a stack to pop from).
fn components_rev(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .rev()
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(items: &[(&str, Kind)]) -> Tree {
        let mut t = Tree::new();
        for (p, k) in items {
            let inode = t.new_inode();
            t.insert(
                p.as_bytes().to_vec(),
                Entry {
                    kind: k.clone(),
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    xattrs: BTreeMap::new(),
                    inode,
                    layer: 0,
                },
            );
        }
        t
    }

    fn link(t: &str) -> Kind {
        Kind::Symlink {
            target: t.as_bytes().to_vec(),
        }
    }

    fn merged_usr() -> Tree {
        tree_with(&[
            ("usr", Kind::Dir),
            ("usr/lib", Kind::Dir),
            ("usr/lib/x86_64-linux-gnu", Kind::Dir),
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                Kind::File { size: 10 },
            ),
            (
                "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                Kind::File { size: 10 },
            ),
            ("usr/lib64", Kind::Dir),
            (
                "usr/lib64/ld-linux-x86-64.so.2",
                link("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
            ),
            ("lib", link("usr/lib")),
            ("lib64", link("usr/lib64")),
            ("etc", Kind::Dir),
            ("etc/loop1", link("loop2")),
            ("etc/loop2", link("/etc/loop1")),
            ("etc/up", link("../../../../usr/lib")),
        ])
    }

    fn p(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn resolve_merged_usr_hops() {
        let t = merged_usr();
        let r = t.resolve(b"/lib64/ld-linux-x86-64.so.2", true);
        assert_eq!(r.path, p("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
        assert_eq!(
            r.hops,
            vec![
                b"lib64".to_vec(),
                b"usr/lib64/ld-linux-x86-64.so.2".to_vec(),
                b"lib".to_vec()
            ]
        );
        let r = t.resolve(b"/lib64/ld-linux-x86-64.so.2", false);
        assert_eq!(r.path, p("usr/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(r.hops, vec![b"lib64".to_vec()]);
    }

    #[test]
    fn resolve_confined_and_loops() {
        let t = merged_usr();
        assert_eq!(
            t.resolve(b"/etc/up/x86_64-linux-gnu/libc.so.6", true).path,
            p("usr/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(t.resolve(b"../../etc", true).path, p("etc"));
        assert_eq!(t.resolve(b"/etc/loop1", true).path, None);
        assert_eq!(t.resolve(b"/etc/loop1", false).path, p("etc/loop1"));
        assert_eq!(t.resolve(b"/nope", true).path, None);
        assert_eq!(
            t.resolve(b"/usr/lib/x86_64-linux-gnu/libc.so.6/x", true)
                .path,
            None
        );
        assert_eq!(t.resolve(b"/", true).path, p(""));
        assert_eq!(t.resolve(b"/usr/./lib/../lib64", true).path, p("usr/lib64"));
    }

    #[test]
    fn remove_tree_and_descendants() {
        let mut t = merged_usr();
        let n = t.descendants(b"usr").count();
        assert_eq!(n, 6);
        let removed = t.remove_tree(b"usr/lib");
        assert_eq!(removed.len(), 4);
        assert!(t.contains(b"usr"));
        assert!(t.contains(b"usr/lib64"));
        assert!(!t.contains(b"usr/lib/x86_64-linux-gnu"));
    }
}
