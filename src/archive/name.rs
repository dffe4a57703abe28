//! Names inside archives, and docker image references.

use super::error::ArchiveError;

/// Normalize an archive entry name (or a file name from `manifest.json`) to a relative path:
/// `./` and empty components dropped, a trailing `/` dropped. Refuses absolute names, `..`,
/// NUL and non-UTF-8 (blob names are ASCII; a name that cannot be referenced is suspect).
/// The archive root itself normalizes to the empty string.
pub fn normalize_entry_name(raw: &[u8]) -> Result<String, ArchiveError> {
    let shown = || {
        String::from_utf8_lossy(raw)
            .chars()
            .take(200)
            .collect::<String>()
    };
    let refuse = |reason: &str| ArchiveError::EntryName {
        name: shown(),
        reason: reason.to_owned(),
    };
    if raw.contains(&0) {
        return Err(refuse("contains NUL"));
    }
    let s = std::str::from_utf8(raw).map_err(|_| refuse("not UTF-8"))?;
    if s.starts_with('/') {
        return Err(refuse("absolute path"));
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(refuse("`..` component escapes the archive")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// A docker reference split into its parts, normalized like the docker CLI does:
/// `nginx` → `docker.io/library/nginx:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    /// `:tag`, `@digest`, or both (`:tag@digest`), with the leading separator.
    pub suffix: String,
}

impl Reference {
    /// Parse a reference; `None` when it is empty or has empty components.
    pub fn parse(s: &str) -> Option<Reference> {
        let s = s.trim();
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            return None;
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
            None => (name, None),
        };
        if repo.is_empty() || repo.split('/').any(str::is_empty) || tag == Some("") {
            return None;
        }
        let (domain, path) = match repo.split_once('/') {
            Some((d, rest)) if d.contains('.') || d.contains(':') || d == "localhost" => {
                (d.to_owned(), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), repo.to_owned()),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io".to_owned()
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let mut suffix = String::new();
        match (tag, digest) {
            (Some(t), _) => {
                suffix.push(':');
                suffix.push_str(t);
            }
            (None, None) => suffix.push_str(":latest"),
            (None, Some(_)) => {}
        }
        if let Some(d) = digest {
            suffix.push('@');
            suffix.push_str(d);
        }
        Some(Reference {
            domain,
            path,
            suffix,
        })
    }

    /// Key under which references are compared: `localhost/` (podman's default for unqualified
    /// names) counts as `docker.io`, so `nginx:latest`, `docker.io/library/nginx:latest` and
    /// `localhost/nginx:latest` are the same image.
    fn match_key(&self) -> (String, String) {
        let path = if self.domain == "localhost" && !self.path.contains('/') {
            format!("library/{}", self.path)
        } else {
            self.path.clone()
        };
        let domain = if self.domain == "localhost" {
            "docker.io"
        } else {
            &self.domain
        };
        (format!("{domain}/{path}"), self.suffix.clone())
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}{}", self.domain, self.path, self.suffix)
    }
}

/// Fully qualified form of a reference (`nginx` → `docker.io/library/nginx:latest`), or `None`
/// when it does not parse.
pub fn normalize_reference(s: &str) -> Option<String> {
    Reference::parse(s).map(|r| r.to_string())
}

/// Whether two references name the same image: `localhost/` counts as `docker.io`, so
/// `nginx`, `docker.io/library/nginx:latest` and `localhost/nginx:latest` are equal.
pub fn same_reference(a: &str, b: &str) -> bool {
    match (Reference::parse(a), Reference::parse(b)) {
        (Some(a), Some(b)) => a.match_key() == b.match_key(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        for (raw, want) in [
            ("manifest.json", Some("manifest.json")),
            ("./manifest.json", Some("manifest.json")),
            ("./blobs//sha256/", Some("blobs/sha256")),
            (".", Some("")),
            ("./", Some("")),
            ("/etc/passwd", None),
            ("../x", None),
            ("a/../../x", None),
            ("a/..", None),
            ("a\0b", None),
        ] {
            let got = normalize_entry_name(raw.as_bytes()).ok();
            assert_eq!(got.as_deref(), want, "{raw:?}");
        }
        assert!(normalize_entry_name(b"\xff\xfe").is_err());
    }

    #[test]
    fn references() {
        for (raw, want) in [
            ("nginx", Some("docker.io/library/nginx:latest")),
            ("nginx:1.25", Some("docker.io/library/nginx:1.25")),
            (
                "docker.io/library/nginx:latest",
                Some("docker.io/library/nginx:latest"),
            ),
            (
                "index.docker.io/nginx",
                Some("docker.io/library/nginx:latest"),
            ),
            ("localhost/nginx:latest", Some("localhost/nginx:latest")),
            ("user/app:v1", Some("docker.io/user/app:v1")),
            ("reg:5000/a/b", Some("reg:5000/a/b:latest")),
            ("reg.io/a@sha256:abc", Some("reg.io/a@sha256:abc")),
            ("", None),
            ("a//b", None),
            ("nginx:", None),
        ] {
            assert_eq!(normalize_reference(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn equivalent_references() {
        for (a, b, same) in [
            ("nginx:latest", "docker.io/library/nginx:latest", true),
            ("nginx:latest", "localhost/nginx:latest", true),
            ("nginx", "localhost/nginx:latest", true),
            ("foo/bar:1", "localhost/foo/bar:1", true),
            ("nginx:latest", "nginx:1.25", false),
            ("nginx:latest", "quay.io/nginx:latest", false),
            ("nginx", "nginx-slim", false),
        ] {
            assert_eq!(same_reference(a, b), same, "{a} vs {b}");
        }
    }
}
