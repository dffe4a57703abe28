//! One-pass index of the outer tar: entry name → kind, data offset and size.
//!
//! Hand-written rather than `tar::Archive` so that every malformed case is an explicit error:
//! a file that ends before the end-of-archive marker is truncated, anything but zero blocks
//! after the marker is trailing garbage, and header checksums are verified. Understands ustar
//! (with prefix), GNU long names (`L`/`K`) and PAX extended headers (`path`, `linkpath`,
//! `size`); global PAX headers are skipped.

use super::error::ArchiveError;
use super::name::normalize_entry_name;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const BLOCK: u64 = 512;

/// What an outer-tar entry is. Only regular files can serve as blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// Symlink or hardlink to another entry: resolved inside the index only (never on the
    /// host), one hop, to a regular file.
    Link,
    /// Device, fifo, sparse file or unknown type.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub kind: EntryKind,
    /// For links: the archive name the link points at, already resolved against the link's
    /// directory; `None` when it points outside the archive.
    pub target: Option<String>,
    /// Offset of the entry's data in the file.
    pub offset: u64,
    /// Size of the entry's data.
    pub size: u64,
}

/// Parse an octal or base-256 numeric header field.
fn parse_number(field: &[u8]) -> Option<u64> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            // Base-256 (GNU): big-endian, first byte's high bit is the marker. Refuse negatives.
            if first & 0x40 != 0 {
                return None;
            }
            let mut v: u64 = u64::from(first & 0x3f);
            for &b in &field[1..] {
                v = v.checked_mul(256)?.checked_add(u64::from(b))?;
            }
            return Some(v);
        }
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .take_while(|&b| b != 0)
        .filter(|&b| b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn checksum_ok(h: &[u8; 512]) -> bool {
    let Some(stored) = parse_number(&h[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// PAX records `"<len> key=value\n"`.
fn parse_pax(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > rest.len() {
            return None;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n")?;
        let eq = rec.iter().position(|&b| b == b'=')?;
        let key = String::from_utf8(rec[..eq].to_vec()).ok()?;
        out.push((key, rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Some(out)
}

fn read_exact_at(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
    what: &str,
) -> Result<(), ArchiveError> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ArchiveError::Truncated {
                path: path.to_path_buf(),
                what: what.to_owned(),
                offset,
            }
        } else {
            ArchiveError::Read {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// Largest long-name or PAX header we accept.
const MAX_META: u64 = 1 << 20;

/// Index a tar file. `len` is the file length.
pub fn index(
    file: &File,
    path: &Path,
    len: u64,
    max_entries: u64,
    max_name_len: usize,
) -> Result<HashMap<String, TarEntry>, ArchiveError> {
    let mut entries: HashMap<String, TarEntry> = HashMap::new();
    let mut count: u64 = 0;
    let mut pos: u64 = 0;
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax_path: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax_link: Option<Vec<u8>> = None;
    let mut pax_size: Option<u64> = None;
    let truncated = |what: &str, offset: u64| ArchiveError::Truncated {
        path: path.to_path_buf(),
        what: what.to_owned(),
        offset,
    };
    loop {
        if pos + BLOCK > len {
            return Err(truncated(
                "end of file before the end-of-archive marker",
                pos,
            ));
        }
        let mut h = [0u8; 512];
        read_exact_at(file, path, &mut h, pos, "header")?;
        if h.iter().all(|&b| b == 0) {
            // End-of-archive marker: only zero bytes may follow.
            let mut off = pos + BLOCK;
            let mut buf = vec![0u8; 64 * 1024];
            while off < len {
                let n = usize::try_from((len - off).min(buf.len() as u64)).unwrap_or(buf.len());
                read_exact_at(file, path, &mut buf[..n], off, "padding")?;
                if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                    return Err(ArchiveError::TrailingGarbage {
                        path: path.to_path_buf(),
                        offset: off + i as u64,
                    });
                }
                off += n as u64;
            }
            return Ok(entries);
        }
        if !checksum_ok(&h) {
            return Err(ArchiveError::BadHeader {
                path: path.to_path_buf(),
                offset: pos,
                reason: "checksum mismatch".into(),
            });
        }
        let bad_header = |reason: &str| ArchiveError::BadHeader {
            path: path.to_path_buf(),
            offset: pos,
            reason: reason.to_owned(),
        };
        let typeflag = h[156];
        let header_size = parse_number(&h[124..136]).ok_or_else(|| bad_header("bad size field"))?;
        let data_off = pos + BLOCK;
        // Header-only types carry no data whatever the size field says (as Go's reader does).
        let header_only = matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
        let size = if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            header_size
        } else {
            // A PAX size applies to the next real entry only, whatever its type.
            let s = pax_size.take().unwrap_or(header_size);
            if header_only {
                0
            } else {
                s
            }
        };
        let padded = size
            .checked_add(BLOCK - 1)
            .map(|s| s / BLOCK * BLOCK)
            .ok_or_else(|| bad_header("size overflows"))?;
        let next = data_off
            .checked_add(padded)
            .ok_or_else(|| bad_header("size overflows"))?;
        if data_off + size > len {
            return Err(truncated("entry data cut short", data_off));
        }
        match typeflag {
            b'L' | b'x' | b'K' | b'g' => {
                if size > MAX_META {
                    return Err(bad_header("extended header too large"));
                }
                if typeflag != b'g' {
                    let mut data = vec![0u8; usize::try_from(size).unwrap_or(0)];
                    read_exact_at(file, path, &mut data, data_off, "extended header")?;
                    match typeflag {
                        b'L' => long_name = Some(cstr(&data).to_vec()),
                        b'x' => {
                            let recs = parse_pax(&data)
                                .ok_or_else(|| bad_header("malformed pax header"))?;
                            for (k, v) in recs {
                                match k.as_str() {
                                    "path" => pax_path = Some(v),
                                    "linkpath" => pax_link = Some(v),
                                    "size" => {
                                        let s = std::str::from_utf8(&v)
                                            .ok()
                                            .and_then(|s| s.parse().ok())
                                            .ok_or_else(|| bad_header("bad pax size"))?;
                                        pax_size = Some(s);
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => long_link = Some(cstr(&data).to_vec()),
                    }
                }
                pos = next;
                continue;
            }
            _ => {}
        }
        count += 1;
        if count > max_entries {
            return Err(ArchiveError::TooManyEntries {
                path: path.to_path_buf(),
                limit: max_entries,
            });
        }
        let raw_name: Vec<u8> = if let Some(n) = pax_path.take() {
            long_name = None;
            n
        } else if let Some(n) = long_name.take() {
            n
        } else {
            let name = cstr(&h[0..100]);
            let prefix = cstr(&h[345..500]);
            if &h[257..263] == b"ustar\0" && !prefix.is_empty() {
                let mut n = prefix.to_vec();
                n.push(b'/');
                n.extend_from_slice(name);
                n
            } else {
                name.to_vec()
            }
        };
        let raw_link: Vec<u8> = match (pax_link.take(), long_link.take()) {
            (Some(l), _) | (None, Some(l)) => l,
            (None, None) => cstr(&h[157..257]).to_vec(),
        };
        let kind = match typeflag {
            b'0' | 0 | b'7' => EntryKind::File,
            b'5' => EntryKind::Dir,
            b'1' | b'2' => EntryKind::Link,
            _ => EntryKind::Other,
        };
        // Old tars mark directories only by a trailing slash on a regular entry.
        let kind = if kind == EntryKind::File && raw_name.ends_with(b"/") {
            EntryKind::Dir
        } else {
            kind
        };
        if raw_name.len() > max_name_len {
            return Err(ArchiveError::EntryName {
                name: String::from_utf8_lossy(&raw_name)
                    .chars()
                    .take(100)
                    .collect(),
                reason: format!("name longer than {max_name_len} bytes"),
            });
        }
        let name = normalize_entry_name(&raw_name)?;
        if !name.is_empty() {
            let target = match typeflag {
                // Hardlink names are archive names; symlinks are relative to their directory.
                b'1' => link_target(b"", &raw_link),
                b'2' => link_target(
                    name.rsplit_once('/').map_or("", |(d, _)| d).as_bytes(),
                    &raw_link,
                ),
                _ => None,
            };
            let entry = TarEntry {
                kind,
                target,
                offset: data_off,
                size,
            };
            if let Some(prev) = entries.insert(name.clone(), entry) {
                // The same directory listed twice is harmless; anything else is ambiguous.
                if !(prev.kind == EntryKind::Dir && kind == EntryKind::Dir) {
                    return Err(ArchiveError::DuplicateEntry { name });
                }
            }
        }
        pos = next;
    }
}

/// Resolve a link target lexically inside the archive: `dir/target` with `.` and `..` applied,
/// `None` if it is absolute, not UTF-8, or climbs above the archive root.
fn link_target(dir: &[u8], target: &[u8]) -> Option<String> {
    if target.is_empty() || target.starts_with(b"/") || target.contains(&0) {
        return None;
    }
    let dir = std::str::from_utf8(dir).ok()?;
    let target = std::str::from_utf8(target).ok()?;
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for (field, want) in [
            (&b"0000644\0"[..], Some(0o644)),
            (b"  12 \0", Some(0o12)),
            (b"\0\0\0", Some(0)),
            (b"0009\0", None),
            (&[0x80, 0, 0, 0, 0, 0, 1, 0][..], Some(256)),
            (&[0xff, 0, 0][..], None),
        ] {
            assert_eq!(parse_number(field), want, "{field:?}");
        }
    }

    #[test]
    fn link_targets() {
        for (dir, target, want) in [
            ("abc", "../x.tar", Some("x.tar")),
            ("a/b", "../c/./d", Some("a/c/d")),
            ("", "blobs/sha256/x", Some("blobs/sha256/x")),
            ("abc", "../../etc/passwd", None),
            ("abc", "/etc/passwd", None),
            ("abc", "", None),
        ] {
            assert_eq!(
                link_target(dir.as_bytes(), target.as_bytes()).as_deref(),
                want,
                "{dir} {target}"
            );
        }
    }

    #[test]
    fn pax_records() {
        let recs = parse_pax(b"16 path=a/b/cde\n11 size=42\n").unwrap();
        assert_eq!(
            recs,
            vec![
                ("path".to_string(), b"a/b/cde".to_vec()),
                ("size".to_string(), b"42".to_vec())
            ]
        );
        assert!(parse_pax(b"99 path=x\n").is_none());
        assert!(parse_pax(b"3 x\n").is_none());
    }
}
