//! Normalizing hostile tar names into tree paths.
//!
//! A tar name is turned into a root-relative path with no leading or trailing `/`, no empty or
//! `.` components. `..` components are refused, never resolved: a layer has no business naming
//! a parent directory, and resolving them lexically would hide intent (`a/../../x`).

use crate::limits::Limits;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path `{0}` escapes the image root")]
    Escapes(String),
    #[error("path `{0}` contains a NUL byte")]
    Nul(String),
    #[error("path `{0}` is empty")]
    Empty(String),
    #[error("path `{path}` is too long ({len} bytes, limit {limit})")]
    TooLong {
        path: String,
        len: usize,
        limit: usize,
    },
    #[error("path `{path}` is too deep ({depth} components, limit {limit})")]
    TooDeep {
        path: String,
        depth: usize,
        limit: usize,
    },
}

/// Normalize a tar entry name into a tree path (see [`crate::rootfs`]) with the default
/// [`Limits`].
///
/// Leading `./` and `/`, repeated `/`, `.` components and a trailing `/` are dropped; `..`
/// components and NUL bytes are refused. A name that only names the root (`/`, `./`, `.`)
/// gives the empty path; the empty name itself is an error.
pub fn normalize(name: &[u8]) -> Result<Vec<u8>, PathError> {
    let limits = Limits::default();
    normalize_with(name, limits.max_path_len, limits.max_depth)
}

/// [`normalize`] with explicit bounds on the normalized path's length in bytes and its number
/// of components.
pub fn normalize_with(name: &[u8], max_len: usize, max_depth: usize) -> Result<Vec<u8>, PathError> {
    let lossy = || String::from_utf8_lossy(name).into_owned();
    if name.is_empty() {
        return Err(PathError::Empty(String::new()));
    }
    if name.contains(&0) {
        return Err(PathError::Nul(lossy()));
    }
    let mut out = Vec::with_capacity(name.len());
    let mut depth = 0usize;
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => continue,
            b".." => return Err(PathError::Escapes(lossy())),
            _ => {}
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(comp);
        depth += 1;
        if depth > max_depth {
            let depth = name
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty() && *c != b".")
                .count();
            return Err(PathError::TooDeep {
                path: lossy(),
                depth,
                limit: max_depth,
            });
        }
        if out.len() > max_len {
            return Err(PathError::TooLong {
                path: lossy(),
                len: normalized_len(name),
                limit: max_len,
            });
        }
    }
    Ok(out)
}

/// Length of the normalized form of `name` (for error messages only).
fn normalized_len(name: &[u8]) -> usize {
    let comps: Vec<&[u8]> = name
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    comps.iter().map(|c| c.len()).sum::<usize>() + comps.len().saturating_sub(1)
}

/// The last component of a tree path and its parent (the empty path for top-level names).
pub fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Join a tree path and one component.
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    p.extend_from_slice(parent);
    if !parent.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Whether `path` is `dir` or below it (`dir` empty = the root contains everything).
pub fn is_within(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"a", b"a"),
            (b"./a", b"a"),
            (b"/a", b"a"),
            (b"//a//b//", b"a/b"),
            (b"./a/./b/.", b"a/b"),
            (b"a/b/", b"a/b"),
            (b"././/./x", b"x"),
            (b"./", b""),
            (b"/", b""),
            (b".", b""),
            (b"//./", b""),
            (b"...", b"..."),
            (b"a/..b/c..", b"a/..b/c.."),
            (b".wh..wh..opq", b".wh..wh..opq"),
            (b"\xff\xfe/\x01", b"\xff\xfe/\x01"),
        ];
        for (name, want) in ok {
            assert_eq!(
                normalize(name).as_deref(),
                Ok(*want),
                "name {:?}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn normalize_refuses() {
        type Pred = fn(&PathError) -> bool;
        let bad: &[(&[u8], Pred)] = &[
            (b"", |e| matches!(e, PathError::Empty(_))),
            (b"..", |e| matches!(e, PathError::Escapes(_))),
            (b"../x", |e| matches!(e, PathError::Escapes(_))),
            (b"a/../b", |e| matches!(e, PathError::Escapes(_))),
            (b"/a/b/..", |e| matches!(e, PathError::Escapes(_))),
            (b"./../etc/passwd", |e| matches!(e, PathError::Escapes(_))),
            (b"a\0b", |e| matches!(e, PathError::Nul(_))),
            (b"a/\0", |e| matches!(e, PathError::Nul(_))),
        ];
        for (name, pred) in bad {
            let r = normalize(name);
            match r {
                Err(ref e) if pred(e) => {}
                other => panic!("name {:?}: got {other:?}", String::from_utf8_lossy(name)),
            }
        }
    }

    #[test]
    fn normalize_limits() {
        assert_eq!(normalize_with(b"a/b/c", 5, 3), Ok(b"a/b/c".to_vec()));
        assert_eq!(
            normalize_with(b"/a/b/c/", 4, 3),
            Err(PathError::TooLong {
                path: "/a/b/c/".into(),
                len: 5,
                limit: 4
            })
        );
        assert_eq!(
            normalize_with(b"a/./b/c/d", 100, 3),
            Err(PathError::TooDeep {
                path: "a/./b/c/d".into(),
                depth: 4,
                limit: 3
            })
        );
        // Redundant separators do not count against the length.
        assert_eq!(normalize_with(b"./////a//b", 3, 3), Ok(b"a/b".to_vec()));
        let deep = "d/".repeat(300);
        assert!(matches!(
            normalize(deep.as_bytes()),
            Err(PathError::TooDeep { depth: 300, .. })
        ));
        let long = "x".repeat(5000);
        assert!(matches!(
            normalize(long.as_bytes()),
            Err(PathError::TooLong { len: 5000, .. })
        ));
    }

    #[test]
    fn helpers() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(join(b"", b"x"), b"x".to_vec());
        assert_eq!(join(b"a/b", b"x"), b"a/b/x".to_vec());
        assert!(is_within(b"a/b", b"a"));
        assert!(is_within(b"a", b"a"));
        assert!(is_within(b"a", b""));
        assert!(!is_within(b"ab", b"a"));
        assert!(!is_within(b"a", b"a/b"));
    }
}
