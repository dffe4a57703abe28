//! The staging directory: file contents on disk, confined, written rootless.
//!
//! The flattened root is written below a fresh private directory (mode 0700) so the sandbox can
//! use it as an overlay lower dir and output can read original bytes. Rules:
//!
//! * written as an unprivileged user: no chown, no mknod, no xattrs on disk (the tree keeps the
//!   real metadata); devices are never created, fifos only when `mkfifo` is allowed;
//! * never create, change or follow anything outside the staging dir: every operation opens the
//!   parent directory by walking components with `openat(O_NOFOLLOW | O_DIRECTORY)` from the
//!   staging root's fd and then acts on one name relative to it. The tree refuses entries below
//!   symlinks, so every parent on disk is a real directory we created; a symlink met on the walk
//!   is an error (`ELOOP`/`ENOTDIR`), never followed;
//! * files are always created fresh (`O_CREAT | O_EXCL`), never rewritten in place, so hardlinks
//!   of a replaced file keep their old bytes;
//! * disk modes: directories `orig | 0o700` (set at [`Staging::apply_dir_modes`]), files
//!   `orig | 0o600`, so the owner can always read and traverse.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{linkat, mkfifoat, symlinkat, unlinkat, UnlinkatFlags};

use super::path::{is_within, split_last};
use super::{display, FileSource, Kind, Tree};

/// Size of the copy buffer for file contents.
const COPY_BUF: usize = 1 << 20;

/// Errors of staging operations; each names the operation and the tree path.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("opening staged directory `{path}` failed")]
    OpenDir {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("creating staged directory `{path}` failed")]
    Mkdir {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("writing staged file `{path}` failed")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("staged file `{path}` is truncated: {got} of {expected} bytes")]
    Truncated {
        path: String,
        expected: u64,
        got: u64,
    },
    #[error("creating staged symlink `{path}` failed")]
    Symlink {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("creating staged hardlink `{path}` to `{target}` failed")]
    Hardlink {
        path: String,
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("creating staged fifo `{path}` failed")]
    Fifo {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("removing staged `{path}` failed")]
    Remove {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("setting the mode of staged directory `{path}` failed")]
    Chmod {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// A private directory on disk holding the flattened root. Removed on drop unless
/// [`Staging::keep`] was called.
#[derive(Debug)]
pub struct Staging {
    root: PathBuf,
    root_fd: OwnedFd,
    keep: bool,
    /// The most recently opened parent directory (tree path, `O_PATH` fd): tar entries arrive
    /// grouped by directory, so most operations reuse it.
    cache: Option<(Vec<u8>, OwnedFd)>,
    buf: Vec<u8>,
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from(e)
}

fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Walk `comps` of a tree path from `start`, one `openat(O_NOFOLLOW | O_DIRECTORY)` per
/// component. Returns `None` when there is nothing to walk.
fn walk(start: BorrowedFd<'_>, rel: &[u8]) -> Result<Option<OwnedFd>, Errno> {
    let mut cur: Option<OwnedFd> = None;
    for comp in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let next = match &cur {
            Some(fd) => openat(fd, OsStr::from_bytes(comp), dir_flags(), Mode::empty())?,
            None => openat(start, OsStr::from_bytes(comp), dir_flags(), Mode::empty())?,
        };
        cur = Some(next);
    }
    Ok(cur)
}

impl Staging {
    /// Create a fresh private directory (mode 0700) inside `parent`.
    pub fn create_in(parent: &Path) -> io::Result<Staging> {
        let dir = tempfile::Builder::new()
            .prefix("oci-slim-stage-")
            .tempdir_in(parent)?;
        let root = dir.keep();
        let opened = (|| {
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
            openat(
                nix::fcntl::AT_FDCWD,
                &root,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err)
        })();
        match opened {
            Ok(root_fd) => {
                crate::sys::cleanup::register(&root);
                Ok(Staging {
                    root,
                    root_fd,
                    keep: false,
                    cache: None,
                    buf: Vec::new(),
                })
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                Err(e)
            }
        }
    }

    /// The staging directory on disk (the image root).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Do not remove the directory on drop.
    pub fn keep(&mut self) {
        self.keep = true;
        crate::sys::cleanup::unregister(&self.root);
    }

    /// Fd of the directory at tree path `dir` (the root for the empty path), via the cache.
    fn dir_fd(&mut self, dir: &[u8]) -> Result<BorrowedFd<'_>, Errno> {
        if dir.is_empty() {
            return Ok(self.root_fd.as_fd());
        }
        let hit = matches!(&self.cache, Some((p, _)) if p == dir);
        if !hit {
            let fd = match &self.cache {
                Some((p, fd)) if is_within(dir, p) => walk(fd.as_fd(), &dir[p.len()..])?,
                _ => walk(self.root_fd.as_fd(), dir)?,
            };
            let Some(fd) = fd else {
                return Ok(self.root_fd.as_fd());
            };
            self.cache = Some((dir.to_vec(), fd));
        }
        match &self.cache {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Ok(self.root_fd.as_fd()),
        }
    }

    /// Forget the cached directory if it is `path` or below it (it is being removed).
    fn invalidate(&mut self, path: &[u8]) {
        if matches!(&self.cache, Some((p, _)) if is_within(p, path)) {
            self.cache = None;
        }
    }

    /// Create the directory `path` (tree path, parent existing) unless it already exists as a
    /// directory. Disk mode `mode | 0o700` until [`Staging::apply_dir_modes`].
    pub(crate) fn mkdir(&mut self, path: &[u8], mode: u32) -> Result<(), StageError> {
        let (parent, name) = split_last(path);
        let err = |source| StageError::Mkdir {
            path: display(path),
            source,
        };
        let pfd = self.dir_fd(parent).map_err(|e| err(io_err(e)))?;
        let name = OsStr::from_bytes(name);
        match mkdirat(pfd, name, Mode::from_bits_truncate((mode | 0o700) & 0o777)) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) => {
                let st =
                    fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| err(io_err(e)))?;
                if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
                    Ok(())
                } else {
                    Err(err(io_err(Errno::EEXIST)))
                }
            }
            Err(e) => Err(err(io_err(e))),
        }
    }

    /// Create the regular file `path` (must not exist) with the `size` bytes read from
    /// `reader`. Disk mode `mode | 0o600`; setuid/setgid dropped when the kernel refuses them.
    pub(crate) fn write_file<R: Read>(
        &mut self,
        path: &[u8],
        mut reader: R,
        size: u64,
        mode: u32,
    ) -> Result<(), StageError> {
        let (parent, name) = split_last(path);
        let err = |source| StageError::Write {
            path: display(path),
            source,
        };
        let pfd = self.dir_fd(parent).map_err(|e| err(io_err(e)))?;
        let fd = openat(
            pfd,
            OsStr::from_bytes(name),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| err(io_err(e)))?;
        let mut file = File::from(fd);
        if self.buf.len() < COPY_BUF {
            self.buf.resize(COPY_BUF, 0);
        }
        let mut got: u64 = 0;
        loop {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(err(e)),
            };
            file.write_all(&self.buf[..n]).map_err(err)?;
            got += n as u64;
        }
        if got != size {
            return Err(StageError::Truncated {
                path: display(path),
                expected: size,
                got,
            });
        }
        let want = (mode | 0o600) & 0o7777;
        if fchmod(&file, Mode::from_bits_truncate(want)).is_err() {
            fchmod(&file, Mode::from_bits_truncate(want & 0o1777)).map_err(|e| err(io_err(e)))?;
        }
        Ok(())
    }

    /// Create the symlink `path` with `target` stored verbatim (never resolved).
    pub(crate) fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), StageError> {
        let (parent, name) = split_last(path);
        let err = |source| StageError::Symlink {
            path: display(path),
            source,
        };
        let pfd = self.dir_fd(parent).map_err(|e| err(io_err(e)))?;
        symlinkat(OsStr::from_bytes(target), pfd, OsStr::from_bytes(name))
            .map_err(|e| err(io_err(e)))
    }

    /// Create `path` as a hard link of `target` (both tree paths; the link itself is linked,
    /// never followed). When `missing_ok`, a target absent on disk (a fifo that could not be
    /// created) is skipped.
    pub(crate) fn hardlink(
        &mut self,
        path: &[u8],
        target: &[u8],
        missing_ok: bool,
    ) -> Result<(), StageError> {
        let err = |source| StageError::Hardlink {
            path: display(path),
            target: display(target),
            source,
        };
        let (tparent, tname) = split_last(target);
        let tfd = match walk(self.root_fd.as_fd(), tparent) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if missing_ok => return Ok(()),
            Err(e) => return Err(err(io_err(e))),
        };
        let (parent, name) = split_last(path);
        let root = self.root_fd.try_clone().map_err(err)?;
        let tfd = tfd.unwrap_or(root);
        let pfd = self.dir_fd(parent).map_err(|e| err(io_err(e)))?;
        match linkat(
            &tfd,
            OsStr::from_bytes(tname),
            pfd,
            OsStr::from_bytes(name),
            AtFlags::empty(),
        ) {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) if missing_ok => Ok(()),
            Err(e) => Err(err(io_err(e))),
        }
    }

    /// Create the fifo `path` if the kernel allows it; returns whether it was created.
    pub(crate) fn fifo(&mut self, path: &[u8], mode: u32) -> Result<bool, StageError> {
        let (parent, name) = split_last(path);
        let err = |source| StageError::Fifo {
            path: display(path),
            source,
        };
        let pfd = self.dir_fd(parent).map_err(|e| err(io_err(e)))?;
        match mkfifoat(
            pfd,
            OsStr::from_bytes(name),
            Mode::from_bits_truncate((mode | 0o600) & 0o777),
        ) {
            Ok(()) => Ok(true),
            Err(Errno::EPERM | Errno::EACCES | Errno::EOPNOTSUPP) => Ok(false),
            Err(e) => Err(err(io_err(e))),
        }
    }

    /// Remove one object (`is_dir`: an empty directory). Absent objects are fine: devices are
    /// never staged and removal of subtrees goes children first.
    pub(crate) fn remove(&mut self, path: &[u8], is_dir: bool) -> Result<(), StageError> {
        if path.is_empty() {
            return Ok(());
        }
        if is_dir {
            self.invalidate(path);
        }
        let (parent, name) = split_last(path);
        let err = |source| StageError::Remove {
            path: display(path),
            source,
        };
        let pfd = match self.dir_fd(parent) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(err(io_err(e))),
        };
        let flag = if is_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        match unlinkat(pfd, OsStr::from_bytes(name), flag) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(err(io_err(e))),
        }
    }

    /// Set the final disk modes of every directory of `tree`: `mode | 0o700`. The staging root
    /// itself stays 0700 (private).
    pub(crate) fn apply_dir_modes(&mut self, tree: &Tree) -> Result<(), StageError> {
        for (path, entry) in tree.iter() {
            if path.is_empty() || !matches!(entry.kind, Kind::Dir) {
                continue;
            }
            let (parent, name) = split_last(path);
            let err = |source| StageError::Chmod {
                path: display(path),
                source,
            };
            let pfd = self.dir_fd(parent).map_err(|e| err(io_err(e)))?;
            let fd = openat(
                pfd,
                OsStr::from_bytes(name),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err(io_err(e)))?;
            let want = (entry.mode | 0o700) & 0o7777;
            if fchmod(&fd, Mode::from_bits_truncate(want)).is_err() {
                fchmod(&fd, Mode::from_bits_truncate(want & 0o1777)).map_err(|e| err(io_err(e)))?;
            }
        }
        Ok(())
    }

    /// Open the regular file at tree path `path` without following any symlink.
    fn open_file(&self, path: &[u8]) -> io::Result<File> {
        let (parent, name) = split_last(path);
        if name.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root is not a regular file",
            ));
        }
        let pfd = walk(self.root_fd.as_fd(), parent).map_err(io_err)?;
        let pfd = match &pfd {
            Some(fd) => fd.as_fd(),
            None => self.root_fd.as_fd(),
        };
        // O_NONBLOCK: a fifo must not block the open; it is refused below.
        let fd = openat(
            pfd,
            OsStr::from_bytes(name),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map_err(io_err)?;
        let st = fstat(&fd).map_err(io_err)?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("staged `{}` is not a regular file", display(path)),
            ));
        }
        Ok(File::from(fd))
    }
}

impl FileSource for Staging {
    fn read(&self, path: &[u8]) -> io::Result<Vec<u8>> {
        let mut f = self.open_file(path)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v)?;
        Ok(v)
    }

    fn open(&self, path: &[u8]) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.open_file(path)?))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        self.cache = None;
        crate::sys::cleanup::make_removable(&self.root);
        let _ = std::fs::remove_dir_all(&self.root);
        crate::sys::cleanup::unregister(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::rootfs::apply::tests::Layer;
    use crate::rootfs::apply::{ApplyError, Flattener};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn stage(parent: &Path, layers: Vec<Layer>) -> Result<(Tree, Staging), ApplyError> {
        let st = Staging::create_in(parent).expect("create staging");
        let mut f = Flattener::new(Some(st), &Limits::default());
        for (i, l) in layers.into_iter().enumerate() {
            f.apply_layer(i, &l.bytes()[..])?;
        }
        let (t, st, _) = f.finish()?;
        Ok((t, st.expect("staging back")))
    }

    /// Every object on disk below `root`, as tree paths.
    fn disk_paths(root: &Path, rel: &str, out: &mut Vec<String>) {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        for ent in std::fs::read_dir(dir).expect("read_dir") {
            let ent = ent.expect("dirent");
            let name = ent.file_name().to_string_lossy().into_owned();
            let p = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            out.push(p.clone());
            if ent.file_type().expect("type").is_dir() {
                disk_paths(root, &p, out);
            }
        }
    }

    /// The disk matches the tree: same objects (devices absent), same types, contents, links.
    fn check_disk(t: &Tree, st: &Staging) {
        let mut on_disk = Vec::new();
        disk_paths(st.root(), "", &mut on_disk);
        for p in &on_disk {
            assert!(t.contains(p.as_bytes()), "extra object on disk: {p}");
        }
        for (p, e) in t.iter() {
            if p.is_empty() {
                continue;
            }
            let disk = st.root().join(OsStr::from_bytes(p));
            let meta = std::fs::symlink_metadata(&disk);
            let shown = display(p);
            match &e.kind {
                Kind::File { size } => {
                    let m = meta.expect("file on disk");
                    assert!(m.is_file(), "{shown}");
                    assert_eq!(m.len(), *size, "{shown}");
                    assert_eq!(m.mode() & 0o7777, (e.mode | 0o600) & 0o7777, "{shown}");
                    let bytes = st.read(p).expect("FileSource::read");
                    assert_eq!(bytes.len() as u64, *size);
                }
                Kind::Dir => {
                    let m = meta.expect("dir on disk");
                    assert!(m.is_dir(), "{shown}");
                    assert_eq!(m.mode() & 0o7777, (e.mode | 0o700) & 0o7777, "{shown}");
                }
                Kind::Symlink { target } => {
                    assert!(meta.expect("link").file_type().is_symlink(), "{shown}");
                    let got = std::fs::read_link(&disk).expect("readlink");
                    assert_eq!(got.as_os_str().as_bytes(), &target[..], "{shown}");
                }
                Kind::Fifo => {
                    if let Ok(m) = meta {
                        assert!(m.file_type().is_fifo(), "{shown}");
                    }
                }
                Kind::CharDev { .. } | Kind::BlockDev { .. } => {
                    assert!(meta.is_err(), "device staged: {shown}");
                }
            }
        }
    }

    /// Two layers with modes, setuid, links, a whiteout, a replacement and an opaque dir.
    fn two_layers() -> (Layer, Layer) {
        let l0 = Layer::new()
            .dir("etc/")
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
            .file("etc/gone", b"gone")
            .dir_mode("secret/", 0o500)
            .file_mode("secret/key", b"k", 0o400)
            .file_mode("bin/su", b"suid", 0o4755)
            .hardlink("bin/su2", "bin/su")
            .symlink("lib", "usr/lib")
            .symlink("usr/bin/x", "/bin/y")
            .file("old/dir/f", b"f")
            .file("o/lower", b"l");
        let l1 = Layer::new()
            .file("etc/.wh.gone", b"")
            .file("old", b"now a file")
            .file("bin/su", b"new su")
            .file("o/upper", b"u")
            .file("o/.wh..wh..opq", b"");
        (l0, l1)
    }

    #[test]
    fn staged_disk_matches_tree() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (l0, l1) = two_layers();
        let l2 = Layer::new()
            .hardlink("hl", "bin/su2")
            .file("old/.wh.nothing-here", b"");
        // `old/.wh.` below a file: refused like any entry below a non-directory.
        let r = stage(tmp.path(), vec![l0, l1, l2]);
        assert!(matches!(r, Err(ApplyError::ParentNotDir { .. })), "{r:?}");

        let (l0, l1) = two_layers();
        let l2 = Layer::new().hardlink("hl", "bin/su2").dir("old2/");
        let (t, st) = stage(tmp.path(), vec![l0, l1, l2]).expect("stage");
        check_disk(&t, &st);
        assert_eq!(
            st.read(b"etc/passwd").expect("read"),
            b"root:x:0:0::/root:/bin/sh\n"
        );
        assert_eq!(st.read(b"bin/su").expect("read"), b"new su");
        // The old inode survives under its other names, on disk and in the tree.
        assert_eq!(st.read(b"bin/su2").expect("read"), b"suid");
        assert_eq!(st.read(b"hl").expect("read"), b"suid");
        let ino = |p: &str| {
            std::fs::symlink_metadata(st.root().join(p))
                .expect("meta")
                .ino()
        };
        assert_eq!(ino("bin/su2"), ino("hl"));
        assert_ne!(ino("bin/su"), ino("hl"));
        assert_eq!(
            t.get(b"hl").map(|e| e.inode),
            t.get(b"bin/su2").map(|e| e.inode)
        );
        assert!(st.read(b"etc/gone").is_err());
        assert!(st.read(b"lib").is_err(), "symlinks are not followed");
        let mut s = String::new();
        st.open(b"o/upper")
            .expect("open")
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "u");
        assert!(!st.root().join("o/lower").exists());
        // The staging root stays private.
        let m = std::fs::metadata(st.root()).expect("root meta");
        assert_eq!(m.mode() & 0o777, 0o700);
    }

    #[test]
    fn devices_and_fifos_on_disk() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let l0 = Layer::new().file("a", b"a");
        let (t, st) = stage(tmp.path(), vec![l0]).expect("stage");
        check_disk(&t, &st);
        let mut st = st;
        assert!(st.fifo(b"p", 0o644).is_ok());
        let m = std::fs::symlink_metadata(st.root().join("p")).expect("fifo");
        assert!(m.file_type().is_fifo());
        // Opening a fifo through the file source fails instead of blocking.
        assert!(st.read(b"p").is_err());
    }

    #[test]
    fn nothing_outside_staging_changes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).expect("victim");
        std::fs::write(victim.join("orig"), b"orig").expect("victim file");
        let victim_abs = victim.to_string_lossy().into_owned();
        let snapshot = || {
            let mut v = Vec::new();
            disk_paths(&victim, "", &mut v);
            v.sort();
            (v, std::fs::read(victim.join("orig")).expect("orig"))
        };
        let before = snapshot();

        let cases: Vec<Vec<Layer>> = vec![
            vec![
                Layer::new().symlink("evil", "../victim"),
                Layer::new().file("evil/file", b"pwned"),
            ],
            vec![
                Layer::new().symlink("evil", &victim_abs),
                Layer::new().file("evil/orig", b"pwned"),
            ],
            vec![
                Layer::new().symlink("evil", "../victim"),
                Layer::new().file("evil/.wh.orig", b""),
            ],
            vec![
                Layer::new().symlink("evil", "../victim"),
                Layer::new().file("evil/.wh..wh..opq", b""),
            ],
            vec![
                Layer::new().symlink("evil", &victim_abs).file("x", b"x"),
                Layer::new().hardlink("evil/h", "x"),
            ],
        ];
        // Links are followed inside the image only: what goes "through" them lands in the
        // staging dir at the in-image target (`victim/...` or `<abs path>/...`).
        let abs_in_image = victim_abs.trim_start_matches('/').to_owned();
        let expect_in_tree = [
            Some("victim/file".to_string()),
            Some(format!("{abs_in_image}/orig")),
            None,
            None,
            Some(format!("{abs_in_image}/h")),
        ];
        for (i, layers) in cases.into_iter().enumerate() {
            let r = stage(tmp.path(), layers);
            let (t, st) = match r {
                Ok(v) => v,
                Err(e) => panic!("case {i}: {e}"),
            };
            if let Some(p) = &expect_in_tree[i] {
                assert!(
                    t.get(p.as_bytes()).is_some(),
                    "case {i}: {p} not in the tree"
                );
                assert!(st.root().join(p).is_file(), "case {i}: {p} not staged");
            }
            check_disk(&t, &st);
            drop(st);
            assert_eq!(snapshot(), before, "case {i}");
        }

        // The disk layer refuses on its own too, with no help from the tree.
        let mut st = Staging::create_in(tmp.path()).expect("staging");
        st.symlink(b"evil", victim_abs.as_bytes()).expect("symlink");
        st.symlink(b"rel", b"../victim").expect("symlink");
        for p in [&b"evil"[..], b"rel"] {
            let mut file = p.to_vec();
            file.extend_from_slice(b"/orig");
            assert!(st.write_file(&file, &b"pwned"[..], 5, 0o644).is_err());
            let mut dir = p.to_vec();
            dir.extend_from_slice(b"/d");
            assert!(st.mkdir(&dir, 0o755).is_err());
            assert!(st.hardlink(b"h", &file, false).is_err());
            assert!(st.remove(&file, false).is_err());
            assert!(st.read(&file).is_err());
            assert!(st.fifo(&dir, 0o644).is_err());
        }
        // Removing the link itself removes the link, not the target.
        st.remove(b"evil", false).expect("remove link");
        assert_eq!(snapshot(), before);
        drop(st);
        assert_eq!(snapshot(), before);
        // Only the victim is left next to it.
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("read_dir")
            .map(|e| e.expect("dirent").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("victim")]);
    }

    #[test]
    fn drop_removes_and_keep_keeps() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (_, st) = stage(
            tmp.path(),
            vec![Layer::new()
                .dir_mode("ro/", 0o500)
                .dir_mode("ro/inner/", 0o000)
                .file_mode("ro/inner/f", b"x", 0o000)],
        )
        .expect("stage");
        let root = st.root().to_path_buf();
        // Make it as hard as possible: read-only and unsearchable directories on disk.
        std::fs::set_permissions(
            root.join("ro/inner"),
            std::fs::Permissions::from_mode(0o000),
        )
        .expect("chmod");
        std::fs::set_permissions(root.join("ro"), std::fs::Permissions::from_mode(0o500))
            .expect("chmod");
        assert!(root.exists());
        drop(st);
        assert!(!root.exists());

        let mut st = Staging::create_in(tmp.path()).expect("staging");
        st.keep();
        let root = st.root().to_path_buf();
        drop(st);
        assert!(root.is_dir());
        std::fs::remove_dir(&root).expect("cleanup");
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::limits::Limits;
    use crate::rootfs::apply::Flattener;

    /// Manual benchmark: `OCI_SLIM_BENCH_TAR=layer.tar cargo test --release --lib
    /// rootfs::stage::bench -- --ignored --nocapture`; compare with `tar -xf layer.tar`.
    #[test]
    #[ignore = "manual benchmark; needs OCI_SLIM_BENCH_TAR"]
    fn flatten_and_stage_a_big_layer() {
        let Some(tar) = std::env::var_os("OCI_SLIM_BENCH_TAR") else {
            eprintln!("skipped: OCI_SLIM_BENCH_TAR not set");
            return;
        };
        let parent = std::env::var_os("OCI_SLIM_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let file = File::open(&tar).expect("open bench tar");
        let start = std::time::Instant::now();
        let st = Staging::create_in(&parent).expect("staging");
        let mut f = Flattener::new(Some(st), &Limits::default());
        let ls = f
            .apply_layer(0, io::BufReader::with_capacity(1 << 20, file))
            .expect("apply");
        let (_, st, stats) = f.finish().expect("finish");
        let took = start.elapsed();
        eprintln!("{ls:?}\n{stats:?}\nflatten+stage: {took:?}");
        let start = std::time::Instant::now();
        drop(st);
        eprintln!("removal: {:?}", start.elapsed());
    }
}
