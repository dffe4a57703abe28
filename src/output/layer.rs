//! Writing tar entries with full metadata: ustar headers, plus a PAX extended header when a
//! name or link target is longer than the ustar fields, a number does not fit in octal, or
//! the entry carries extended attributes (`SCHILY.xattr.<name>`).

use super::OutputError;
use crate::rootfs::{display, Entry, FileSource, Kind};
use std::io::{self, Read, Write};
use tar::{EntryType, Header};

/// Length of the ustar `name` and `linkname` fields.
const USTAR_NAME_LEN: usize = 100;
/// Largest value an 8-byte octal field (mode, uid, gid) holds.
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value a 12-byte octal field (size, mtime) holds.
const MAX_OCTAL_12: u64 = 0o77777777777;
/// Name of the PAX extended header entries (readers ignore it).
const PAX_HEADER_NAME: &[u8] = b"././@PaxHeader";

/// What one layer entry is written as.
pub(crate) enum Body<'a> {
    /// The entry itself: a file's content, a directory, a symlink, a device or a fifo.
    Entry(&'a Entry),
    /// A hardlink to an earlier entry of the layer (the tree path of that entry).
    HardLink { entry: &'a Entry, target: &'a [u8] },
}

/// One PAX record: `"%d %s=%s\n"`, the length counting itself.
pub(crate) fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let base = 1 + key.len() + 1 + value.len() + 1;
    let mut len = base + digits(base);
    if digits(len) != digits(base) {
        len = base + digits(len);
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    debug_assert_eq!(out.len(), len);
    out
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// A reader that counts bytes and remembers whether the error came from the source (as opposed
/// to the archive being written).
struct SourceReader<R> {
    inner: R,
    count: u64,
    failed: Option<io::Error>,
}

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.failed = Some(e);
                Err(io::Error::new(kind, "reading the source file failed"))
            }
        }
    }
}

/// Writes the entries of one layer to a tar builder.
pub(crate) struct LayerTar<W: Write> {
    builder: tar::Builder<W>,
    /// Tar entries written (PAX headers not counted).
    pub entries: usize,
    /// Bytes of regular file content written.
    pub file_bytes: u64,
}

impl<W: Write> LayerTar<W> {
    pub fn new(w: W) -> Self {
        LayerTar {
            builder: tar::Builder::new(w),
            entries: 0,
            file_bytes: 0,
        }
    }

    /// Write the end-of-archive blocks and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    /// Append one entry named by its tree path (no leading `/`; a directory gets a trailing
    /// `/`). `io_err` wraps an I/O error of the writer into the caller's error.
    pub fn append(
        &mut self,
        path: &[u8],
        body: Body<'_>,
        src: &dyn FileSource,
        io_err: &dyn Fn(io::Error) -> OutputError,
    ) -> Result<(), OutputError> {
        let entry = match body {
            Body::Entry(e) | Body::HardLink { entry: e, .. } => e,
        };
        let mut name = path.to_vec();
        if matches!(body, Body::Entry(e) if e.is_dir()) {
            name.push(b'/');
        }
        let header_err = |reason: &'static str| OutputError::EntryHeader {
            path: display(path),
            reason,
        };
        if name.contains(&0) {
            return Err(header_err("the name contains a nul byte"));
        }

        let mut h = Header::new_ustar();
        let mut pax: Vec<u8> = Vec::new();
        let mut binary = false;
        set_name(&mut h, &name, b"path", &mut pax, &mut binary);

        let (ty, size, link): (EntryType, u64, Option<&[u8]>) = match body {
            Body::HardLink { target, .. } => (EntryType::Link, 0, Some(target)),
            Body::Entry(e) => match &e.kind {
                Kind::File { size } => (EntryType::Regular, *size, None),
                Kind::Dir => (EntryType::Directory, 0, None),
                Kind::Symlink { target } => (EntryType::Symlink, 0, Some(&target[..])),
                Kind::CharDev { .. } => (EntryType::Char, 0, None),
                Kind::BlockDev { .. } => (EntryType::Block, 0, None),
                Kind::Fifo => (EntryType::Fifo, 0, None),
            },
        };
        h.set_entry_type(ty);
        if let Some(target) = link {
            if target.contains(&0) {
                return Err(header_err("the link target contains a nul byte"));
            }
            if target.len() <= USTAR_NAME_LEN {
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
            } else {
                h.as_old_mut()
                    .linkname
                    .copy_from_slice(&target[..USTAR_NAME_LEN]);
                pax.extend(pax_record(b"linkpath", target));
                binary |= std::str::from_utf8(target).is_err();
            }
        }
        // Device numbers as octal even when zero: readers parse the fields of every entry.
        let (major, minor) = match (&body, &entry.kind) {
            (Body::Entry(_), Kind::CharDev { major, minor } | Kind::BlockDev { major, minor }) => {
                (*major, *minor)
            }
            _ => (0, 0),
        };
        if u64::from(major) > MAX_OCTAL_8 || u64::from(minor) > MAX_OCTAL_8 {
            return Err(header_err("the device number does not fit in a tar header"));
        }
        h.set_device_major(major).map_err(io_err)?;
        h.set_device_minor(minor).map_err(io_err)?;
        h.set_mode(entry.mode & 0o7777);
        for (key, value, max) in [
            (&b"uid"[..], entry.uid, MAX_OCTAL_8),
            (b"gid", entry.gid, MAX_OCTAL_8),
            (b"size", size, MAX_OCTAL_12),
            (b"mtime", entry.mtime, MAX_OCTAL_12),
        ] {
            if value > max {
                pax.extend(pax_record(key, value.to_string().as_bytes()));
            }
        }
        h.set_uid(entry.uid);
        h.set_gid(entry.gid);
        h.set_size(size);
        h.set_mtime(entry.mtime);
        if let Body::Entry(e) = body {
            for (k, v) in &e.xattrs {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    return Err(header_err(
                        "an extended attribute name is empty or contains `=` or a nul byte",
                    ));
                }
                let key = format!("SCHILY.xattr.{k}");
                pax.extend(pax_record(key.as_bytes(), v));
            }
        }
        if binary {
            // Names that are not UTF-8: tell GNU tar not to transcode the PAX records.
            let mut p = pax_record(b"hdrcharset", b"BINARY");
            p.extend(pax);
            pax = p;
        }
        if !pax.is_empty() {
            let mut x = Header::new_ustar();
            x.as_old_mut().name[..PAX_HEADER_NAME.len()].copy_from_slice(PAX_HEADER_NAME);
            x.set_entry_type(EntryType::XHeader);
            x.set_mode(0o644);
            x.set_uid(0);
            x.set_gid(0);
            x.set_mtime(0);
            x.set_device_major(0).map_err(io_err)?;
            x.set_device_minor(0).map_err(io_err)?;
            x.set_size(pax.len() as u64);
            x.set_cksum();
            self.builder.append(&x, &pax[..]).map_err(io_err)?;
        }
        h.set_cksum();

        if ty == EntryType::Regular {
            let reader = src.open(path).map_err(|e| OutputError::OpenFile {
                path: display(path),
                source: e,
            })?;
            let mut r = SourceReader {
                inner: reader.take(size),
                count: 0,
                failed: None,
            };
            let res = self.builder.append(&h, &mut r);
            if let Some(e) = r.failed.take() {
                return Err(OutputError::ReadFile {
                    path: display(path),
                    source: e,
                });
            }
            res.map_err(io_err)?;
            if r.count != size {
                return Err(OutputError::FileTruncated {
                    path: display(path),
                    expected: size,
                    found: r.count,
                });
            }
            let mut rest = r.inner.into_inner();
            let mut one = [0u8; 1];
            let extra = loop {
                match rest.read(&mut one) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(OutputError::ReadFile {
                            path: display(path),
                            source: e,
                        })
                    }
                }
            };
            if extra != 0 {
                return Err(OutputError::FileGrew {
                    path: display(path),
                    expected: size,
                });
            }
            self.file_bytes += size;
        } else {
            self.builder.append(&h, io::empty()).map_err(io_err)?;
        }
        self.entries += 1;
        Ok(())
    }
}

/// Put `name` in the ustar name field, or a truncated copy there and the whole name in a PAX
/// record `key` when it is longer than the field.
fn set_name(h: &mut Header, name: &[u8], key: &[u8], pax: &mut Vec<u8>, binary: &mut bool) {
    if name.len() <= USTAR_NAME_LEN {
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
    } else {
        h.as_old_mut().name.copy_from_slice(&name[..USTAR_NAME_LEN]);
        pax.extend(pax_record(key, name));
        *binary |= std::str::from_utf8(name).is_err();
    }
}

/// A ustar header for the outer archive: root-owned, mtime 0, the given mode.
pub(crate) fn plain_header(
    name: &[u8],
    ty: EntryType,
    mode: u32,
    size: u64,
) -> Result<Header, &'static str> {
    if name.len() > USTAR_NAME_LEN {
        return Err("name longer than 100 bytes");
    }
    let mut h = Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(ty);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_device_major(0)
        .and_then(|()| h.set_device_minor(0))
        .map_err(|_| "not a ustar header")?;
    h.set_cksum();
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::MemSource;
    use std::collections::BTreeMap;

    fn entry(kind: Kind) -> Entry {
        Entry {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
            inode: 1,
            layer: 0,
        }
    }

    fn io_err(e: io::Error) -> OutputError {
        OutputError::WriteLayer {
            path: "mem".into(),
            source: e,
        }
    }

    type PaxRecords = Vec<(String, Vec<u8>)>;

    /// PAX records of every entry of an archive, with the entry's path.
    fn pax_of(data: &[u8]) -> Vec<(Vec<u8>, PaxRecords)> {
        let mut ar = tar::Archive::new(data);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let recs = e
                    .pax_extensions()
                    .unwrap()
                    .map(|p| {
                        p.map(|r| {
                            let r = r.unwrap();
                            (r.key().unwrap().to_owned(), r.value_bytes().to_vec())
                        })
                        .collect()
                    })
                    .unwrap_or_default();
                (e.path_bytes().into_owned(), recs)
            })
            .collect()
    }

    #[test]
    fn pax_records_for_long_and_binary_names() {
        let long_bin: Vec<u8> = [&b"d/"[..], &[0xfe; 110]].concat();
        let long_target = vec![b'x'; 150];
        let mut with_xattr = entry(Kind::Symlink {
            target: long_target.clone(),
        });
        with_xattr
            .xattrs
            .insert("user.k".into(), b"v\0= x".to_vec());
        let src = MemSource::default();
        let mut t = LayerTar::new(Vec::new());
        t.append(&long_bin, Body::Entry(&entry(Kind::Dir)), &src, &io_err)
            .unwrap();
        t.append(b"short", Body::Entry(&with_xattr), &src, &io_err)
            .unwrap();
        t.append(b"plain", Body::Entry(&entry(Kind::Fifo)), &src, &io_err)
            .unwrap();
        assert_eq!(t.entries, 3);
        let data = t.finish().unwrap();
        let got = pax_of(&data);
        let mut dir_name = long_bin.clone();
        dir_name.push(b'/');
        assert_eq!(
            got,
            vec![
                (
                    dir_name.clone(),
                    vec![
                        ("hdrcharset".to_owned(), b"BINARY".to_vec()),
                        ("path".to_owned(), dir_name),
                    ]
                ),
                (
                    b"short".to_vec(),
                    vec![
                        ("linkpath".to_owned(), long_target),
                        ("SCHILY.xattr.user.k".to_owned(), b"v\0= x".to_vec()),
                    ]
                ),
                (b"plain".to_vec(), vec![]),
            ]
        );
    }

    #[test]
    fn newline_in_xattr_value_is_length_delimited() {
        // The tar crate's reader splits PAX records at `\n` and cannot read this; POSIX
        // readers (Go, GNU tar) use the length. Check the bytes directly.
        let mut e = entry(Kind::Fifo);
        e.xattrs
            .insert("security.capability".into(), vec![1, 0x0a, 0]);
        let mut t = LayerTar::new(Vec::new());
        t.append(b"f", Body::Entry(&e), &MemSource::default(), &io_err)
            .unwrap();
        let data = t.finish().unwrap();
        let h = Header::from_byte_slice(&data[..512]);
        assert_eq!(h.entry_type(), EntryType::XHeader);
        let n = h.size().unwrap() as usize;
        assert_eq!(
            &data[512..512 + n],
            b"40 SCHILY.xattr.security.capability=\x01\n\0\n"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let src = MemSource::default();
        let mut bad_xattr = entry(Kind::Fifo);
        bad_xattr.xattrs.insert("a=b".into(), vec![]);
        let nul_target = entry(Kind::Symlink {
            target: b"a\0b".to_vec(),
        });
        let big_dev = entry(Kind::CharDev {
            major: u32::MAX,
            minor: 0,
        });
        let fifo = entry(Kind::Fifo);
        for (path, e) in [
            (&b"x"[..], &bad_xattr),
            (b"x", &nul_target),
            (b"x", &big_dev),
            (b"a\0b", &fifo),
        ] {
            let mut t = LayerTar::new(Vec::new());
            let r = t.append(path, Body::Entry(e), &src, &io_err);
            assert!(
                matches!(r, Err(OutputError::EntryHeader { .. })),
                "{e:?}: {r:?}"
            );
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        for (k, vlen) in [
            ("path", 1usize),
            ("path", 89),
            ("path", 90),
            ("path", 91),
            ("x", 994),
            ("x", 995),
            ("x", 996),
        ] {
            let v = vec![b'a'; vlen];
            let r = pax_record(k.as_bytes(), &v);
            let sp = r.iter().position(|&b| b == b' ').unwrap();
            let n: usize = std::str::from_utf8(&r[..sp]).unwrap().parse().unwrap();
            assert_eq!(n, r.len(), "{k} {vlen}");
            assert!(r.ends_with(b"\n"));
        }
        assert_eq!(pax_record(b"a", b"b"), b"6 a=b\n");
        // 9 + 1 digit would be 10, which has 2 digits: 11.
        assert_eq!(pax_record(b"ab", b"cdef"), b"11 ab=cdef\n");
    }
}
